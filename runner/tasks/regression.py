"""``Regression``: a number, learnt standardised (``conf/task/regression.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.errors import RunnerError
from runner.tasks._base import Task, TaskConfig, kind_error

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import torch
    from pyspark.ml import Transformer
    from pyspark.sql import Column, DataFrame

NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")
LOSSES = ("mse", "huber", "l1")


@dataclass
class RegressionConfig(TaskConfig):
    """A numeric label. The model learns it standardised with the train split's ``mean`` and
    ``std`` (learnt when the data is prepared); predictions and metrics are in the label's
    own units. ``loss``: mse | huber | l1."""

    _target_: str = "runner.tasks.Regression"
    loss: str = "mse"
    mean: float = 0.0
    std: float = 1.0


class Regression(Task):
    """MSE, Huber or L1 on the standardised label; RMSE, MAE and R² in the label's units;
    predicts the value."""

    directions = {"rmse": "minimize", "mae": "minimize", "r2": "maximize", "loss": "minimize"}
    stratify = False

    def __init__(self, loss: str = "mse", mean: float = 0.0, std: float = 1.0) -> None:
        if loss not in LOSSES:
            raise RunnerError(f"task.loss: {loss!r} is not one of {', '.join(LOSSES)}")
        self.loss_name, self.mean, self.std = loss, float(mean), float(std) or 1.0

    def fit_label(
        self, train: "DataFrame", label: str, kind: str
    ) -> tuple[list["Transformer"], dict[str, Any]]:
        from pyspark.sql import functions as F

        if kind not in NUMERIC and not kind.startswith("decimal"):
            raise kind_error(label, kind, "regression", "a numeric column")
        mean, std = train.agg(F.mean(label), F.stddev_pop(label)).first() or (None, None)
        if mean is None:
            raise RunnerError(f"data.label: column {label!r} has no values in the train split")
        return [], {"mean": float(mean), "std": float(std) if std else 1.0}

    def label_column(self, df: "DataFrame", label: str) -> "Column":
        from pyspark.sql import functions as F

        return F.col(label).cast("float")

    def loss(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        scaled = (labels.to(outputs.dtype) - self.mean) / self.std
        if self.loss_name == "huber":
            return F.huber_loss(outputs.reshape(-1), scaled)
        if self.loss_name == "l1":
            return F.l1_loss(outputs.reshape(-1), scaled)
        return F.mse_loss(outputs.reshape(-1), scaled)

    def sums(self, outputs: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """Summed loss, rows, squared and absolute errors, the label's sum and sum of squares
        (all in the label's units but the loss)."""
        import torch

        predicted = self._value(outputs).double()
        target = labels.double()
        error = predicted - target
        rows = torch.tensor(len(target), dtype=torch.float64, device=outputs.device)
        loss = self.loss(outputs.float(), labels).double() * rows if len(target) else rows * 0
        return torch.stack(
            [loss, rows, (error**2).sum(), error.abs().sum(), target.sum(), (target**2).sum()]
        )

    def metrics(self, sums: Any) -> dict[str, float]:
        import math

        loss, rows, squared, absolute, total, total_sq = (float(s) for s in sums)
        if not rows:
            return {k: 0.0 for k in self.directions}
        spread = total_sq - total * total / rows
        return {
            "rmse": math.sqrt(squared / rows),
            "mae": absolute / rows,
            "r2": 1.0 - squared / spread if spread > 0 else 0.0,
            "loss": loss / rows,
        }

    def predict(self, outputs: "torch.Tensor") -> dict[str, "np.ndarray"]:
        import numpy as np

        return {"prediction": self._value(outputs).float().cpu().numpy().astype(np.float32)}

    @property
    def output_schema(self) -> "pa.Schema":
        import pyarrow as pa

        return pa.schema([("prediction", pa.float32())])

    def model_kwargs(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {"num_classes": 1}

    def _value(self, outputs: "torch.Tensor") -> "torch.Tensor":
        """The model's standardised outputs in the label's units."""
        return outputs.reshape(-1) * self.std + self.mean
