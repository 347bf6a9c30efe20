"""Kubernetes, client mode: executors are pods of ``image`` in ``namespace``."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from runner.cluster.targets import ClusterDeployConfig, ClusterTarget


@dataclass
class K8sDeployConfig(ClusterDeployConfig):
    """Kubernetes, client mode: executors are pods of ``image`` in ``namespace``."""

    _target_: str = "runner.cluster.targets.k8s.K8s"
    master: str = "k8s://https://kubernetes.default.svc:443"
    image: str = MISSING
    namespace: str = "default"
    executors: int = 2
    gpu_vendor: str = "nvidia.com"


class K8s(ClusterTarget):
    def validate(self) -> list[str]:
        from omegaconf import OmegaConf

        problems = super().validate()
        if OmegaConf.is_missing(self.cfg, "image"):
            problems.append(
                "deploy.image: deploy=k8s needs the executors' container image; "
                "set deploy.image=REGISTRY/IMAGE:TAG"
            )
        return problems

    def spark_conf(self) -> dict[str, str]:
        conf = {
            **super().spark_conf(),
            "spark.kubernetes.container.image": self.cfg.image,
            "spark.kubernetes.namespace": self.cfg.namespace,
            "spark.executor.instances": str(self.cfg.executors),
        }
        if self.cfg.gpus_per_executor > 0:
            conf["spark.executor.resource.gpu.vendor"] = self.cfg.gpu_vendor
        return conf
