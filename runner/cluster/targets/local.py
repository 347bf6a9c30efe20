"""``local[N]``: embedded Spark in this process, N task slots, no GPU scheduling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.cluster.targets import DeployConfig, Target


@dataclass
class LocalDeployConfig(DeployConfig):
    """Embedded Spark in this process: ``local[N]`` task slots, no GPU scheduling."""

    _target_: str = "runner.cluster.targets.local.Local"


class Local(Target):
    """The driver runs every task; ``local[*]`` never schedules task resources (GPUs)."""

    is_local = True
    embedded = True


def local(master: str = "local[*]", **settings: Any) -> Local:
    """A local target outside a composed config (tests, benchmarks): ``local("local[2]",
    app_name="tests", spark_conf={...})``."""
    from omegaconf import OmegaConf

    return Local(OmegaConf.structured(LocalDeployConfig(name="local", master=master, **settings)))
