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
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.version import _UNSPECIFIED_, VersionBase
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)
from omegaconf import OmegaConf
from pyspark import cloudpickle

from hydra_plugins.hydra_spark_launcher import _core, _driver
from hydra_plugins.hydra_spark_launcher._failures import JobExit
from hydra_plugins.hydra_spark_launcher.spark_launcher import SparkLauncher, driver_job

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "launcher_app" / "my_app.py"


@dataclass
class AppRun:
    pid: int  # the driver: the Python process that ran the multirun
    returncode: int
    output: str  # stdout and stderr


def run_app(cwd: Path, *overrides: str, launcher: str = "spark") -> AppRun:
    """Runs the test app's multirun on the Spark launcher in a fresh Python process."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "SPARK_LOCAL_IP": "127.0.0.1"}
    cmd = [sys.executable, str(APP), "-m", f"hydra/launcher={launcher}", *overrides]
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


def launcher(**settings: Any) -> SparkLauncher:
    defaults = dict(mode=None, master="local[2]", app_name="app", parallelism=None,
                    cpus_per_job=None, gpus_per_job=None, spark_conf={}, stop_session=True)
    return SparkLauncher(**{**defaults, **settings})


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
        launcher(gpus_per_job=1.0)


def test_mode_follows_the_task_function_unless_set() -> None:
    def plain(cfg: Any) -> None: ...

    @driver_job
    def spark_aware(cfg: Any) -> None: ...

    cases = [(None, plain, "task"), (None, spark_aware, "driver"),
             ("task", spark_aware, "task"), ("driver", plain, "driver")]
    for mode, task_function, expected in cases:
        chosen = launcher(mode=mode)
        chosen.task_function = task_function
        assert chosen.job_mode == expected
    with pytest.raises(CompactHydraException, match="hydra.launcher.mode=threads"):
        launcher(mode="threads")


def test_hydra_config_is_per_thread_in_driver_mode() -> None:
    # run_job sets HydraConfig for its job: jobs on threads must each read their own.
    configs = {n: OmegaConf.create({"hydra": {"job": {"num": n}}}) for n in range(4)}
    seen = {}
    barrier = threading.Barrier(len(configs))

    def job(n: int) -> None:
        HydraConfig.instance().cfg = configs[n]
        barrier.wait()  # every thread has set its own before any reads
        seen[n] = HydraConfig.instance().cfg.hydra.job.num

    before = HydraConfig.instance()
    with _driver._hydra_config_per_thread():
        threads = [threading.Thread(target=job, args=(n,)) for n in configs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen == {n: n for n in configs}
    assert HydraConfig.instance() is before


def test_exit_and_unpicklable_error_come_back_whole() -> None:
    hydra_cfg = OmegaConf.create({"hydra": {"job": {"num": 1}}})

    class Unpicklable(Exception):
        lock = None

    error = Unpicklable("holds a lock")
    error.lock = threading.Lock()  # type: ignore[attr-defined]
    ret = JobReturn(hydra_cfg=hydra_cfg, status=JobStatus.FAILED, _return_value=error)
    sent = cloudpickle.loads(_core._dump_return(ret))._return_value
    assert "Unpicklable: holds a lock" in str(sent)
    assert "Traceback in the Spark task" in str(sent)

    ret = JobReturn(hydra_cfg=hydra_cfg, status=JobStatus.FAILED, _return_value=JobExit(3))
    sent = cloudpickle.loads(_core._dump_return(ret))._return_value
    assert isinstance(sent, JobExit) and sent.code == 3


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


def attempts(job_dir: Path) -> int:
    return len((job_dir / "attempts.txt").read_text().splitlines())


@pytest.mark.slow
def test_sys_exit_fails_its_job_only_with_the_basic_launchers_exit_code(tmp_path: Path) -> None:
    basic = run_app(tmp_path, f"hydra.sweep.dir={tmp_path / 'basic'}", "x=exit", launcher="basic")
    run = run_app(tmp_path, f"hydra.sweep.dir={tmp_path / 'sweep'}", "x=exit,1")
    assert run.returncode == basic.returncode == 3, run.output
    assert "#0 x=exit failed: SystemExit: 3" in run.output
    assert "Traceback in the Spark task" in run.output and "sys.exit(3)" in run.output
    assert (tmp_path / "sweep" / "1" / "result.txt").read_text().split()[0] == "2"
    assert attempts(tmp_path / "sweep" / "0") == 1


@pytest.mark.slow
def test_failing_jobs_reach_the_driver_with_their_tracebacks(tmp_path: Path) -> None:
    """A job's exception, even one that cannot be pickled, fails the multirun like the basic
    launcher, with the remote traceback; the other jobs finish."""
    run = run_app(tmp_path, f"hydra.sweep.dir={tmp_path / 'sweep'}", "x=unpicklable,fail,1")
    assert run.returncode == 1, run.output
    assert "#1 x=fail failed: ValueError: job asked to fail" in run.output
    # the first failure is raised, as the basic launcher does, with the remote traceback
    assert "Unpicklable: job holds a lock" in run.output
    assert "Traceback in the Spark task" in run.output
    assert 'raise Unpicklable("job holds a lock")' in run.output
    assert "cannot be sent back" not in run.output
    assert not (tmp_path / "sweep" / "1" / "result.txt").exists()
    assert (tmp_path / "sweep" / "2" / "result.txt").read_text().split()[0] == "2"


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
def test_local_cluster_master_runs_jobs_and_does_not_retry_failed_ones(tmp_path: Path) -> None:
    # A cluster retries a failed task up to spark.task.maxFailures (4) times.
    run = run_app(
        tmp_path,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "hydra.launcher.master='local-cluster[2,1,1024]'",  # quoted for Hydra's grammar
        "hydra.launcher.cpus_per_job=1",  # a task ResourceProfile: needs a cluster master
        "x=1,exit,unpicklable,2",
    )
    assert run.returncode == 3, run.output
    assert "Unpicklable: job holds a lock" in run.output
    assert [attempts(tmp_path / "sweep" / job) for job in "12"] == [1, 1]
    results = [(tmp_path / "sweep" / job / "result.txt").read_text().split() for job in "03"]
    assert [int(value) for value, _ in results] == [2, 4]
    assert all(int(pid) != run.pid for _, pid in results)


# Hydra's own launcher conformance suites, for the task mode (a generic Hydra app). The
# in-process suites reuse the test session's SparkSession (the `spark` fixture).
@pytest.fixture
def active_session(spark: Any) -> Iterator[Any]:
    """The test session's SparkSession, under Hydra's default version base, which the suites
    assume (jobs chdir to their output dir); an earlier test in this process may have set it."""
    base = VersionBase.instance()
    before = base.getbase()
    base.version_base = _UNSPECIFIED_
    yield spark
    base.version_base = before


@pytest.mark.slow
@pytest.mark.usefixtures("active_session")
@pytest.mark.parametrize("launcher_name, overrides", [("spark", [])])
class TestSparkLauncher(LauncherTestSuite):
    pass


@pytest.mark.slow
@pytest.mark.usefixtures("active_session")
@pytest.mark.parametrize(
    "launcher_name, overrides",
    [("spark", ["hydra/sweeper=basic", "hydra.sweeper.max_batch_size=2"])],
)
class TestSparkLauncherBatched(BatchedSweeperTestSuite):
    pass


def _first_case(test: Callable) -> Callable:
    """``test`` (a Hydra suite's method) with only the first case of its parametrization."""
    import functools

    (cases,) = [m for m in test.pytestmark if m.name == "parametrize"]

    @functools.wraps(test)
    def first(*args: Any, **kwargs: Any) -> Any:
        return test(*args, **kwargs)

    first.pytestmark = [  # type: ignore[attr-defined]
        *(m for m in test.pytestmark if m is not cases),
        pytest.mark.parametrize(cases.args[0], cases.args[1][:1], **cases.kwargs).mark,
    ]
    return first


@pytest.mark.slow
@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [({}, ["-m", "hydra/job_logging=disabled", "hydra/launcher=spark",
           "hydra.launcher.master='local[1]'"])],
)
class TestSparkLauncherIntegration(IntegrationTestSuite):
    # Hydra's run-dir (5) and task-name (4) cases check Hydra's own naming, the same for
    # every launcher; one of each runs here (each case is a Spark application, ~15 s)
    test_custom_sweeper_run_workdir = _first_case(IntegrationTestSuite.test_custom_sweeper_run_workdir)
    test_custom_task_name = _first_case(IntegrationTestSuite.test_custom_task_name)


def test_readme_launcher_example_parses_as_typed_in_bash() -> None:
    (line,) = [l for l in (ROOT / "README.md").read_text().splitlines()
               if l.startswith("python my_app.py -m hydra/launcher=spark")]
    # --cfg prints the composed config instead of running (and takes no sweep)
    command = line.replace("python my_app.py -m", f"{sys.executable} {APP}")
    command = command.replace("x=1,2,3", "x=1") + " --cfg hydra"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "master: local-cluster[2,1,1024]" in proc.stdout
