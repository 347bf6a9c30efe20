"""Stage 2: hyperparameter trials as Spark tasks, sampled, pruned and scored by Optuna.

One Spark job runs ``parallelism`` slot tasks (a DataFrame of slot ids ->
``mapInPandas``, so it runs on every target, Spark Connect included). Each slot pulls
trials from the driver's :class:`~runner.tune.coordinator.Coordinator` until none are left,
so slots never idle while trials remain, and Python workers (with torch imported and
the data cached) are reused from trial to trial. Trials run on executors, never on
the driver. A failed trial is recorded and the sweep goes on. A Spark job that dies
loses the trials it was running: they are asked again in a new job, up to
``JOB_RETRIES`` times, and a sweep that still lacks trials fails saying how many. A
cluster whose executors are all gone for ``deploy.executor_wait_s``, or a Spark Connect
server that stopped answering, fails it at once with one line (resumable).

The study is journaled to ``run_dir/study.journal`` and each finished trial appended
to ``run_dir/trials.jsonl``: running the same run dir again finishes only the
missing trials.
"""

from __future__ import annotations

import json
import os
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from runner.tune import jsonl, search_space
from runner.serve.artifacts import atomic_write
from runner.config import as_plain
from runner.observe.events import RunEvents
from runner.tune.coordinator import REASKS, Coordinator, tell
from runner.errors import RunIncomplete, RunnerError, first_line, spark_cause, with_path
from runner.data.prepared import PreparedDataset
from runner.cluster.resources import slots_per_cluster
from runner.cluster.spark import (
    executors_gone,
    executors_watched,
    fair_share,
    interrupted,
    long_columns,
    server_lost,
    task_slots,
)
from runner.cluster.targets import Target, target_for
from runner.tasks import all_directions, gain, task_for
from runner.train.model import model_kwargs
from runner.train.trial import TrialOutcome, metric_directions
from runner.tune.trial_cost import TrialCost, training_work

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

JOB_RETRIES = 2  # new Spark jobs for the trials a failed one lost, before the sweep gives up


@dataclass(frozen=True)
class SweepResult:
    """All trials by number, the best one (with its weights) and what pruning saved."""

    trials: list[TrialOutcome]
    best: TrialOutcome
    params: dict[int, dict[str, Any]]  # trial number -> sampled params
    parallelism: int
    resumed: int  # trials taken over from an earlier, interrupted run
    epochs_run: int
    epochs_saved: int  # epochs pruned trials did not run

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out


def validate(cfg: Any) -> list[str]:
    """Problems with the search settings, each naming its key."""
    search = cfg.search
    problems = []
    if search.n_trials < 1:
        problems.append(f"search.n_trials: must be at least 1, got {search.n_trials}")
    if search.parallelism is not None and search.parallelism < 1:
        problems.append(f"search.parallelism: must be at least 1 or null, got {search.parallelism}")
    problems += _metric_problems(cfg)
    try:
        search_space.policies(search)
    except RunnerError as err:
        problems.append(str(err))
    if search.trial_timeout is not None and search.trial_timeout <= 0:
        problems.append("search.trial_timeout: must be positive seconds or null")
    try:
        space = search_space.parse(search.params)
    except RunnerError as err:
        return problems + [str(err)]
    for key in space:
        if key.split(".")[0] not in _TRIAL_SECTIONS or _select(cfg, key) is _MISSING_KEY:
            problems.append(
                f"search.params.{key}: no such key in the config; search over existing keys "
                "under model., optimizer. or train."
            )
    return problems


def _metric_problems(cfg: Any) -> list[str]:
    """``search.metric`` and ``search.direction`` against what the task's trials report (for
    ``task=auto``: what any task's trials report; the prepared data's task is checked again)."""
    search = cfg.search
    if search.direction not in (None, "maximize", "minimize"):
        return [
            f"search.direction: {search.direction!r} is not maximize or minimize "
            "(or null: the metric's own)"
        ]
    try:
        directions = all_directions(cfg.task)
    except RunnerError as err:
        return [str(err)]
    return _objective_problems(search, directions)


def _objective_problems(search: Any, directions: dict[str, str]) -> list[str]:
    if search.metric is None:
        return []
    if search.metric not in directions:
        return [
            f"search.metric: {search.metric!r} is not a metric of the task; choose one of "
            f"{', '.join(directions)}"
        ]
    wanted = directions[search.metric]
    if search.direction is not None and search.direction != wanted:
        return [
            f"search.direction: the task's {search.metric} is {wanted}d; "
            f"set search.direction={wanted} or leave it out"
        ]
    return []


