"""Preparations: how one modality's source rows become the prepared layout.

A source names its preparation (``Source.preparation``, default :data:`NUMERIC`); the
preprocess stage runs every preparation the same way: ``rows`` (stateless, before the
split: decoding), ``fit`` on the train split, then the fitted preparation's ``transform``
on each split and ``save`` into the entry; ``apply_transform`` reloads it by the class
path kept in ``meta.json``. One module per modality: ``numeric`` (``data.steps`` fitted
with ``pyspark.ml``), ``image`` (Pillow in ``mapInArrow``), ``text`` (a ``tokenizers``
tokenizer trained on train). The label is the task's (``runner.tasks``): its fitted
stages run inside the numeric PipelineModel, or apart (:class:`FittedLabel`) for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import Column, DataFrame, SparkSession

    from runner.data.prepared import PreparedDataset
    from runner.data.sources import RawData
    from runner.data.steps import Scored

NUMERIC = "runner.data.preparations.numeric.NumericPreparation"
_LABEL_STAGES = "label"  # under the entry's transform/: a FittedLabel's PipelineModel


class FittedPreparation(Protocol):
    """A preparation fitted on the train split: turns source rows into prepared rows."""

    @property
    def label(self) -> str:
        """The source's label column."""

    @property
    def label_type(self) -> str:
        """Its Spark SQL type."""

    @property
    def task(self) -> dict[str, Any]:
        """The task config with what it learnt from the labels (``runner.tasks``)."""

    @property
    def features(self) -> "Sequence[str]":
        """The source columns the features come from."""

    def transform(self, df: "DataFrame") -> "DataFrame":
        """Rows (after ``rows``) -> ``id`` long, ``label`` (the task's), ``features``
        [, ``path``], and a ``steps.KEPT`` column of ``df`` carried along."""

    def scoring(self, df: "DataFrame") -> "Scored":
        """New rows (after ``rows``, with a ``steps.KEPT`` column) as scoring runs them:
        the prepared layout with ``KEPT`` carried along, training-only row conditions left
        out, unseen category flags added."""

    def save(self, entry: "PreparedDataset") -> None:
        """Write what ``Preparation.load`` needs under the entry's ``transform/``."""

    def describe(self) -> dict[str, Any]:
        """``meta.json`` keys: ``input_shape`` (a row's features as the model reads them),
        ``input`` (see ``prepared.model_input``), ``model_kwargs`` (what the model is told
        of the features, e.g. ``categories``) and any of its own."""


class Preparation(Protocol):
    """One modality's preparation; ``cfg`` is the ``data`` config node."""

    def validate(self, cfg: Any) -> list[str]:
        """Problems found without Spark, each naming its key."""

    def rows(self, raw: "RawData", cfg: Any) -> "DataFrame":
        """The source's rows made ready to split and fit (stateless per row)."""

    def fit(
        self, spark: "SparkSession", cfg: Any, df: "DataFrame", raw: "RawData", task: dict[str, Any]
    ) -> FittedPreparation:
        """Fit on the train split of ``df`` (the rows as ``rows`` gave them, with ``split``),
        the label as ``task`` (a resolved task config) prepares it."""

    def load(self, entry: "PreparedDataset") -> FittedPreparation:
        """The fitted preparation saved in ``entry``."""


def preparation_path(source: Any) -> str:
    """The class path of the preparation a source names (``preparation``), numeric by default."""
    return str(getattr(source, "preparation", NUMERIC))


def preparation_of(source: Any) -> Preparation:
    """The preparation a source names."""
    return preparation_named(preparation_path(source))


def preparation_named(path: str) -> Preparation:
    from hydra.utils import get_class

    return get_class(path)()


@dataclass(frozen=True)
class FittedLabel:
    """The task's label stages (``Task.fit_label``) fitted on the train split, for a
    preparation that keeps them apart from its features (images, text)."""

    column: str  # the source's label column
    kind: str  # its Spark SQL type
    task: dict[str, Any]  # the task config with what it learnt (e.g. classes)
    model: "PipelineModel"

    def prepared(self, df: "DataFrame") -> tuple["DataFrame", "Column"]:
        """``df`` through the label stages, and the prepared ``label`` column of it."""
        from runner.tasks import task_for

        out = self.model.transform(df)
        return out, task_for(self.task).label_column(out, self.column).alias("label")

    def save(self, entry: "PreparedDataset") -> None:
        self.model.write().save(f"{entry.transform_uri}/{_LABEL_STAGES}")


class LabelledApart:
    """A fitted preparation whose label is a :class:`FittedLabel` (``labels``)."""

    labels: FittedLabel

    @property
    def label(self) -> str:
        return self.labels.column

    @property
    def label_type(self) -> str:
        return self.labels.kind

    @property
    def task(self) -> dict[str, Any]:
        return self.labels.task


def fit_label(train: "DataFrame", column: str, task: dict[str, Any]) -> FittedLabel:
    """``task``'s label stages for ``column``, fitted on ``train``."""
    from pyspark.ml import PipelineModel

    from runner.tasks import task_for

    kind = dict(train.dtypes)[column]
    stages, learnt = task_for(task).fit_label(train, column, kind)
    return FittedLabel(column, kind, {**task, **learnt}, PipelineModel(stages=stages))


def load_label(entry: "PreparedDataset") -> FittedLabel:
    """The label stages saved in ``entry`` by :meth:`FittedLabel.save`."""
    from pyspark.ml import PipelineModel

    label = entry.meta["label"]
    return FittedLabel(
        label["column"],
        label["type"],
        entry.task,
        PipelineModel.load(f"{entry.transform_uri}/{_LABEL_STAGES}"),
    )
