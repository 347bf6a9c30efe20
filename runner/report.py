"""Stage 4: the run's record, ``summary.json``, written last (the sweep wrote ``trials.jsonl``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runner.infer import InferenceResult
from runner.preprocess import PreparedData
from runner.sweep import SweepResult


def run(
    run_dir: Path,
    prepared: PreparedData,
    swept: SweepResult,
    predicted: InferenceResult,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Write the summary; return it."""
    summary = {
        "best": {
            "number": swept.best.number,
            "params": swept.params[swept.best.number],
            "metrics": swept.best.metrics,
        },
        "test_metrics": predicted.metrics,
        "trials": swept.counts,
        "parallelism": swept.parallelism,
        "resumed_trials": swept.resumed,
        "pruning": {"epochs_run": swept.epochs_run, "epochs_saved": swept.epochs_saved},
        "data": {
            "fingerprint": prepared.fingerprint,
            "cache_hit": prepared.cache_hit,
            "rows": prepared.rows,
            "path": prepared.path,
        },
        "predictions": {"path": predicted.path, "rows": predicted.rows},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "run_dir": str(run_dir),
        "driver_pid": os.getpid(),
    }
    _write_summary(run_dir, summary)
    return summary


def run_infer(
    run_dir: Path, model_run: Path, predicted: InferenceResult, timings: dict[str, float]
) -> dict[str, Any]:
    """The summary of a ``stage=infer`` run: which model, which predictions."""
    summary = {
        "stage": "infer",
        "model_path": str(model_run),
        "test_metrics": predicted.metrics,
        "predictions": {"path": predicted.path, "rows": predicted.rows},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "run_dir": str(run_dir),
        "driver_pid": os.getpid(),
    }
    _write_summary(run_dir, summary)
    return summary


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` appears only when complete: it marks a finished run."""
    tmp = run_dir / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, run_dir / "summary.json")