def for_task(cfg: Any, prepared: PreparedDataset) -> Any:
    """A copy of ``cfg`` for the prepared data's task (a resolved task config): ``task``
    set to it (with ``train.class_weight=balanced``: its weights from the train split's
    counts), ``search.metric`` defaulted to the task's headline metric (``val_`` + the
    first of its ``directions``) and ``search.direction`` to that metric's.

    Raises:
        RunnerError: ``search.metric`` is not one of this task's metrics.
    """
    from omegaconf import OmegaConf

    task = prepared.task
    if cfg.train.get("class_weight") == "balanced":
        task = {**task, **task_for(task).balanced(prepared.meta)}
    directions = metric_directions(task_for(task))
    problems = _objective_problems(cfg.search, directions)
    if problems:
        raise RunnerError(
            problems[0] + f" (task {task['_target_'].rsplit('.', 1)[-1]}, "
            "chosen from the label; or set task=)"
        )
    resolved = OmegaConf.create(as_plain(cfg))
    resolved.task = task
    metric = cfg.search.metric or next(k for k in directions if k.startswith("val_"))
    resolved.search.metric = metric
    resolved.search.direction = directions[metric]
    return resolved


def run(
    spark: "SparkSession",
    prepared: PreparedDataset,
    cfg: Any,
    run_dir: Path,
    target: Target | None = None,
    events: RunEvents | None = None,
) -> SweepResult:
    """Run (or finish) ``cfg.search.n_trials`` trials, ``parallelism`` at a time, on ``target``
    (the GPU plan's; None: the one ``cfg.deploy`` names), telling ``events`` the sweep's start,
    each trial's start, end or loss, and notes (records repaired, executors lost).

    Raises:
        RunIncomplete: Spark jobs kept failing and some trials never ran.
        RunnerError: every trial failed.
    """
    import optuna

    from runner.tune import journal
    from runner.tune.grid import GridSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    events = events or RunEvents()
    cfg = for_task(cfg, prepared)
    target = target or target_for(cfg.deploy)
    search = cfg.search
    space = search_space.parse(search.params)
    sampler, pruner = search_space.policies(search)
    n_trials = search.n_trials
    if isinstance(sampler, GridSampler):
        n_trials = min(n_trials, search_space.grid_size(space))
    run_dir.mkdir(parents=True, exist_ok=True)
    for records in (run_dir / "study.journal", run_dir / "trials.jsonl"):
        if note := jsonl.repair(records):
            events.note(note)
    log = _TrialLog(run_dir, search.metric, search.direction)
    study = search_space.create_study(
        sampler,
        space,
        storage=journal.storage(run_dir / "study.journal"),
        study_name="sweep",
        direction=search.direction,
        pruner=pruner,
    )
    drawn = sum(t.state != optuna.trial.TrialState.WAITING for t in study.trials)
    if drawn:  # resumed: continue the sampler's draws
        study.sampler = search_space.resumed_sampler(search.sampler, drawn) or sampler
    earlier = log.read()
    _close_interrupted(study, {n: o for n, (o, _) in earlier.items()}, search.metric)
    parallelism = min(
        max(1, n_trials - len(earlier)),
        search.parallelism or slots_per_cluster(fair_share(task_slots(spark)), target.cfg),
    )
    events.sweep_started(n_trials, parallelism)
    task = as_plain(cfg.task)
    told = model_kwargs(task, prepared)

    def finished(outcome: TrialOutcome, params: dict[str, Any]) -> None:
        log.append(outcome, params)
        events.trial_finished(outcome, params)

    coordinator = Coordinator(
        study=study,
        space=space,
        n_trials=n_trials,
        metric=search.metric,
        make_spec=lambda number, params: _spec(cfg, prepared, number, params, task, told),
        on_finish=finished,
        on_start=events.trial_started,
        on_lost=events.trial_lost,
        pruning=not isinstance(pruner, optuna.pruners.NopPruner),
        cost=(
            TrialCost(lambda params: _work(cfg, prepared, params, told))
            if search_space.result_blind(sampler)
            else None
        ),
        started=len(earlier),
        outcomes={n: o for n, (o, _) in earlier.items()},
        params={n: p for n, (_, p) in earlier.items()},
    )
    for outcome, params in earlier.values():
        events.trial_finished(outcome, params)
    failures: list[str] = []
    with executors_watched(spark, target, events.note) as executors_lost:
        while len(coordinator.outcomes) < n_trials and len(failures) <= JOB_RETRIES:
            slots = min(parallelism, n_trials - len(coordinator.outcomes))
            failure = _run_slots(spark, coordinator, slots, target)
            if coordinator.storage_error is not None:  # one line: the path and the cause
                raise coordinator.storage_error
            if coordinator.lose_unfinished() or failure:
                failures.append(failure or "its slots ended with trials unfinished")
            if executors_lost.is_set():
                raise executors_gone(target.cfg, run_dir)
            if failure and target.remote and (lost := server_lost(target.cfg, run_dir)):
                raise lost
    if coordinator.refused:
        events.note(
            f"note: the trial endpoint refused {coordinator.refused} calls without the "
            "sweep's token"
        )
    missing = n_trials - len(coordinator.outcomes)
    if missing:
        raise RunIncomplete(
            f"sweep: {missing} of {n_trials} trials never ran: {len(failures)} Spark jobs failed "
            f"(last: {failures[-1]}); rerun the same command with hydra.run.dir={run_dir} "
            "to resume"
        )

    trials = [coordinator.outcomes[n] for n in sorted(coordinator.outcomes)]
    if not any(t.state == "COMPLETE" for t in trials):
        errors = [first_line(t.error) for t in trials if t.error] or ["none recorded"]
        raise RunnerError(f"sweep: all {len(trials)} trials failed; first error: {errors[0]}")
    best = log.best()
    epochs = int(cfg.train.epochs)
    return SweepResult(
        trials=trials,
        best=best,
        params=coordinator.params,
        parallelism=parallelism,
        resumed=len(earlier),
        epochs_run=sum(len(t.history) for t in trials),
        epochs_saved=sum(epochs - len(t.history) for t in trials if t.state == "PRUNED"),
    )


