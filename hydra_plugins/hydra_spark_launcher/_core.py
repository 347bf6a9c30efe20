"""Spark side of the launcher: one Spark job per batch, one Spark task per Hydra job."""

import atexit
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import pandas as pd
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from omegaconf import DictConfig, open_dict
from pyspark import cloudpickle
from pyspark.resource import ResourceProfile, ResourceProfileBuilder, TaskResourceRequests
from pyspark.sql import SparkSession

from ._failures import catch_exit, report, sendable
from .spark_launcher import SparkLauncher

log = logging.getLogger(__name__)
logging.getLogger("py4j").setLevel(logging.WARNING)  # not INFO through Hydra's logging

RESULT_SCHEMA = "idx long, job_return binary"

# Applied before `hydra.launcher.spark_conf`, which may override them.
DEFAULT_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}

# The driver JVM's logging while it starts (setLogLevel("ERROR") follows): warnings and up,
# without Spark's default-profile banner or the native-hadoop warning. A root level other
# than WARN would make Spark print "Setting default log level to WARN".
LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
"""


def launch(
    launcher: SparkLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> List[JobReturn]:
    """Runs one batch of jobs as Spark tasks; returns their JobReturns in job order."""
    setup_globals()
    assert launcher.config is not None
    assert launcher.hydra_context is not None
    assert launcher.task_function is not None
    config = launcher.config
    if not job_overrides:
        return []

    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    log.info(f"Launching {len(job_overrides)} jobs as Spark tasks ({launcher.master})")
    job_configs = [
        cloudpickle.dumps(c) for c in sweep_configs(launcher, job_overrides, initial_job_idx)
    ]
    shared = cloudpickle.dumps(
        (launcher.hydra_context, launcher.task_function, Singleton.get_state())
    )
    app_dir = os.path.abspath(sys.path[0])

    spark, owned = _get_session(launcher)
    try:
        n_partitions = min(len(job_configs), launcher.parallelism or len(job_configs))
        rows = (
            spark.range(len(job_configs), numPartitions=n_partitions)
            .mapInPandas(
                _job_runner(shared, job_configs, app_dir),
                RESULT_SCHEMA,
                profile=_resource_profile(launcher),
            )
            .collect()
        )
    finally:
        if owned and launcher.stop_session:
            spark.stop()

    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    rows.sort(key=lambda row: row.idx)
    assert [row.idx for row in rows] == list(range(len(job_configs)))
    returns = [cloudpickle.loads(row.job_return) for row in rows]
    report(returns)
    return returns


def sweep_configs(
    launcher: SparkLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> List[DictConfig]:
    """Each job's config, numbered, with the sweep dir made absolute (executors and
    threads do not share the launcher's idea of the current directory)."""
    assert launcher.config is not None and launcher.hydra_context is not None
    config = launcher.config
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    log.info(f"Launching jobs, sweep output dir : {sweep_dir}")
    configs = []
    for offset, overrides in enumerate(job_overrides):
        idx = initial_job_idx + offset
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        sweep_config = launcher.hydra_context.config_loader.load_sweep_config(
            config, list(overrides)
        )
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
            sweep_config.hydra.sweep.dir = str(sweep_dir)
        configs.append(sweep_config)
    return configs


def _get_session(launcher: SparkLauncher) -> Tuple[SparkSession, bool]:
    """The active SparkSession, or a new one; True when this call created it."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if launcher.master.startswith("sc://"):
        builder = SparkSession.builder.remote(launcher.master).appName(launcher.app_name)
        for key, value in launcher.spark_conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    else:
        spark = _start_driver(launcher)
    if not launcher.stop_session:
        atexit.register(spark.stop)
    return spark, True


def _start_driver(launcher: SparkLauncher) -> SparkSession:
    """A classic session, whose driver JVM starts quiet (unless spark_conf sets its options)."""
    if launcher.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = {**DEFAULT_SPARK_CONF, **launcher.spark_conf}
    with tempfile.NamedTemporaryFile("w", suffix=".properties") as log4j2:
        log4j2.write(LOG4J2_PROPERTIES)
        log4j2.flush()
        conf.setdefault(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j2.name}"
        )
        builder = SparkSession.builder.master(launcher.master).appName(launcher.app_name)
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()  # the JVM reads the file while it starts
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _resource_profile(launcher: SparkLauncher) -> Optional[ResourceProfile]:
    """A task-only ResourceProfile when cpus_per_job or gpus_per_job is set."""
    if launcher.cpus_per_job is None and launcher.gpus_per_job is None:
        return None
    requests = TaskResourceRequests()
    if launcher.cpus_per_job is not None:
        requests = requests.cpus(launcher.cpus_per_job)
    if launcher.gpus_per_job is not None:
        requests = requests.resource("gpu", launcher.gpus_per_job)
    return ResourceProfileBuilder().require(requests).build


def _job_runner(
    shared: bytes, job_configs: List[bytes], app_dir: str
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function: job positions in, pickled JobReturns out."""

    def run_jobs(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Modules next to the app script, which the task function may import.
        if app_dir not in sys.path:
            sys.path.append(app_dir)
        for batch in batches:
            for idx in batch["id"].tolist():
                ret = _execute_job(shared, job_configs[idx])
                yield pd.DataFrame({"idx": [idx], "job_return": [_dump_return(ret)]})

    return run_jobs


def _execute_job(shared: bytes, job_config: bytes) -> JobReturn:
    """Runs one Hydra job in this Python worker, like joblib's `execute_job`."""
    hydra_context, task_function, singleton_state = cloudpickle.loads(shared)
    setup_globals()
    Singleton.set_state(singleton_state)
    cwd = os.getcwd()
    try:
        return run_job(
            hydra_context=hydra_context,
            task_function=catch_exit(task_function),
            config=cloudpickle.loads(job_config),
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    finally:
        os.chdir(cwd)  # Spark reuses Python workers across tasks


def _dump_return(ret: JobReturn) -> bytes:
    """Pickles a JobReturn for the driver: a failure keeps its type, message and traceback."""
    if ret.status == JobStatus.FAILED and isinstance(ret._return_value, BaseException):
        ret.return_value = sendable(ret._return_value, cloudpickle.dumps, cloudpickle.loads)
    try:
        blob = cloudpickle.dumps(ret)
        cloudpickle.loads(blob)  # the driver must be able to load it too
    except Exception as e:
        assert ret.hydra_cfg is not None
        ret.status = JobStatus.FAILED
        ret.return_value = RuntimeError(
            f"job {ret.hydra_cfg.hydra.job.num}: its result cannot be sent back from the "
            f"Spark task: {e!r}; return picklable values"
        )
        blob = cloudpickle.dumps(ret)
    return blob
