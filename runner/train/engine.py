"""The one training engine: an epoch of optimizer steps, a batched evaluation and batched
outputs, for any :class:`~runner.tasks.Task`.

A sweep trial (``runner.train.trial``) and every DDP process (``runner.train.ddp``) train
and evaluate with it; inference (``runner.serve.infer``) gets its outputs from it. Losses
and metric sums add up in float64; ``reduce`` (an all-reduce in DDP) totals them over ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.tasks import Task

if TYPE_CHECKING:
    import torch

Batches = Iterable[tuple["torch.Tensor", "torch.Tensor"]]
Reduce = Callable[["torch.Tensor"], "torch.Tensor"]

EVAL_ROWS = 4096  # rows per evaluation batch


def batches(
    x: "torch.Tensor", y: "torch.Tensor", size: int, order: "torch.Tensor | None" = None
) -> Iterator[tuple["torch.Tensor", "torch.Tensor"]]:
    """``(x, y)`` in batches of ``size`` rows, in ``order`` (row indices) when given. At
    least one batch, empty without rows, so every DDP rank takes part in each reduction."""
    rows = len(y) if order is None else len(order)
    for start in range(0, max(rows, 1), size):
        if order is None:
            yield x[start : start + size], y[start : start + size]
        else:
            idx = order[start : start + size]
            yield x[idx], y[idx]


PRECISIONS = {"32": None, "bf16": "bfloat16", "fp16": "float16"}


@dataclass
class Loop:
    """How each step trains (``train.grad_clip``, ``train.precision``) and the learning-rate
    schedule stepped per batch (``interval: step``) or per epoch."""

    grad_clip: float | None = None
    precision: str = "32"  # bf16 | fp16 autocast on CUDA only; 32 elsewhere
    scheduler: Any = None
    interval: str = "epoch"
    scaler: Any = None  # fp16's GradScaler

    @classmethod
    def of(
        cls,
        train: Mapping[str, Any],
        optimizer: "torch.optim.Optimizer",
        device: Any,
        steps_per_epoch: int,
    ) -> "Loop":
        """The loop a ``train`` section asks for, around ``optimizer``."""
        import torch

        precision = str(train.get("precision") or "32")
        on_cuda = torch.device(device).type == "cuda"
        scheduler, interval = make_scheduler(
            train.get("scheduler"), optimizer, int(train["epochs"]), steps_per_epoch
        )
        return cls(
            grad_clip=train.get("grad_clip"),
            precision=precision if on_cuda else "32",
            scheduler=scheduler,
            interval=interval,
            scaler=torch.amp.GradScaler("cuda") if on_cuda and precision == "fp16" else None,
        )

    def end_epoch(self, val_loss: float | None = None) -> None:
        """Step an epoch-interval schedule (ReduceLROnPlateau: on the val loss)."""
        import torch

        if self.scheduler is None or self.interval != "epoch":
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if val_loss is not None:
                self.scheduler.step(val_loss)
        else:
            self.scheduler.step()


def make_scheduler(
    cfg: Mapping[str, Any] | None,
    optimizer: "torch.optim.Optimizer",
    epochs: int,
    steps_per_epoch: int,
) -> tuple[Any, str]:
    """``train.scheduler`` (any ``torch.optim.lr_scheduler`` class by ``_target_``, with
    ``interval: epoch|step``) built around ``optimizer``. Arguments it leaves out that the
    class takes are filled in: ``epochs``, ``steps_per_epoch``, ``total_steps`` and ``T_max``
    (the schedule's length in its interval)."""
    import inspect

    from hydra.utils import get_class, instantiate

    if not cfg:
        return None, "epoch"
    args = dict(cfg)
    interval = str(args.pop("interval", "epoch"))
    accepted = inspect.signature(get_class(args["_target_"])).parameters
    length = epochs * steps_per_epoch if interval == "step" else epochs
    for key, value in (
        ("epochs", epochs),
        ("steps_per_epoch", steps_per_epoch),
        ("total_steps", length),
        ("T_max", length),
    ):
        by_epochs = key == "total_steps" and "epochs" in accepted
        if key in accepted and key not in args and not by_epochs:
            args[key] = value
    return instantiate(args, optimizer=optimizer), interval


def train_epoch(
    model: "torch.nn.Module",
    task: Task,
    optimizer: "torch.optim.Optimizer",
    data: Batches,
    reduce: Reduce | None = None,
    on_step: Callable[[], None] | None = None,
    loop: Loop | None = None,
) -> float:
    """One optimizer step per batch of ``data``; the epoch's mean training loss.

    ``on_step`` runs after every step (a trial checks its deadline there); ``loop`` adds
    gradient clipping, mixed precision and a per-step schedule.

    Raises:
        FloatingPointError: the mean loss is not finite.
    """
    import math

    import torch

    loop = loop or Loop()
    model.train()
    device = next(model.parameters()).device
    name = PRECISIONS[loop.precision]
    dtype = getattr(torch, name) if name else None
    total = torch.zeros((), dtype=torch.float64, device=device)  # one op a step, no sync
    rows = 0
    for x, y in data:
        optimizer.zero_grad(set_to_none=True)
        if dtype is None:  # 32: no autocast context per step
            outputs = model(x)
        else:
            with torch.autocast(device.type, dtype=dtype):
                outputs = model(x)
        loss = task.loss(outputs.float(), y)
        if loop.scaler is not None:
            loop.scaler.scale(loss).backward()
            loop.scaler.unscale_(optimizer)
        else:
            loss.backward()
        if loop.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(loop.grad_clip))
        if loop.scaler is not None:
            loop.scaler.step(optimizer)
            loop.scaler.update()
        else:
            optimizer.step()
        if loop.scheduler is not None and loop.interval == "step":
            loop.scheduler.step()
        total.add_(loss.detach(), alpha=len(y))
        rows += len(y)
        if on_step is not None:
            on_step()
    sums = torch.stack([total, torch.tensor(float(rows), dtype=torch.float64, device=device)])
    loss_sum, rows_sum = (float(s) for s in (reduce(sums) if reduce else sums))
    mean = loss_sum / rows_sum
    if not math.isfinite(mean):
        raise FloatingPointError(f"non-finite training loss {mean}")
    return mean


def evaluate(
    model: "torch.nn.Module", task: Task, data: Batches, reduce: Reduce | None = None
) -> dict[str, float]:
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


def outputs(
    model: "torch.nn.Module", x: "torch.Tensor", batch_size: int, device: str
) -> "torch.Tensor":
    """The model's outputs for ``x`` (run on ``device`` in batches of ``batch_size`` rows),
    on the CPU."""
    import torch

    model.eval()
    with torch.inference_mode():
        return torch.cat(
            [
                model(x[start : start + batch_size].to(device)).cpu()
                for start in range(0, max(len(x), 1), batch_size)
            ]
        )
