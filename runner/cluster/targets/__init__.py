"""Deploy targets: a ``deploy`` config -> the Spark settings and facts the runner needs.

Each public module here is one option's base schema (stored as ``base_<module>`` in
group ``deploy``) and the :class:`Target` its ``_target_`` names. A target wraps its
config node: ``validate()`` lists problems before Spark starts, ``spark_conf()`` gives
the ``spark.*`` settings (under ``deploy.spark_conf``, which wins), ``is_local`` says
whether the whole cluster is this machine. ``runner.cluster.spark`` builds the session
from a target; nothing else reads a master URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from omegaconf import MISSING

GPU_DISCOVERY = Path(__file__).parents[1] / "gpu_discovery.sh"


@dataclass
class DeployConfig:
    """The Spark cluster the experiment runs on; ``_target_`` names its :class:`Target`."""

    _target_: str = MISSING
    name: str = MISSING
    master: str = "local[*]"
    app_name: str = "spark-dl-runner"
    spark_conf: dict[str, str] = field(default_factory=dict)  # any spark.* setting, passed through
    python: Optional[str] = None  # the executors' Python; null: the driver's interpreter
    connect_timeout_s: float = 10.0  # probe of the master's host:port before Spark starts
    cpus_per_trial: int = 1  # cores (and torch threads) per trial
    gpus_per_trial: float = 0.0  # GPUs per trial; fractions pack trials (0.25: four per GPU)
    # Map the driver JVM's classes from an archive made by the first run (~190 MB under
    # ~/.cache/spark-dl-runner/jvm): a cold start 3-4 s faster (runner.cluster.class_cache)
    class_cache: bool = True


@dataclass
class ClusterDeployConfig(DeployConfig):
    """A cluster with separate executor processes; GPUs are scheduled per executor and task."""

    executor_cores: Optional[int] = None
    executor_memory: Optional[str] = None  # e.g. 2g
    gpus_per_executor: int = 0  # 0: CPU only
    gpu_discovery_script: Optional[str] = None  # null: runner/cluster/gpu_discovery.sh
    executor_wait_s: float = 60.0  # how long to wait for the first executor to register


class Target:
    """A deploy target built from its ``deploy`` config node."""

    is_local: ClassVar[bool] = False  # the whole cluster is this machine: the driver sees it all
    embedded: ClassVar[bool] = False  # local[N]: tasks in the driver's JVM, no resource scheduling
    remote: ClassVar[bool] = False  # a Spark Connect client: no SparkContext
    waits_for_executors: ClassVar[bool] = False  # executors register after the session starts

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def validate(self) -> list[str]:
        """Problems with the config found before Spark starts, each naming its key."""
        problems = []
        if self.cfg.cpus_per_trial < 1:
            problems.append(
                f"deploy.cpus_per_trial: must be at least 1, got {self.cfg.cpus_per_trial}"
            )
        gpus = self.cfg.gpus_per_trial
        if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
            problems.append(f"deploy.gpus_per_trial: {gpus} must be at most 1 or a whole number")
        return problems

    def spark_conf(self) -> dict[str, str]:
        """The ``spark.*`` settings this target maps to (before ``deploy.spark_conf``)."""
        return {}


class ClusterTarget(Target):
    """A cluster of executor processes: executor sizes and GPUs."""

    waits_for_executors = True

    def spark_conf(self) -> dict[str, str]:
        """No default task GPU amount: trials ask for theirs (``deploy.gpus_per_trial``)
        through a task resource profile, which Spark allows only when it is left unset."""
        cfg, conf = self.cfg, {}
        if cfg.executor_cores is not None:
            conf["spark.executor.cores"] = str(cfg.executor_cores)
        if cfg.executor_memory is not None:
            conf["spark.executor.memory"] = str(cfg.executor_memory)
        if cfg.gpus_per_executor > 0:
            conf["spark.executor.resource.gpu.amount"] = str(cfg.gpus_per_executor)
            conf["spark.executor.resource.gpu.discoveryScript"] = self.discovery_script
        return conf

    @property
    def discovery_script(self) -> str:
        return self.cfg.gpu_discovery_script or str(GPU_DISCOVERY)


def target_for(cfg: Any) -> Target:
    """The :class:`Target` a ``deploy`` config names by ``_target_``."""
    from hydra.utils import get_class

    return get_class(cfg._target_)(cfg)
