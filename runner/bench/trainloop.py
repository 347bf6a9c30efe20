"""Training-loop benchmark: a sweep trial's code today against the same trials trained by
the trial code of an earlier commit, measured in one run.

Both sides run the sweep's own trial specs (``runner.tune.sweep``; digits, MLP, the
default search space's hidden sizes x batch sizes) through ``runner.train.trial.run_trial``:
ours from this checkout, the baseline's from ``git archive REV`` in a temp directory, each
in its own Python process (one torch thread, as a sweep slot with ``cpus_per_trial=1``),
warmed up, one trial at a time. This machine's timings drift by 10-20 % from minute to
minute, so the sides take turns trial by trial (who goes first rotates), ``--repeats``
times, and each trial's best time counts: ratio = sum of our best / sum of the
baseline's best (> 1: slower today), in wall time and in the process's CPU time (less
moved by other work on a shared machine).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from itertools import product
from pathlib import Path
from typing import Any

from runner.bench import write_table

ROOT = Path(__file__).resolve().parents[2]
BASELINES = (
    "9e6db05^1",  # the trial loop before #16's training-loop features were merged
    "75a752b",  # the last one with a plain CrossEntropyLoss and accuracy, before tasks
)
HIDDEN = (64, 128, 256)  # the default search space's model.hidden
BATCH = (32, 64, 128)  # and train.batch_size
# A trial process: TrialSpecs as JSON lines in, (wall s, CPU s, val metric) out. An older
# TrialSpec takes num_classes and not the task's fields, an older model no weights_path or
# freeze (the runner's keys): each side keeps the keys it knows.
_WORKER = """
import dataclasses, json, sys, time
import torch
torch.set_num_threads(1)
from runner.train.trial import TrialSpec, run_trial, warm_up
try:
    from runner.train.model import RUNNER_KEYS
    dropped = ()
except ImportError:
    dropped = ("weights_path", "freeze")
warm_up()
known = {f.name for f in dataclasses.fields(TrialSpec)}
for line in sys.stdin:
    raw = json.loads(line)
    raw["input_shape"] = tuple(raw["input_shape"])
    raw["num_classes"] = raw["model_kwargs"]["num_classes"]
    raw["model"] = {k: v for k, v in raw["model"].items() if k not in dropped}
    cpu = time.process_time()
    out = run_trial(TrialSpec(**{k: v for k, v in raw.items() if k in known}))
    cpu = time.process_time() - cpu
    assert out.state == "COMPLETE", out.error
    print(json.dumps([out.duration_s, cpu, out.metrics[raw["metric"]]]), flush=True)
"""


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m runner.bench trainloop")
    parser.add_argument(
        "--baseline",
        action="append",
        help=f"a git revision (repeatable; default {' and '.join(BASELINES)})",
    )
    parser.add_argument("--epochs", type=int, default=12, help="per trial")
    parser.add_argument("--repeats", type=int, default=9, help="turns per side")
    args = parser.parse_args(argv)
    baselines = args.baseline or list(BASELINES)

    work = Path(tempfile.mkdtemp(prefix="bench-trainloop-"))
    specs = _specs(work, args.epochs)
    sides = {
        "today": ROOT,
        **{rev: _checkout(rev, work / f"rev-{i}") for i, rev in enumerate(baselines)},
    }
    workers = {name: _Worker(path) for name, path in sides.items()}
    names = list(workers)
    # side -> trial -> (wall s, CPU s, val metric) of each turn
    runs: dict[str, list[list[tuple[float, float, float]]]] = {
        n: [[] for _ in specs] for n in sides
    }
    try:
        for worker in workers.values():
            worker.run(specs[0])  # reads the splits into the process's cache
        for repeat in range(args.repeats):
            for t, spec in enumerate(specs):  # trial by trial, the sides in turn
                first = (repeat + t) % len(names)
                for name in names[first:] + names[:first]:
                    runs[name][t].append(workers[name].run(spec))
    finally:
        for worker in workers.values():
            worker.close()
        shutil.rmtree(work, ignore_errors=True)

    def best(name: str, measure: int) -> float:
        """The sum over trials of each trial's best turn."""
        return sum(min(turn[measure] for turn in trial) for trial in runs[name])

    rows = [
        [
            "trials",
            f"{len(specs)} x {args.epochs} epochs, {args.repeats} turns",
            "digits, MLP; hidden x batch size "
            f"{'/'.join(map(str, HIDDEN))} x {'/'.join(map(str, BATCH))}; lr 0.01",
        ]
    ]
    for name in sides:
        walls = [sum(trial[r][0] for trial in runs[name]) for r in range(args.repeats)]
        rows.append(
            [
                f"{name}: sum of each trial's best, wall / CPU",
                f"{best(name, 0):.2f} / {best(name, 1):.2f} s",
                "wall per turn " + ", ".join(f"{w:.2f}" for w in walls),
            ]
        )
    for rev in baselines:
        drift = max(abs(a[-1][2] - b[-1][2]) for a, b in zip(runs["today"], runs[rev]))
        each = [
            min(t[1] for t in ours) / min(t[1] for t in theirs)
            for ours, theirs in zip(runs["today"], runs[rev])
        ]
        rows.append(
            [
                f"today / {rev}, wall / CPU",
                f"**{best('today', 0) / best(rev, 0):.3f}** / "
                f"**{best('today', 1) / best(rev, 1):.3f}**",
                f"target <= 1.03; largest difference of a trial's val metric {drift:.2g}; "
                "CPU per trial " + ", ".join(f"{r:.2f}" for r in each),
            ]
        )
    write_table("trainloop", "Training-loop benchmark", ["measure", "value", "note"], rows)
    return 0


def _specs(work: Path, epochs: int) -> list[dict[str, Any]]:
    """The sweep's trial specs for digits: one per hidden size and batch size."""
    from runner.cluster.spark import build_session, stop_session
    from runner.cluster.targets import target_for
    from runner.config import as_plain, compose
    from runner.data import preprocess
    from runner.train.model import model_kwargs
    from runner.tune import sweep

    cfg = compose(
        [f"data.cache_dir={work / 'cache'}", "deploy.master='local[2]'", f"train.epochs={epochs}"]
    )
    spark = build_session(target_for(cfg.deploy), work / "logs")
    try:
        prepared = preprocess.run(spark, cfg.data, work / "cache")
    finally:
        stop_session()
    cfg = sweep.for_task(cfg, prepared)
    task = as_plain(cfg.task)
    told = model_kwargs(task, prepared)
    return [
        sweep._spec(
            cfg,
            prepared,
            n,
            {"model.hidden": h, "train.batch_size": b, "optimizer.lr": 0.01},
            task,
            told,
        )
        for n, (h, b) in enumerate(product(HIDDEN, BATCH))
    ]


def _checkout(rev: str, where: Path) -> Path:
    """The tree of ``rev`` (its ``runner``, ``models`` and ``conf``) in ``where``."""
    where.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "runner", "models", "conf"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


class _Worker:
    """A Python process running trials with the code under ``root``."""

    def __init__(self, root: Path) -> None:
        import os

        env = {**os.environ, "PYTHONPATH": str(root)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, spec: dict[str, Any]) -> tuple[float, float, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the trial process ended (exit {self.proc.wait()})")
        wall, cpu, metric = json.loads(line)
        return float(wall), float(cpu), float(metric)

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except BrokenPipeError:  # it ended already
            pass
        self.proc.wait()
