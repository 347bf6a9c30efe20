"""``spark-dl-runner init DIR`` writes a project whose own model and data run as they are."""

from __future__ import annotations

import json

import pytest

from runner import project
from tests.conftest import run_cli


def test_init_refuses_an_existing_project(tmp_path, capsys):
    assert project.main([str(tmp_path / "mine")]) == 0
    assert project.main([str(tmp_path / "mine")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.slow
def test_a_new_project_runs_its_own_model(tmp_path):
    root = tmp_path / "mine"
    assert run_cli(["init", str(root)], tmp_path, timeout=60).returncode == 0
    proc = run_cli(["--config-dir", "conf", "+experiment=starter", "search.n_trials=2",
                    "train.epochs=2", "hydra.run.dir=run"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((root / "run" / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 2}
    model = json.loads((root / "run" / "model" / "model.json").read_text())["model"]
    assert model["_target_"] == "mine.net.Net" and model["width"] in (16, 32, 64)
