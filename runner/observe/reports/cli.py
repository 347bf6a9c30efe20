"""``python -m runner report <run dir>`` and ``python -m runner compare <dir>...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.errors import RunnerError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="re-render report.html and report.md of a run")
    report.add_argument("run_dir", type=Path)
    compare = sub.add_parser("compare", help="one leaderboard across runs or a multirun")
    compare.add_argument("dirs", type=Path, nargs="+", help="run directories or multirun folders")
    compare.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where leaderboard.md/.csv go (default: the multirun folder "
        "when one is given, else the current directory)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "report":
            return _report(args.run_dir)
        return _compare(args.dirs, args.out)
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2


def _report(run_dir: Path) -> int:
    from runner.observe.reports import render

    html, md = render(run_dir)
    print(f"wrote {html}\nwrote {md}")
    return 0


def _compare(dirs: list[Path], out: Path | None) -> int:
    from rich.console import Console
    from rich.table import Table

    from runner.observe.reports.compare import COLUMNS, FAILED_COLUMNS, compare

    if out is None:
        single = dirs[0] if len(dirs) == 1 else None
        out = (
            single if single is not None and not (single / "summary.json").exists() else Path.cwd()
        )
    result = compare(dirs, out)
    console = Console()
    for group in dict.fromkeys(row[0] for row in result.rows):
        rows = [row[1:] for row in result.rows if row[0] == group]
        table = Table(title=f"Leaderboard, {group} ({len(rows)} runs)", title_justify="left")
        for col in COLUMNS[1:]:
            table.add_column(col, overflow="fold")
        for i, row in enumerate(rows):
            table.add_row(*row, style="bold green" if i == 0 else None)
        console.print(table)
    if result.failed:
        table = Table(title=f"Failed runs ({len(result.failed)})", title_justify="left")
        for col in FAILED_COLUMNS:
            table.add_column(col, overflow="fold")
        for failed in result.failed:
            table.add_row(
                str(failed.run_dir), " ".join(failed.overrides), failed.error, style="red"
            )
        console.print(table)
    written = [result.markdown, result.markdown.with_suffix(".csv"), result.plot]
    print("wrote " + ", ".join(str(p) for p in written if p is not None))
    return 0
