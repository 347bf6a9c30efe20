"""``RunEvents``: what happens during a run, told to whoever watches it.

The recipe (``runner.pipeline``) tells one ``EventSinks``; the console view or the plain log
(``runner.observe.console``) and the experiment tracker (``runner.observe.trackers``) are
sinks. Each event is a no-op here, so a sink overrides only those it shows or records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.observe.result import RunResult
    from runner.train.trial import TrialOutcome


class RunEvents:
    """The events of a run, in the order they come; entered for the run's length (a sink
    that holds something open, a live display or a tracker's record, closes it on exit)."""

    def __enter__(self) -> "RunEvents":
        return self

    def __exit__(self, *exc: Any) -> None:
        """The run ended; ``exc`` says how (all ``None``: finished)."""

    def stage_started(self, name: str, detail: str) -> None:
        """A stage (spark, preprocess, sweep, train, infer, report) began."""

    def stage_finished(self, name: str, seconds: float, failed: bool) -> None:
        """A stage ended after ``seconds``; ``failed`` when it raised."""

    @contextmanager
    def spark_tasks(self, spark: Any, description: str) -> Iterator[None]:
        """The Spark jobs run inside the block (a view may show their tasks)."""
        yield

    def info(self, message: str) -> None:
        """A line of the run's log (``[preprocess] cache hit ...``)."""

    def note(self, message: str) -> None:
        """A line to see even under a live display (a record repaired on resume)."""

    def ranked_by(self, metric: str, direction: str) -> None:
        """The metric trials are ranked by (known once the data chose the task)."""

    def sweep_started(self, n_trials: int, parallelism: int) -> None:
        """The sweep asks ``n_trials``, ``parallelism`` at a time."""

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        """A slot began trial ``number``."""

    def trial_finished(self, outcome: "TrialOutcome", params: dict[str, Any]) -> None:
        """A trial ended (complete, pruned or failed)."""

    def trial_lost(self, number: int, reasked_as: int) -> None:
        """The infrastructure cut a trial off; its params run again as ``reasked_as``."""

    def run_finished(self, result: "RunResult") -> None:
        """The run finished; its record is written."""


class EventSinks(RunEvents):
    """Tells every sink each event, in order; times the stages (``timings``)."""

    def __init__(self, *sinks: RunEvents):
        self.sinks = sinks
        self.timings: dict[str, float] = {}
        self._open = ExitStack()

    def __enter__(self) -> "EventSinks":
        with ExitStack() as stack:
            for sink in self.sinks:
                stack.enter_context(sink)
            self._open = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._open.__exit__(*exc)

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        """Time the block as stage ``name`` and tell the sinks when it starts and ends."""
        self.stage_started(name, detail)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.stage_finished(name, time.perf_counter() - start, failed=True)
            raise
        self.timings[name] = time.perf_counter() - start
        self.stage_finished(name, self.timings[name], failed=False)

    def stage_started(self, name: str, detail: str) -> None:
        for sink in self.sinks:
            sink.stage_started(name, detail)

    def stage_finished(self, name: str, seconds: float, failed: bool) -> None:
        for sink in self.sinks:
            sink.stage_finished(name, seconds, failed)

    @contextmanager
    def spark_tasks(self, spark: Any, description: str) -> Iterator[None]:
        with ExitStack() as stack:
            for sink in self.sinks:
                stack.enter_context(sink.spark_tasks(spark, description))
            yield

    def info(self, message: str) -> None:
        for sink in self.sinks:
            sink.info(message)

    def note(self, message: str) -> None:
        for sink in self.sinks:
            sink.note(message)

    def ranked_by(self, metric: str, direction: str) -> None:
        for sink in self.sinks:
            sink.ranked_by(metric, direction)

    def sweep_started(self, n_trials: int, parallelism: int) -> None:
        for sink in self.sinks:
            sink.sweep_started(n_trials, parallelism)

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.trial_started(number, params)

    def trial_finished(self, outcome: "TrialOutcome", params: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.trial_finished(outcome, params)

    def trial_lost(self, number: int, reasked_as: int) -> None:
        for sink in self.sinks:
            sink.trial_lost(number, reasked_as)

    def run_finished(self, result: "RunResult") -> None:
        for sink in self.sinks:
            sink.run_finished(result)
