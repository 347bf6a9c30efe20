"""The ``search`` group: the hyperparameter search; ``search/sampler`` and ``search/pruner``
name Optuna classes by ``_target_`` (as Hydra's Optuna sweeper does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING


@dataclass
class SearchConfig:
    """The hyperparameter search.

    ``params`` maps any key of the composed config to an expression of Hydra's
    sweeper grammar: ``choice(64,128)``, ``range(1,4)``, ``interval(0,0.5)``,
    ``tag(log, interval(1e-4,1e-1))``, ``tag(int, interval(8,64))``.
    ``sampler`` and ``pruner`` are ``_target_`` nodes (an Optuna class and its keyword
    arguments), chosen with ``search/sampler=tpe|random|grid`` and
    ``search/pruner=none|median|asha``; any other Optuna class works from a YAML file.
    """

    n_trials: int = 8
    parallelism: Optional[int] = None  # concurrent trials; null: the cluster's task slots
    metric: Optional[str] = None  # e.g. val_rmse; null: the task's first (val_accuracy, ...)
    direction: Optional[str] = None  # maximize | minimize; null: the metric's own
    sampler: Any = MISSING  # {_target_: optuna.samplers.X, seed: ${search.seed}, ...}
    pruner: Any = MISSING  # {_target_: optuna.pruners.X, ...}: stop bad trials after an epoch
    trial_timeout: Optional[float] = None  # seconds; a trial past it fails
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)  # nested or dotted keys
