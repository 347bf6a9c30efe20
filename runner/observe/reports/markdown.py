"""``report.md``: the same report as text, for terminals and pull requests."""

from __future__ import annotations

from runner.observe.reports.plots import confusion_counts, has_classes
from runner.observe.reports.record import RunRecord
from runner.observe.reports.tables import TRIAL_COLUMNS, summary_rows, trial_rows


def render_markdown(record: RunRecord) -> str:
    lines = [f"# Run report: `{record.run_dir}`", "", "## Summary", ""]
    lines += table(["", ""], summary_rows(record))
    lines += ["", "## Trials", ""]
    lines += table(
        [c if c != "metric" else record.metric for c in TRIAL_COLUMNS], trial_rows(record)
    )
    predictions = record.predictions()
    if predictions is not None and len(predictions) and has_classes(predictions):
        labels, counts = confusion_counts(predictions)
        lines += ["", "## Confusion matrix (test; rows: true, columns: predicted)", ""]
        lines += table(
            ["", *map(str, labels)],
            [[str(label), *map(str, row)] for label, row in zip(labels, counts)],
        )
    lines += ["", "Plots and the resolved config: `report.html`.", ""]
    return "\n".join(lines)


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table."""

    def cells(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return [cells(columns), cells(["---"] * len(columns)), *(cells(r) for r in rows)]
