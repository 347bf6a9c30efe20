"""The property test of #22: SIGKILL the whole runner at random points, rerun into the same
run dir, and the sweep still ends with every trial exactly once and the best one kept.

Bounded: ``KILLS`` (env ``RUNNER_TEST_KILLS``, 2 here; 20 by hand) kills, each a few seconds
of a tiny local sweep on data prepared once. Each kill waits for a random line of the run's
output from the sweep's start to the report, then a random fraction of a second (a seeded
RNG, env ``RUNNER_TEST_KILL_SEED``), so the kills spread over the sweep's life on a fast or
a loaded machine alike.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend

from runner.data import preprocess
from tests.conftest import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

KILLS = int(os.environ.get("RUNNER_TEST_KILLS", "2"))
N_TRIALS = max(4, 2 * KILLS)  # most kills land before the sweep is done


def _args(run_dir: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "runner", f"search.n_trials={N_TRIALS}", "train.epochs=2",
            "search.parallelism=2", "deploy.master='local[2]'", "stages=[preprocess,sweep]",
            f"hydra.run.dir={run_dir}", f"data.cache_dir={cache}"]


def _env() -> dict[str, str]:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _sweep_lines(run_dir: Path) -> tuple[int, int]:
    """The lines of a run's output (plain, not a terminal) from the sweep's start to the
    report's end: ``[stage] sweep started`` is its 6th line, then a line for each trial an
    earlier run finished, two for each other trial, and the stage lines to the report."""
    trials = run_dir / "trials.jsonl"
    done = trials.read_bytes().count(b"\n") if trials.exists() else 0
    return 6, 7 + done + 2 * (N_TRIALS - done) + 3


def _run_and_kill(args: list[str], cwd: Path, rng: random.Random, lines: tuple[int, int]) -> bool:
    """Run ``args``, SIGKILL its process group after a random line of ``lines`` (first, last)
    of its output and a random delay; True if the kill came before the run ended."""
    proc = subprocess.Popen(args, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    target, seen = rng.randint(*lines), threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for count, _ in enumerate(proc.stdout, 1):
            if count == target:
                seen.set()
        seen.set()  # the run ended first

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    delay = rng.uniform(0, 0.5)
    try:
        seen.wait(timeout=120)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(timeout=10)
    return killed


def test_random_sigkills_then_rerun_keep_every_trial_once_and_the_best(
    spark, cfg, tmp_path, digits_cache
):
    cache, run_dir = digits_cache, tmp_path / "run"
    prepared = preprocess.run(spark, cfg.data, cache, cfg.task)  # once, for every run below
    rng = random.Random(int(os.environ.get("RUNNER_TEST_KILL_SEED", "22")))
    killed = sum(
        _run_and_kill(_args(run_dir, cache), tmp_path, rng, _sweep_lines(run_dir))
        for _ in range(KILLS)
    )
    final = subprocess.run(_args(run_dir, cache), cwd=tmp_path, env=_env(), capture_output=True,
                           text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    entry = Path(str(prepared.local_path())).resolve()
    assert (run_dir / "prepared").resolve() == entry  # no run prepared the data again
    print(f"kills survived: {killed} of {KILLS} tried")

    records = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    numbers = [r["number"] for r in records]
    assert len(numbers) == len(set(numbers)) == N_TRIALS  # none lost, none twice
    assert all(r["state"] in ("COMPLETE", "PRUNED") for r in records)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    journal = optuna.load_study(study_name="sweep", storage=storage).trials
    State = optuna.trial.TrialState
    assert sorted(t.number for t in journal if t.state in (State.COMPLETE, State.PRUNED)) == sorted(
        numbers
    )
    assert not [t.number for t in journal if t.state in (State.RUNNING, State.WAITING)]
    summary = json.loads((run_dir / "summary.json").read_text())
    best = max(records, key=lambda r: r["metrics"]["val_accuracy"])
    assert summary["best"]["number"] == best["number"]
    assert summary["best"]["metrics"]["val_accuracy"] == best["metrics"]["val_accuracy"]
    assert not list(run_dir.rglob("*.tmp"))
    assert _accuracy(run_dir) == pytest.approx(best["metrics"]["val_accuracy"], abs=1e-9)


def _accuracy(run_dir: Path) -> float:
    """The saved model's accuracy on the val split: the weights are the best trial's."""
    import torch

    from runner.data.prepared import PreparedDataset
    from runner.serve import artifacts

    features, labels = PreparedDataset(str((run_dir / "prepared").resolve())).read("val")
    model = artifacts.load(run_dir / "model").build("cpu")
    with torch.no_grad():
        predicted = model(torch.as_tensor(features, dtype=torch.float32)).argmax(1).numpy()
    return float((predicted == labels).mean())
