"""Tables: ``data.steps`` and ``data.scaling`` fitted as one ``pyspark.ml`` PipelineModel."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from runner.data import steps
from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame, SparkSession

    from runner.data.prepared import PreparedDataset
    from runner.data.sources import RawData


@dataclass(frozen=True)
class FittedNumeric:
    """The fitted PipelineModel and what it learnt about the label."""

    model: "PipelineModel"
    label: str
    label_type: str
    task: dict[str, Any]
    features: list[str]
    input_shape: list[int]  # data.image_shape, or the features' width
    categories: list[int]  # per categorical column (the features' last values): its indices

    def transform(self, df: "DataFrame") -> "DataFrame":
        rows = steps.run_stages(self.model, steps.to_input(df), self.label).df
        carried = [steps.KEPT] if steps.KEPT in df.columns else []
        return steps.to_output(rows, self.task, self.label, carried)

    def scoring(self, df: "DataFrame") -> steps.Scored:
        scored = steps.run_stages(self.model, steps.to_input(df), self.label, scoring=True)
        carried = [steps.KEPT, *scored.unseen.values()]
        return replace(scored, df=steps.to_output(scored.df, self.task, self.label, carried))

    def save(self, entry: "PreparedDataset") -> None:
        self.model.write().save(entry.transform_uri)

    def describe(self) -> dict[str, Any]:
        told = {"model_kwargs": {"categories": self.categories}} if self.categories else {}
        return {"input_shape": self.input_shape, **told}


class NumericPreparation:
    """Numeric columns (or a ``features`` array) through ``data.steps``, assembled and scaled."""

    def validate(self, cfg: Any) -> list[str]:
        problems = steps.validate(cfg.steps)
        if cfg.scaling not in ("standard", "minmax", "none"):
            problems.append(f"data.scaling: {cfg.scaling!r} is not one of standard, minmax, none")
        return problems

    def rows(self, raw: "RawData", cfg: Any) -> "DataFrame":
        return raw.df

    def fit(
        self, spark: "SparkSession", cfg: Any, df: "DataFrame", raw: "RawData", task: dict[str, Any]
    ) -> FittedNumeric:
        from pyspark.sql import functions as F

        train = df.where(F.col("split") == "train").drop("split")
        fitted = steps.fit(cfg.steps, cfg.scaling, train, raw.label, raw.features, task)
        shape = list(cfg.get("image_shape") or [fitted.width])
        if math.prod(shape) != fitted.width:
            raise RunnerError(
                f"data.image_shape: {shape} holds {math.prod(shape)} values but "
                f"rows have {fitted.width} features"
            )
        return FittedNumeric(
            fitted.model,
            fitted.label,
            fitted.label_type,
            fitted.task,
            fitted.features,
            shape,
            fitted.categories,
        )

    def load(self, entry: "PreparedDataset") -> FittedNumeric:
        from pyspark.ml import PipelineModel

        label = entry.meta["label"]
        return FittedNumeric(
            PipelineModel.load(entry.transform_uri),
            label["column"],
            label["type"],
            entry.task,
            entry.meta.get("features", []),
            list(entry.input_shape),
            entry.model_kwargs.get("categories", []),
        )
