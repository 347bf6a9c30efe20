"""What both recipes (``runner.pipeline``, ``runner.predict``) start with: the run's event
sinks (the tracker, then the view), the GPU plan and the Spark session (the data source's
Spark-free loading runs meanwhile)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.cluster import resources
from runner.cluster.spark import build_session, experiment
from runner.cluster.targets import Target, target_for
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
        with events.stage("spark", target.cfg.master), sources.prefetching(cfg.get("data")):
            spark = build_session(target, run_dir / "logs")
        yield events, spark, target
