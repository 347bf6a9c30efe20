"""``python -m runner compare``: one leaderboard across the runs of a multirun."""

from __future__ import annotations

import json

import csv

import pytest

from runner.observe.reports.compare import COLUMNS, compare, find_runs
from runner.errors import RunnerError
from tests.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("terminal_multirun")]  # one worker runs the shared multirun


def test_compare_over_a_multirun_prints_and_writes_the_leaderboard(terminal_multirun):
    sweep_dir = terminal_multirun[0]
    proc = run_cli(["compare", str(sweep_dir)], sweep_dir, timeout=120,
                   env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "Leaderboard, data=digits task=classification (2 runs)" in proc.stdout
    with open(sweep_dir / "leaderboard.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["rank"] for r in rows] == ["1", "2"]
    assert {r["group"] for r in rows} == {"data=digits task=classification"}
    assert not any(r["error"] for r in rows)
    assert sorted(r["overrides"] for r in rows) == ["model=cnn", "model=mlp"]
    assert sorted(r["model"] for r in rows) == ["CNN", "MLP"]
    vals = [float(r["best val"]) for r in rows]
    assert vals == sorted(vals, reverse=True)
    assert all(r["test"].startswith("test_accuracy=") for r in rows)
    md = (sweep_dir / "leaderboard.md").read_text()
    assert "## data=digits task=classification" in md and "| " + " | ".join(COLUMNS[1:]) + " |" in md
    assert (sweep_dir / "metric_by_override.png").read_bytes().startswith(b"\x89PNG")
    for r in rows:
        assert r["run"] in proc.stdout and r["run"] in md


def test_compare_takes_run_directories_too(terminal_multirun, tmp_path):
    sweep_dir = terminal_multirun[0]
    result = compare([sweep_dir / "1", sweep_dir / "0"], tmp_path)
    assert result.markdown == tmp_path / "leaderboard.md" and len(result.rows) == 2
    assert find_runs([sweep_dir]) == [sweep_dir / "0", sweep_dir / "1"]


def test_compare_refuses_folders_without_runs(tmp_path):
    with pytest.raises(RunnerError, match="no runs below it"):
        find_runs([tmp_path])
    proc = run_cli(["compare", str(tmp_path / "nope")], tmp_path, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_multirun_jobs_are_whole_experiments_sharing_the_data_cache(terminal_multirun):
    sweep_dir, _, _ = terminal_multirun
    summaries = [json.loads((sweep_dir / str(i) / "summary.json").read_text()) for i in (0, 1)]
    assert [s["data"]["cache_hit"] for s in summaries] == [False, True]
    models = [json.loads((sweep_dir / str(i) / "model" / "model.json").read_text()) for i in (0, 1)]
    assert [m["model"]["_target_"] for m in models] == ["models.mlp.MLP", "models.cnn.CNN"]
    assert all(s["test_metrics"]["test_accuracy"] > 0.5 for s in summaries)


@pytest.mark.xdist_group("spark_multirun")
def test_compare_lists_failed_jobs_and_ranks_within_each_data_set(spark_multirun, tmp_path):
    sweep_dir = spark_multirun[0]
    proc = run_cli(["compare", str(sweep_dir), "--out", str(tmp_path)], tmp_path, timeout=120,
                   env={"COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    assert "Failed runs (1)" in proc.stdout and "model=cnn needs image data" in proc.stdout
    with open(tmp_path / "leaderboard.csv") as fh:
        rows = list(csv.DictReader(fh))
    digits = [r for r in rows if r["group"] == "data=digits task=classification"]
    assert [r["rank"] for r in digits] == ["1", "2"]
    assert float(digits[0]["best val"]) >= float(digits[1]["best val"])
    wine = [r for r in rows if r["group"] == "data=wine task=classification"]
    assert [(r["rank"], r["run"]) for r in wine] == [("1", "1")]  # ranked on its own
    (failed,) = [r for r in rows if r["rank"] == "failed"]
    assert failed["run"].endswith("3") and "model=cnn needs image data" in failed["error"]
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## data=digits task=classification" in md and "## Failed runs (1)" in md
    assert "## data=wine task=classification" in md
    assert (tmp_path / "metric_by_override.png").exists()
