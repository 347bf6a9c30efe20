"""Stage 4: the run's record: ``trials.jsonl`` and ``summary.json`` (written last)."""

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
    """Write the trial log and the summary; return the summary."""
    with open(run_dir / "trials.jsonl", "w") as fh:
        for outcome in swept.trials:
            fh.write(json.dumps({**outcome.as_record(), "params": swept.params[outcome.number]}))
            fh.write("\n")
    summary = {
        "best": {
            "number": swept.best.number,
            "params": swept.params[swept.best.number],
            "metrics": swept.best.metrics,
        },
        "test_metrics": predicted.metrics,
        "trials": swept.counts,
        "parallelism": swept.parallelism,
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
