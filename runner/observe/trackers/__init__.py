"""Trackers: where a run is recorded besides its run directory, by ``_target_`` from
``conf/tracking/``.

Each public module here is one tracker: its schema (a ``TrackingConfig`` subclass, stored
as ``base_<module>`` in group ``tracking``) and the :class:`Tracker` its ``_target_`` names,
a sink of the run's events (``runner.observe.events``) built with the whole run config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from runner.errors import first_line
from runner.observe.events import RunEvents


@dataclass
class TrackingConfig:
    """Where runs are recorded besides the run directory; ``_target_`` names the tracker."""

    _target_: str = MISSING
    name: str = MISSING


class Tracker(RunEvents):
    """A tracker: told the run's events, entered for the run's length (``__exit__`` ends
    its record, failed when the run raised)."""

    def __init__(self, cfg: Any, run_dir: Path, original_cwd: Path):
        """``cfg`` is the whole run config (a tracker records it)."""

    @classmethod
    def validate(cls, cfg: Any) -> list[str]:
        """Problems with the settings under ``tracking``, found before Spark starts."""
        return []


def validate(cfg: Any) -> list[str]:
    """Problems with the tracking settings, each naming its key."""
    try:
        tracker = _tracker_class(cfg.tracking)
    except Exception as err:
        return [
            f"tracking._target_: {cfg.tracking._target_!r} does not import ({first_line(err)}); "
            "choose a tracking= option or fix the class path"
        ]
    return tracker.validate(cfg)


def tracker_for(cfg: Any, run_dir: Path, original_cwd: Path) -> Tracker:
    """The run's tracker, named by ``tracking._target_``."""
    return _tracker_class(cfg.tracking)(cfg, run_dir, original_cwd)


def _tracker_class(cfg: Any) -> type[Tracker]:
    from hydra.utils import get_class

    cls = get_class(cfg._target_)
    if not (isinstance(cls, type) and issubclass(cls, Tracker)):
        raise TypeError(f"{cfg._target_} is not a runner.observe.trackers.Tracker")
    return cls
