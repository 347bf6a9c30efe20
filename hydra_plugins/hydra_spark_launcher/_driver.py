"""Driver mode: the jobs of a batch on driver threads, sharing one Spark application.

Each job's task function starts its own Spark jobs (the first one to ask opens the
session; the others reuse it), so every stage of every job is spread over the executors
while `parallelism` jobs run at once. Hydra keeps a job's state in process-wide singletons;
here `HydraConfig` is made per thread for the batch, `run_job` does not reconfigure the
process's logging, and each job's log records go to its own `<job name>.log`.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from omegaconf import DictConfig

from ._core import sweep_configs
from ._failures import catch_exit, report
from .spark_launcher import SparkLauncher

log = logging.getLogger(__name__)

# Hydra's own job log format (hydra/conf/hydra/job_logging/default.yaml).
_LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def launch(
    launcher: SparkLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> List[JobReturn]:
    """Runs one batch of jobs on driver threads; returns their JobReturns in job order."""
    setup_globals()
    assert launcher.config is not None and launcher.task_function is not None
    if not job_overrides:
        return []
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    workers = min(len(job_overrides), launcher.parallelism or len(job_overrides))
    log.info(
        f"Launching {len(job_overrides)} jobs on driver threads, {workers} at a time, "
        "sharing one Spark application"
    )
    configs = sweep_configs(launcher, job_overrides, initial_job_idx)
    task_function = catch_exit(_logged(launcher.task_function))
    with _hydra_config_per_thread(), ThreadPoolExecutor(workers, "hydra-job") as pool:
        futures = [pool.submit(_run, launcher, task_function, c) for c in configs]
        returns = [f.result() for f in futures]
    report(returns)
    return returns


def _run(
    launcher: SparkLauncher, task_function: Callable[[Any], Any], config: DictConfig
) -> JobReturn:
    assert launcher.hydra_context is not None
    return run_job(
        hydra_context=launcher.hydra_context,
        task_function=task_function,
        config=config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
        configure_logging=False,  # process-wide: one job would take the others' records
    )


def _logged(task_function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``task_function`` with this thread's log records also written to the job's log file."""

    def job(cfg: Any) -> Any:
        hydra_cfg = HydraConfig.get()
        handler = logging.FileHandler(
            Path(hydra_cfg.runtime.output_dir) / f"{hydra_cfg.job.name}.log"
        )
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        thread = threading.get_ident()
        handler.addFilter(lambda record: record.thread == thread)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            return task_function(cfg)
        finally:
            root.removeHandler(handler)
            handler.close()

    return job


class _PerThreadHydraConfig(threading.local):
    """`HydraConfig`'s state, one per thread: each thread starts from the launcher's and
    keeps what `run_job` sets in it."""

    set_config = HydraConfig.set_config

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg


@contextmanager
def _hydra_config_per_thread() -> Iterator[None]:
    """Make `HydraConfig.get()` answer per thread while the batch runs."""
    instances = Singleton._instances
    shared = HydraConfig.instance()
    instances[HydraConfig] = _PerThreadHydraConfig(shared.cfg)  # type: ignore[assignment]
    try:
        yield
    finally:
        instances[HydraConfig] = shared  # type: ignore[assignment]
