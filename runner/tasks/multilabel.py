"""``Multilabel``: any set of tags per row (``conf/task/multilabel.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from runner.errors import RunnerError
from runner.tasks import _metrics
from runner.tasks._base import Task, TaskConfig, kind_error

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import torch
    from pyspark.ml import Transformer
    from pyspark.sql import Column, DataFrame


@dataclass
class MultilabelConfig(TaskConfig):
    """Tags per row: an array column, or a string of tags joined by ``delimiter``. They become
    a multi-hot vector over ``tags`` (learnt from the train split, in alphabetical order);
    tags unseen in training are dropped."""

    _target_: str = "runner.tasks.Multilabel"
    delimiter: str = ","
    threshold: float = 0.5
    tags: Optional[list[str]] = None


class Multilabel(Task):
    """``BCEWithLogitsLoss`` over one logit per tag; macro F1 and macro AUROC over tags and
    the per-tag (Hamming) accuracy; predicts the tags above ``threshold`` and their
    probabilities."""

    directions = {
        "f1_macro": "maximize",
        "auroc_macro": "maximize",
        "accuracy": "maximize",
        "loss": "minimize",
    }
    stratify = False

    def __init__(
        self, delimiter: str = ",", threshold: float = 0.5, tags: Optional[list[str]] = None
    ) -> None:
        self.delimiter, self.threshold = delimiter, threshold
        self.tags = list(tags) if tags is not None else None

    def fit_label(
        self, train: "DataFrame", label: str, kind: str
    ) -> tuple[list["Transformer"], dict[str, Any]]:
        from pyspark.sql import functions as F

        if kind != "string" and not kind.startswith("array<"):
            raise kind_error(label, kind, "multilabel", "an array of tags or a delimited string")
        rows = train.select(F.explode(self._tags(label, kind)).alias("t")).where("t != ''")
        tags = sorted(r["t"] for r in rows.distinct().collect())
        if not tags:
            raise RunnerError(f"data.label: column {label!r} has no tags in the train split")
        return [], {"tags": tags}

    def label_column(self, df: "DataFrame", label: str) -> "Column":
        from pyspark.sql import functions as F

        assert self.tags is not None, "label_column needs the fitted tags"
        kind = dict(df.dtypes).get(label, "string")
        have = self._tags(label, kind)
        hot = F.array(
            *(
                F.when(F.array_contains(have, t), 1.0).otherwise(0.0).cast("float")
                for t in self.tags
            )
        )
        return F.when(F.col(label).isNotNull(), hot)

    def loss(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(outputs, labels.to(outputs.dtype))

    def sums(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """Summed loss (over rows and tags), rows, then each tag's binned state."""
        import torch
        import torch.nn.functional as F

        logits, target = outputs.float(), labels.float()
        head = torch.stack(
            [
                F.binary_cross_entropy_with_logits(logits, target, reduction="sum").double(),
                torch.tensor(len(target), dtype=torch.float64, device=logits.device),
            ]
        )
        probability = torch.sigmoid(logits)
        states = [
            _metrics.binned_state(probability[:, i], target[:, i]) for i in range(logits.shape[1])
        ]
        return torch.cat([head, *(s.flatten() for s in states)])

    def metrics(self, sums: Any) -> dict[str, float]:
        import math

        import torch

        sums = torch.as_tensor(sums, dtype=torch.float64)
        loss, rows = float(sums[0]), float(sums[1])
        states = sums[2:].reshape(-1, _metrics.N_THRESHOLDS * 4)
        half = [_metrics.at_half(s) for s in states]
        aurocs = [a for a in (_metrics.ranking(s)["auroc"] for s in states) if not math.isnan(a)]
        n = max(len(half), 1)
        return {
            "f1_macro": sum(h["f1"] for h in half) / n,
            "auroc_macro": sum(aurocs) / len(aurocs) if aurocs else float("nan"),
            "accuracy": sum(h["accuracy"] for h in half) / n,
            "loss": loss / (rows * n) if rows else 0.0,
        }

    def predict(self, outputs: "torch.Tensor") -> dict[str, "np.ndarray"]:
        import numpy as np
        import torch

        probability = torch.sigmoid(outputs.float()).cpu().numpy().astype(np.float32)
        return {
            "prediction": (probability >= self.threshold).astype(np.int32),
            "probability": probability,
        }

    @property
    def output_schema(self) -> "pa.Schema":
        import pyarrow as pa

        return pa.schema(
            [("prediction", pa.list_(pa.int32())), ("probability", pa.list_(pa.float32()))]
        )

    def model_kwargs(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        assert self.tags is not None, "model_kwargs needs the fitted tags"
        return {"num_classes": len(self.tags)}

    def _tags(self, label: str, kind: str) -> "Column":
        """The label as an array of tag strings."""
        import re

        from pyspark.sql import functions as F

        if kind.startswith("array<"):
            return F.transform(F.col(label), lambda t: F.trim(t.cast("string")))
        return F.transform(F.split(F.col(label), re.escape(self.delimiter)), F.trim)
