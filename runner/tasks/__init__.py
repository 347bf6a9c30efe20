"""Tasks: what a model learns (loss, metrics, predictions), by ``_target_`` from ``conf/task/``.

Each public module here is one task: its schema (a ``TaskConfig`` subclass, stored as
``base_<module>`` in group ``task``) and the :class:`Task` its ``_target_`` names.
"""

from __future__ import annotations

from typing import Any

from runner.errors import RunnerError, first_line
from runner.tasks._base import Task, TaskConfig
from runner.tasks.classification import Classification, ClassificationConfig

__all__ = ["Classification", "ClassificationConfig", "Task", "TaskConfig", "task_for"]


def task_for(cfg: Any) -> Task:
    """The task a ``task`` config (node or plain dict) names.

    Raises:
        RunnerError: naming ``task._target_`` when it does not build a :class:`Task`.
    """
    from hydra.utils import instantiate

    try:
        task = instantiate(cfg)
    except Exception as err:
        raise RunnerError(f"task._target_: cannot build {cfg.get('_target_')!r} "
                          f"({first_line(err)}); name a Task class, e.g. "
                          "runner.tasks.Classification") from None
    if not isinstance(task, Task):
        raise RunnerError(f"task._target_: {cfg.get('_target_')!r} is not a runner.tasks.Task")
    return task
