"""The sweep on a real multi-process cluster (local-cluster): GPU placement, executor loss."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY, run_cli

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _fake_gpus(tmp_path: Path) -> Path:
    """A discovery script reporting two GPUs: Spark's scheduling is real, the GPUs are not."""
    script = tmp_path / "fake_gpus.sh"
    script.write_text('#!/usr/bin/env bash\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    script.chmod(0o755)
    return script


def _trials(run_dir: Path) -> list[dict]:
    path = run_dir / "trials.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_fractional_gpus_are_assigned_by_spark(tmp_path, digits_cache):
    run_dir = tmp_path / "run"
    conf = (
        "{spark.worker.resource.gpu.amount: '2', spark.executor.resource.gpu.amount: '2', "
        f"spark.worker.resource.gpu.discoveryScript: '{_fake_gpus(tmp_path)}'}}"
    )
    proc = run_cli(
        [*TINY, "search.n_trials=4", "stages=[preprocess,sweep]", "deploy=local_cluster", "deploy.master='local-cluster[1,2,1024]'",
         "deploy.gpus_per_trial=0.5", f"++deploy.spark_conf={conf}", f"hydra.run.dir={run_dir}",
         f"data.cache_dir={digits_cache}"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = _trials(run_dir)
    assert len(trials) == 4
    assert {t["gpu"] for t in trials} <= {"0", "1"} and all(t["gpu"] for t in trials)
    assert all(t["device"] == "cpu" for t in trials)  # no CUDA here: the trial fell back


def _descendants(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _executor_pids(pid: int) -> list[int]:
    found = []
    for child in _descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"CoarseGrainedExecutorBackend" in cmdline:
            found.append(child)
    return found


def test_chaos_an_executor_killed_and_the_driver_interrupted_then_resumed(tmp_path, digits_cache):
    """Item 7 of #22: SIGKILL an executor mid-sweep (the sweep goes on: Spark retries the slot
    task, the trial it held is asked again), SIGINT the driver, rerun. No trial is
    lost or run twice, and the sweep tried the same params as an uninterrupted run with the
    same seed (random search: its draws do not depend on results). Bounded: every wait has a
    deadline. A re-asked trial trains under its new number's seed, so scores may differ."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    n_trials = 6

    def args(run_dir: Path) -> list[str]:
        return [sys.executable, "-m", "runner", f"search.n_trials={n_trials}", "train.epochs=15",
                "search/sampler=random", "search.seed=3", "stages=[preprocess,sweep]",
                "deploy=local_cluster", f"hydra.run.dir={run_dir}",
                f"data.cache_dir={digits_cache}"]

    run_dir = tmp_path / "chaos"
    proc = subprocess.Popen(args(run_dir), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not _trials(run_dir) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _trials(run_dir), "no trial finished in time"
        victims = _executor_pids(proc.pid)
        assert victims
        os.kill(victims[0], signal.SIGKILL)
        finished = len(_trials(run_dir))
        while (len(_trials(run_dir)) == finished and time.monotonic() < deadline
               and proc.poll() is None):
            time.sleep(0.2)  # one more trial: the sweep went on after the loss
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode in (0, 130), output
    assert "Traceback" not in output, output  # Ctrl-C: one line (item 1)

    again = subprocess.run(args(run_dir), cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=400)
    assert again.returncode == 0, again.stdout + again.stderr

    trials = _trials(run_dir)
    assert len(trials) == len({t["number"] for t in trials}) == n_trials  # none lost, none twice
    assert [t["state"] for t in trials].count("COMPLETE") == n_trials
    tried = sorted(json.dumps(t["params"], sort_keys=True) for t in trials)
    assert tried == _calm_draws(["search/sampler=random", "search.seed=3"], n_trials)
    summary = json.loads((run_dir / "summary.json").read_text())
    best = max(trials, key=lambda t: t["metrics"]["val_accuracy"])
    assert summary["best"]["metrics"]["val_accuracy"] == best["metrics"]["val_accuracy"]


def _calm_draws(overrides: list[str], n_trials: int) -> list[str]:
    """The params an uninterrupted sweep with ``overrides`` draws (a random sampler's draws
    do not depend on results), asked of the study the sweep builds, without running it."""
    import optuna

    from runner.config import compose
    from runner.tune import search_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = compose(overrides).search
    space = search_space.parse(search.params)
    sampler, _ = search_space.policies(search)
    study = search_space.create_study(sampler, space)
    drawn = [study.ask(space).params for _ in range(n_trials)]
    return sorted(json.dumps(params, sort_keys=True) for params in drawn)
