"""``Binary``: yes or no from one logit (``conf/task/binary.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from runner.errors import RunnerError
from runner.tasks import _metrics
from runner.tasks._base import Task, TaskConfig, kind_error
from runner.tasks.classification import (
    INTEGRAL,
    LABEL_INDEX,
    class_counts,
    string_classes,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import torch
    from pyspark.ml import Transformer
    from pyspark.sql import Column, DataFrame


@dataclass
class BinaryConfig(TaskConfig):
    """Labels 0/1 (integers or booleans) or two strings (the second in alphabetical order is
    positive). ``pos_weight`` weighs positive rows in the loss (``BCEWithLogitsLoss``);
    ``threshold`` turns the probability into the predicted class."""

    _target_: str = "runner.tasks.Binary"
    pos_weight: Optional[float] = None
    threshold: float = 0.5
    classes: Optional[list[str]] = None  # learnt from the train split: a string label's two values


class Binary(Task):
    """``BCEWithLogitsLoss`` on one logit; accuracy, balanced accuracy, F1 (at 0.5), AUROC,
    average precision and log loss; predicts the class and the positive probability."""

    counts_labels = True
    directions = {
        "auroc": "maximize",
        "accuracy": "maximize",
        "balanced_accuracy": "maximize",
        "f1": "maximize",
        "average_precision": "maximize",
        "log_loss": "minimize",
        "loss": "minimize",
    }

    def __init__(
        self,
        pos_weight: Optional[float] = None,
        threshold: float = 0.5,
        classes: Optional[list[str]] = None,
    ) -> None:
        self.pos_weight = pos_weight
        self.threshold = threshold
        self.classes = list(classes) if classes is not None else None

    def fit_label(
        self, train: "DataFrame", label: str, kind: str
    ) -> tuple[list["Transformer"], dict[str, Any]]:
        if kind == "string":
            fitted, classes = string_classes(train, label)
            if len(classes) != 2:
                raise RunnerError(
                    f"data.label: task=binary needs two values, column {label!r} "
                    f"has {len(classes)} in the train split; use "
                    "task=classification"
                )
            return [fitted], {"classes": classes}
        if kind not in (*INTEGRAL, "boolean"):
            raise kind_error(label, kind, "binary", "0/1, booleans or two strings")
        return [], {}

    def label_column(self, df: "DataFrame", label: str) -> "Column":
        from pyspark.sql import functions as F

        if self.classes is not None:
            index = F.col(LABEL_INDEX) if LABEL_INDEX in df.columns else F.lit(None)
            return F.when(index < 2, index).cast("float")
        return F.col(label).cast("int").cast("float")

    def describe_label(self, counts: Mapping[Any, tuple[int, int]]) -> dict[str, Any]:
        bad = sum(n for label, (n, _) in counts.items() if label not in (0, 1))
        if bad:
            raise RunnerError(
                f"data.label: task=binary needs labels 0 and 1; {bad} rows have "
                "other values (task=classification takes K classes)"
            )
        return {"class_counts": class_counts(counts, 2)}

    def balanced(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """``pos_weight``: negative rows per positive row of the train split."""
        negatives, positives = meta["class_counts"]
        return {"pos_weight": negatives / positives if positives else 1.0}

    def loss(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(
            outputs.reshape(-1), labels.to(outputs.dtype), pos_weight=self._pos_weight(outputs)
        )

    def sums(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """Summed (weighted) loss, summed log loss, rows, then the binned state."""
        import torch
        import torch.nn.functional as F

        logits, target = outputs.float().reshape(-1), labels.float()
        head = torch.stack(
            [
                F.binary_cross_entropy_with_logits(
                    logits, target, reduction="sum", pos_weight=self._pos_weight(logits)
                ).double(),
                F.binary_cross_entropy_with_logits(logits, target, reduction="sum").double(),
                torch.tensor(len(target), dtype=torch.float64, device=logits.device),
            ]
        )
        state = _metrics.binned_state(torch.sigmoid(logits), target)
        return torch.cat([head, state.flatten()])

    def metrics(self, sums: Any) -> dict[str, float]:
        import torch

        sums = torch.as_tensor(sums, dtype=torch.float64)
        loss, log_loss, rows = (float(s) for s in sums[:3])
        state = sums[3:]
        scores = {**_metrics.at_half(state), **_metrics.ranking(state)}
        return {k: (scores[k] if k in scores else 0.0) for k in self.directions} | {
            "log_loss": log_loss / rows if rows else 0.0,
            "loss": loss / rows if rows else 0.0,
        }

    def predict(self, outputs: "torch.Tensor") -> dict[str, "np.ndarray"]:
        import numpy as np
        import torch

        probability = torch.sigmoid(outputs.float().reshape(-1)).cpu().numpy()
        return {
            "prediction": (probability >= self.threshold).astype(np.int32),
            "probability": probability.astype(np.float32),
        }

    @property
    def output_schema(self) -> "pa.Schema":
        import pyarrow as pa

        return pa.schema([("prediction", pa.int32()), ("probability", pa.float32())])

    def model_kwargs(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {"num_classes": 1}

    def _pos_weight(self, outputs: "torch.Tensor") -> "torch.Tensor | None":
        import torch

        if self.pos_weight is None:
            return None
        return torch.tensor(self.pos_weight, dtype=outputs.dtype, device=outputs.device)
