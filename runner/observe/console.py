"""What the user sees: a rich live display on a terminal (``LiveView``), plain lines
otherwise (``PlainLog``); both are ``RunEvents`` sinks over one ``TrialBoard``."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from runner.errors import first_line
from runner.observe.events import RunEvents
from runner.observe.result import RunResult
from runner.tasks import gain
from runner.train.trial import TrialOutcome

TABLE_ROWS = 12  # trials shown live unless verbose


def view(
    metric: str,
    direction: str = "maximize",
    quiet: bool = False,
    verbose: bool = False,
    prefix: str = "",
    console: Console | None = None,
) -> RunEvents:
    """The run's view: nothing when ``quiet``, the live display on a terminal, else plain
    lines (also with a ``prefix``: jobs running beside each other each print their lines)."""
    if quiet:
        return RunEvents()
    console = console or Console()
    board = TrialBoard(metric, direction)
    if console.is_terminal and not prefix:
        return LiveView(board, console, verbose)
    return PlainLog(board, verbose, prefix)


class TrialBoard:
    """The trials as they start, finish or are lost, ranked by the run's metric."""

    def __init__(self, metric: str, direction: str = "maximize"):
        self.rank_by(metric, direction)
        self.trials: list[tuple[TrialOutcome, dict[str, Any]]] = []
        self.running: dict[int, tuple[dict[str, Any], float]] = {}  # number -> params, start
        self.lost: list[tuple[int, int, dict[str, Any]]] = []  # lost, re-asked as, params

    def rank_by(self, metric: str, direction: str) -> None:
        self.metric = metric
        self._sign = -gain(direction)  # sorted ascending: best first

    def started(self, number: int, params: dict[str, Any]) -> None:
        self.running[number] = (params, time.perf_counter())

    def finished(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        self.running.pop(outcome.number, None)
        self.trials.append((outcome, params))

    def lose(self, number: int, reasked_as: int) -> None:
        params, _ = self.running.pop(number, ({}, 0.0))
        self.lost.append((number, reasked_as, params))

    def ranked(self) -> list[tuple[TrialOutcome, dict[str, Any]]]:
        """Finished trials, complete ones first, best first."""
        return sorted(self.trials, key=self._rank)

    def counts(self) -> str:
        states = [o.state for o, _ in self.trials]
        return (
            f"[green]{states.count('COMPLETE')} done[/] "
            f"[yellow]{len(self.running)} running[/] "
            f"[red]{states.count('FAIL')} failed[/] [dim]{states.count('PRUNED')} pruned[/]"
        )

    def table(self, limit: int | None = None, title: str = "Trials") -> Table:
        """Finished trials best first, then running ones, then failed, pruned and lost ones."""
        table = Table(title=title, title_justify="left")
        for col in ("#", "status", self.metric, "epochs", "device", "duration", "params"):
            table.add_column(col, justify="right" if col in ("#", "epochs", "duration") else "left")
        ranked = self.ranked()
        done = [tp for tp in ranked if tp[0].state == "COMPLETE"]
        rest = [tp for tp in ranked if tp[0].state != "COMPLETE"]
        rows: list[tuple[Any, ...]] = [
            (
                str(o.number),
                o.state,
                _fmt(o.metrics.get(self.metric)),
                str(len(o.history)),
                o.device,
                f"{o.duration_s:.1f}s",
                format_params(p),
                None,
            )
            for o, p in done
        ]
        now = time.perf_counter()
        rows += [
            (str(n), "RUNNING", "-", "-", "-", f"{now - t0:.1f}s", format_params(p), "yellow")
            for n, (p, t0) in sorted(self.running.items())
        ]
        rows += [
            (
                str(o.number),
                o.state,
                "-",
                str(len(o.history)),
                o.device,
                f"{o.duration_s:.1f}s",
                format_params(p),
                "red" if o.state == "FAIL" else "dim",
            )
            for o, p in rest
        ]
        rows += [
            (str(n), f"LOST → re-asked as #{again}", "-", "-", "-", "-", format_params(p), "dim")
            for n, again, p in self.lost
        ]
        for i, (*cells, style) in enumerate(rows[:limit]):
            table.add_row(*cells, style="bold green" if i == 0 and done else style)
        return table

    def summary(self, result: RunResult) -> list[str]:
        """The closing summary's lines."""
        lines = []
        if result.best is not None and result.sweep is not None:
            sweep = result.sweep
            lines += [
                f"best trial: #{result.best.number}  {format_params(result.best.params)}",
                f"val {self.metric}: {result.best.metrics[self.metric]:.4f}",
                "trials: "
                + ", ".join(f"{n} {state.lower()}" for state, n in sweep.trials.items())
                + (f" (pruning saved {sweep.epochs_saved} epochs)" if sweep.epochs_saved else ""),
            ]
        if self.lost:
            lines.append(
                "lost: " + ", ".join(f"#{n} → re-asked as #{again}" for n, again, _ in self.lost)
            )
        if result.train is not None:
            lines.append(
                f"trained: {result.train.num_processes} processes on {result.train.device}, "
                f"train_loss {result.train.metrics['train_loss']:.4f}"
            )
        lines += [f"{k}: {v:.4f}" for k, v in (result.test_metrics or {}).items()]
        if result.model_path is not None:  # stages=[infer]: the predictions are the result
            assert result.predictions is not None
            lines.append(f"{result.predictions.rows} predictions -> {result.predictions.path}")
            lines += result.predictions.notes
        lines += [
            "stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings_s.items()),
            f"run dir: {result.run_dir}",
        ]
        if result.model_path is None:
            lines.append(f"report: {result.run_dir}/report.html")
        return lines

    def _rank(self, item: tuple[TrialOutcome, dict[str, Any]]) -> tuple[bool, float]:
        outcome = item[0]
        return outcome.state != "COMPLETE", self._sign * outcome.metrics.get(self.metric, 0.0)


class PlainLog(RunEvents):
    """Each event one plain line (CI logs, pipes, jobs beside each other), no escape codes."""

    def __init__(self, board: TrialBoard, verbose: bool = False, prefix: str = ""):
        self.board = board
        self.verbose = verbose
        self.prefix = prefix

    def stage_started(self, name: str, detail: str) -> None:
        self._line(f"[stage] {name} started{(' - ' + detail) if detail else ''}")

    def stage_finished(self, name: str, seconds: float, failed: bool) -> None:
        if not failed:
            self._line(f"[stage] {name} done in {seconds:.1f}s")

    def info(self, message: str) -> None:
        self._line(message)

    def note(self, message: str) -> None:
        self._line(message)

    def ranked_by(self, metric: str, direction: str) -> None:
        self.board.rank_by(metric, direction)

    def sweep_started(self, n_trials: int, parallelism: int) -> None:
        self._line(f"[sweep] {n_trials} trials, {parallelism} at a time")

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self.board.started(number, params)
        self._line(f"[trial {number}] started {format_params(params)}")

    def trial_lost(self, number: int, reasked_as: int) -> None:
        self.board.lose(number, reasked_as)
        self._line(f"[trial {number}] LOST → re-asked as #{reasked_as}")

    def trial_finished(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        self.board.finished(outcome, params)
        self._line(_finished_line(outcome, params, self.board.metric))
        if self.verbose:
            for h in outcome.history:
                self._line(
                    f"[trial {outcome.number}] epoch {h['epoch']} "
                    + " ".join(f"{k}={v:.4f}" for k, v in h.items() if k != "epoch")
                )

    def run_finished(self, result: RunResult) -> None:
        metric = self.board.metric
        complete = [tp for tp in self.board.ranked() if tp[0].state == "COMPLETE"]
        for outcome, params in complete[:10]:
            self._line(
                f"[leaderboard] #{outcome.number} {metric}="
                f"{outcome.metrics[metric]:.4f} {format_params(params)}"
            )
        for line in self.board.summary(result):
            self._line(f"[summary] {line}")

    def _line(self, message: str) -> None:
        print(f"{self.prefix}{message}", flush=True)


class LiveView(RunEvents):
    """One ``rich.live.Live`` display: the stages with their status and elapsed time,
    progress bars with ETA (Spark tasks of preprocessing and inference; trials done /
    running / failed / pruned of total) and the trial table, best first; at the end the
    leaderboard and the summary panel."""

    def __init__(self, board: TrialBoard, console: Console, verbose: bool = False):
        self.board = board
        self.console = console
        self.verbose = verbose
        self._stages: dict[str, tuple[str, float]] = {}  # name -> status, start or seconds
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self._trial_task: Any = None
        self._live: Live | None = None
        self._finished = False  # the leaderboard replaces the live trial table

    def __enter__(self) -> "LiveView":
        self._live = Live(self, console=self.console, refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            if exc[0] is None:  # the final leaderboard follows; on failure the table stays
                self._finished = True
                self._live.refresh()
            self._live.__exit__(*exc)
            self._live = None

    def __rich__(self) -> Group:
        parts: list[Any] = [self._stage_list()]
        if self._progress.tasks:
            parts.append(self._progress)
        if (self.board.trials or self.board.running) and not self._finished:
            parts.append(self.board.table(limit=None if self.verbose else TABLE_ROWS))
        return Group(*parts)

    def stage_started(self, name: str, detail: str) -> None:
        self._stages[name] = ("running", time.perf_counter())

    def stage_finished(self, name: str, seconds: float, failed: bool) -> None:
        self._stages[name] = ("failed" if failed else "done", seconds)

    @contextmanager
    def spark_tasks(self, spark: Any, description: str) -> Iterator[None]:
        """A live bar of the Spark tasks run inside the block.

        The block's jobs run in their own job group, so the bar counts exactly their tasks
        and its final count does not depend on when the status tracker was polled.
        Over Spark Connect (no SparkContext) no bar.
        """
        tracker = _status_tracker(spark) if self._live is not None else None
        if tracker is None:
            yield
            return
        context = spark.sparkContext
        group = f"spark-dl-runner-{description}-{uuid.uuid4().hex[:8]}"
        outer = context.getLocalProperty("spark.jobGroup.id")
        task = self._progress.add_task(description, total=None, counts="spark tasks")

        def update() -> int:
            done = total = 0
            for job_id in tracker.getJobIdsForGroup(group):
                job = tracker.getJobInfo(job_id)
                for stage_id in job.stageIds if job is not None else []:
                    stage = tracker.getStageInfo(stage_id)
                    if stage is not None:
                        done, total = done + stage.numCompletedTasks, total + stage.numTasks
            if total:
                self._progress.update(task, completed=done, total=total)
            return total

        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.25):
                update()

        context.setJobGroup(group, description)
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            context.setLocalProperty("spark.jobGroup.id", outer)
            if not update():  # nothing ran on Spark (e.g. a cache hit)
                self._progress.remove_task(task)

    def note(self, message: str) -> None:
        if self._live is not None:
            self._live.console.print(message, markup=False)
        else:
            self.console.print(message, markup=False)

    def ranked_by(self, metric: str, direction: str) -> None:
        self.board.rank_by(metric, direction)

    def sweep_started(self, n_trials: int, parallelism: int) -> None:
        self._trial_task = self._progress.add_task(
            "trials", total=n_trials, counts=self.board.counts()
        )

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self.board.started(number, params)
        self._update_trials()

    def trial_lost(self, number: int, reasked_as: int) -> None:
        self.board.lose(number, reasked_as)
        self._update_trials()
        self.note(f"[trial {number}] LOST → re-asked as #{reasked_as}")  # under the table too

    def trial_finished(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        self.board.finished(outcome, params)
        if self._trial_task is not None:
            self._progress.advance(self._trial_task)
        self._update_trials()

    def run_finished(self, result: RunResult) -> None:
        self.__exit__(None, None, None)
        self.console.print(self.board.table(limit=10, title="Leaderboard"))
        self.console.print(
            Panel("\n".join(self.board.summary(result)), title="Summary", expand=False)
        )

    def _update_trials(self) -> None:
        if self._trial_task is not None:
            self._progress.update(self._trial_task, counts=self.board.counts())

    def _stage_list(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        now = time.perf_counter()
        for name, (status, value) in self._stages.items():
            elapsed = now - value if status == "running" else value
            style = {"done": "green", "failed": "red"}.get(status, "yellow")
            grid.add_row(f"[bold]{name}[/]", f"[{style}]{status}[/]", f"{elapsed:.1f}s")
        return grid


def _finished_line(outcome: TrialOutcome, params: dict[str, Any], metric: str) -> str:
    value = outcome.metrics.get(metric)
    shown = f"{metric}={value:.4f}" if value is not None else first_line(outcome.error)
    return (
        f"[trial {outcome.number}] {outcome.state} {shown} "
        f"({outcome.duration_s:.1f}s, {len(outcome.history)} epochs, {outcome.device}, "
        f"pid {outcome.pid}) {format_params(params)}"
    )


def format_params(params: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _fmt(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"


def _status_tracker(spark: Any) -> Any:
    try:
        return spark.sparkContext.statusTracker()
    except Exception:  # Spark Connect has no SparkContext
        return None
