"""A running Spark standalone cluster (``just cluster`` starts one here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from runner.cluster.targets import ClusterDeployConfig, ClusterTarget


@dataclass
class StandaloneDeployConfig(ClusterDeployConfig):
    """A running Spark standalone cluster (``just cluster`` starts one here)."""

    _target_: str = "runner.cluster.targets.standalone.Standalone"
    master: str = "spark://127.0.0.1:7077"
    cores_max: Optional[int] = None  # cores this app may take from the cluster; null: all


class Standalone(ClusterTarget):
    def spark_conf(self) -> dict[str, str]:
        conf = super().spark_conf()
        if self.cfg.cores_max is not None:
            conf["spark.cores.max"] = str(self.cfg.cores_max)
        return conf
