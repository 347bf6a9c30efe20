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
    """Cross-entropy and accuracy; predicts the argmax class and the softmax probabilities."""

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
        return {"prediction": probability.argmax(1).astype(np.int32), "probability": probability}

    @property
    def output_schema(self) -> "pa.Schema":
        import pyarrow as pa

        return pa.schema([("prediction", pa.int32()), ("probability", pa.list_(pa.float32()))])

    def model_kwargs(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {"num_classes": int(meta["num_classes"])}
