"""Human-readable views of finished runs, rendered only from the run directory's files.

``render(run_dir)`` writes ``report.html`` (self-contained, plots embedded) and
``report.md``; ``compare`` builds one leaderboard across runs.
"""

from runner.observe.reports.render import render
from runner.observe.reports.record import RunRecord, load

__all__ = ["RunRecord", "load", "render"]
