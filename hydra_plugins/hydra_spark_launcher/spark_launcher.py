"""Hydra launcher that runs the jobs of a multirun as Spark tasks.

    python my_app.py -m hydra/launcher=spark hydra.launcher.parallelism=2 lr=0.1,0.01,0.001

Job output dirs, return values and failures are those of Hydra's basic launcher; the sweep
dir must be on storage that the driver and the executors share. A task function that uses
Spark itself is marked with :func:`driver_job` and runs on driver threads instead
(``config.SparkLauncherConf.mode``).
"""

from typing import Dict, Optional, Sequence, TypeVar

from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


MODES = ("task", "driver")
_DRIVER_MARK = "_spark_launcher_driver_job"
F = TypeVar("F")


class SparkLauncherError(CompactHydraException):
    """A bad `hydra.launcher` setting, reported before Spark starts."""


def driver_job(task_function: F) -> F:
    """Mark a task function that starts Spark jobs itself: the launcher then runs it on
    driver threads sharing one Spark application, not inside a Spark task. Put it under
    ``@hydra.main``."""
    setattr(task_function, _DRIVER_MARK, True)
    return task_function


class SparkLauncher(Launcher):
    """Runs each job of a batch as one Spark task; see `config.SparkLauncherConf`."""

    def __init__(
        self,
        mode: Optional[str],
        master: str,
        app_name: str,
        parallelism: Optional[int],
        cpus_per_job: Optional[int],
        gpus_per_job: Optional[float],
        spark_conf: Dict[str, str],
        stop_session: bool,
    ) -> None:
        self.mode = mode
        self.master = master
        self.app_name = app_name
        self.parallelism = parallelism
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        self.spark_conf = {str(k): str(v) for k, v in spark_conf.items()}
        self.stop_session = stop_session
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None
        self._validate()

    def _validate(self) -> None:
        problems = []
        if self.mode is not None and self.mode not in MODES:
            problems.append(f"hydra.launcher.mode={self.mode}: use null, task or driver")
        if self.parallelism is not None and self.parallelism < 1:
            problems.append(f"hydra.launcher.parallelism={self.parallelism}: use null or >= 1")
        if self.cpus_per_job is not None and self.cpus_per_job < 1:
            problems.append(f"hydra.launcher.cpus_per_job={self.cpus_per_job}: use null or >= 1")
        if self.gpus_per_job is not None and self.gpus_per_job <= 0:
            problems.append(f"hydra.launcher.gpus_per_job={self.gpus_per_job}: use null or > 0")
        local = self.master == "local" or self.master.startswith("local[")
        if local and (self.cpus_per_job is not None or self.gpus_per_job is not None):
            problems.append(
                f"hydra.launcher.cpus_per_job/gpus_per_job need a cluster master, not "
                f"master={self.master}; use local-cluster[W,C,M], standalone, YARN or K8s"
            )
        if problems:
            raise SparkLauncherError("; ".join(problems))

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        if self.job_mode == "driver" and config.hydra.job.chdir:
            raise SparkLauncherError(
                "hydra.launcher.mode=driver runs jobs on threads of one process, which share "
                "its working directory: set hydra.job.chdir=false"
            )

    @property
    def job_mode(self) -> str:
        """``task`` or ``driver``: the setting, else what the task function asks for."""
        if self.mode is not None:
            return self.mode
        return "driver" if getattr(self.task_function, _DRIVER_MARK, False) else "task"

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        if self.job_mode == "driver":
            from . import _driver as run
        else:
            from . import _core as run  # type: ignore[no-redef]

        return run.launch(
            launcher=self, job_overrides=job_overrides, initial_job_idx=initial_job_idx
        )
