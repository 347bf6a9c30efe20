"""The ``Task`` a model learns: its label, loss, metrics, predictions and what the model is told."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import MISSING

from runner.errors import RunnerError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import torch
    from pyspark.ml import Transformer
    from pyspark.sql import Column, DataFrame


def gain(direction: str) -> float:
    """+1 when a higher value of the metric is better (``maximize``), -1 when lower is."""
    return 1.0 if direction == "maximize" else -1.0


@dataclass
class TaskConfig:
    """A task by ``_target_`` (a :class:`Task` class) and its keyword arguments.

    ``_target_: auto`` (``task=auto``, the default) picks the task from the label's type
    when the data is prepared: floats -> regression, arrays -> multilabel, integers and
    strings -> classification.
    """

    _target_: str = MISSING


class Task(ABC):
    """What a model learns, for preprocessing (``runner.data``), the training engine
    (``runner.train.engine``) and inference.

    ``directions`` names every metric ``metrics`` returns, ``loss`` among them, and
    whether it is maximized or minimized; the first is the task's headline metric.
    What a task learns from the train split's labels (string classes, the label's mean
    and standard deviation, the tags) comes back from ``fit_label`` as constructor
    arguments; the prepared data keeps the task config with them (``meta.json``'s ``task``).
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

    stratify: ClassVar[bool] = True  # split each label value in proportion (discrete labels)

    # -- the label, in Spark (preprocessing) --------------------------------------------
    @abstractmethod
    def fit_label(
        self, train: "DataFrame", label: str, kind: str
    ) -> tuple[list["Transformer"], dict[str, Any]]:
        """``pyspark.ml`` stages for the label column (of Spark SQL type ``kind``), fitted on
        ``train``, and what the task learnt (its constructor's keyword arguments).

        Raises:
            RunnerError: naming ``data.label`` when the task cannot learn from such a label.
        """

    @abstractmethod
    def label_column(self, df: "DataFrame", label: str) -> "Column":
        """The prepared ``label`` column (null where unknown) of transformed rows."""

    # describe_label reads each label value's rows (the prepared rows' writer counts them)
    counts_labels: ClassVar[bool] = False

    def describe_label(self, counts: Mapping[Any, tuple[int, int]]) -> dict[str, Any]:
        """Checks of the prepared rows' labels and what ``meta.json`` says of them, from
        ``counts``: each label value -> (its rows, its rows in the train split); empty
        unless ``counts_labels``."""
        return {}

    # -- training and evaluation ----------------------------------------------------------
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

    def balanced(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """``train.class_weight=balanced``: constructor arguments weighing the loss by the
        train split's label counts (``meta.json``'s ``class_counts``); nothing for a task
        without classes."""
        return {}


def kind_error(label: str, kind: str, task: str, wants: str) -> RunnerError:
    """The one-line error for a label a task cannot learn from."""
    return RunnerError(
        f"data.label: column {label!r} is {kind}; task={task} needs {wants}; "
        "choose another task= or convert the column in data.steps"
    )
