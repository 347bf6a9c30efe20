"""Shared fixtures: one small SparkSession per test session and a tiny composed config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from runner.config import CONF_DIR, compose

ROOT = Path(__file__).resolve().parents[1]

# Every JVM the tests start (sessions, CLI subprocesses, executors, standalone and Connect
# servers) lives for seconds: compile with C1 only and use the serial collector, which
# makes a tiny experiment about 15 % faster on two cores. Users' runs keep the defaults.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")

# A few seconds per run: a digits subset is not needed, 3 epochs and 2 trials are enough.
TINY = ["search.n_trials=2", "train.epochs=3", "search.parallelism=2"]


compose_config = compose


def use(cfg, group: str, option: str) -> None:
    """Select ``group=option`` (e.g. ``search/sampler``, ``grid``) on a composed ``cfg``."""
    OmegaConf.update(cfg, group.replace("/", "."),
                     OmegaConf.load(CONF_DIR / group / f"{option}.yaml"), merge=False)

@pytest.fixture
def cfg(tmp_path):
    """The tiny config, caching prepared data under ``tmp_path``."""
    cfg = compose_config([*TINY, f"data.cache_dir={tmp_path / 'cache'}"])
    OmegaConf.set_readonly(cfg, False)
    return cfg


@pytest.fixture(scope="session")
def digits_cache(tmp_path_factory, worker_id) -> Path:
    """A prepared-data cache shared by the tests whose runs prepare digits as the default
    config does, for what they test after it: digits is prepared once per test run (xdist
    workers included: builders of one entry take turns) instead of once per test, each
    time ~14 CPU-s of a cold JVM."""
    base = tmp_path_factory.getbasetemp()
    return (base if worker_id == "master" else base.parent) / "digits-cache"


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local[2] session for the whole test run, quiet, stopped at the end."""
    from runner.cluster.spark import build_session, stop_session
    from runner.cluster.targets.local import local

    target = local("local[2]", app_name="tests", spark_conf={"spark.sql.shuffle.partitions": "2"})
    session = build_session(target, tmp_path_factory.mktemp("spark-logs"))
    yield session
    stop_session()


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None):
    """``python -m runner <args>`` in a subprocess, with plain (non-terminal) output."""
    import subprocess

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT), **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli_and_kill_after_a_trial(args: list[str], cwd: Path, run_dir: Path, kill,
                                   timeout: float = 180) -> tuple[int, str]:
    """``python -m runner <args>`` (its run dir ``run_dir``): once its first trial is recorded,
    call ``kill()`` (a server, a worker), then wait for the run to end. Returns its exit code
    and output (stdout and stderr together). Every wait is bounded."""
    import subprocess
    import time

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "trials.jsonl").exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        kill()
        output, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, output


def run_cli_in_terminal(args: list[str], cwd: Path, timeout: float = 600,
                        size: tuple[int, int] = (50, 160)) -> tuple[int, bytes]:
    """``python -m runner <args>`` on a pseudo-terminal of ``size`` (rows, columns).

    Returns the exit code and every byte written to the screen (escape codes included).
    """
    import fcntl
    import pty
    import select
    import struct
    import subprocess
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT),
           "TERM": "xterm-256color"}
    for key in ("HYDRA_FULL_ERROR", "NO_COLOR", "COLUMNS", "LINES"):
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=cwd, env=env,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    screen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
        return proc.wait(timeout=30), bytes(screen)
    finally:
        os.close(master)


@pytest.fixture(scope="session")
def terminal_multirun(tmp_path_factory, digits_cache):
    """One multirun of two tiny experiments (mlp, cnn) on a pseudo-terminal, tracked in
    MLflow: (multirun dir, screen bytes, mlflow store dir), shared by the report, tracking
    and console tests."""
    tmp = tmp_path_factory.mktemp("terminal-multirun")
    sweep_dir, mlruns = tmp / "multi", tmp / "mlruns"
    code, screen = run_cli_in_terminal(
        ["-m", "model=mlp,cnn", *TINY, f"hydra.sweep.dir={sweep_dir}",
         f"data.cache_dir={digits_cache}", "tracking=mlflow", f"tracking.uri={mlruns}"],
        tmp,
    )
    assert code == 0, screen.decode(errors="replace")[-3000:]
    return sweep_dir, screen, mlruns


@pytest.fixture(scope="session")
def spark_multirun(tmp_path_factory):
    """The issue's 4-job multirun through hydra/launcher=spark (model=cnn data=wine fails its
    config check): (multirun dir, cache dir, the finished process), shared by the multirun
    and compare tests."""
    tmp = tmp_path_factory.mktemp("spark-multirun")
    sweep_dir, cache = tmp / "multi", tmp / "cache"
    proc = run_cli(["-m", "hydra/launcher=spark", "model=mlp,cnn", "data=digits,wine",
                    "search.n_trials=2", "train.epochs=2", f"hydra.sweep.dir={sweep_dir}",
                    f"data.cache_dir={cache}"], tmp, timeout=600)
    return sweep_dir, cache, proc


def scoring_rows(n: int, cities: list[str], seed: int, labelled: bool = True):
    """Rows a user scores: a key, a date, two numbers, a city (categorical) and a string
    label (``species``: high/low/medium, learnable from age and city)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, n).round(1)
    city = rng.choice(cities, n)
    score = (age - 49) / 18 + (city == "north") - (city == "south")
    df = pd.DataFrame({"customer": [f"c{seed}-{i:05d}" for i in range(n)],
                       "day": pd.date_range("2026-01-01", periods=n, freq="h").strftime("%Y-%m-%d"),
                       "age": age, "income": rng.normal(50, 15, n).round(2), "city": city})
    if labelled:
        df["species"] = np.where(score > 0.6, "high", np.where(score < -0.6, "low", "medium"))
    return df


@pytest.fixture(scope="session")
def scoring_run(tmp_path_factory):
    """A finished run trained by the CLI on a CSV with a string label (a few rows without
    one), a categorical ``city`` (north, south, east) and non-feature key and date columns;
    and CSVs to score: labelled and unlabelled, both with an unseen city (west).
    Returns (run dir, labelled.csv, unlabelled.csv)."""
    tmp = tmp_path_factory.mktemp("scoring")
    train = scoring_rows(600, ["north", "south", "east"], seed=1)
    train.loc[::50, "species"] = None
    train.to_csv(tmp / "train.csv", index=False)
    scoring_rows(200, ["north", "south", "east", "west"], seed=2).to_csv(
        tmp / "labelled.csv", index=False)
    scoring_rows(200, ["north", "south", "east", "west"], seed=3, labelled=False).to_csv(
        tmp / "new.csv", index=False)
    proc = run_cli(["data=csv", f"data.path={tmp / 'train.csv'}", "data.label=species",
                    "data.steps=[{op:dropna,columns:[species]},{op:impute,strategy:mean},"
                    "{op:onehot,columns:[city]}]",
                    "search.n_trials=1", "search.parallelism=1", "train.epochs=8",
                    "stages=[preprocess,sweep]", f"hydra.run.dir={tmp / 'run'}",
                    f"data.cache_dir={tmp / 'cache'}"], tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp / "run", tmp / "labelled.csv", tmp / "new.csv"
