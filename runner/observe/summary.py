"""Stage 4: ``report.html``/``report.md`` and the run's record, ``summary.json``, written
last: its presence marks a finished run (the sweep wrote ``trials.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from runner.data.prepared import PreparedDataset
from runner.observe.reports import render
from runner.observe.result import (
    BestTrial,
    DataRecord,
    PredictionsRecord,
    Ranking,
    RunResult,
    SweepRecord,
    TrainRecord,
)
from runner.serve.artifacts import atomic_write
from runner.serve.infer import InferenceResult
from runner.train.retrain import TrainResult
from runner.tune.sweep import SweepResult


def run(
    run_dir: Path,
    prepared: PreparedDataset,
    swept: Optional[SweepResult],
    predicted: Optional[InferenceResult],
    timings: dict[str, float],
    trained: Optional[TrainResult] = None,
    search: Optional[dict[str, Any]] = None,
) -> RunResult:
    """The run's result from its stages' results, its reports and summary written."""
    result = RunResult(
        run_dir=str(run_dir),
        timings_s=timings,
        task=prepared.task,
        ranking=Ranking(search["metric"], search["direction"]) if search else None,
        best=(
            BestTrial(swept.best.number, swept.params[swept.best.number], swept.best.metrics)
            if swept
            else None
        ),
        sweep=(
            SweepRecord(
                swept.counts, swept.parallelism, swept.resumed, swept.epochs_run, swept.epochs_saved
            )
            if swept
            else None
        ),
        train=(
            TrainRecord(
                trained.metrics,
                trained.history,
                trained.start_epoch,
                trained.num_processes,
                trained.local_mode,
                trained.device,
                trained.checkpoint,
            )
            if trained
            else None
        ),
        test_metrics=predicted.metrics if predicted else None,
        deployed=("train" if trained else "sweep") if predicted else None,
        data=DataRecord(prepared.fingerprint, prepared.cache_hit, prepared.rows, prepared.uri),
        predictions=_predictions(predicted) if predicted else None,
    )
    render(run_dir, result.to_json())
    _write_summary(run_dir, result)
    return result


def run_infer(
    run_dir: Path, model_run: Path, predicted: InferenceResult, timings: dict[str, float]
) -> RunResult:
    """The result of a ``stages=[infer]`` run: which model, which predictions."""
    result = RunResult(
        run_dir=str(run_dir),
        timings_s=timings,
        model_path=str(model_run),
        test_metrics=predicted.metrics,
        predictions=_predictions(predicted),
    )
    _write_summary(run_dir, result)
    return result


def _predictions(predicted: InferenceResult) -> PredictionsRecord:
    return PredictionsRecord(
        path=predicted.path,
        rows=predicted.rows,
        labelled_rows=predicted.labelled,
        unseen=predicted.unseen,
        skipped_steps=predicted.skipped,
        notes=predicted.notes(),
    )


def _write_summary(run_dir: Path, result: RunResult) -> None:
    """``summary.json`` appears only when complete: it marks a finished run."""
    atomic_write(run_dir / "summary.json", json.dumps(result.to_json(), indent=2).encode())
