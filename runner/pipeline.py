"""The recipe: preprocess -> sweep -> train -> infer -> report; ``stages`` picks which."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import stages
from runner.cluster import resources
from runner.cluster.spark import build_session, experiment
from runner.cluster.targets import target_for
from runner.config import as_plain
from runner.data import preprocess, sources
from runner.data.prepared import PreparedDataset, location
from runner.errors import RunnerError
from runner.observe import summary, tracking
from runner.observe.console import Reporter
from runner.serve import artifacts, infer
from runner.tasks import Classification, Task, is_auto, task_for
from runner.train import augment, retrain, trial
from runner.train.model import build_problems, input_problems, model_kwargs
from runner.tune import sweep

if TYPE_CHECKING:
    from runner.serve.model import ScoringModel


def validate(cfg: Any, out: Path | None = None) -> None:
    """Every problem with the config (and its output path ``out``) at once, before Spark starts."""
    problems = (
        stages.validate(cfg)
        + target_for(cfg.deploy).validate()
        + preprocess.validate(cfg.data)
        + sweep.validate(cfg)
        + trial.validate(cfg)
        + tracking.validate(cfg)
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


def run(cfg: Any, run_dir: Path, original_cwd: Path, prefix: str = "") -> dict[str, Any]:
    """Run the experiment's stages (or, with ``stages=[infer]``, a saved model) into ``run_dir``.

    ``prefix`` starts each plain output line, and turns the live display off: jobs that
    run beside each other (hydra/launcher=spark) each print their lines.
    """
    out = infer.output_path(cfg.inference, run_dir, original_cwd)
    if stages.saved_model(cfg):
        return run_infer(cfg, run_dir, original_cwd, out)
    validate(cfg, out)
    start = time.perf_counter()
    reporter = Reporter(
        cfg.search.metric or "val_loss",
        cfg.search.direction or "minimize",
        quiet=cfg.quiet,
        verbose=cfg.verbose,
        prefix=prefix,
    )
    cache_root = location(cfg.data.cache_dir, original_cwd)
    with tracking.start(cfg, run_dir, original_cwd) as tracker, reporter, experiment(run_dir.name):
        gpu_plan = resources.plan(target_for(cfg.deploy))  # cfg.deploy stays as saved
        if gpu_plan.note:
            reporter.info(f"[deploy] {gpu_plan.note}")
        target = gpu_plan.target
        with reporter.stage("spark", target.cfg.master):
            spark = build_session(target, run_dir / "logs")

        with reporter.stage("preprocess", cfg.data.name):
            with reporter.spark_tasks(spark, "preprocess"):
                prepared = preprocess.run(spark, cfg.data, cache_root, cfg.task)
            _link(run_dir / "prepared", prepared.local_path())
        cfg = sweep.for_task(cfg, prepared)  # the task the label chose, its metric
        reporter.rank_by(cfg.search.metric, cfg.search.direction)
        problems = build_problems(
            as_plain(cfg.model),
            prepared.input_shape,
            model_kwargs(cfg.task, prepared),
        )
        if problems:  # before any trial: the model must build for this data and task
            raise RunnerError(problems[0])
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
                    target=target,
                    on_start=reporter.sweep_started,
                    on_trial=on_trial,
                    on_trial_start=reporter.trial_started,
                    on_trial_lost=reporter.trial_lost,
                    on_note=reporter.note,
                )
        params = swept.params[swept.best.number] if swept else {}

        trained = None
        if "train" in selected:
            with reporter.stage("train", f"{cfg.train.num_processes} processes"):
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
            with reporter.stage("infer"):
                test_rows = f" {prepared.rows['test']} rows" if cfg.inference.data is None else ""
                assert artifact is not None  # stages.validate: infer needs sweep or train
                with reporter.spark_tasks(spark, f"infer{test_rows}"):
                    predicted = _score(spark, cfg.inference, artifact, prepared, out)
            for note in predicted.notes():
                reporter.info(f"[infer] {note}")

        if artifact:  # after infer: a run that failed leaves no model/ (trials.jsonl resumes it)
            _save_model(artifact, run_dir / "model", cfg.inference.torchscript)

        with reporter.stage("report"):
            timings = {**reporter.timings, "total": time.perf_counter() - start}
            result = summary.run(
                run_dir, prepared, swept, predicted, timings, trained, search=as_plain(cfg.search)
            )
        tracker.finish(run_dir, result)
    reporter.final(result)
    return result


def run_infer(cfg: Any, run_dir: Path, original_cwd: Path, out: Path) -> dict[str, Any]:
    """``stages=[infer]``: the model saved by the run at ``model_path`` over ``inference.data``."""
    start = time.perf_counter()
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
    if problems:
        raise RunnerError("; ".join(problems))
    reporter = Reporter(cfg.search.metric or "val_loss", quiet=cfg.quiet)
    with reporter:
        with reporter.stage("spark", cfg.deploy.master):
            spark = build_session(target_for(cfg.deploy), run_dir / "logs")
        with reporter.stage("infer", str(source)):
            if cfg.inference.streaming:
                predicted = _stream(spark, cfg.inference, artifact, entry, source, out)
            else:
                predicted = _score(spark, cfg.inference, artifact, entry, out)
    timings = {**reporter.timings, "total": time.perf_counter() - start}
    result = summary.run_infer(run_dir, source, predicted, timings)
    reporter.info(
        f"[summary] {predicted.rows} predictions -> {predicted.path}"
        + "".join(f"; {k} {v:.4f}" for k, v in predicted.metrics.items())
    )
    for note in predicted.notes():
        reporter.info(f"[summary] {note}")
    return result


def _scoring_model(
    cfg: Any, artifact: artifacts.ModelArtifact, prepared: PreparedDataset
) -> "ScoringModel":
    """The model as users load it (``runner.load_model``), with ``inference``'s settings."""
    from runner.serve.model import ScoringModel

    return ScoringModel(
        artifact,
        prepared,
        keep_columns=cfg.keep_columns,
        unseen=cfg.unseen,
        batch_size=cfg.batch_size,
    )


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

    model = _scoring_model(cfg, artifact, prepared)
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]
    return infer.stream(spark, model, cfg.data, out, source / "checkpoints" / key)


def _score(
    spark: Any, cfg: Any, artifact: artifacts.ModelArtifact, prepared: PreparedDataset, out: Path
) -> infer.InferenceResult:
    """The infer stage: the prepared test split, or ``inference.data`` through the model as
    users load it (``runner.load_model``: a ScoringModel), written to ``out``."""
    model = _scoring_model(cfg, artifact, prepared)
    if cfg.data is None:
        rows: infer.Rows = infer.PreparedSplit(prepared, "test")
    else:
        try:
            raw = sources.source_for(cfg.data).load(spark, cfg.data, labelled=False)
        except RunnerError as err:
            raise RunnerError(infer.inference_keyed(str(err))) from None
        rows = model.rows(_as_trained(raw, prepared.meta.get("features")))
    return infer.run(spark, rows, model.artifact, cfg, out)


def _as_trained(raw: sources.RawData, trained: list[str] | None) -> Any:
    """New rows with the columns the source names as features (``inference.data.text=body``)
    renamed to those the model was trained on, position by position."""
    if not raw.features or not trained or len(raw.features) != len(trained):
        return raw.df
    return raw.df.withColumnsRenamed(dict(zip(raw.features, trained)))


def _columns_task(cfg: Any) -> Task:
    """The task whose output columns ``inference.partition_by`` may name, before the data is
    prepared (``task=auto``: classification's, whose flat columns every task has)."""
    return Classification() if is_auto(cfg) else task_for(cfg)


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
