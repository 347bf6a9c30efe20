"""Stage 2: hyperparameter trials as Spark tasks, sampled and scored by Optuna.

The driver keeps ``parallelism`` trials in flight: each driver thread asks Optuna for
a trial, runs it as a one-task Spark job (a one-row DataFrame of the trial's spec
-> ``mapInPandas``), then tells Optuna the result. DataFrame-only, so the same code
runs over Spark Connect; trials run in executors' Python workers, never the driver.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import search_space
from runner.config import as_plain
from runner.errors import RunnerError
from runner.preprocess import PreparedData
from runner.trial import TrialOutcome, TrialSpec

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

_SPEC_SCHEMA = "spec string"
_OUTCOME_SCHEMA = (
    "number int, state string, metrics string, history string, error string, "
    "duration_s double, pid int, host string, device string, weights binary"
)


@dataclass(frozen=True)
class SweepResult:
    """All trials in the order they were numbered, and the best one."""

    trials: list[TrialOutcome]
    best: TrialOutcome
    params: dict[int, dict[str, Any]]  # trial number -> sampled params
    parallelism: int

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out


def validate(cfg: Any) -> list[str]:
    """Problems with the search settings, each naming its key."""
    problems = []
    if cfg.search.n_trials < 1:
        problems.append(f"search.n_trials: must be at least 1, got {cfg.search.n_trials}")
    if cfg.search.parallelism is not None and cfg.search.parallelism < 1:
        problems.append(f"search.parallelism: must be at least 1 or null, got {cfg.search.parallelism}")
    if cfg.search.direction not in ("maximize", "minimize"):
        problems.append(f"search.direction: {cfg.search.direction!r} is not maximize or minimize")
    if cfg.search.sampler not in search_space.SAMPLERS:
        problems.append(
            f"search.sampler: {cfg.search.sampler!r} is not one of {', '.join(search_space.SAMPLERS)}"
        )
    try:
        space = search_space.parse(cfg.search.params)
    except RunnerError as err:
        return problems + [str(err)]
    for key in space:
        if _select(cfg, key) is _MISSING_KEY:
            problems.append(
                f"search.params.{key}: no such key in the config; search over keys under "
                "model., optimizer. or train."
            )
    return problems


def run(
    spark: "SparkSession",
    prepared: PreparedData,
    cfg: Any,
    run_dir: Path,
    on_start: Callable[[int, int], None] = lambda n_trials, parallelism: None,
    on_trial: Callable[[TrialOutcome, dict[str, Any]], None] = lambda outcome, params: None,
    on_trial_start: Callable[[int, dict[str, Any]], None] = lambda number, params: None,
) -> SweepResult:
    """Run ``cfg.search.n_trials`` trials, ``parallelism`` at a time; return them all.

    The Optuna study is journaled to ``run_dir/study.journal``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space.parse(cfg.search.params)
    n_trials = cfg.search.n_trials
    if cfg.search.sampler == "grid":
        n_trials = min(n_trials, search_space.grid_size(space))
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run_dir / "study.journal"))
    )
    study = search_space.create_study(
        cfg.search.sampler,
        cfg.search.seed,
        space,
        storage=storage,
        study_name="sweep",
        direction=cfg.search.direction,
    )
    parallelism = min(n_trials, cfg.search.parallelism or _task_slots(spark))
    on_start(n_trials, parallelism)
    lock = threading.Lock()
    outcomes: dict[int, TrialOutcome] = {}
    params: dict[int, dict[str, Any]] = {}
    asked = [0]

    def worker() -> None:
        while True:
            with lock:
                if asked[0] >= n_trials:
                    return
                asked[0] += 1
                trial = study.ask(space)
                on_trial_start(trial.number, dict(trial.params))
            spec = _spec(cfg, prepared, trial.number, trial.params)
            outcome = _run_on_executor(spark, spec)
            with lock:
                value = outcome.metrics.get(cfg.search.metric)
                if outcome.state == "COMPLETE" and value is not None:
                    study.tell(trial, value)
                else:
                    if outcome.state == "COMPLETE":
                        outcome.state = "FAIL"
                        outcome.error = f"search.metric: trial reported no {cfg.search.metric!r}"
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                outcomes[trial.number] = outcome
                params[trial.number] = dict(trial.params)
                on_trial(outcome, params[trial.number])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(parallelism)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    trials = [outcomes[n] for n in sorted(outcomes)]
    complete = [t for t in trials if t.state == "COMPLETE"]
    if not complete:
        first_error = trials[0].error.splitlines()[0] if trials and trials[0].error else "?"
        raise RunnerError(f"sweep: all {len(trials)} trials failed; first error: {first_error}")
    pick = max if cfg.search.direction == "maximize" else min
    best = pick(complete, key=lambda t: t.metrics[cfg.search.metric])
    return SweepResult(trials=trials, best=best, params=params, parallelism=parallelism)


