"""``python -m runner`` end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, TINY, run_cli

pytestmark = pytest.mark.slow


def test_default_experiment_writes_every_artifact(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli([f"hydra.run.dir={run_dir}", f"data.cache_dir={tmp_path / 'cache'}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_metrics"]["test_accuracy"] >= 0.90
    assert summary["trials"] == {"COMPLETE": 8}
    assert set(summary["timings_s"]) == {"spark", "preprocess", "sweep", "infer", "total"}
    assert summary["data"]["cache_hit"] is False

    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert (run_dir / "prepared" / "meta.json").exists()
    assert (run_dir / "model" / "weights.pt").exists() and (run_dir / "model" / "model.json").exists()
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert sorted(t["number"] for t in trials) == list(range(8))
    assert all(t["params"] and t["history"] and t["state"] == "COMPLETE" for t in trials)
    predictions = pq.read_table(run_dir / "predictions.parquet")
    assert predictions.num_rows == summary["data"]["rows"]["test"]

    # plain output: no escape codes, a leaderboard and no Spark noise
    assert "\x1b[" not in proc.stdout
    assert "[leaderboard]" in proc.stdout and "[summary] test_accuracy" in proc.stdout
    assert "WARN" not in proc.stdout + proc.stderr
    # trials ran in Spark's Python workers, not the driver process
    assert summary["driver_pid"] not in {t["pid"] for t in trials}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model=nope", "model"),
        ("search.n_trials=abc", "search.n_trials"),
        ("search.n_trials=0", "search.n_trials: must be at least 1"),
        ("search.sampler=annealing", "search/sampler=annealing"),
        ("search/sampler=annealing", "search/sampler"),
    ],
)
def test_bad_input_is_one_clear_line_and_no_result(tmp_path, override, expected):
    run_dir = tmp_path / "run"
    proc = run_cli([override, f"hydra.run.dir={run_dir}"], tmp_path, timeout=60)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (run_dir / "summary.json").exists()


def test_missing_java_is_reported(tmp_path):
    run_dir = tmp_path / "run"
    no_java = {"PATH": str(Path(sys.executable).parent), "JAVA_HOME": str(tmp_path)}
    proc = run_cli([f"hydra.run.dir={run_dir}"], tmp_path, timeout=60, env=no_java)
    assert proc.returncode == 2
    assert "Java not found" in proc.stderr and "JAVA_HOME" in proc.stderr
    assert not (run_dir / "summary.json").exists()


def test_a_sweep_whose_spark_jobs_keep_failing_fails_in_one_line(tmp_path, digits_cache):
    from tests.crash_model import crash_tickets

    run_dir = tmp_path / "run"
    tickets = crash_tickets(tmp_path / "tickets", 100)
    proc = run_cli([*TINY, f"hydra.run.dir={run_dir}", f"data.cache_dir={digits_cache}",
                    "model._target_=tests.crash_model.CrashingMLP", f"+model.tickets={tickets}"],
                   tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "2 of 2 trials never ran" in errors[0]
    assert f"hydra.run.dir={run_dir}" in errors[0]
    assert "LOST → re-asked as #" in proc.stdout and "Traceback" not in proc.stdout
    assert not (run_dir / "summary.json").exists()


def test_ctrl_c_is_one_line_and_the_rerun_finishes_the_sweep(tmp_path, digits_cache):
    import os
    import signal
    import subprocess
    import time

    run_dir = tmp_path / "run"
    args = ["search.n_trials=6", "train.epochs=30", f"hydra.run.dir={run_dir}",
            f"data.cache_dir={digits_cache}"]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group, like a terminal's job
    trials = run_dir / "trials.jsonl"
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and not (
            trials.exists() and trials.read_text()):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on a terminal does
    out, err = proc.communicate(timeout=120)
    finished = len(trials.read_text().splitlines())
    assert proc.returncode == 130, out + err
    assert err.splitlines() == [f"interrupted: {finished} of 6 trials finished; rerun the same "
                                f"command with hydra.run.dir={run_dir} to resume"]
    assert "Traceback" not in out and "ERROR" not in out
    assert not (run_dir / "summary.json").exists()

    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 6} and summary["resumed_trials"] == finished
    records = [json.loads(line) for line in trials.read_text().splitlines()]
    assert len(records) == len({r["number"] for r in records}) == 6


def test_an_unwritable_cache_is_one_line_naming_the_path(tmp_path):
    """A path under a regular file cannot be written, even as root (unlike chmod)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    run_dir = tmp_path / "run"
    proc = run_cli([*TINY, f"hydra.run.dir={run_dir}", f"data.cache_dir={blocker / 'cache'}"],
                   tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(blocker / "cache") in lines[0] and "Not a directory" in lines[0]
    assert "(ENOTDIR)" in lines[0] and f"hydra.run.dir={run_dir}" in lines[0]
    assert "Traceback" not in proc.stdout and not (run_dir / "summary.json").exists()


def test_a_master_port_that_is_not_spark_fails_in_one_line_within_the_bound(tmp_path):
    """A plain TCP server on the master's port: it accepts and never speaks Spark."""
    import os
    import socket
    import subprocess
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: [server.accept() for _ in range(100)], daemon=True).start()
    master = f"spark://127.0.0.1:{server.getsockname()[1]}"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", *TINY, "deploy=standalone", f"deploy.master={master}",
         "deploy.connect_timeout_s=2", f"hydra.run.dir={tmp_path / 'run'}",
         f"data.cache_dir={tmp_path / 'cache'}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        spark_started = None
        for line in proc.stdout:
            if line.startswith("[stage] spark started"):
                spark_started = time.monotonic()
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
        ended = time.monotonic()
    finally:
        proc.kill()
        server.close()
    assert proc.returncode == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: deploy.master: {master} answers"), lines
    # Spark alone gives up after its 3 x 20 s registration retries, plus the JVM's start;
    # the bound is connect_timeout_s + REGISTER_MARGIN_S from the JVM's start
    assert spark_started is not None and ended - spark_started < 50
