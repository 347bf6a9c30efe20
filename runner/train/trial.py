"""One trial: build a model from its config and params, train it, score it on val.

No pyspark here: a trial is a plain function of a ``TrialSpec``, run inside a Spark
task by ``runner.tune.sweep`` and testable without a JVM.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from runner.data.prepared import PreparedDataset
from runner.tasks import Task, gain, task_for
from runner.train import augment, engine
from runner.train.model import build_model, compiled, pretrained, weights_of


@dataclass(frozen=True)
class TrialSpec:
    """Everything a trial needs, as plain data."""

    number: int
    params: dict[str, Any]
    model: dict[str, Any]  # resolved model config with params applied (has _target_)
    optimizer: dict[str, Any]
    train: dict[str, Any]
    entry: str  # the prepared data: a PreparedDataset's path or URI
    input_shape: tuple[int, ...]
    task: dict[str, Any]  # the task config (has _target_)
    model_kwargs: dict[str, Any]  # what the task tells the model, e.g. num_classes
    metric: str  # reported every epoch, for pruning
    timeout_s: float | None = None

    @classmethod
    def from_json(cls, payload: str) -> "TrialSpec":
        raw = json.loads(payload)
        raw["input_shape"] = tuple(raw["input_shape"])
        return cls(**raw)


class TrialPruned(Exception):
    """The sweep's pruner stopped this trial after an epoch."""


@dataclass
class TrialOutcome:
    """What a trial reports back to the driver."""

    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    error: str = ""
    duration_s: float = 0.0
    pid: int = 0
    host: str = ""
    device: str = "cpu"
    gpu: str = ""  # the GPU address Spark assigned, if any
    reasks: list[int] = field(default_factory=list)  # lost trials it asks again, first first
    best_epoch: int = 0  # with train.patience: the epoch whose weights and metrics are kept
    weights: bytes = b""

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready record without the weights."""
        record = asdict(self)
        record.pop("weights")
        return record


EpochCheck = Callable[[int, float], bool]  # (epoch, metric) -> stop now? (the pruner)


def validate(cfg: Any) -> list[str]:
    """Problems with the ``train`` settings every trial uses, found before Spark starts."""
    from runner.train.engine import PRECISIONS
    from runner.train.model import _locate

    train = cfg.train
    problems = []
    if train.epochs < 1:
        problems.append(f"train.epochs: must be at least 1, got {train.epochs}")
    if train.batch_size < 1:
        problems.append(f"train.batch_size: must be at least 1, got {train.batch_size}")
    if train.get("patience") is not None and train.patience < 1:
        problems.append(f"train.patience: must be at least 1 epoch or null, got {train.patience}")
    if train.get("grad_clip") is not None and train.grad_clip <= 0:
        problems.append(f"train.grad_clip: must be positive or null, got {train.grad_clip}")
    if str(train.get("precision", "32")) not in PRECISIONS:
        problems.append(
            f"train.precision: {train.precision!r} is not one of {', '.join(PRECISIONS)}"
        )
    if train.get("class_weight") not in (None, "balanced"):
        problems.append(f"train.class_weight: {train.class_weight!r} is not balanced or null")
    scheduler = train.get("scheduler")
    if scheduler:
        target = scheduler.get("_target_")
        if scheduler.get("interval", "epoch") not in ("epoch", "step"):
            problems.append("train.scheduler.interval: must be epoch or step")
        try:
            _locate(str(target))
        except Exception:
            problems.append(
                f"train.scheduler._target_: cannot import {target!r}; name a "
                "torch.optim.lr_scheduler class, e.g. "
                "torch.optim.lr_scheduler.CosineAnnealingLR"
            )
    return problems


def run_trial(
    spec: TrialSpec, device: str = "cpu", report: EpochCheck | None = None
) -> TrialOutcome:
    """Train and evaluate, calling ``report`` (if given) after every epoch.

    A True answer from ``report`` ends the trial as PRUNED; any exception, a
    non-finite loss or training past ``spec.timeout_s`` ends it as FAIL.
    """
    start = time.perf_counter()
    outcome = TrialOutcome(
        number=spec.number, state="FAIL", pid=os.getpid(), host=socket.gethostname(), device=device
    )
    try:
        _train(spec, device, outcome, report)
        outcome.state = "COMPLETE"
    except TrialPruned:
        outcome.state = "PRUNED"
    except Exception as err:  # a failed trial is data, not a crash
        outcome.error = "".join(traceback.format_exception_only(err)).strip()
    outcome.duration_s = time.perf_counter() - start
    return outcome


def metric_directions(task: Task) -> dict[str, str]:
    """What a trial reports each epoch (the choices of ``search.metric``): ``train_loss``
    and the task's metrics on val, each to maximize or minimize."""
    return {"train_loss": "minimize", **{f"val_{k}": d for k, d in task.directions.items()}}


