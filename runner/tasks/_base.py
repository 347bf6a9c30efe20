"""The ``Task`` a model learns: its loss, metrics, predictions and what the model is told."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import MISSING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import torch


@dataclass
class TaskConfig:
    """A task by ``_target_`` (a :class:`Task` class) and its keyword arguments."""

    _target_: str = MISSING


class Task(ABC):
    """What a model learns, for the training engine (``runner.train.engine``) and inference.

    ``directions`` names every metric ``metrics`` returns, ``loss`` among them, and
    whether it is maximized or minimized; the first is the task's headline metric.
    """

    directions: ClassVar[dict[str, str]]
    # The classes by name (string labels, in index order); None: the indices are the names.
    classes: "Sequence[str] | None" = None

    def named(self, classes: "Sequence[str] | None") -> "Task":
        """This task predicting for a run whose labels were ``classes`` (strings, in index
        order; None for integer labels): ``predict``/``output_schema`` may then name them."""
        import copy

        task = copy.copy(self)
        task.classes = list(classes) if classes is not None else None
        return task

    @abstractmethod
    def loss(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """A batch's mean loss, the one minimized."""

    @abstractmethod
    def sums(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """A batch's share of the metrics: a float64 vector, summed over batches and ranks."""

    @abstractmethod
    def metrics(self, sums: Any) -> dict[str, float]:
        """Every metric of ``directions`` from the total of ``sums`` (a vector with rows)."""

    @abstractmethod
    def predict(self, outputs: "torch.Tensor") -> dict[str, "np.ndarray"]:
        """The output columns of ``output_schema`` for a batch: a value or (2-D) a list per row."""

    @property
    @abstractmethod
    def output_schema(self) -> "pa.Schema":
        """The Arrow types of ``predict``'s columns."""

    @abstractmethod
    def model_kwargs(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """What the model is told besides ``input_shape``, from the prepared data's
        ``meta.json``."""
