"""The recipe: preprocess -> sweep -> train -> infer -> report; ``stages`` picks which."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import recipe, stages
from runner.cluster.targets import target_for
from runner.config import as_plain
from runner.data import preprocess, sources
from runner.data.prepared import location
from runner.errors import RunnerError
from runner.observe import console, summary, trackers
from runner.observe.result import RunResult
from runner.serve import artifacts, infer
from runner.serve.score import score
from runner.tasks import Classification, Task, is_auto, task_for
from runner.train import augment, retrain, trial
from runner.train.model import build_problems, input_problems, model_kwargs
from runner.tune import sweep

if TYPE_CHECKING:
    pass


def validate(cfg: Any, out: Path | None = None) -> None:
    """Every problem with the config (and its output path ``out``) at once, before Spark starts."""
    problems = (
        stages.validate(cfg)
        + target_for(cfg.deploy).validate()
        + preprocess.validate(cfg.data)
        + sweep.validate(cfg)
        + trial.validate(cfg)
        + trackers.validate(cfg)
        + infer.validate(cfg.inference, out, _columns_task(cfg.task))
        + infer.data_problems(cfg.inference.data)
        + input_problems(cfg.model, sources.expected_input_shape(cfg.data))
        + augment.validate(cfg.train.augment, sources.expected_input_shape(cfg.data))
    )
    if "train" in stages.selected(cfg):
        problems += retrain.validate(cfg)
    if cfg.inference.streaming:
        problems.append(
            "inference.streaming: only for a saved model; set stages=[infer] model_path=RUN_DIR"
        )
    if problems:
        raise RunnerError("; ".join(problems))


def run(cfg: Any, run_dir: Path, original_cwd: Path, prefix: str = "") -> RunResult:
    """Run the experiment's stages into ``run_dir`` (``stages=[infer]``: ``runner.predict``).

    ``prefix`` starts each plain output line, and turns the live display off: jobs that
    run beside each other (hydra/launcher=spark) each print their lines.
    """
    out = infer.output_path(cfg.inference, run_dir, original_cwd)
    validate(cfg, out)
    artifacts.remove_temp_files(run_dir)  # what a killed run of this run dir half-wrote
    start = time.perf_counter()
    view = console.view(
        cfg.search.metric or "val_loss",
        cfg.search.direction or "minimize",
        quiet=cfg.quiet,
        verbose=cfg.verbose,
        prefix=prefix,
    )
    cache_root = location(cfg.data.cache_dir, original_cwd)
    with recipe.started(cfg, run_dir, original_cwd, view) as (events, spark, target):
        with events.stage("preprocess", cfg.data.name):
            with events.spark_tasks(spark, "preprocess"):
                prepared = preprocess.run(spark, cfg.data, cache_root, cfg.task)
            _link(run_dir / "prepared", prepared.local_path())
        cfg = sweep.for_task(cfg, prepared)  # the task the label chose, its metric
        events.ranked_by(cfg.search.metric, cfg.search.direction)
        problems = build_problems(
            as_plain(cfg.model),
            prepared.input_shape,
            model_kwargs(cfg.task, prepared),
        )
        if problems:  # before any trial: the model must build for this data and task
            raise RunnerError(problems[0])
        events.info(
            f"[preprocess] {'cache hit' if prepared.cache_hit else 'prepared'} "
            f"{prepared.fingerprint}: rows {prepared.rows}"
        )

        selected = stages.selected(cfg)
        swept = None
        if "sweep" in selected:
            with events.stage("sweep", f"{cfg.search.n_trials} trials"):
                swept = sweep.run(spark, prepared, cfg, run_dir, target=target, events=events)
        params = swept.params[swept.best.number] if swept else {}

        trained = None
        if "train" in selected:
            with events.stage("train", f"{cfg.train.num_processes} processes"):
                trained = retrain.run(
                    spark,
                    prepared,
                    sweep.trial_config(cfg, params),
                    as_plain(cfg.task),
                    run_dir,
                    is_local=target.is_local,
                )

        artifact = trained.artifact if trained else None  # the model infer deploys
        if swept and not trained:
            artifact = artifacts.ModelArtifact.trained(
                sweep.trial_config(cfg, params)["model"],
                as_plain(cfg.task),
                prepared,
                swept.best.weights,
            )
        predicted = None
        if "infer" in selected:
            with events.stage("infer"):
                test_rows = f" {prepared.rows['test']} rows" if cfg.inference.data is None else ""
                assert artifact is not None  # stages.validate: infer needs sweep or train
                with events.spark_tasks(spark, f"infer{test_rows}"):
                    predicted = score(spark, cfg.inference, artifact, prepared, out)
            for note in predicted.notes():
                events.info(f"[infer] {note}")

        if artifact:  # after infer: a run that failed leaves no model/ (trials.jsonl resumes it)
            _save_model(artifact, run_dir / "model", cfg.inference.torchscript)

        with events.stage("report"):
            timings = {**events.timings, "total": time.perf_counter() - start}
            result = summary.run(
                run_dir, prepared, swept, predicted, timings, trained, search=as_plain(cfg.search)
            )
        events.run_finished(result)
    return result


def _columns_task(cfg: Any) -> Task:
    """The task whose output columns ``inference.partition_by`` may name, before the data is
    prepared (``task=auto``: classification's, whose flat columns every task has)."""
    return Classification() if is_auto(cfg) else task_for(cfg)


def _save_model(artifact: artifacts.ModelArtifact, directory: Path, torchscript: bool) -> None:
    artifacts.save(artifact, directory)
    if torchscript:
        artifacts.export_torchscript(artifact, directory / "model.ts")


def _link(link: Path, target: Path | None) -> None:
    """Point ``link`` at ``target`` (the cache entry), replacing an older link; an entry
    that is not on this machine's disk (a remote URI) is not linked."""
    if link.is_symlink() or link.exists():
        link.unlink()
    if target is not None:
        os.symlink(target, link, target_is_directory=True)
