"""What the user sees: a rich live display on a terminal, plain lines otherwise."""

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

from runner.train.trial import TrialOutcome

TABLE_ROWS = 12  # trials shown live unless verbose


class Reporter:
    """Stage progress, the trial table as trials start and finish, and the final leaderboard.

    On a terminal everything is one ``rich.live.Live`` display: the stages with their
    status and elapsed time, progress bars with ETA (Spark tasks of preprocessing and
    inference; trials done / running / failed / pruned of total) and the trial table,
    best first. When stdout is not a terminal (CI logs, pipes), or with a ``prefix`` (jobs
    running beside each other), each event is one plain line, with no escape codes.
    """

    def __init__(
        self,
        metric: str,
        direction: str = "maximize",
        quiet: bool = False,
        console: Console | None = None,
        verbose: bool = False,
        prefix: str = "",
    ):
        self.console = console or Console()
        self.rank_by(metric, direction)
        self.prefix = prefix
        self.live_enabled = self.console.is_terminal and not quiet and not prefix
        self.quiet = quiet
        self.verbose = verbose
        self.timings: dict[str, float] = {}
        self._stages: dict[str, str] = {}
        self._stage_start: dict[str, float] = {}
        self._trials: list[tuple[TrialOutcome, dict[str, Any]]] = []
        self._running: dict[int, tuple[dict[str, Any], float]] = {}  # number -> params, start
        self._lost: list[tuple[int, int, dict[str, Any]]] = []  # lost, re-asked as, params
        self._n_trials = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._trial_task: Any = None
        self._live: Live | None = None
        self._finished = False  # the leaderboard replaces the live trial table

    def rank_by(self, metric: str, direction: str = "maximize") -> None:
        """The metric trials are shown and ranked by (known once the data chose the task)."""
        self.metric = metric
        self._sign = -1.0 if direction == "maximize" else 1.0

    def __enter__(self) -> "Reporter":
        if self.live_enabled:
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
        if (self._trials or self._running) and not self._finished:
            parts.append(self.trial_table(limit=None if self.verbose else TABLE_ROWS))
        return Group(*parts)

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        """Time a stage and show it running, then done."""
        self._stages[name] = "running"
        self._line(f"[stage] {name} started{(' - ' + detail) if detail else ''}")
        start = self._stage_start[name] = time.perf_counter()
        try:
            yield
        except BaseException:
            self._stages[name] = "failed"
            raise
        self.timings[name] = time.perf_counter() - start
        self._stages[name] = "done"
        self._line(f"[stage] {name} done in {self.timings[name]:.1f}s")

    @contextmanager
    def spark_tasks(self, spark: Any, description: str) -> Iterator[None]:
        """A live bar of the Spark tasks run inside the block (terminal only).

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

        def count() -> tuple[int, int]:
            done = total = 0
            for job_id in tracker.getJobIdsForGroup(group):
                job = tracker.getJobInfo(job_id)
                for stage_id in job.stageIds if job is not None else []:
                    stage = tracker.getStageInfo(stage_id)
                    if stage is not None:
                        done, total = done + stage.numCompletedTasks, total + stage.numTasks
            return done, total

        def update() -> int:
            done, total = count()
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

    def info(self, message: str) -> None:
        self._line(message)

    def note(self, message: str) -> None:
        """A line to see even under the live display (e.g. a record repaired on resume)."""
        if self._live is not None and not self.quiet:
            self._live.console.print(message, markup=False)
        else:
            self._line(message)

    def sweep_started(self, n_trials: int, parallelism: int) -> None:
        self._n_trials = n_trials
        self._trial_task = self._progress.add_task("trials", total=n_trials, counts=self._counts())
        self._line(f"[sweep] {n_trials} trials, {parallelism} at a time")

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self._running[number] = (params, time.perf_counter())
        self._update_trials()
        self._line(f"[trial {number}] started {format_params(params)}")

    def trial_lost(self, number: int, reasked_as: int) -> None:
        """A trial the infrastructure cut off, now running again under a new number."""
        params, _ = self._running.pop(number, ({}, 0.0))
        self._lost.append((number, reasked_as, params))
        self._update_trials()
        self.note(f"[trial {number}] LOST → re-asked as #{reasked_as}")  # under the live table too

    def trial_finished(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        self._running.pop(outcome.number, None)
        self._trials.append((outcome, params))
        if self._trial_task is not None:
            self._progress.advance(self._trial_task)
        self._update_trials()
        value = outcome.metrics.get(self.metric)
        shown = f"{self.metric}={value:.4f}" if value is not None else outcome.error.splitlines()[0]
        self._line(
            f"[trial {outcome.number}] {outcome.state} {shown} "
            f"({outcome.duration_s:.1f}s, {len(outcome.history)} epochs, {outcome.device}, "
            f"pid {outcome.pid}) {format_params(params)}"
        )
        if self.verbose:
            for h in outcome.history:
                self._line(
                    f"[trial {outcome.number}] epoch {h['epoch']} "
                    + " ".join(f"{k}={v:.4f}" for k, v in h.items() if k != "epoch")
                )

    def trial_table(self, limit: int | None = None, title: str = "Trials") -> Table:
        """Finished trials best first, then running ones, then failed or pruned ones."""
        table = Table(title=title, title_justify="left")
        for col in ("#", "status", self.metric, "epochs", "device", "duration", "params"):
            table.add_column(col, justify="right" if col in ("#", "epochs", "duration") else "left")
        ranked = sorted(self._trials, key=self._rank)
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
            for n, (p, t0) in sorted(self._running.items())
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
            for n, again, p in self._lost
        ]
        for i, (*cells, style) in enumerate(rows[:limit]):
            table.add_row(*cells, style="bold green" if i == 0 and done else style)
        return table

    def final(self, summary: dict[str, Any]) -> None:
        """The leaderboard and the summary panel, printed once at the end."""
        self.__exit__(None, None, None)
        if self.quiet:
            return
        best, trained = summary.get("best"), summary.get("train")
        lines = [
            *(
                [
                    f"best trial: #{best['number']}  {format_params(best['params'])}",
                    f"val {self.metric}: {best['metrics'][self.metric]:.4f}",
                    "trials: "
                    + ", ".join(f"{n} {state.lower()}" for state, n in summary["trials"].items())
                    + (
                        f" (pruning saved {summary['pruning']['epochs_saved']} epochs)"
                        if summary["pruning"]["epochs_saved"]
                        else ""
                    ),
                ]
                if best
                else []
            ),
            *(
                ["lost: " + ", ".join(f"#{n} → re-asked as #{again}" for n, again, _ in self._lost)]
                if self._lost
                else []
            ),
            *(
                [
                    f"trained: {trained['num_processes']} processes on {trained['device']}, "
                    f"train_loss {trained['metrics']['train_loss']:.4f}"
                ]
                if trained
                else []
            ),
            *(f"{k}: {v:.4f}" for k, v in summary.get("test_metrics", {}).items()),
            "stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in summary["timings_s"].items()),
            f"run dir: {summary['run_dir']}",
            f"report: {summary['run_dir']}/report.html",
        ]
        if self.live_enabled:
            self.console.print(self.trial_table(limit=10, title="Leaderboard"))
            self.console.print(Panel("\n".join(lines), title="Summary", expand=False))
        else:
            ranked = sorted(self._trials, key=self._rank)
            for outcome, params in [tp for tp in ranked if tp[0].state == "COMPLETE"][:10]:
                print(
                    f"{self.prefix}[leaderboard] #{outcome.number} {self.metric}="
                    f"{outcome.metrics[self.metric]:.4f} {format_params(params)}",
                    flush=True,
                )
            for line in lines:
                print(f"{self.prefix}[summary] {line}", flush=True)

    def _counts(self) -> str:
        states = [o.state for o, _ in self._trials]
        return (
            f"[green]{states.count('COMPLETE')} done[/] "
            f"[yellow]{len(self._running)} running[/] "
            f"[red]{states.count('FAIL')} failed[/] [dim]{states.count('PRUNED')} pruned[/]"
        )

    def _update_trials(self) -> None:
        if self._trial_task is not None:
            self._progress.update(self._trial_task, counts=self._counts())

    def _rank(self, item: tuple[TrialOutcome, dict[str, Any]]) -> tuple[bool, float]:
        outcome = item[0]
        return outcome.state != "COMPLETE", self._sign * outcome.metrics.get(self.metric, 0.0)

    def _stage_list(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        now = time.perf_counter()
        for name, status in self._stages.items():
            elapsed = self.timings.get(name, now - self._stage_start[name])
            style = {"done": "green", "failed": "red"}.get(status, "yellow")
            grid.add_row(f"[bold]{name}[/]", f"[{style}]{status}[/]", f"{elapsed:.1f}s")
        return grid

    def _line(self, message: str) -> None:
        if self.quiet or self._live is not None:
            return
        print(f"{self.prefix}{message}", flush=True)


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