def _train(spec: TrialSpec, device: str, outcome: TrialOutcome, report: EpochCheck | None) -> None:
    import torch
    from hydra.utils import instantiate

    torch.manual_seed(spec.train["seed"] + spec.number)
    task = task_for(spec.task)
    x_val, y_val = PreparedDataset(spec.entry).read("val")
    shape = (-1, *spec.input_shape)
    x_val_t = torch.from_numpy(x_val).reshape(shape).to(device)
    y_val_t = torch.from_numpy(y_val).to(device)

    model = pretrained(build_model(spec.model, spec.input_shape, spec.model_kwargs), spec.model).to(
        device
    )
    optimizer = instantiate(spec.optimizer, params=model.parameters())
    batches, steps_per_epoch = train_batches(spec, device)
    loop = engine.Loop.of(spec.train, optimizer, device, steps_per_epoch)
    deadline = time.perf_counter() + (spec.timeout_s or math.inf)
    stopping = EarlyStopping(
        spec.train.get("patience"), metric_directions(task).get(spec.metric, "minimize")
    )

    def check_deadline() -> None:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"trial ran past search.trial_timeout={spec.timeout_s}s")

    net = compiled(model, spec.train)  # trains the same parameters; weights come from model
    for epoch in range(1, int(spec.train["epochs"]) + 1):
        train_loss = engine.train_epoch(
            net, task, optimizer, batches(), on_step=check_deadline, loop=loop
        )
        val = engine.evaluate(net, task, engine.batches(x_val_t, y_val_t, engine.EVAL_ROWS))
        loop.end_epoch(val["loss"])
        outcome.history.append(
            {"epoch": epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in val.items()}}
        )
        outcome.metrics = {k: v for k, v in outcome.history[-1].items() if k != "epoch"}
        if report is not None and report(epoch, outcome.metrics[spec.metric]):
            raise TrialPruned(f"pruned after epoch {epoch}")
        if stopping.update(epoch, outcome.metrics[spec.metric], model):
            break
    if stopping.best_state is not None:  # the best epoch's weights and metrics, not the last's
        model.load_state_dict(stopping.best_state)
        outcome.best_epoch = stopping.best_epoch
        outcome.metrics = {
            k: v for k, v in outcome.history[stopping.best_epoch - 1].items() if k != "epoch"
        }
    outcome.weights = weights_of(model)


class EarlyStopping:
    """``train.patience``: stop after ``patience`` epochs without a better ``search.metric``
    on val, keeping the best epoch's weights (a copy on the CPU). Without patience: inert."""

    def __init__(self, patience: int | None, direction: str) -> None:
        self.patience = patience
        self.sign = gain(direction)
        self.best_epoch = 0
        self.best_value = -math.inf
        self.best_state: dict[str, Any] | None = None

    def update(self, epoch: int, value: float, model: Any) -> bool:
        """Record the epoch's metric; True: stop now."""
        if self.patience is None:
            return False
        if self.best_state is None or self.sign * value > self.best_value:
            self.best_epoch, self.best_value = epoch, self.sign * value
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            }
            return False
        return epoch - self.best_epoch >= self.patience


def warm_up() -> None:
    """Pay a worker process's one-time costs (the first optimizer step imports
    ``torch._dynamo``) before its first trial, so trial durations compare fairly."""
    import torch

    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(layer.parameters())
    layer(torch.zeros(1, 2)).sum().backward()
    optimizer.step()


def train_batches(spec: TrialSpec, device: str):
    """A function giving one epoch of shuffled ``(x, y)`` tensor batches of the train split,
    and the number of batches an epoch has.

    ``train.streaming``: read Parquet row group by row group; otherwise the split is
    loaded once into memory (once per Python worker, for all its trials).
    """
    import torch

    shape = (-1, *spec.input_shape)
    batch_size = int(spec.train["batch_size"])
    seed = spec.train["seed"] + spec.number
    apply = augment.augmenter(spec.train.get("augment"), seed)
    if spec.train.get("streaming"):
        entry = PreparedDataset(spec.entry)
        stream = entry.batches("train", batch_size, seed=seed)
        return (
            lambda: augment.augmented(
                (
                    (torch.from_numpy(x).reshape(shape).to(device), torch.from_numpy(y).to(device))
                    for x, y in stream
                ),
                apply,
            )
        ), max(1, math.ceil(entry.rows["train"] / batch_size))
    x_train, y_train = PreparedDataset(spec.entry).read("train")
    x_all = torch.from_numpy(x_train).reshape(shape).to(device)
    y_all = torch.from_numpy(y_train).to(device)
    generator = torch.Generator().manual_seed(seed)
    return (
        lambda: augment.augmented(
            engine.batches(
                x_all, y_all, batch_size, torch.randperm(len(y_all), generator=generator).to(device)
            ),
            apply,
        )
    ), max(1, math.ceil(len(y_all) / batch_size))
