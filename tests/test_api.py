"""``runner.run`` composes as the CLI does and returns the summary; ``runner.load_model``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import runner
from runner.errors import RunnerError
from tests.conftest import ROOT, TINY


def test_a_mistake_raises_one_line():
    with pytest.raises(RunnerError, match="model=mlpp: no such option"):
        runner.run(["model=mlpp"])


@pytest.mark.slow
def test_run_then_load_model(tmp_path, digits_cache):
    """In a subprocess, as a notebook would (its own Spark session)."""
    overrides = [*TINY, "train.epochs=1", "stages=[preprocess,sweep]",
                 f"hydra.run.dir={tmp_path / 'run'}", f"data.cache_dir={digits_cache}"]
    code = f"import json, runner; print(json.dumps(runner.run({overrides!r}).sweep.trials))"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"COMPLETE": 2}
    assert (tmp_path / "run" / "summary.json").exists()
    model = runner.load_model(tmp_path / "run")
    assert model(torch.zeros(3, 64)).shape == (3, 10)


def test_config_dir_adds_the_users_options(tmp_path):
    from runner import project

    assert project.main([str(tmp_path / "mine")]) == 0
    with pytest.raises(RunnerError, match="use one of cnn, mlp, net"):  # net: the project's
        runner.run(["+experiment=starter", "model=nope"], config_dir=tmp_path / "mine" / "conf")


def test_a_run_dir_that_cannot_be_created_raises_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunnerError, match="hydra.run.dir=.*is a file, not a directory"):
        runner.run([f"hydra.run.dir={tmp_path / 'file' / 'run'}"])
