"""``data=reviews`` end to end from the CLI: generated reviews, a tokenizer trained on train,
a text CNN tuned on the token ids, then new texts scored through the saved tokenizer."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runner.data.sources.reviews import LABELS, NOISE, review
from tests.conftest import run_cli


def test_reviews_depend_on_seed_and_id_only():
    assert review(3, 0) == review(3, 0) and review(3, 0) != review(3, 1)
    assert {review(i, 0)[1] for i in range(20)} == {0, 1}


@pytest.mark.slow
def test_reviews_text_cnn_from_the_cli_then_new_texts(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["+experiment=reviews_text_cnn", "search.n_trials=2", "search.parallelism=2",
                    f"data.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_metrics"]["test_accuracy"] >= 0.85  # the ceiling is about 1 - NOISE
    assert NOISE <= 0.05
    assert (run_dir / "prepared" / "transform" / "tokenizer.json").exists()

    # new texts, unlabelled and under another column name (labelled new rows' metrics are
    # the same for every modality: test_infer); their truth is known here
    texts = [review(50_000 + i, 9) for i in range(40)]
    unlabelled = tmp_path / "tickets.parquet"  # no label, the text under another name
    pq.write_table(pa.table({"ticket": list(range(40)), "body": [t for t, _ in texts]}),
                   unlabelled)
    scored = tmp_path / "scored_unlabelled"
    proc = run_cli(["stages=[infer]", f"model_path={run_dir}", "data@inference.data=text",
                    f"inference.data.path={unlabelled}", "inference.data.text=body",
                    f"hydra.run.dir={scored}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no labels: no metrics" in proc.stdout + proc.stderr
    rows = pq.read_table(scored / "predictions.parquet").to_pylist()
    assert len(rows) == 40 and {"ticket", "prediction"} <= set(rows[0])
    right = sum(LABELS[texts[r["ticket"]][1]] == r["prediction"] for r in rows)
    assert right >= 32
