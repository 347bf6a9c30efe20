"""A Spark Connect server (``sc://host:port``): DataFrame API only, no SparkContext."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from runner.cluster.targets import DeployConfig, Target


@dataclass
class ConnectDeployConfig(DeployConfig):
    """A Spark Connect server (``sc://host:port``): DataFrame API only, no SparkContext."""

    _target_: str = "runner.cluster.targets.connect.Connect"
    master: str = "sc://127.0.0.1:15002"
    task_slots: Optional[int] = None  # concurrent trials when search.parallelism is null


class Connect(Target):
    """Only session-level (SQL) settings can be set by a Connect client."""

    remote = True

    def spark_conf(self) -> dict[str, str]:
        if self.cfg.task_slots is None:
            return {}
        return {"spark.default.parallelism": str(self.cfg.task_slots)}
