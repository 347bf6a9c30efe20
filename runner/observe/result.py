"""``RunResult``: what a run produced, typed; ``summary.json`` is its ``to_json()``."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Ranking:
    """The metric trials were ranked by (``search.metric``, or the task's default)."""

    metric: str
    direction: str  # maximize | minimize


@dataclass(frozen=True)
class BestTrial:
    number: int
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass(frozen=True)
class SweepRecord:
    """How the sweep went: trials per state, slots, trials resumed, what pruning saved."""

    trials: dict[str, int]
    parallelism: int
    resumed_trials: int
    epochs_run: int
    epochs_saved: int


@dataclass(frozen=True)
class TrainRecord:
    """The train stage: its final metrics (``train_*``), per-epoch history and where it ran."""

    metrics: dict[str, float]
    history: list[dict[str, float]]
    start_epoch: int
    num_processes: int
    local_mode: bool
    device: str
    checkpoint: str


@dataclass(frozen=True)
class DataRecord:
    """The prepared data the run used (its cache entry)."""

    fingerprint: str
    cache_hit: bool
    rows: dict[str, int]
    path: str


@dataclass(frozen=True)
class PredictionsRecord:
    path: str
    rows: int
    labelled_rows: Optional[int]
    unseen: dict[str, int]
    skipped_steps: list[str]
    notes: list[str]


@dataclass(frozen=True)
class RunResult:
    """A finished run. Parts are ``None`` when their stage did not run: ``best``/``sweep``
    without the sweep, ``train`` without the train stage, ``test_metrics``/``predictions``
    without infer; a ``stages=[infer]`` run has ``model_path`` and no ``data``."""

    run_dir: str
    timings_s: dict[str, float]
    task: Optional[dict[str, Any]] = None  # the task config, with what it learnt from the labels
    ranking: Optional[Ranking] = None
    best: Optional[BestTrial] = None
    sweep: Optional[SweepRecord] = None
    train: Optional[TrainRecord] = None
    test_metrics: Optional[dict[str, float]] = None
    deployed: Optional[str] = None  # train | sweep: which model infer scored with
    data: Optional[DataRecord] = None
    predictions: Optional[PredictionsRecord] = None
    model_path: Optional[str] = None  # stages=[infer]: the run whose model scored
    driver_pid: int = field(default_factory=os.getpid)

    @property
    def best_value(self) -> Optional[float]:
        """The best trial's value of the ranking metric (what a Hydra sweeper optimizes)."""
        if self.best is None or self.ranking is None:
            return None
        return self.best.metrics[self.ranking.metric]

    def to_json(self) -> dict[str, Any]:
        """``summary.json``'s content (its keys are the reports' and users' record format)."""
        out: dict[str, Any] = {}
        if self.model_path is not None:
            out.update({"stages": ["infer"], "model_path": self.model_path})
        if self.task is not None:
            out["task"] = self.task
        if self.ranking is not None:
            out["search"] = dataclasses.asdict(self.ranking)
        if self.best is not None:
            out["best"] = dataclasses.asdict(self.best)
        if self.train is not None:
            out["train"] = dataclasses.asdict(self.train)
        if self.test_metrics is not None:
            out["test_metrics"] = self.test_metrics
        if self.deployed is not None:
            out["deployed"] = self.deployed
        if self.sweep is not None:
            s = self.sweep
            out["trials"] = s.trials
            out["parallelism"] = s.parallelism
            out["resumed_trials"] = s.resumed_trials
            out["pruning"] = {"epochs_run": s.epochs_run, "epochs_saved": s.epochs_saved}
        if self.data is not None:
            out["data"] = dataclasses.asdict(self.data)
        if self.predictions is not None:
            out["predictions"] = dataclasses.asdict(self.predictions)
        out["timings_s"] = {k: round(v, 3) for k, v in self.timings_s.items()}
        out["run_dir"] = self.run_dir
        out["driver_pid"] = self.driver_pid
        return out
