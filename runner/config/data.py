"""The ``data`` group's common schema: how a source's rows are split and prepared.

Each source adds its own keys in a subclass beside its code (``runner/data/sources/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING


@dataclass
class SplitConfig:
    """Deterministic train/val/test split, by hashing each row id with ``seed``."""

    train: float = 0.7
    val: float = 0.15
    test: float = 0.15
    seed: int = 0
    stratify: bool = True


@dataclass
class StepConfig:
    """One preprocessing step of ``data.steps`` (see ``runner/data/steps.py``).

    ``op`` picks the step; each op reads only its own fields:
    ``filter`` (``expr``: a Spark SQL condition), ``select`` (``exprs``: SQL expressions),
    ``dropna`` (``columns``, null: all), ``impute`` (``columns``, ``strategy``:
    mean | median | mode), ``onehot`` (``columns``: string columns), ``categorical``
    (``columns``: string columns, each an index the model embeds; ``model=tabular``).
    """

    op: str = MISSING
    expr: Optional[str] = None
    exprs: Optional[list[str]] = None
    columns: Optional[list[str]] = None
    strategy: str = "mean"


@dataclass
class DataConfig:
    """Where the rows come from (``_target_``: a source class) and how they are prepared."""

    _target_: str = MISSING
    name: str = MISSING
    split: SplitConfig = field(default_factory=SplitConfig)
    steps: list[StepConfig] = field(default_factory=list)  # applied in order, fitted on train
    scaling: str = "standard"  # standard | minmax | none: the last step, over the features
    cache: bool = True
    cache_dir: str = "outputs/cache"  # relative to the directory the runner was started in
