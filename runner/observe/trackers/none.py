"""``tracking=none``: the run is recorded only in its run directory."""

from __future__ import annotations

from dataclasses import dataclass

from runner.observe.trackers import Tracker, TrackingConfig


@dataclass
class NoneTrackingConfig(TrackingConfig):
    _target_: str = "runner.observe.trackers.none.NoTracker"
    name: str = "none"


class NoTracker(Tracker):
    """Records nothing besides the run directory."""
