"""The score recipe: ``stages=[infer] model_path=RUN``, a finished run's saved model over
new data (``inference.data``) or its own test split, through that run's fitted
preprocessing; nothing is prepared, swept or trained."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from runner import recipe
from runner.cluster.targets import target_for
from runner.data.prepared import PreparedDataset
from runner.errors import RunnerError
from runner.observe import console, summary, trackers
from runner.observe.result import RunResult
from runner.serve import artifacts, infer
from runner.serve.score import score, scoring_model
from runner.tasks import task_for


def run(cfg: Any, run_dir: Path, original_cwd: Path, prefix: str = "") -> RunResult:
    """``stages=[infer]``: the model saved by the run at ``model_path`` over ``inference.data``."""
    start = time.perf_counter()
    out = infer.output_path(cfg.inference, run_dir, original_cwd)
    source = _model_run(cfg, original_cwd)
    entry = PreparedDataset(str((source / "prepared").resolve()))
    artifact = artifacts.load(source / "model")
    problems = (
        infer.validate(cfg.inference, out, task_for(artifact.task))
        + target_for(cfg.deploy).validate()
        + entry.problems([] if cfg.inference.data is not None else ["test"], key="model_path")
    )
    if not problems:
        problems += infer.data_problems(cfg.inference.data, entry.meta)
    problems += trackers.validate(cfg)
    if problems:
        raise RunnerError("; ".join(problems))
    view = console.view(cfg.search.metric or "val_loss", quiet=cfg.quiet, prefix=prefix)
    with recipe.started(cfg, run_dir, original_cwd, view) as (events, spark, _):
        with events.stage("infer", str(source)):
            if cfg.inference.streaming:
                predicted = _stream(spark, cfg.inference, artifact, entry, source, out)
            else:
                predicted = score(spark, cfg.inference, artifact, entry, out)
        timings = {**events.timings, "total": time.perf_counter() - start}
        result = summary.run_infer(run_dir, source, predicted, timings)
        events.run_finished(result)
    return result


def _stream(
    spark: Any,
    cfg: Any,
    artifact: artifacts.ModelArtifact,
    prepared: PreparedDataset,
    source: Path,
    out: Path,
) -> infer.InferenceResult:
    """``inference.streaming``: the files that arrived in ``inference.data.path`` since the
    last call, appended to ``out``; the checkpoint lives under the model's run, one per
    output, so every call with the same output continues where the last stopped."""
    import hashlib

    model = scoring_model(cfg, artifact, prepared)
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]
    return infer.stream(spark, model, cfg.data, out, source / "checkpoints" / key)


def _model_run(cfg: Any, original_cwd: Path) -> Path:
    """The finished run directory ``model_path`` names (relative to where the runner started)."""
    if not cfg.model_path:
        raise RunnerError(
            "model_path: stages=[infer] needs the directory of a finished run; "
            "set model_path=outputs/DATE/TIME"
        )
    path = Path(cfg.model_path)
    path = path if path.is_absolute() else original_cwd / path
    if not path.is_dir():
        raise RunnerError(
            f"model_path: {path} does not exist; set model_path to a finished run's directory"
        )
    return path
