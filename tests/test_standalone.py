"""The default experiment on a real Spark standalone cluster: a Master and a Worker JVM."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from runner.cluster import standalone as cluster
from tests.conftest import TINY, run_cli, run_cli_and_kill_after_a_trial

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def standalone(tmp_path):
    """A Master and a Worker (2 cores, 1 GiB) on free ports, stopped even when the test fails."""
    root = tmp_path / "cluster"
    running = cluster.start(root, port=cluster.free_port(), cores=2, memory="1g", timeout_s=180)
    try:
        yield running
    finally:
        cluster.stop(root)
        assert cluster.running(root) == {}


def test_trials_and_inference_run_on_the_workers_executors(standalone, tmp_path):
    """The experiment on the Worker's executors; then a sweep that loses the Worker."""
    run_dir, events = tmp_path / "run", tmp_path / "events"
    events.mkdir()
    proc = run_cli(
        ["deploy=standalone", f"deploy.master={standalone.master_url}", *TINY,
         f"hydra.run.dir={run_dir}", f"data.cache_dir={tmp_path / 'cache'}",
         f"++deploy.spark_conf={{spark.eventLog.enabled:'true',spark.eventLog.dir:'{events}',"
         "spark.eventLog.compress:'false'}"],
        tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 2} and summary["predictions"]["rows"] > 0

    # the Worker launched this app's executors: work/<app id>/<executor id>/
    (app_dir,) = (standalone.root / "work").iterdir()
    worker_executors = {p.name for p in app_dir.iterdir()}
    assert worker_executors
    ran_on = _executors_by_plan(events)
    assert ran_on["trials"] and ran_on["trials"] <= worker_executors
    assert ran_on["inference"] and ran_on["inference"] <= worker_executors
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert summary["driver_pid"] not in {t["pid"] for t in trials}

    _lost_worker_leg(standalone, tmp_path)  # last: it kills the Worker


def _executors_by_plan(event_dir: Path) -> dict[str, set[str]]:
    """Executor ids that ran the tasks of the trial jobs (MapInPandas) and of inference
    (the mapInArrow tasks writing predictions), read from Spark's (rolling) event log."""
    plans, stage_job, ran_on = {}, {}, {"trials": set(), "inference": set()}
    lines = [ln for f in sorted(event_dir.rglob("events_*")) for ln in f.read_text().splitlines()]
    for line in lines:
        event = json.loads(line)
        kind = event["Event"]
        if kind.endswith("SQLExecutionStart"):
            plans[str(event["executionId"])] = event["physicalPlanDescription"]
        elif kind == "SparkListenerJobStart":
            execution = event.get("Properties", {}).get("spark.sql.execution.id")
            for stage in event["Stage IDs"]:
                stage_job[stage] = execution
        elif kind == "SparkListenerTaskEnd":
            plan = plans.get(stage_job.get(event["Stage ID"]), "")
            executor = event["Task Info"]["Executor ID"]
            if "MapInPandas" in plan:
                ran_on["trials"].add(executor)
            if "MapInArrow" in plan and re.search(r"\b(read|write)_partition\(", plan):
                ran_on["inference"].add(executor)
    return ran_on


def _lost_worker_leg(standalone, tmp_path: Path) -> None:
    """Item 5 of #22: the Worker (and its executors) killed mid-sweep: a warning line, then
    one error line after deploy.executor_wait_s, exit 1; status names the dead Worker and
    start restarts it alone (the same Master)."""
    run_dir = tmp_path / "lost"
    code, output = run_cli_and_kill_after_a_trial(
        ["deploy=standalone", f"deploy.master={standalone.master_url}",
         "deploy.executor_wait_s=3", "search.n_trials=4", "train.epochs=20",
         "search.parallelism=2", "stages=[preprocess,sweep]", f"hydra.run.dir={run_dir}",
         f"data.cache_dir={tmp_path / 'cache'}"],
        tmp_path, run_dir,
        lambda: os.killpg(standalone.worker_pid, signal.SIGKILL),  # its executors too
    )
    assert code == 1, output
    assert f"warning: no executor left at {standalone.master_url}" in output
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: deploy.master: no executor left"), output
    assert f"hydra.run.dir={run_dir} to resume" in last and "Traceback" not in output

    line, healthy = cluster.status(standalone.root)
    assert not healthy and f"worker pid {standalone.worker_pid} dead" in line, line
    restarted = cluster.start(standalone.root, timeout_s=180)
    assert restarted.master_pid == standalone.master_pid  # the Master kept, the Worker new
    assert restarted.worker_pid != standalone.worker_pid
    assert cluster.status(standalone.root)[1]
