"""Tasks: what a model learns (label, loss, metrics, predictions), by ``_target_`` from
``conf/task/``.

Each public module here is one task: its schema (a ``TaskConfig`` subclass, stored as
``base_<module>`` in group ``task``) and the :class:`Task` its ``_target_`` names.
``TASKS`` is the one registry: ``task=auto`` chooses among them by the label's type
(``infer``), and ``search.metric`` may name any of their metrics before the data says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.errors import RunnerError, first_line
from runner.tasks._base import Task, TaskConfig, gain
from runner.tasks.binary import Binary, BinaryConfig
from runner.tasks.classification import Classification, ClassificationConfig
from runner.tasks.multilabel import Multilabel, MultilabelConfig
from runner.tasks.regression import Regression, RegressionConfig

__all__ = [
    "AUTO",
    "TASKS",
    "Binary",
    "BinaryConfig",
    "Classification",
    "ClassificationConfig",
    "Multilabel",
    "MultilabelConfig",
    "Regression",
    "RegressionConfig",
    "Task",
    "TaskConfig",
    "all_directions",
    "gain",
    "infer",
    "is_auto",
    "task_for",
]

AUTO = "auto"  # task._target_ of task=auto: chosen from the label when the data is prepared
TASKS: dict[str, type[Task]] = {
    "classification": Classification,
    "binary": Binary,
    "regression": Regression,
    "multilabel": Multilabel,
}


def is_auto(cfg: Any) -> bool:
    return cfg is None or cfg.get("_target_") == AUTO


def infer(kind: str) -> dict[str, Any]:
    """The task config ``task=auto`` picks for a label of Spark SQL type ``kind``."""
    if kind.startswith("array<"):
        cls: type[Task] = Multilabel
    elif kind in ("float", "double") or kind.startswith("decimal"):
        cls = Regression
    else:
        cls = Classification
    return {"_target_": f"runner.tasks.{cls.__name__}"}


def task_for(cfg: Any) -> Task:
    """The task a ``task`` config (node or plain dict) names.

    Raises:
        RunnerError: naming ``task._target_`` when it does not build a :class:`Task`.
    """
    from hydra.utils import instantiate

    if is_auto(cfg):
        raise RunnerError(
            "task: auto is chosen when the data is prepared; pass the prepared "
            "data's task (PreparedDataset.task)"
        )
    try:
        task = instantiate(cfg)
    except RunnerError:
        raise
    except Exception as err:
        cause = err.__cause__ if isinstance(err.__cause__, RunnerError) else None
        if cause is not None:
            raise cause from None
        raise RunnerError(
            f"task._target_: cannot build {cfg.get('_target_')!r} "
            f"({first_line(err)}); name a Task class, e.g. "
            "runner.tasks.Classification"
        ) from None
    if not isinstance(task, Task):
        raise RunnerError(f"task._target_: {cfg.get('_target_')!r} is not a runner.tasks.Task")
    return task


def all_directions(cfg: Any) -> dict[str, str]:
    """Each metric a ``task`` config's trials may report (``val_``-prefixed) and ``train_loss``,
    with its direction; for ``task=auto``, those of every task in ``TASKS``."""
    tasks: list[Mapping[str, str]] = (
        [cls.directions for cls in TASKS.values()] if is_auto(cfg) else [task_for(cfg).directions]
    )
    out = {"train_loss": "minimize"}
    for directions in tasks:
        out.update({f"val_{k}": d for k, d in directions.items()})
    return out
