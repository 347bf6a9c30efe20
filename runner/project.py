"""A user's own project: ``spark-dl-runner init DIR`` writes a starter one, and the runner
imports the project's modules (their models) from the directory it is started in."""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
from pathlib import Path

_EXPERIMENT = """\
# @package _global_
# spark-dl-runner --config-dir conf +experiment=starter
# Your data, your model and the search space this experiment replaces the default one with.
defaults:
  - override /data: rows
  - override /model: net
  - override /search: none

search:
  n_trials: 4
  params:
    optimizer.lr: tag(log, interval(1e-3, 3e-2))
    model.width: choice(16, 32, 64)

train:
  epochs: 10
"""

_DATA = """\
# Your CSV file (a header row; the label column "label", the other numeric columns features).
defaults:
  - csv

name: rows
path: data/rows.csv
"""

_MODEL = """\
# Your model ({package}/net.py): the runner passes input_shape and num_classes, then these keys.
_target_: {package}.net.Net
width: 32
"""

_NET = '''\
"""The starter project's model: a small MLP; change it, its keys in conf/model/net.yaml."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn


class Net(nn.Sequential):
    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 32) -> None:
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                         nn.Linear(width, num_classes))
'''

_README = """\
# {name}

A spark-dl-runner project. From this directory:

    spark-dl-runner --config-dir conf +experiment=starter

`conf/` holds your options beside the bundled ones (`data/rows.yaml` reads `data/rows.csv`,
`model/net.yaml` builds `{package}/net.py`), `conf/experiment/starter.yaml` puts them together.
Runs go to `outputs/DATE/TIME/`.
"""


def main(argv: list[str]) -> int:
    """``spark-dl-runner init DIR``: write the starter project; 2 and one line if DIR has one."""
    parser = argparse.ArgumentParser(
        prog="spark-dl-runner init", description="Write a starter project into DIR."
    )
    parser.add_argument("dir", type=Path)
    root = parser.parse_args(argv).dir
    if (root / "conf").exists():
        print(
            f"error: {root / 'conf'} exists — init a new directory, or edit that one",
            file=sys.stderr,
        )
        return 2
    package = _package_name(root)
    files = {
        "conf/experiment/starter.yaml": _EXPERIMENT,
        "conf/data/rows.yaml": _DATA,
        "conf/model/net.yaml": _MODEL.format(package=package),
        f"{package}/__init__.py": "",
        f"{package}/net.py": _NET,
        "data/rows.csv": _sample_rows(),
        "README.md": _README.format(name=root.resolve().name, package=package),
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {root}; then: cd {root} && spark-dl-runner --config-dir conf +experiment=starter")
    return 0


def importable_from_cwd() -> None:
    """Let the driver and Spark's Python workers import modules of the directory the runner
    was started in (a project's own models)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if cwd not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([cwd, *filter(None, paths)])


def _package_name(root: Path) -> str:
    name = re.sub(r"\W", "_", root.resolve().name).lower().lstrip("0123456789_") or "project"
    return f"{name}_models" if name in ("models", "runner", "hydra_plugins", "conf") else name


def _sample_rows(rows: int = 600, features: int = 4, classes: int = 3) -> str:
    """A seeded CSV of Gaussian classes, so the starter runs before your data is in place."""
    rng = random.Random(0)
    centers = [[rng.uniform(-2, 2) for _ in range(features)] for _ in range(classes)]
    lines = [",".join([*(f"x{i}" for i in range(features)), "label"])]
    for row in range(rows):
        label = row % classes
        lines.append(",".join([*(f"{rng.gauss(c, 1.0):.4f}" for c in centers[label]), str(label)]))
    return "\n".join(lines) + "\n"
