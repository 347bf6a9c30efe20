"""One leaderboard across runs: given run directories, or a multirun directory."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from runner.serve.artifacts import atomic_write
from runner.observe.console import format_params
from runner.errors import RunnerError
from runner.observe.reports.markdown import table
from runner.observe.reports.record import RunRecord, load

COLUMNS = ["rank", "run", "overrides", "model", "data", "metric", "best val", "test",
           "trials", "total s", "best params"]


def find_runs(paths: list[Path]) -> list[Path]:
    """Each path is a finished run, or a folder (a multirun) whose runs are found below it."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if (path / "summary.json").exists():
            runs.append(path)
        elif path.is_dir():
            found = sorted(p.parent for p in path.rglob("summary.json"))
            if not found:
                raise RunnerError(f"{path}: no finished runs below it (no summary.json)")
            runs.extend(found)
        else:
            raise RunnerError(f"{path}: no such directory; pass run or multirun directories")
    return runs


def leaderboard(records: list[RunRecord]) -> list[list[str]]:
    """One row per run, best validation metric first (each run's own direction).

    The overrides column shows what sets each run apart: overrides all runs share are left out.
    """

    def key(r: RunRecord) -> float:
        value = r.summary["best"]["metrics"].get(r.metric, float("nan"))
        return -value if r.direction == "maximize" else value

    shared = set.intersection(*(set(r.overrides) for r in records)) if len(records) > 1 else set()
    root = Path(os.path.commonpath([r.run_dir.resolve() for r in records]))
    rows = []
    for rank, r in enumerate(sorted(records, key=key), start=1):
        best = r.summary["best"]
        tests = r.summary.get("test_metrics", {})
        rows.append([
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
        ])
    return rows


def compare(paths: list[Path], out_dir: Path) -> tuple[list[list[str]], Path]:
    """Rank the runs under ``paths``; write leaderboard.md and .csv to ``out_dir``."""
    rows = leaderboard([load(p) for p in find_runs(paths)])
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "leaderboard.md"
    atomic_write(md, ("\n".join(["# Leaderboard", "", *table(COLUMNS, rows)]) + "\n").encode())
    buffer = io.StringIO()
    csv.writer(buffer).writerows([COLUMNS, *rows])
    atomic_write(out_dir / "leaderboard.csv", buffer.getvalue().encode())
    return rows, md
