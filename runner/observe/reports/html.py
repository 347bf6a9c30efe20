"""``report.html``: one self-contained page (plots embedded as PNG data URIs)."""

from __future__ import annotations

import base64
from html import escape

from runner.observe.reports.plots import Plot
from runner.observe.reports.record import RunRecord
from runner.observe.reports.tables import TRIAL_COLUMNS, summary_rows, trial_rows

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #f4f4f4; } tr.best td { background: #e6f4e6; font-weight: bold; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f7f7f7; padding: 1em; overflow: auto; }
"""


def render_html(record: RunRecord, plots: list[Plot]) -> str:
    """The whole page as a string."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Run report: {escape(record.run_dir.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Run report</h1><p><code>{escape(str(record.run_dir))}</code></p>",
        "<h2>Summary</h2>",
        _table(["", ""], summary_rows(record), header=False),
        "<h2>Trials</h2>",
        _table(TRIAL_COLUMNS, trial_rows(record), best_first=True),
        "<h2>Plots</h2>",
        *(_figure(p) for p in plots),
        "<h2>Resolved config</h2>",
        f"<pre>{escape(record.config_text)}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="{escape(plot.key)}"><img alt="{escape(plot.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(plot.title)}</figcaption></figure>'
    )


def _table(
    columns: list[str], rows: list[list[str]], header: bool = True, best_first: bool = False
) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>")
    for i, row in enumerate(rows):
        cls = ' class="best"' if best_first and i == 0 and row[1] == "COMPLETE" else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)
