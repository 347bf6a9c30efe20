"""Metrics as sums that add up over batches, ranks and Spark tasks, computed by torchmetrics.

Ranking metrics (AUROC, average precision) keep torchmetrics' *binned* state: a confusion
matrix per probability threshold (``THRESHOLDS``), which adds up where raw scores would not.
Threshold 0.5 is one of them, so accuracy and F1 come from the same state.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

N_THRESHOLDS = 201  # 0, 0.005, ..., 1: index 100 is 0.5
HALF = 100


def thresholds() -> "torch.Tensor":
    import torch

    return torch.linspace(0, 1, N_THRESHOLDS)


def binned_state(probability: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
    """torchmetrics' binned precision-recall state, (thresholds, 2, 2): ``[[tn, fp], [fn, tp]]``
    at each threshold, as float64."""
    import torch

    curve = importlib.import_module("torchmetrics.functional.classification.precision_recall_curve")
    if len(target) == 0:
        return torch.zeros(N_THRESHOLDS, 2, 2, dtype=torch.float64, device=probability.device)
    state = curve._binary_precision_recall_curve_update(
        probability.float(), target.long(), thresholds().to(probability.device)
    )
    return state.double()


def ranking(state: "torch.Tensor") -> dict[str, float]:
    """AUROC and average precision of a summed binned state (NaN without both classes)."""
    auroc = importlib.import_module("torchmetrics.functional.classification.auroc")
    precision = importlib.import_module("torchmetrics.functional.classification.average_precision")
    state = state.reshape(N_THRESHOLDS, 2, 2).long().cpu()
    positives = float(state[0, 1].sum())
    total = float(state[0].sum())
    if positives == 0 or positives == total:
        return {"auroc": float("nan"), "average_precision": float("nan")}
    return {
        "auroc": float(auroc._binary_auroc_compute(state, thresholds())),
        "average_precision": float(
            precision._binary_average_precision_compute(state, thresholds())
        ),
    }


def at_half(state: "torch.Tensor") -> dict[str, float]:
    """Accuracy, balanced accuracy and F1 at threshold 0.5 of a summed binned state."""
    (tn, fp), (fn, tp) = state.reshape(N_THRESHOLDS, 2, 2)[HALF].tolist()
    rows = tn + fp + fn + tp
    recalls = [r for r in (_ratio(tp, tp + fn), _ratio(tn, tn + fp)) if r is not None]
    return {
        "accuracy": _ratio(tp + tn, rows) or 0.0,
        "balanced_accuracy": sum(recalls) / len(recalls) if recalls else 0.0,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn) or 0.0,
    }


def confusion(predicted: "torch.Tensor", target: "torch.Tensor", classes: int) -> "torch.Tensor":
    """The (classes, classes) confusion matrix (rows: true class) by torchmetrics, float64."""
    import torch
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    if len(target) == 0:
        return torch.zeros(classes, classes, dtype=torch.float64, device=predicted.device)
    return multiclass_confusion_matrix(
        predicted, target, num_classes=classes, validate_args=False
    ).double()


def from_confusion(matrix: "np.ndarray") -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall of the classes present) and macro F1 (over
    classes present or predicted) of a summed confusion matrix (NumPy: a few microseconds
    an operation on a K x K matrix, where torch takes several times that, every epoch)."""
    tp = matrix.diagonal()
    support, predicted = matrix.sum(1), matrix.sum(0)
    present = support > 0
    f1_rows = (support + predicted) > 0
    f1 = 2 * tp / (support + predicted).clip(min=1)
    rows = float(matrix.sum())
    return {
        "accuracy": float(tp.sum()) / rows if rows else 0.0,
        "balanced_accuracy": (
            float((tp[present] / support[present]).mean()) if present.any() else 0.0
        ),
        "f1_macro": float(f1[f1_rows].mean()) if f1_rows.any() else 0.0,
    }


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None
