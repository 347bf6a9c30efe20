"""Stage 4: the run's record: ``trials.jsonl``, ``report.html``/``report.md`` and
``summary.json`` (written last: its presence marks a finished run)."""

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
    """Write the trial log, the reports and the summary; return the summary."""
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
    render(run_dir, summary)
    tmp = run_dir / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, run_dir / "summary.json")
    return summary
