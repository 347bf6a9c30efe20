"""Stage 4: ``report.html``/``report.md`` and the run's record, ``summary.json``, written
last: its presence marks a finished run (the sweep wrote ``trials.jsonl``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from runner.serve.artifacts import atomic_write
from runner.serve.infer import InferenceResult
from runner.data.prepared import PreparedDataset
from runner.observe.reports import render
from runner.tune.sweep import SweepResult
from runner.train.retrain import TrainResult


def run(
    run_dir: Path,
    prepared: PreparedDataset,
    swept: Optional[SweepResult],
    predicted: Optional[InferenceResult],
    timings: dict[str, float],
    trained: Optional[TrainResult] = None,
    search: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Write the summary; return it.

    ``best``/``trials``/``parallelism``/``pruning`` are there when the sweep ran, ``train``
    when the train stage ran, ``test_metrics``/``predictions`` when infer ran.
    """
    summary: dict[str, Any] = {"task": prepared.task}
    if search:  # the metric trials were ranked by: search.metric, or the task's default
        summary["search"] = {"metric": search["metric"], "direction": search["direction"]}
    if swept:
        summary["best"] = {
            "number": swept.best.number,
            "params": swept.params[swept.best.number],
            "metrics": swept.best.metrics,
        }
    if trained:
        summary["train"] = {
            "metrics": trained.metrics,
            "history": trained.history,
            "start_epoch": trained.start_epoch,
            "num_processes": trained.num_processes,
            "local_mode": trained.local_mode,
            "device": trained.device,
            "checkpoint": trained.checkpoint,
        }
    if predicted:
        summary["test_metrics"] = predicted.metrics
        summary["deployed"] = "train" if trained else "sweep"
    if swept:
        summary.update(
            {
                "trials": swept.counts,
                "parallelism": swept.parallelism,
                "resumed_trials": swept.resumed,
                "pruning": {"epochs_run": swept.epochs_run, "epochs_saved": swept.epochs_saved},
            }
        )
    summary.update(
        {
            "data": {
                "fingerprint": prepared.fingerprint,
                "cache_hit": prepared.cache_hit,
                "rows": prepared.rows,
                "path": prepared.uri,
            },
            **({"predictions": _predictions(predicted)} if predicted else {}),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "run_dir": str(run_dir),
            "driver_pid": os.getpid(),
        }
    )
    render(run_dir, summary)
    _write_summary(run_dir, summary)
    return summary


def run_infer(
    run_dir: Path, model_run: Path, predicted: InferenceResult, timings: dict[str, float]
) -> dict[str, Any]:
    """The summary of a ``stages=[infer]`` run: which model, which predictions."""
    summary = {
        "stages": ["infer"],
        "model_path": str(model_run),
        "test_metrics": predicted.metrics,
        "predictions": _predictions(predicted),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "run_dir": str(run_dir),
        "driver_pid": os.getpid(),
    }
    _write_summary(run_dir, summary)
    return summary


def _predictions(predicted: InferenceResult) -> dict[str, Any]:
    return {
        "path": predicted.path,
        "rows": predicted.rows,
        "labelled_rows": predicted.labelled,
        "unseen": predicted.unseen,
        "skipped_steps": predicted.skipped,
        "notes": predicted.notes(),
    }


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` appears only when complete: it marks a finished run."""
    atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
