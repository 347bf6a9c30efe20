"""Hadoop YARN, client mode (``HADOOP_CONF_DIR`` names the cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from runner.cluster.targets import ClusterDeployConfig, ClusterTarget


@dataclass
class YarnDeployConfig(ClusterDeployConfig):
    """Hadoop YARN, client mode (``HADOOP_CONF_DIR`` names the cluster)."""

    _target_: str = "runner.cluster.targets.yarn.Yarn"
    master: str = "yarn"
    executors: int = 2
    queue: Optional[str] = None


class Yarn(ClusterTarget):
    def spark_conf(self) -> dict[str, str]:
        conf = {**super().spark_conf(), "spark.executor.instances": str(self.cfg.executors)}
        if self.cfg.queue:
            conf["spark.yarn.queue"] = self.cfg.queue
        return conf
