"""``Classification``: one of K classes, from logits (``conf/task/classification.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.tasks._base import Task, TaskConfig

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import torch


@dataclass
class ClassificationConfig(TaskConfig):
    """Integer labels 0..K-1; the model is told ``num_classes`` and returns K logits."""

    _target_: str = "runner.tasks.Classification"


class Classification(Task):
    """Cross-entropy and accuracy; predicts the argmax class and the softmax probabilities.

    With string labels (``named``): ``prediction`` is the class name, ``prediction_index``
    its index and ``probability`` a struct with one field per class name. A struct rather
    than a map or a column per class: its fields are typed and listed by ``printSchema``,
    ``probability.high`` (or ``probability['high']``) reads one in Spark SQL, ``probability.*``
    expands it into one column per class when wanted, and Parquet stores each field as its
    own column (a map repeats every key in every row and cannot prune one class).
    Integer labels keep ``prediction`` (the class) and ``probability`` (a list, by class).
    """

    directions = {"accuracy": "maximize", "loss": "minimize"}

    def loss(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        return F.cross_entropy(outputs, labels)

    def sums(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """Summed loss, correct predictions, rows."""
        import torch
        import torch.nn.functional as F

        return torch.stack([
            F.cross_entropy(outputs, labels, reduction="sum").double(),
            (outputs.argmax(1) == labels).sum().double(),
            torch.tensor(len(labels), dtype=torch.float64, device=outputs.device),
        ])

    def metrics(self, sums: Any) -> dict[str, float]:
        loss, correct, rows = (float(s) for s in sums)
        return {"accuracy": correct / rows, "loss": loss / rows}

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
            return pa.schema([("prediction", pa.int32()),
                              ("probability", pa.list_(pa.float32()))])
        return pa.schema([("prediction", pa.string()), ("prediction_index", pa.int32()),
                          ("probability", pa.struct([(c, pa.float32()) for c in self.classes]))])

    def model_kwargs(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {"num_classes": int(meta["num_classes"])}
