"""One leaderboard per data set across runs (given run directories, or a multirun directory),
the runs that failed with their error line, and the metric against each override."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError
from runner.tasks import gain
from runner.multirun import ERROR_FILE
from runner.observe.console import format_params
from runner.observe.reports.markdown import table
from runner.observe.reports.plots import metric_by_override
from runner.observe.reports.record import RunRecord, load
from runner.serve.artifacts import atomic_write

COLUMNS = [
    "group",
    "rank",
    "run",
    "overrides",
    "model",
    "data",
    "metric",
    "best val",
    "test",
    "trials",
    "total s",
    "best params",
]
FAILED_COLUMNS = ["run", "overrides", "error"]
PLOT = "metric_by_override.png"


@dataclass(frozen=True)
class FailedRun:
    """A job directory without ``summary.json``: its error line, from ``error.txt``."""

    run_dir: Path
    overrides: list[str]
    error: str


@dataclass(frozen=True)
class Comparison:
    rows: list[list[str]]  # COLUMNS, grouped by data set (and task), best first in each
    failed: list[FailedRun]
    markdown: Path
    plot: Path | None  # None when no override varies across the finished runs


def find_runs(paths: list[Path]) -> list[Path]:
    """The finished runs: each path is one, or a folder (a multirun) with runs below it."""
    return _scan(paths)[0]


def find_failed(paths: list[Path]) -> list[FailedRun]:
    """The job directories below multirun folders in ``paths`` that did not finish."""
    return _scan(paths)[1]


def leaderboard(records: list[RunRecord]) -> list[list[str]]:
    """One row per run, grouped by data set (and task): runs are ranked against the runs on
    the same data only, best validation metric first (each run's own direction).

    The overrides column shows what sets each run apart: overrides all runs share are left out.
    """

    def key(r: RunRecord) -> tuple[str, float]:
        value = r.summary["best"]["metrics"].get(r.metric, float("nan"))
        return _group(r), -gain(r.direction) * value

    shared = set.intersection(*(set(r.overrides) for r in records)) if len(records) > 1 else set()
    root = Path(os.path.commonpath([r.run_dir.resolve() for r in records]))
    rows: list[list[str]] = []
    rank = 0
    for i, r in enumerate(sorted(records, key=key)):
        group = _group(r)
        rank = 1 if i == 0 or rows[-1][0] != group else rank + 1
        best = r.summary["best"]
        tests = r.summary.get("test_metrics", {})
        rows.append(
            [
                group,
                str(rank),
                str(r.run_dir.resolve().relative_to(root)) if len(records) > 1 else str(r.run_dir),
                " ".join(o for o in r.overrides if o not in shared),
                str(r.config["model"].get("_target_", "?")).rsplit(".", 1)[-1],
                str(r.config["data"]["name"]),
                r.metric,
                f"{best['metrics'].get(r.metric, float('nan')):.4f}",
                " ".join(f"{k}={v:.4f}" for k, v in tests.items()),
                "/".join(f"{v}" for v in r.summary.get("trials", {}).values()),
                f"{r.summary.get('timings_s', {}).get('total', 0.0):.1f}",
                format_params(best["params"]),
            ]
        )
    return rows


def compare(paths: list[Path], out_dir: Path) -> Comparison:
    """Rank the runs under ``paths``; write leaderboard.md/.csv and the plot to ``out_dir``."""
    found, failed = _scan(paths)
    records = [load(p) for p in found]
    records = [r for r in records if "best" in r.summary]  # stages without a sweep: no metric
    rows = leaderboard(records) if records else []
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Leaderboard", ""]
    for group in dict.fromkeys(row[0] for row in rows):
        lines += [
            f"## {group}",
            "",
            *table(COLUMNS[1:], [r[1:] for r in rows if r[0] == group]),
            "",
        ]
    if failed:
        lines += [
            f"## Failed runs ({len(failed)})",
            "",
            *table(FAILED_COLUMNS, [_failed_row(f) for f in failed]),
            "",
        ]
    md = out_dir / "leaderboard.md"
    atomic_write(md, "\n".join(lines).encode())
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [
            [*COLUMNS, "error"],
            *(row + [""] for row in rows),
            *(
                [""] + ["failed"] + _failed_row(f)[:2] + [""] * (len(COLUMNS) - 4) + [f.error]
                for f in failed
            ),
        ]
    )
    atomic_write(out_dir / "leaderboard.csv", buffer.getvalue().encode())
    plot = None
    figure = metric_by_override(records, _group)
    if figure is not None:
        plot = out_dir / PLOT
        atomic_write(plot, figure)
    return Comparison(rows, failed, md, plot)


def _group(r: RunRecord) -> str:
    """The data set a run was scored on, and its task (the one the label chose, with
    ``task=auto``) when known."""
    task = r.summary.get("task") or r.config.get("task")
    name = None
    if isinstance(task, dict):
        name = (task.get("name") or str(task.get("_target_", "")).rsplit(".", 1)[-1]).lower()
    return f"data={r.config['data']['name']}" + (f" task={name}" if name else "")


def _failed_row(f: FailedRun) -> list[str]:
    return [str(f.run_dir), " ".join(f.overrides), f.error]


def _scan(paths: list[Path]) -> tuple[list[Path], list[FailedRun]]:
    runs: list[Path] = []
    failed: list[FailedRun] = []
    for path in map(Path, paths):
        if (path / "summary.json").exists():
            runs.append(path)
        elif path.is_dir():
            jobs = sorted(p.parent for p in path.rglob(".hydra") if p.is_dir())
            found = [job for job in jobs if (job / "summary.json").exists()]
            failed += [_failed(job) for job in jobs if job not in found]
            if not jobs:
                raise RunnerError(f"{path}: no runs below it (no summary.json or .hydra)")
            runs.extend(found)
        else:
            raise RunnerError(f"{path}: no such directory; pass run or multirun directories")
    return runs, failed


def _failed(job: Path) -> FailedRun:
    import yaml

    error = job / ERROR_FILE
    line = (
        (error.read_text().strip().splitlines() or [""])[0]
        if error.exists()
        else ("did not finish: no summary.json and no error.txt (still running, or killed)")
    )
    overrides_file = job / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) or [] if overrides_file.exists() else []
    return FailedRun(job, [str(o) for o in overrides], line)
