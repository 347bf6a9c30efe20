"""``local-cluster[N,C,MB]``: a Master, a Worker and N executor JVMs on this machine."""

from __future__ import annotations

from dataclasses import dataclass

from runner.cluster.targets import ClusterDeployConfig, ClusterTarget


@dataclass
class LocalClusterDeployConfig(ClusterDeployConfig):
    """``local-cluster[N,C,MB]``: a Master, Worker and N executor JVMs on this machine."""

    _target_: str = "runner.cluster.targets.local_cluster.LocalCluster"
    master: str = "local-cluster[${.executors},${.cores},${.memory_mb}]"
    executors: int = 2
    cores: int = 1
    memory_mb: int = 1024


class LocalCluster(ClusterTarget):
    """The embedded Worker owns the GPUs (all on it: several workers would claim the same)."""

    is_local = True

    def spark_conf(self) -> dict[str, str]:
        conf = super().spark_conf()
        if self.cfg.gpus_per_executor > 0:
            conf["spark.worker.resource.gpu.amount"] = str(
                self.cfg.gpus_per_executor * self.cfg.executors
            )
            conf["spark.worker.resource.gpu.discoveryScript"] = self.discovery_script
        return conf
