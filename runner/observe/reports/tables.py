"""The report's tables as rows of strings, shared by the HTML and Markdown views."""

from __future__ import annotations

from runner.observe.console import format_params
from runner.observe.reports.record import RunRecord

TRIAL_COLUMNS = ["#", "status", "metric", "epochs", "duration", "device", "params"]


def trial_rows(record: RunRecord) -> list[list[str]]:
    """Every trial, best first; the metric column holds the searched metric. Trials the
    infrastructure cut off come last, as ``LOST → re-asked as #N``."""
    rows = []
    for t in record.ranked():
        value = t["metrics"].get(record.metric)
        rows.append(
            [
                str(t["number"]),
                t["state"] + (f" (re-asks #{t['reasks'][-1]})" if t.get("reasks") else ""),
                f"{value:.4f}" if value is not None else (t["error"].splitlines() or ["-"])[0][:80],
                str(len(t["history"])),
                f"{t['duration_s']:.1f}s",
                t.get("device", ""),
                format_params(t["params"]),
            ]
        )
    for lost, again in lost_trials(record):
        rows.append(
            [
                str(lost),
                f"LOST → re-asked as #{again}",
                "-",
                "-",
                "-",
                "-",
                format_params(record.params_of(again)),
            ]
        )
    return rows


def lost_trials(record: RunRecord) -> list[tuple[int, int]]:
    """(lost trial, the trial that asked its params again), by lost trial: a finished trial's
    ``reasks`` lists the lost trials it stands for (a re-ask can be lost in turn)."""
    pairs: list[tuple[int, int]] = []
    for t in record.trials:
        chain = t.get("reasks") or []
        pairs += zip(chain, [*chain[1:], t["number"]])
    return sorted(pairs)


def summary_rows(record: RunRecord) -> list[list[str]]:
    """Key facts of the run as (name, value) rows."""
    s = record.summary
    best = s.get("best")  # absent when the sweep stage did not run
    rows = [
        [
            "data",
            f"{record.config['data']['name']} (rows: "
            + ", ".join(f"{k} {v}" for k, v in s["data"]["rows"].items())
            + ")",
        ],
        ["model", str(record.config["model"].get("_target_", "?"))],
        ["overrides", " ".join(record.overrides) or "-"],
        *(
            [
                ["best trial", f"#{best['number']} {format_params(best['params'])}"],
                [
                    f"best val {record.metric}",
                    f"{best['metrics'].get(record.metric, float('nan')):.4f}",
                ],
            ]
            if best
            else []
        ),
        *([k, f"{v:.4f}"] for k, v in s.get("test_metrics", {}).items()),
        ["trials", ", ".join(f"{k} {v}" for k, v in s.get("trials", {}).items())],
        *(
            [
                [
                    "lost (infrastructure)",
                    ", ".join(f"#{lost} → re-asked as #{again}" for lost, again in lost),
                ]
            ]
            if (lost := lost_trials(record))
            else []
        ),
        ["parallelism", str(s.get("parallelism", "?"))],
        ["time per stage", ", ".join(f"{k} {v:.1f}s" for k, v in s.get("timings_s", {}).items())],
    ]
    return rows
