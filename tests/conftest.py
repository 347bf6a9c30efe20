"""Shared fixtures: one small SparkSession per test session and a tiny composed config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from runner.config import compose

ROOT = Path(__file__).resolve().parents[1]

# A few seconds per run: a digits subset is not needed, 3 epochs and 2 trials are enough.
TINY = ["search.n_trials=2", "train.epochs=3", "search.parallelism=2"]


compose_config = compose

@pytest.fixture
def cfg(tmp_path):
    """The tiny config, caching prepared data under ``tmp_path``."""
    cfg = compose_config([*TINY, f"data.cache_dir={tmp_path / 'cache'}"])
    OmegaConf.set_readonly(cfg, False)
    return cfg


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local[2] session for the whole test run, quiet, stopped at the end."""
    from runner.spark import build_session, stop_session

    deploy = OmegaConf.create(
        {"master": "local[2]", "app_name": "tests", "spark_conf": {"spark.sql.shuffle.partitions": "2"}}
    )
    session = build_session(deploy, tmp_path_factory.mktemp("spark-logs"))
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
