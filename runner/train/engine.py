"""The one training engine: an epoch of optimizer steps, a batched evaluation and batched
outputs, for any :class:`~runner.tasks.Task`.

A sweep trial (``runner.train.trial``) and every DDP process (``runner.train.ddp``) train
and evaluate with it; inference (``runner.serve.infer``) gets its outputs from it. Losses
and metric sums add up in float64; ``reduce`` (an all-reduce in DDP) totals them over ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from runner.tasks import Task

if TYPE_CHECKING:
    import torch

Batches = Iterable[tuple["torch.Tensor", "torch.Tensor"]]
Reduce = Callable[["torch.Tensor"], "torch.Tensor"]

EVAL_ROWS = 4096  # rows per evaluation batch


def batches(x: "torch.Tensor", y: "torch.Tensor", size: int,
            order: "torch.Tensor | None" = None) -> Iterator[tuple["torch.Tensor", "torch.Tensor"]]:
    """``(x, y)`` in batches of ``size`` rows, in ``order`` (row indices) when given. At
    least one batch, empty without rows, so every DDP rank takes part in each reduction."""
    rows = len(y) if order is None else len(order)
    for start in range(0, max(rows, 1), size):
        if order is None:
            yield x[start:start + size], y[start:start + size]
        else:
            idx = order[start:start + size]
            yield x[idx], y[idx]


def train_epoch(model: "torch.nn.Module", task: Task, optimizer: "torch.optim.Optimizer",
                data: Batches, reduce: Reduce | None = None,
                on_step: Callable[[], None] | None = None) -> float:
    """One optimizer step per batch of ``data``; the epoch's mean training loss.

    ``on_step`` runs after every step (a trial checks its deadline there).

    Raises:
        FloatingPointError: the mean loss is not finite.
    """
    import math

    import torch

    model.train()
    sums = torch.zeros(2, dtype=torch.float64, device=next(model.parameters()).device)
    for x, y in data:
        optimizer.zero_grad(set_to_none=True)
        loss = task.loss(model(x), y)
        loss.backward()
        optimizer.step()
        sums[0] += loss.detach().double() * len(y)
        sums[1] += len(y)
        if on_step is not None:
            on_step()
    total, rows = (float(s) for s in (reduce(sums) if reduce else sums))
    mean = total / rows
    if not math.isfinite(mean):
        raise FloatingPointError(f"non-finite training loss {mean}")
    return mean


def evaluate(model: "torch.nn.Module", task: Task, data: Batches,
             reduce: Reduce | None = None) -> dict[str, float]:
    """The task's metrics over every batch of ``data`` (and, with ``reduce``, every rank)."""
    import torch

    model.eval()
    total = None
    with torch.inference_mode():
        for x, y in data:
            sums = task.sums(model(x), y).double()
            total = sums if total is None else total + sums
    assert total is not None, "evaluate needs at least one batch"
    return task.metrics(reduce(total) if reduce else total)


def outputs(model: "torch.nn.Module", x: "torch.Tensor", batch_size: int,
            device: str) -> "torch.Tensor":
    """The model's outputs for ``x`` (run on ``device`` in batches of ``batch_size`` rows),
    on the CPU."""
    import torch

    model.eval()
    with torch.inference_mode():
        return torch.cat([model(x[start:start + batch_size].to(device)).cpu()
                          for start in range(0, max(len(x), 1), batch_size)])
