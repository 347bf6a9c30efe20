"""Preparations: how one modality's source rows become the prepared layout.

A source names its preparation (``Source.preparation``, default :data:`NUMERIC`); the
preprocess stage runs every preparation the same way: ``rows`` (stateless, before the
split: decoding), ``fit`` on the train split, then the fitted preparation's ``transform``
on each split and ``save`` into the entry; ``apply_transform`` reloads it by the class
path kept in ``meta.json``. One module per modality: ``numeric`` (``data.steps`` fitted
with ``pyspark.ml``), ``image`` (Pillow in ``mapInArrow``), ``text`` (a ``tokenizers``
tokenizer trained on train).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from runner.data.prepared import PreparedDataset
    from runner.data.sources import RawData
    from runner.data.steps import Scored

NUMERIC = "runner.data.preparations.numeric.NumericPreparation"


class FittedPreparation(Protocol):
    """A preparation fitted on the train split: turns source rows into prepared rows."""

    label: str  # the source's label column
    label_type: str  # its Spark SQL type
    labels: Optional[list[str]]  # string labels in index order; None: integer labels
    features: list[str]  # the source columns the features come from

    def transform(self, df: "DataFrame") -> "DataFrame":
        """Rows (after ``rows``) -> ``id`` long, ``label`` long, ``features`` [, ``path``]."""

    def scoring(self, df: "DataFrame") -> "Scored":
        """New rows (after ``rows``, with a ``steps.KEPT`` column) as scoring runs them:
        the prepared layout with ``KEPT`` carried along, training-only row conditions left
        out, unseen category flags added."""

    def save(self, entry: "PreparedDataset") -> None:
        """Write what ``Preparation.load`` needs under the entry's ``transform/``."""

    def describe(self) -> dict[str, Any]:
        """``meta.json`` keys: ``input`` (see ``prepared.model_input``), ``input_shape``
        (absent: the features' width, or ``data.image_shape``) and any of its own."""


class Preparation(Protocol):
    """One modality's preparation; ``cfg`` is the ``data`` config node."""

    def validate(self, cfg: Any) -> list[str]:
        """Problems found without Spark, each naming its key."""

    def rows(self, raw: "RawData", cfg: Any) -> "DataFrame":
        """The source's rows made ready to split and fit (stateless per row)."""

    def fit(self, spark: "SparkSession", cfg: Any, df: "DataFrame",
            raw: "RawData") -> FittedPreparation:
        """Fit on the train split of ``df`` (the rows as ``rows`` gave them, with ``split``)."""

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


def label_index(label: str, labels: Optional[list[str]]):
    """A Spark column: the class index of ``label`` (string labels in ``labels`` order;
    null when unseen) or the integer label itself."""
    from pyspark.sql import functions as F

    if labels is None:
        return F.col(label).cast("long")
    position = F.array_position(F.array(*(F.lit(v) for v in labels)), F.col(label).cast("string"))
    return F.when(position > 0, position - 1).cast("long")


def fit_labels(train: "DataFrame", label: str) -> tuple[str, Optional[list[str]]]:
    """The label's Spark type and, for string labels, the sorted classes seen in train."""
    from runner.errors import RunnerError

    kind = dict(train.dtypes)[label]
    if kind == "string":
        values = sorted(r[0] for r in train.select(label).distinct().collect() if r[0] is not None)
        return kind, values
    if kind not in ("tinyint", "smallint", "int", "bigint"):
        raise RunnerError(f"data.label: column {label!r} is {kind}; labels must be integer "
                          "classes or strings")
    return kind, None
