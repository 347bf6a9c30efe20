"""The default experiment over Spark Connect (``sc://``): DataFrame API only, no SparkContext."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.cluster.standalone import free_port
from tests.conftest import ROOT, TINY, run_cli, run_cli_and_kill_after_a_trial

pytest.importorskip("grpc", reason="Spark Connect needs the connect extra")
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def connect_server(tmp_path):
    """A Spark Connect server over local[2] from the pip package, stopped after the test."""
    import pyspark

    sbin = Path(pyspark.__file__).parent / "sbin"
    port = free_port()
    env = {**os.environ, "SPARK_LOG_DIR": str(tmp_path / "server"),
           "SPARK_PID_DIR": str(tmp_path / "server"), "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    subprocess.run([str(sbin / "start-connect-server.sh"), "--master", "local[2]",
                    "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
                    "--conf", f"spark.connect.grpc.binding.port={port}",
                    "--conf", "spark.ui.enabled=false"],
                   env=env, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 180
        while subprocess.run(["bash", "-c", f"echo > /dev/tcp/127.0.0.1/{port}"],
                             capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "the Connect server did not start"
            time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        subprocess.run([str(sbin / "stop-connect-server.sh")], env=env, capture_output=True)


def test_experiment_and_stage_infer_run_over_spark_connect(connect_server, tmp_path):
    common = ["deploy=connect", f"deploy.master={connect_server}"]
    run_dir = tmp_path / "run"
    proc = run_cli([*common, *TINY, f"hydra.run.dir={run_dir}",
                    f"data.cache_dir={tmp_path / 'cache'}"], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 2} and summary["test_metrics"]["test_accuracy"] > 0.5

    # the saved model again, over the same Connect server, without preparing or sweeping
    again = run_cli([*common, "stages=[infer]", f"model_path={run_dir}",
                     f"hydra.run.dir={tmp_path / 'infer'}"], tmp_path, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    inferred = json.loads((tmp_path / "infer" / "summary.json").read_text())
    assert inferred["predictions"]["rows"] == summary["data"]["rows"]["test"]
    assert inferred["test_metrics"] == summary["test_metrics"]

    # synthetic rows are generated over Connect too (no SparkContext to size them); then,
    # without search.parallelism, a Connect session cannot size the sweep: a clear error
    slots = run_cli([*common, "search.n_trials=1", "train.epochs=1", "search.parallelism=null",
                     "data=synthetic", "data.rows=2000",
                     f"data.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'r2'}"],
                    tmp_path, timeout=300)
    assert slots.returncode == 2 and "deploy.task_slots" in slots.stderr

    # a file source over Connect: its identity (the cache key) and rows, no SparkContext
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(60)))
    proc = run_cli([*common, "data=csv", f"data.path={csv}", f"data.cache_dir={tmp_path / 'cache'}",
                    "stages=[preprocess]", f"hydra.run.dir={tmp_path / 'csv'}"], tmp_path,
                   timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "csv" / "summary.json").read_text())
    assert summary["data"]["cache_hit"] is False and sum(summary["data"]["rows"].values()) == 60

    # last, the server killed mid-sweep (#22): one line naming deploy.master within about
    # deploy.connect_timeout_s (the client's retries are bounded to it), exit 1, resumable,
    # and the exit does not hang on the dead server (the communicate timeout bounds it)
    lost = tmp_path / "lost"
    def kill_server() -> None:
        (pid_file,) = (tmp_path / "server").glob("*.pid")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    code, output = run_cli_and_kill_after_a_trial(
        [*common, "search.n_trials=4", "train.epochs=30", "search.parallelism=2",
         "stages=[preprocess,sweep]", "deploy.connect_timeout_s=3",
         f"data.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={lost}"],
        tmp_path, lost, kill_server, timeout=90,
    )
    assert code == 1, output
    assert output.strip().splitlines()[-1] == (
        f"error: deploy.master: the server at {connect_server} stopped answering; restart it, "
        f"then rerun the same command with hydra.run.dir={lost} to resume"
    ), output
    assert "Traceback" not in output and "RETRIES_EXCEEDED" not in output



def test_load_model_transform_over_spark_connect(connect_server, scoring_run, tmp_path):
    """The user's own job over Connect: the run's fitted preprocessing and the network, in a
    Pipeline too (no SparkContext)."""
    run, _, new = scoring_run
    code = (
        "import json, sys\n"
        "from pyspark.ml import Pipeline\n"
        "from pyspark.sql import SparkSession\n"
        "from runner import load_model\n"
        f"spark = SparkSession.builder.remote({connect_server!r}).getOrCreate()\n"
        f"df = spark.read.options(header=True, inferSchema=True).csv({str(new)!r})\n"
        f"model = load_model({str(run)!r})\n"
        "scored = Pipeline(stages=[model]).fit(df).transform(df)\n"
        "print(json.dumps({'columns': scored.columns, 'rows': scored.count(),\n"
        "                  'names': sorted({r.prediction for r in scored.collect()})}))\n"
    )
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["columns"] == ["customer", "day", "prediction", "prediction_index", "probability"]
    assert out["rows"] == 200 and set(out["names"]) <= {"high", "low", "medium"}
