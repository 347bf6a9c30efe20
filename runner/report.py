"""Stage 4: ``report.html``/``report.md`` and the run's record, ``summary.json``, written
last: its presence marks a finished run (the sweep wrote ``trials.jsonl``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runner.infer import InferenceResult
from runner.preprocess import PreparedData
from runner.reporting import render
from runner.sweep import SweepResult


def run(
    run_dir: Path,
    prepared: PreparedData,
    swept: SweepResult,
    predicted: InferenceResult,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Write the reports and the summary; return the summary."""
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
    render(run_dir, summary)
    tmp = run_dir / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, run_dir / "summary.json")
    return summary