def trial_config(cfg: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The ``model``/``optimizer``/``train`` sections with ``params`` applied."""
    from omegaconf import OmegaConf

    sections = OmegaConf.create(
        {k: as_plain(cfg[k]) for k in ("model", "optimizer", "train")}
    )
    for key, value in params.items():
        OmegaConf.update(sections, key, value, merge=False)
    return OmegaConf.to_container(sections, resolve=True)


def _spec(cfg: Any, prepared: PreparedData, number: int, params: dict[str, Any]) -> TrialSpec:
    sections = trial_config(cfg, params)
    return TrialSpec(
        number=number,
        params=params,
        model=sections["model"],
        optimizer=sections["optimizer"],
        train=sections["train"],
        data_path=prepared.path,
        input_shape=prepared.input_shape,
        num_classes=prepared.num_classes,
    )


def _run_on_executor(spark: "SparkSession", spec: TrialSpec) -> TrialOutcome:
    """One Spark job, one task: the trial runs in an executor's Python worker."""
    payload = json.dumps(spec.__dict__)
    try:
        rows = (
            spark.createDataFrame([(payload,)], _SPEC_SCHEMA)
            .mapInPandas(_execute_specs, _OUTCOME_SCHEMA)
            .collect()
        )
    except Exception as err:  # the task failed past Spark's retries (e.g. executors lost)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return TrialOutcome(number=spec.number, state="FAIL", error=f"Spark task failed: {first}")
    row = rows[0]
    return TrialOutcome(
        number=row.number,
        state=row.state,
        metrics=json.loads(row.metrics),
        history=json.loads(row.history),
        error=row.error,
        duration_s=row.duration_s,
        pid=row.pid,
        host=row.host,
        device=row.device,
        weights=bytes(row.weights),
    )


def _execute_specs(batches: Iterator["pd.DataFrame"]) -> Iterator["pd.DataFrame"]:
    """Runs on the executor: each spec row -> one trial -> one outcome row."""
    import pandas as pd

    from runner.trial import run_trial

    for batch in batches:
        rows = []
        for payload in batch["spec"]:
            raw = json.loads(payload)
            raw["input_shape"] = tuple(raw["input_shape"])
            outcome = run_trial(TrialSpec(**raw))
            rows.append(
                {
                    "number": outcome.number,
                    "state": outcome.state,
                    "metrics": json.dumps(outcome.metrics),
                    "history": json.dumps(outcome.history),
                    "error": outcome.error,
                    "duration_s": outcome.duration_s,
                    "pid": outcome.pid,
                    "host": outcome.host,
                    "device": outcome.device,
                    "weights": outcome.weights,
                }
            )
        yield pd.DataFrame(rows)


def _task_slots(spark: "SparkSession") -> int:
    from runner.spark import task_slots

    return task_slots(spark)


_MISSING_KEY = object()


def _select(cfg: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=_MISSING_KEY)
