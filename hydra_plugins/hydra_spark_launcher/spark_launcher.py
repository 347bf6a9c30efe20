"""Hydra launcher that runs the jobs of a multirun as Spark tasks.

    python my_app.py -m hydra/launcher=spark hydra.launcher.parallelism=2 lr=0.1,0.01,0.001

Job output dirs, return values and failures are those of Hydra's basic launcher; the sweep
dir must be on storage that the driver and the executors share.
"""

from typing import Dict, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class SparkLauncherError(CompactHydraException):
    """A bad `hydra.launcher` setting, reported before Spark starts."""


class SparkLauncher(Launcher):
    """Runs each job of a batch as one Spark task; see `config.SparkLauncherConf`."""

    def __init__(
        self,
        master: str,
        app_name: str,
        parallelism: Optional[int],
        cpus_per_job: Optional[int],
        gpus_per_job: Optional[float],
        spark_conf: Dict[str, str],
        stop_session: bool,
    ) -> None:
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

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from . import _core

        return _core.launch(
            launcher=self, job_overrides=job_overrides, initial_job_idx=initial_job_idx
        )

