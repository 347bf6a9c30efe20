"""The report's tables as rows of strings, shared by the HTML and Markdown views."""

from __future__ import annotations

from runner.observe.console import format_params
from runner.observe.reports.record import RunRecord

TRIAL_COLUMNS = ["#", "status", "metric", "epochs", "duration", "device", "params"]


def trial_rows(record: RunRecord) -> list[list[str]]:
    """Every trial, best first; the metric column holds the searched metric."""
    rows = []
    for t in record.ranked():
        value = t["metrics"].get(record.metric)
        rows.append([
            str(t["number"]),
            t["state"],
            f"{value:.4f}" if value is not None else (t["error"].splitlines() or ["-"])[0][:80],
            str(len(t["history"])),
            f"{t['duration_s']:.1f}s",
            t.get("device", ""),
            format_params(t["params"]),
        ])
    return rows


def summary_rows(record: RunRecord) -> list[list[str]]:
    """Key facts of the run as (name, value) rows."""
    s = record.summary
    best = s.get("best")  # absent when the sweep stage did not run
    rows = [
        ["data", f"{record.config['data']['name']} (rows: "
         + ", ".join(f"{k} {v}" for k, v in s["data"]["rows"].items()) + ")"],
        ["model", str(record.config["model"].get("_target_", "?"))],
        ["overrides", " ".join(record.overrides) or "-"],
        *([["best trial", f"#{best['number']} {format_params(best['params'])}"],
           [f"best val {record.metric}", f"{best['metrics'].get(record.metric, float('nan')):.4f}"]]
          if best else []),
        *([k, f"{v:.4f}"] for k, v in s.get("test_metrics", {}).items()),
        ["trials", ", ".join(f"{k} {v}" for k, v in s.get("trials", {}).items())],
        ["parallelism", str(s.get("parallelism", "?"))],
        ["time per stage", ", ".join(f"{k} {v:.1f}s" for k, v in s.get("timings_s", {}).items())],
    ]
    return rows
