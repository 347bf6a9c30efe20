"""Tests of the Hydra Spark launcher plugin (hydra_plugins/hydra_spark_launcher)."""

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf
from pyspark import cloudpickle

from hydra_plugins.hydra_spark_launcher import _core
from hydra_plugins.hydra_spark_launcher.spark_launcher import SparkLauncher

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "launcher_app" / "my_app.py"


@dataclass
class AppRun:
    pid: int  # the driver: the Python process that ran the multirun
    returncode: int
    output: str  # stdout and stderr


def run_app(cwd: Path, *overrides: str) -> AppRun:
    """Runs the test app's multirun on the Spark launcher in a fresh Python process."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "SPARK_LOCAL_IP": "127.0.0.1"}
    cmd = [sys.executable, str(APP), "-m", "hydra/launcher=spark", *overrides]
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        output, _ = proc.communicate(timeout=300)
    return AppRun(proc.pid, proc.returncode, output)


def job_results(sweep_dir: Path) -> List[List[int]]:
    """[value, pid] from each job's result.txt, in job order."""
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    assert [p.name for p in jobs] == [str(i) for i in range(len(jobs))]
    return [[int(v) for v in (job / "result.txt").read_text().split()] for job in jobs]


def test_discovery() -> None:
    # Hydra loads plugin modules itself, so compare names, not class objects.
    assert SparkLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


def test_launcher_config_composes() -> None:
    with initialize_config_dir(str(APP.parent / "conf"), version_base=None):
        cfg = compose("config", ["hydra/launcher=spark"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == f"{SparkLauncher.__module__}.SparkLauncher"
    assert cfg.hydra.launcher.master == "local[*]"


def test_job_resources_on_local_master_rejected() -> None:
    # SparkLauncherError, but test_discovery reloads the module: match its base class.
    with pytest.raises(CompactHydraException, match="cpus_per_job/gpus_per_job"):
        SparkLauncher("local[2]", "app", None, None, 1.0, {}, True)


def test_unpicklable_return_value_becomes_a_failure() -> None:
    hydra_cfg = OmegaConf.create({"hydra": {"job": {"num": 3}}})
    ret = JobReturn(hydra_cfg=hydra_cfg, status=JobStatus.COMPLETED, _return_value=threading.Lock())
    sent = cloudpickle.loads(_core._dump_return(ret))
    assert sent.status == JobStatus.FAILED
    assert "job 3: its result cannot be sent back" in str(sent._return_value)


@pytest.mark.slow
def test_multirun_runs_jobs_in_spark_workers_batch_by_batch(tmp_path: Path) -> None:
    # A relative sweep dir: executors, whose cwd differs, must write under the driver's cwd.
    # Two launch() calls (batches of 2 and 1) on one kept session; parallelism=1 runs each
    # batch in one task, and job numbers continue across batches.
    run = run_app(
        tmp_path,
        "hydra.sweep.dir=sweep",
        "hydra.sweeper.max_batch_size=2",
        "hydra.launcher.stop_session=false",
        "hydra.launcher.parallelism=1",
        "x=1,2,3",
    )
    assert run.returncode == 0, run.output
    sweep = tmp_path / "sweep"
    results = job_results(sweep)
    assert [value for value, _ in results] == [2, 4, 6]
    assert all(pid != run.pid for _, pid in results)
    for job in "012":
        hydra_cfg = OmegaConf.load(sweep / job / ".hydra" / "hydra.yaml")
        assert hydra_cfg.hydra.job.num == int(job)
        assert (sweep / job / "my_app.log").is_file()


@pytest.mark.slow
def test_failing_job_fails_multirun_like_basic_launcher(tmp_path: Path) -> None:
    run = run_app(tmp_path, f"hydra.sweep.dir={tmp_path / 'sweep'}", "x=1,fail")
    assert run.returncode != 0
    assert "ValueError: job asked to fail" in run.output
    assert "Traceback in the Spark task" in run.output  # the remote traceback survives
    assert (tmp_path / "sweep" / "0" / "result.txt").read_text().split()[0] == "2"
    assert not (tmp_path / "sweep" / "1" / "result.txt").exists()


@pytest.mark.slow
def test_return_values_reach_the_sweeper(
    spark: Any, hydra_sweep_runner: Callable[..., Any], tmp_path: Path
) -> None:
    sweep = hydra_sweep_runner(
        calling_file=str(APP),
        calling_module=None,
        task_function=OmegaConf.to_container,  # importable in Spark's Python workers
        config_path="conf",
        config_name="config",
        overrides=["hydra/launcher=spark", "x=1,2"],
        temp_dir=tmp_path,
    )
    with sweep:
        (batch,) = sweep.returns
    assert [ret.return_value for ret in batch] == [{"x": 1}, {"x": 2}]
    assert [ret.hydra_cfg.hydra.job.num for ret in batch] == [0, 1]
    assert all(Path(ret.working_dir) == tmp_path / str(i) for i, ret in enumerate(batch))
    # The launcher reused the caller's session and left it running.
    assert spark.range(1).count() == 1


@pytest.mark.slow
@pytest.mark.cluster
def test_local_cluster_master(tmp_path: Path) -> None:
    run = run_app(
        tmp_path,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "hydra.launcher.master='local-cluster[2,1,1024]'",  # quoted for Hydra's grammar
        "hydra.launcher.cpus_per_job=1",  # a task ResourceProfile: needs a cluster master
        "x=1,2",
    )
    assert run.returncode == 0, run.output
    results = job_results(tmp_path / "sweep")
    assert [value for value, _ in results] == [2, 4]
    assert all(pid != run.pid for _, pid in results)
