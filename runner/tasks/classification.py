"""``Classification``: one of K classes, from logits (``conf/task/classification.yaml``)."""

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

LABEL_INDEX = "_label"  # a string label's index column
INTEGRAL = ("tinyint", "smallint", "int", "bigint")


@dataclass
class ClassificationConfig(TaskConfig):
    """Integer labels 0..K-1 or strings (indexed in alphabetical order); the model is told
    ``num_classes`` and returns K logits. ``classes``: learnt from the train split."""

    _target_: str = "runner.tasks.Classification"
    classes: Optional[list[str]] = None
    weight: Optional[list[float]] = None  # per-class loss weights; train.class_weight sets them


def string_classes(train: "DataFrame", label: str) -> tuple["Transformer", list[str]]:
    """A string label's classes in the train split, alphabetical, and the fitted indexer that
    writes their index to ``LABEL_INDEX`` (a value not among them: index = len(classes))."""
    from pyspark.ml.feature import StringIndexer

    fitted = StringIndexer(
        inputCol=label, outputCol=LABEL_INDEX, handleInvalid="keep", stringOrderType="alphabetAsc"
    ).fit(train.where(train[label].isNotNull()))
    return fitted, list(fitted.labelsArray[0])


def class_counts(counts: Mapping[Any, tuple[int, int]], classes: int) -> list[int]:
    """Rows of each class 0..classes-1 in the train split (of ``Task.describe_label``'s
    counts)."""
    return [counts.get(k, (0, 0))[1] for k in range(classes)]


class Classification(Task):
    """Cross-entropy; accuracy, balanced accuracy, macro F1 and log loss from a confusion
    matrix; predicts the argmax class and the softmax probabilities.

    With string labels (``named``): ``prediction`` is the class name, ``prediction_index``
    its index and ``probability`` a struct with one field per class name. A struct rather
    than a map or a column per class: its fields are typed and listed by ``printSchema``,
    ``probability.high`` (or ``probability['high']``) reads one in Spark SQL, ``probability.*``
    expands it into one column per class when wanted, and Parquet stores each field as its
    own column (a map repeats every key in every row and cannot prune one class).
    Integer labels keep ``prediction`` (the class) and ``probability`` (a list, by class).
    """

    counts_labels = True
    directions = {
        "accuracy": "maximize",
        "balanced_accuracy": "maximize",
        "f1_macro": "maximize",
        "log_loss": "minimize",
        "loss": "minimize",
    }

    def __init__(
        self, classes: Optional[list[str]] = None, weight: Optional[list[float]] = None
    ) -> None:
        self.classes = list(classes) if classes is not None else None
        self.weight = list(weight) if weight is not None else None

    def fit_label(
        self, train: "DataFrame", label: str, kind: str
    ) -> tuple[list["Transformer"], dict[str, Any]]:
        if kind == "string":
            fitted, classes = string_classes(train, label)
            return [fitted], {"classes": classes}
        if kind not in INTEGRAL:
            raise kind_error(
                label,
                kind,
                "classification",
                "integer classes or strings (a float target: task=regression)",
            )
        return [], {}

    def label_column(self, df: "DataFrame", label: str) -> "Column":
        from pyspark.sql import functions as F

        if self.classes is not None:
            index = F.col(LABEL_INDEX) if LABEL_INDEX in df.columns else F.lit(None)
            return F.when(index < len(self.classes), index).cast("long")
        return F.col(label).cast("long")

    def describe_label(self, counts: Mapping[Any, tuple[int, int]]) -> dict[str, Any]:
        if counts and min(counts) < 0:
            raise RunnerError(
                f"data.label: integer labels must be class indices 0..K-1, found {min(counts)}"
            )
        count = len(self.classes) if self.classes is not None else max(counts, default=0) + 1
        return {"num_classes": count, "class_counts": class_counts(counts, count)}

    def balanced(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """scikit-learn's ``balanced``: rows / (classes * rows of the class)."""
        counts = meta["class_counts"]
        rows = sum(counts)
        return {"weight": [rows / (len(counts) * c) if c else 0.0 for c in counts]}

    def loss(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        return F.cross_entropy(outputs, labels, weight=self._weight(outputs))

    def sums(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """Summed (weighted) loss, summed log loss, rows, then the confusion matrix."""
        import torch
        import torch.nn.functional as F

        outputs = outputs.float()
        log_p = F.log_softmax(outputs, dim=1)  # cross_entropy's, computed once
        log_loss = F.nll_loss(log_p, labels, reduction="sum")
        loss = (
            log_loss
            if self.weight is None
            else F.nll_loss(log_p, labels, weight=self._weight(outputs), reduction="sum")
        )
        head = torch.stack(
            [
                loss.double(),
                log_loss.double(),
                torch.tensor(len(labels), dtype=torch.float64, device=outputs.device),
            ]
        )
        matrix = _metrics.confusion(outputs.argmax(1), labels, outputs.shape[1])
        return torch.cat([head, matrix.flatten()])

    def metrics(self, sums: Any) -> dict[str, float]:
        import numpy as np
        import torch

        sums = torch.as_tensor(sums, dtype=torch.float64).cpu().numpy()
        loss, log_loss, rows = (float(s) for s in sums[:3])
        classes = int(round((len(sums) - 3) ** 0.5))
        matrix = sums[3:].reshape(classes, classes)
        scores = _metrics.from_confusion(matrix)
        weighted_rows = rows
        if self.weight is not None:  # a weighted mean, as cross_entropy takes it
            weighted_rows = float(matrix.sum(1) @ np.asarray(self.weight, dtype=np.float64))
        return {
            **scores,
            "log_loss": log_loss / rows if rows else 0.0,
            "loss": loss / weighted_rows if weighted_rows else 0.0,
        }

    def predict(self, outputs: "torch.Tensor") -> dict[str, "np.ndarray"]:
        import numpy as np
        import torch

        probability = torch.softmax(outputs.float(), dim=1).cpu().numpy()
        index = probability.argmax(1).astype(np.int32)
        if self.classes is None:
            return {"prediction": index, "probability": probability}
        names = np.asarray(self.classes, dtype=object)
        return {"prediction": names[index], "prediction_index": index, "probability": probability}

    @property
    def output_schema(self) -> "pa.Schema":
        import pyarrow as pa

        if self.classes is None:
            return pa.schema([("prediction", pa.int32()), ("probability", pa.list_(pa.float32()))])
        return pa.schema(
            [
                ("prediction", pa.string()),
                ("prediction_index", pa.int32()),
                ("probability", pa.struct([(c, pa.float32()) for c in self.classes])),
            ]
        )

    def model_kwargs(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {"num_classes": int(meta["num_classes"])}

    def _weight(self, outputs: "torch.Tensor") -> "torch.Tensor | None":
        import torch

        if self.weight is None:
            return None
        return torch.tensor(self.weight, dtype=outputs.dtype, device=outputs.device)
