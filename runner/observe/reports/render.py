"""Write ``report.html`` and ``report.md`` into a run directory, atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.serve.artifacts import atomic_write
from runner.observe.reports.html import render_html
from runner.observe.reports.markdown import render_markdown
from runner.observe.reports.plots import all_plots
from runner.observe.reports.record import load


def render(run_dir: Path, summary: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Render both reports from the run's files; return their paths."""
    record = load(run_dir, summary)
    html_path = record.run_dir / "report.html"
    md_path = record.run_dir / "report.md"
    atomic_write(html_path, render_html(record, all_plots(record)).encode())
    atomic_write(md_path, render_markdown(record).encode())
    return html_path, md_path
