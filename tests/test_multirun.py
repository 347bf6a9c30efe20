"""Multiruns of whole experiments: per-job failures (runner.multirun), with Hydra's basic
launcher and with hydra/launcher=spark running the jobs at once on one Spark application."""

from __future__ import annotations

import json

import pytest

from runner.errors import RunnerError
from runner.multirun import ERROR_FILE, JobFailed, record_failure
from tests.conftest import run_cli

CNN_ON_WINE = "model=cnn needs image data shaped (C, H, W) but gets 1-d rows"


def test_failed_jobs_are_listed_one_line_each(tmp_path):
    failures = [JobFailed(n, [f"x={n}"], RunnerError(f"x: bad {n}")) for n in (3, 1)]
    lines = str(failures[0]).splitlines()
    assert lines[0].startswith("error: ") and "failed" in lines[0]
    assert [line.strip() for line in lines[-2:]] == ["#1 x=1: x: bad 1", "#3 x=3: x: bad 3"]
    record_failure(tmp_path / "run", RunnerError("data.split: bad"))
    assert (tmp_path / "run" / ERROR_FILE).read_text() == "error: data.split: bad\n"
    try:
        raise ValueError("a bug")
    except ValueError as err:
        record_failure(tmp_path / "bug", err)
    text = (tmp_path / "bug" / ERROR_FILE).read_text()
    assert text.startswith("ValueError: a bug\n") and "Traceback" in text


@pytest.mark.slow
def test_basic_launcher_runs_every_job_and_lists_the_failed_ones(tmp_path):
    proc = run_cli(["-m", "model=cnn,mlp", "data=wine", "search.n_trials=2", "train.epochs=2",
                    f"hydra.sweep.dir={tmp_path / 'multi'}", f"data.cache_dir={tmp_path / 'c'}"],
                   tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "#0 model=cnn data=wine search.n_trials=2 train.epochs=2" in proc.stderr
    assert CNN_ON_WINE in proc.stderr and "Traceback" not in proc.stderr
    failed, done = tmp_path / "multi" / "0", tmp_path / "multi" / "1"
    assert CNN_ON_WINE in (failed / ERROR_FILE).read_text()
    assert not (failed / "summary.json").exists()
    summary = json.loads((done / "summary.json").read_text())
    assert summary["test_metrics"]["test_accuracy"] > 0.5


@pytest.mark.slow
@pytest.mark.xdist_group("spark_multirun")
def test_spark_launcher_runs_experiments_at_once_on_one_application(spark_multirun):
    sweep_dir, cache, proc = spark_multirun
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "on driver threads, 4 at a time, sharing one Spark application" in output
    assert "Traceback" not in output and "Exception" not in output
    # One line per failed job at the end; each job's lines carry its number.
    assert "error: 1 job(s) of the multirun failed:" in proc.stderr
    assert "Error executing job" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert "#3 model=cnn data=wine" in proc.stderr and CNN_ON_WINE in proc.stderr
    assert all(f"[#{n}] [stage] sweep done" in proc.stdout for n in range(3))

    summaries = {n: json.loads((sweep_dir / str(n) / "summary.json").read_text())
                 for n in range(3)}
    assert len({s["driver_pid"] for s in summaries.values()}) == 1  # one driver, threads
    for n, summary in summaries.items():
        job = sweep_dir / str(n)
        assert summary["test_metrics"]["test_accuracy"] > 0.8, n
        assert (job / "model").is_dir() and (job / "predictions.parquet").exists()
        assert (job / "logs" / "spark.log").read_text()  # the application's log
    logs = {(sweep_dir / str(n) / "logs" / "spark.log").resolve() for n in range(3)}
    assert len(logs) == 1  # one Spark application: its log, linked from every job
    assert CNN_ON_WINE in (sweep_dir / "3" / ERROR_FILE).read_text()
    assert not (sweep_dir / "3" / "summary.json").exists()

    # The cache is shared: digits built once by one of the two jobs that needed it at once.
    entries = sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
    digits = [summaries[0]["data"], summaries[2]["data"]]
    assert digits[0]["fingerprint"] == digits[1]["fingerprint"]
    assert sorted(d["cache_hit"] for d in digits) == [False, True]
    assert entries == sorted({s["data"]["fingerprint"] for s in summaries.values()})
