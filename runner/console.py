"""What the user sees: a rich live display on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runner.trial import TrialOutcome


class Reporter:
    """Stage progress, the trial table as trials finish, and the final leaderboard.

    On a terminal everything is one ``rich.live.Live`` display; when stdout is not a
    terminal (CI logs, pipes) each event is one plain line, with no escape codes.
    """

    def __init__(
        self,
        metric: str,
        direction: str = "maximize",
        quiet: bool = False,
        console: Console | None = None,
    ):
        self.console = console or Console()
        self._sign = -1.0 if direction == "maximize" else 1.0
        self.live_enabled = self.console.is_terminal and not quiet
        self.quiet = quiet
        self.metric = metric
        self.timings: dict[str, float] = {}
        self._stages: dict[str, str] = {}
        self._trials: list[tuple[TrialOutcome, dict[str, Any]]] = []
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._trial_task: Any = None
        self._live: Live | None = None

    def __enter__(self) -> "Reporter":
        if self.live_enabled:
            self._live = Live(self, console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def __rich__(self) -> Group:
        parts: list[Any] = [self._stage_line()]
        if self._trial_task is not None:
            parts.append(self._progress)
        if self._trials:
            parts.append(self.trial_table(limit=12))
        return Group(*parts)

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        """Time a stage and show it running, then done."""
        self._stages[name] = "running"
        self._line(f"[stage] {name} started{(' - ' + detail) if detail else ''}")
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self._stages[name] = "failed"
            raise
        self.timings[name] = time.perf_counter() - start
        self._stages[name] = f"done {self.timings[name]:.1f}s"
        self._line(f"[stage] {name} done in {self.timings[name]:.1f}s")

    def info(self, message: str) -> None:
        self._line(message)

    def sweep_started(self, n_trials: int, parallelism: int) -> None:
        self._trial_task = self._progress.add_task("trials", total=n_trials)
        self._line(f"[sweep] {n_trials} trials, {parallelism} at a time")

    def trial_finished(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        self._trials.append((outcome, params))
        if self._trial_task is not None:
            self._progress.advance(self._trial_task)
        value = outcome.metrics.get(self.metric)
        shown = f"{self.metric}={value:.4f}" if value is not None else outcome.error.splitlines()[0]
        self._line(
            f"[trial {outcome.number}] {outcome.state} {shown} "
            f"({outcome.duration_s:.1f}s, pid {outcome.pid}) {_format_params(params)}"
        )

    def trial_table(self, limit: int | None = None, title: str = "Trials") -> Table:
        """Trials sorted best first (finished ones), failures last."""
        table = Table(title=title, title_justify="left")
        for col in ("#", "status", self.metric, "params", "duration", "pid"):
            table.add_column(col, justify="right" if col in ("#", "duration", "pid") else "left")
        ranked = sorted(self._trials, key=self._rank)
        for i, (outcome, params) in enumerate(ranked[:limit]):
            value = outcome.metrics.get(self.metric)
            table.add_row(
                str(outcome.number),
                outcome.state,
                f"{value:.4f}" if value is not None else "-",
                _format_params(params),
                f"{outcome.duration_s:.1f}s",
                str(outcome.pid),
                style="bold green" if i == 0 and outcome.state == "COMPLETE" else None,
            )
        return table

    def final(self, summary: dict[str, Any]) -> None:
        """The leaderboard and the summary panel, printed once at the end."""
        self.__exit__(None, None, None)
        if self.quiet:
            return
        lines = [
            f"best trial: #{summary['best']['number']}  {_format_params(summary['best']['params'])}",
            f"val {self.metric}: {summary['best']['metrics'][self.metric]:.4f}",
            "trials: " + ", ".join(f"{n} {state.lower()}" for state, n in summary["trials"].items())
            + (f" (pruning saved {summary['pruning']['epochs_saved']} epochs)"
               if summary["pruning"]["epochs_saved"] else ""),
            *(f"{k}: {v:.4f}" for k, v in summary["test_metrics"].items()),
            "stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in summary["timings_s"].items()),
            f"run dir: {summary['run_dir']}",
        ]
        if self.console.is_terminal:
            self.console.print(self.trial_table(limit=10, title="Leaderboard"))
            self.console.print(Panel("\n".join(lines), title="Summary", expand=False))
        else:
            ranked = sorted(self._trials, key=self._rank)
            for outcome, params in [tp for tp in ranked if tp[0].state == "COMPLETE"][:10]:
                print(f"[leaderboard] #{outcome.number} {self.metric}="
                      f"{outcome.metrics[self.metric]:.4f} {_format_params(params)}", flush=True)
            for line in lines:
                print(f"[summary] {line}", flush=True)

    def _rank(self, item: tuple[TrialOutcome, dict[str, Any]]) -> tuple[bool, float]:
        outcome = item[0]
        return outcome.state != "COMPLETE", self._sign * outcome.metrics.get(self.metric, 0.0)

    def _stage_line(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        for name, status in self._stages.items():
            grid.add_row(f"[bold]{name}[/]", status)
        return grid

    def _line(self, message: str) -> None:
        if self.quiet or self._live is not None:
            return
        print(message, flush=True)


def _format_params(params: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )
