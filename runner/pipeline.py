"""The recipe: preprocess -> sweep -> train -> infer -> report; ``stages`` picks which."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from runner import artifacts, infer, preprocess, report, resources, stages, sweep, tracking, train
from runner.console import Reporter
from runner.errors import RunnerError
from runner.spark import build_session


def validate(cfg: Any) -> None:
    """Every problem with the config at once, before Spark starts."""
    problems = (
        stages.validate(cfg)
        + preprocess.validate(cfg.data)
        + sweep.validate(cfg)
        + tracking.validate(cfg)
    )
    if "train" in stages.selected(cfg):
        problems += train.validate(cfg)
    if cfg.inference.batch_size < 1:
        problems.append(f"inference.batch_size: must be at least 1, got {cfg.inference.batch_size}")
    if cfg.model._target_ == "models.cnn.CNN" and not cfg.data.get("image_shape"):
        problems.append(
            f"model=cnn needs image data but data={cfg.data.name} is tabular; "
            "use model=mlp or set data.image_shape"
        )
    if problems:
        raise RunnerError("; ".join(problems))


def run(cfg: Any, run_dir: Path, original_cwd: Path) -> dict[str, Any]:
    """Run the whole experiment into ``run_dir``; return the summary."""
    validate(cfg)
    start = time.perf_counter()
    reporter = Reporter(cfg.search.metric, cfg.search.direction, quiet=cfg.quiet,
                        verbose=cfg.verbose)
    cache_root = Path(cfg.data.cache_dir)
    if not cache_root.is_absolute():
        cache_root = original_cwd / cache_root
    with tracking.start(cfg, run_dir, original_cwd) as tracker, reporter:
        gpu_plan = resources.plan(cfg.deploy)
        if gpu_plan.note:
            reporter.info(f"[deploy] {gpu_plan.note}")
        cfg.deploy = gpu_plan.deploy
        with reporter.stage("spark", cfg.deploy.master):
            spark = build_session(cfg.deploy, run_dir / "logs")

        with reporter.stage("preprocess", cfg.data.name):
            with reporter.spark_tasks(spark, "preprocess"):
                prepared = preprocess.run(spark, cfg.data, cache_root)
            _link(run_dir / "prepared", Path(prepared.path).parent)
        reporter.info(
            f"[preprocess] {'cache hit' if prepared.cache_hit else 'prepared'} "
            f"{prepared.fingerprint}: rows {prepared.rows}"
        )

        def on_trial(outcome: Any, params: dict[str, Any]) -> None:
            reporter.trial_finished(outcome, params)
            tracker.trial(outcome, params)

        selected = stages.selected(cfg)
        swept = None
        if "sweep" in selected:
            with reporter.stage("sweep", f"{cfg.search.n_trials} trials"):
                swept = sweep.run(
                    spark,
                    prepared,
                    cfg,
                    run_dir,
                    on_start=reporter.sweep_started,
                    on_trial=on_trial,
                    on_trial_start=reporter.trial_started,
                )
        params = swept.params[swept.best.number] if swept else {}

        trained = None
        if "train" in selected:
            with reporter.stage("train", f"{cfg.train.num_processes} processes"):
                trained = train.run(spark, prepared, sweep.trial_config(cfg, params), run_dir)

        artifact = trained.artifact if trained else None  # the model infer deploys
        if swept and not trained:
            artifact = artifacts.ModelArtifact(
                model=sweep.trial_config(cfg, params)["model"],
                input_shape=prepared.input_shape,
                num_classes=prepared.num_classes,
                weights=swept.best.weights,
            )
        if artifact:
            artifacts.save(artifact, run_dir / "model")

        predicted = None
        if "infer" in selected:
            with reporter.stage("infer"):
                with reporter.spark_tasks(spark, f"infer {prepared.rows['test']} rows"):
                    predicted = infer.run(spark, prepared, artifact, cfg.inference,
                                          run_dir / "predictions.parquet")

        with reporter.stage("report"):
            timings = {**reporter.timings, "total": time.perf_counter() - start}
            summary = report.run(run_dir, prepared, swept, predicted, timings, trained)
        tracker.finish(run_dir, summary)
    reporter.final(summary)
    return summary


def _link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (the cache entry), replacing an older link."""
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link, target_is_directory=True)
