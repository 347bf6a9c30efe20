"""The ``tracking`` group: where runs are recorded besides the run directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class TrackingConfig:
    """Where runs are recorded besides the run directory; ``none`` records nowhere else."""

    name: str = "none"


@dataclass
class MLflowTrackingConfig(TrackingConfig):
    """The experiment as an MLflow run, each trial a nested run (``pip install .[tracking]``)."""

    name: str = "mlflow"
    # a directory (file store; relative to where the runner started) or any tracking URI
    uri: str = "mlruns"
    experiment: str = "spark-dl-runner"
    run_name: Optional[str] = None  # null: the run directory's name
