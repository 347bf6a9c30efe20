"""``runner.observe.reports``: report.html (real PNG plots) and report.md, rendered from a run dir."""

from __future__ import annotations

import base64
import re
import shutil
import struct

import pandas as pd
import pytest

from runner.observe.reports import load, render
from runner.observe.reports.plots import all_plots, confusion_counts
from tests.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("terminal_multirun")]  # one worker runs the shared multirun

_FIGURE = re.compile(r'<figure id="([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"')


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _figures(html: str) -> dict[str, bytes]:
    return {key: base64.b64decode(data) for key, data in _FIGURE.findall(html)}


def test_html_report_embeds_a_rendered_png_per_figure(terminal_multirun):
    run_dir = terminal_multirun[0] / "0"
    html = (run_dir / "report.html").read_text()
    figures = _figures(html)
    params = {"optimizer.lr", "model.hidden", "train.batch_size"}
    assert set(figures) == {"history", "curves", "confusion", "timings",
                            *(f"param-{p}" for p in params)}
    for key, png in figures.items():
        width, height = _png_size(png)
        assert width > 200 and height > 150, key
    # self-contained: no external resources; the resolved config and the trial table are in it
    assert "src=\"http" not in html and "<link" not in html
    assert "_target_: models.mlp.MLP" in html
    for trial in load(run_dir).trials:
        assert f"<td>{trial['number']}</td>" in html


def test_markdown_report_has_trials_and_confusion_matrix(terminal_multirun):
    run_dir = terminal_multirun[0] / "0"
    record = load(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "| # | status | val_accuracy | epochs | duration | device | params |" in md
    assert md.count("| COMPLETE |") == len(record.trials)
    section = md.split("## Confusion matrix")[1].split("\n\n")[1]
    counts = [[int(c) for c in line.strip("| ").split(" | ")[1:]] for line in section.splitlines()[2:]]
    assert sum(map(sum, counts)) == record.summary["predictions"]["rows"]


def test_confusion_counts_match_scikit_learn(terminal_multirun):
    from sklearn.metrics import confusion_matrix

    predictions = load(terminal_multirun[0] / "0").predictions()
    labels, counts = confusion_counts(predictions)
    expected = confusion_matrix(predictions["label"], predictions["prediction"], labels=labels)
    assert counts == expected.tolist()


def test_regression_predictions_get_a_residual_plot(terminal_multirun, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(terminal_multirun[0] / "0", run_dir, symlinks=True)
    shutil.rmtree(run_dir / "predictions.parquet")
    pd.DataFrame({"label": [0.5, 1.5, 2.0], "prediction": [0.7, 1.2, 2.1]}).to_parquet(
        run_dir / "predictions.parquet")
    keys = [p.key for p in all_plots(load(run_dir))]
    assert "residuals" in keys and "predicted" in keys and "confusion" not in keys


def test_binary_predictions_get_roc_and_pr_curves(terminal_multirun, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(terminal_multirun[0] / "0", run_dir, symlinks=True)
    shutil.rmtree(run_dir / "predictions.parquet")
    pd.DataFrame({"label": [0.0, 1.0, 1.0, 0.0], "prediction": [0, 1, 0, 0],
                  "probability": [0.1, 0.9, 0.4, 0.3]}).astype({"prediction": "int32"}).to_parquet(
        run_dir / "predictions.parquet")
    keys = [p.key for p in all_plots(load(run_dir))]
    assert "roc-pr" in keys and "confusion" in keys and "residuals" not in keys


def test_report_command_re_renders_from_disk(terminal_multirun, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(terminal_multirun[0] / "1", run_dir, symlinks=True)
    (run_dir / "report.html").unlink()
    (run_dir / "report.md").unlink()
    proc = run_cli(["report", str(run_dir)], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "_target_: models.cnn.CNN" in (run_dir / "report.html").read_text()
    assert len(_figures((run_dir / "report.html").read_text())) >= 5
    assert (run_dir / "report.md").exists()
    # the same render in-process gives the same figures
    render(run_dir)
    assert "confusion" in _figures((run_dir / "report.html").read_text())


@pytest.mark.parametrize("make", ["missing", "not_a_run"])
def test_report_command_refuses_a_non_run_in_one_line(tmp_path, make):
    target = tmp_path / "x"
    if make == "not_a_run":
        target.mkdir()
    proc = run_cli(["report", str(target)], tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_lost_trials_are_shown_as_re_asked(tmp_path):
    from runner.observe.reports.markdown import render_markdown
    from runner.observe.reports.record import RunRecord

    def trial(number, value, reasks=None):
        return {"number": number, "state": "COMPLETE", "metrics": {"val_accuracy": value},
                "history": [{}], "error": "", "duration_s": 1.0, "device": "cpu",
                "params": {"lr": 0.1 * (number + 1)}, "reasks": reasks or []}

    record = RunRecord(run_dir=tmp_path, config_text="", overrides=[],
                       summary={"data": {"rows": {"train": 8}}, "trials": {"COMPLETE": 2}},
                       trials=[trial(0, 0.9), trial(3, 0.8, reasks=[1, 2])],
                       config={"search": {"metric": "val_accuracy", "direction": "maximize"},
                               "data": {"name": "digits"}, "model": {}})
    md = render_markdown(record)
    assert "| 1 | LOST → re-asked as #2 |" in md and "| 2 | LOST → re-asked as #3 |" in md
    assert "| 3 | COMPLETE (re-asks #2) |" in md
    assert "#1 → re-asked as #2, #2 → re-asked as #3" in md  # the summary row
