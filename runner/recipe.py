"""What both recipes (``runner.pipeline``, ``runner.predict``) start with: the run's event
sinks (the tracker, then the view), the GPU plan and the Spark session (what later steps
would wait on, and need no Spark for, runs meanwhile)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.cluster import resources
from runner.cluster.spark import build_session, experiment
from runner.cluster.targets import Target, target_for
from runner import stages
from runner.data import sources
from runner.observe import trackers
from runner.observe.events import EventSinks, RunEvents

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@contextmanager
def started(
    cfg: Any, run_dir: Path, original_cwd: Path, view: RunEvents
) -> Iterator[tuple[EventSinks, "SparkSession", Target]]:
    """The run's events, its Spark session (timed as stage ``spark``) and the deploy target
    the GPU plan chose; the sinks are closed when the block ends (failed if it raised)."""
    tracker = trackers.tracker_for(cfg, run_dir, original_cwd)
    with EventSinks(tracker, view) as events, experiment(run_dir.name):
        gpu_plan = resources.plan(target_for(cfg.deploy))  # cfg.deploy stays as saved
        if gpu_plan.note:
            events.info(f"[deploy] {gpu_plan.note}")
        target = gpu_plan.target
        with events.stage("spark", target.cfg.master), _prefetching(cfg):
            spark = build_session(target, run_dir / "logs")
        yield events, spark, target


@contextmanager
def _prefetching(cfg: Any) -> Iterator[None]:
    """Start, on threads while the block starts the Spark session (the main thread waits on
    the JVM), Spark-free work later steps would wait on: the data source's ``prefetch``
    (importing scikit-learn and reading its data set, 1.4 s), done when the block ends,
    and, before a sweep or training checks the model, ``runner.train.model.prefetch``
    (1.1 s), left running through preprocessing (the import lock holds the check until it
    is done). A failure there is left for the step itself to report."""
    selected = stages.selected(cfg)
    if {"sweep", "train"} & set(selected):
        from runner.train import model

        threading.Thread(target=_quietly, args=(model.prefetch,), daemon=True).start()
    fetch = (
        getattr(sources.source_for(cfg.data), "prefetch", None)
        if "preprocess" in selected
        else None
    )
    if fetch is None:
        yield
        return
    thread = threading.Thread(target=_quietly, args=(lambda: fetch(cfg.data),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _quietly(step: Callable[[], Any]) -> None:
    try:
        step()
    except Exception:  # noqa: BLE001 -- the step reports it when it runs
        pass