def trial_config(cfg: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The ``model``/``optimizer``/``train`` sections with ``params`` applied."""
    from omegaconf import OmegaConf

    sections = OmegaConf.create({k: as_plain(cfg[k]) for k in _TRIAL_SECTIONS})
    for key, value in params.items():
        OmegaConf.update(sections, key, value, merge=False)
    return cast("dict[str, Any]", OmegaConf.to_container(sections, resolve=True))


class _TrialLog:
    """``trials.jsonl`` (one line per finished trial) and the best trial's weights.

    ``best_trial.pt`` always holds the weights of the best trial recorded: a new best's
    weights are written first beside it (``best_trial.N.pt``), then its line, then they
    are renamed over it; :meth:`read` finishes (or drops) what a crash left between.
    """

    def __init__(self, run_dir: Path, metric: str, direction: str):
        self.path = run_dir / "trials.jsonl"
        self.best_weights = run_dir / "best_trial.pt"
        self.metric = metric
        self.sign = gain(direction)
        self._best: TrialOutcome | None = None

    def read(self) -> dict[int, tuple[TrialOutcome, dict[str, Any]]]:
        """Trials an earlier run of this run dir finished, by number."""
        earlier = {}
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        for line in lines:
            record = json.loads(line)
            params = record.pop("params")
            outcome = TrialOutcome(**record)
            earlier[outcome.number] = (outcome, params)
            if self._better(outcome):
                self._best = outcome
        for candidate in self.path.parent.glob("best_trial.*.pt"):
            if self._best is not None and candidate == self._candidate(self._best.number):
                _replace(candidate, self.best_weights)  # recorded, not yet renamed
            else:
                candidate.unlink()  # a trial that was never recorded, or not the best
        return earlier

    def append(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        better = self._better(outcome)
        if better:
            atomic_write(self._candidate(outcome.number), outcome.weights)
        jsonl.append(self.path, {**outcome.as_record(), "params": params})
        if better:
            _replace(self._candidate(outcome.number), self.best_weights)
            self._best = outcome

    def best(self) -> TrialOutcome:
        assert self._best is not None
        self._best.weights = self.best_weights.read_bytes()
        return self._best

    def _better(self, outcome: TrialOutcome) -> bool:
        if outcome.state != "COMPLETE":
            return False
        score = self.sign * outcome.metrics[self.metric]
        return self._best is None or score > self.sign * self._best.metrics[self.metric]

    def _candidate(self, number: int) -> Path:
        return self.best_weights.with_name(f"best_trial.{number}.pt")


def _replace(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as err:
        raise with_path(err, target) from err


def _close_interrupted(study: Any, finished: dict[int, TrialOutcome], metric: str) -> None:
    """Close the trials an interrupted run left RUNNING: one it recorded (it crashed between
    ``trials.jsonl`` and the journal) with its recorded outcome; any other is lost, failed
    and its params asked again."""
    import optuna

    State = optuna.trial.TrialState
    for trial in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
        outcome = finished.get(trial.number)
        if outcome is None:
            study.tell(trial.number, state=State.FAIL)
            study.enqueue_trial(trial.params, user_attrs={REASKS: trial.number})
        else:
            tell(study, trial.number, outcome, metric)


def _work(
    cfg: Any, prepared: PreparedDataset, params: dict[str, Any], model_kwargs: dict[str, Any]
) -> tuple[float, float]:
    """A trial's optimizer steps and training FLOPs, for its estimated length."""
    sections = trial_config(cfg, params)
    train = sections["train"]
    return training_work(
        sections["model"],
        prepared.input_shape,
        model_kwargs,
        int(train["epochs"]),
        int(train["batch_size"]),
        prepared.rows["train"],
    )


def _spec(
    cfg: Any,
    prepared: PreparedDataset,
    number: int,
    params: dict[str, Any],
    task: dict[str, Any],
    model_kwargs: dict[str, Any],
) -> dict:
    sections = trial_config(cfg, params)
    return {
        "number": number,
        "params": params,
        "model": sections["model"],
        "optimizer": sections["optimizer"],
        "train": sections["train"],
        "entry": prepared.uri,
        "input_shape": list(prepared.input_shape),
        "task": task,
        "model_kwargs": model_kwargs,
        "metric": cfg.search.metric,
        "timeout_s": cfg.search.trial_timeout,
    }


_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def endpoint_host(spark: "SparkSession") -> str:
    """The address the trial endpoint binds: the driver address Spark gives its executors
    (``spark.driver.host``, else ``SPARK_LOCAL_IP``), never a wildcard that would open the
    endpoint on every interface."""
    for host in (spark.conf.get("spark.driver.host", None), os.environ.get("SPARK_LOCAL_IP")):
        if host and host.strip() not in _WILDCARDS:
            return host.strip()
    return "127.0.0.1"


def _run_slots(
    spark: "SparkSession", coordinator: Coordinator, slots: int, target: Target
) -> str | None:
    """One Spark job of ``slots`` tasks, each pulling trials until none are left; why the
    job failed (past Spark's task retries), or None."""
    from runner.cluster.resources import trial_profile

    server = coordinator.serve(endpoint_host(spark))
    try:
        profile = trial_profile(target)
        slot_ids = spark.range(slots, numPartitions=slots)
        kwargs = {"profile": profile} if profile is not None else {}
        slot_ids.mapInPandas(
            _slot_task(
                server.url, server.token, int(target.cfg.cpus_per_trial), coordinator.pruning
            ),
            long_columns("slot", "trials"),
            **kwargs,
        ).collect()
    except Exception as err:  # the job failed past Spark's task retries, or Ctrl-C
        if interrupted():  # stop here: the trials handed out are resumed, not lost
            raise KeyboardInterrupt from None
        return spark_cause(err)
    finally:
        server.close()
    return None


def _slot_task(
    url: str, token: str, cpus: int, pruning: bool
) -> Callable[[Iterator["pd.DataFrame"]], Iterator["pd.DataFrame"]]:
    """The executor side: pull a trial, train it, send the outcome; repeat.

    With a pruner, every epoch's metric goes to the driver, whose answer may stop the trial.
    """

    def run_slot(batches: Iterator["pd.DataFrame"]) -> Iterator["pd.DataFrame"]:
        import signal

        import pandas as pd
        import torch
        from pyspark import TaskContext

        from runner.cluster.resources import device_for, task_gpu
        from runner.train.trial import TrialSpec, run_trial, warm_up

        # A Ctrl-C on the terminal reaches local workers too: the driver stops them, quietly.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        context = TaskContext.get()
        assert context is not None  # in a Spark task
        slot = context.partitionId()  # = its row of spark.range: no wait for the row (~40 ms)
        gpu = task_gpu(context)
        device = device_for(gpu)
        torch.set_num_threads(max(1, cpus))
        warm_up()
        driver = xmlrpc.client.ServerProxy(url, allow_none=True)
        done = 0
        while payload := driver.next_trial(token, slot, context.attemptNumber()):
            spec = TrialSpec.from_json(str(payload))
            outcome = run_trial(
                spec, device, report=_reporter(driver, token, spec) if pruning else None
            )
            outcome.gpu = gpu
            driver.finish(
                token, json.dumps(outcome.as_record()), xmlrpc.client.Binary(outcome.weights)
            )
            done += 1
        # Read the input to its end: a Python worker that leaves input unread is not
        # reused, and the next sweep would pay a new process and its imports.
        for _ in batches:
            pass
        yield pd.DataFrame({"slot": [slot], "trials": [done]})

    return run_slot


def _reporter(
    driver: xmlrpc.client.ServerProxy, token: str, spec: Any
) -> Callable[[int, float], bool]:
    return lambda epoch, value: bool(driver.report(token, spec.number, epoch, value))


_TRIAL_SECTIONS = ("model", "optimizer", "train")
_MISSING_KEY = object()


def _select(cfg: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=_MISSING_KEY)
