"""``RunRecord``: a run directory read back for the reports."""

from __future__ import annotations

import pandas as pd

from runner.observe.reports.record import RunRecord


def _record(run_dir, summary) -> RunRecord:
    return RunRecord(run_dir=run_dir, summary=summary, trials=[], config={}, config_text="",
                     overrides=[])


def test_predictions_are_read_where_inference_output_put_them(tmp_path):
    elsewhere = tmp_path / "scored" / "all.parquet"
    elsewhere.parent.mkdir()
    pd.DataFrame({"id": [0, 1], "label": [1, 0], "prediction": [1, 1]}).to_parquet(elsewhere)
    record = _record(tmp_path / "run", {"predictions": {"path": str(elsewhere), "rows": 2}})
    assert record.predictions().to_dict("list") == {"label": [1, 0], "prediction": [1, 1]}


def test_unlabelled_or_missing_predictions_give_none(tmp_path):
    unlabelled = tmp_path / "p.parquet"
    pd.DataFrame({"id": [0], "prediction": [1]}).to_parquet(unlabelled)
    assert _record(tmp_path, {"predictions": {"path": str(unlabelled)}}).predictions() is None
    assert _record(tmp_path / "none", {}).predictions() is None
