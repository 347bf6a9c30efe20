"""``data=shapes`` end to end from the CLI: JPEGs drawn by Spark tasks, read back as an image
folder, a CNN tuned on them, then new images scored from a folder with their paths kept."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from runner.data.sources.shapes import CLASSES, draw
from tests.conftest import run_cli


def test_drawing_depends_on_seed_and_id_only():
    label, image = draw(5, 32, 0.1, seed=3)
    again_label, again = draw(5, 32, 0.1, seed=3)
    assert label == again_label and np.array_equal(np.asarray(image), np.asarray(again))
    assert image.size == (32, 32) and 0 <= label < len(CLASSES)
    labels = {draw(i, 16, 0.0, seed=0)[0] for i in range(30)}
    assert labels == {0, 1, 2}


@pytest.mark.slow
def test_shapes_cnn_from_the_cli_then_new_images_from_a_folder(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["+experiment=shapes_cnn", "search.n_trials=2", "search.parallelism=2",
                    "data.count=600", "data.image.size=[32,32]",
                    f"data.path={tmp_path / 'shapes'}", f"data.cache_dir={tmp_path / 'cache'}",
                    f"hydra.run.dir={run_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_metrics"]["test_accuracy"] >= 0.9
    jpegs = list((tmp_path / "shapes").glob("*/*/*.jpg"))
    assert len(jpegs) == 600 and {p.parent.name for p in jpegs} == set(CLASSES)
    meta = json.loads((run_dir / "prepared" / "meta.json").read_text())
    assert meta["input_shape"] == [3, 32, 32] and meta["input"]["kind"] == "image"
    tested = pq.read_table(run_dir / "predictions.parquet")
    assert all(p.endswith(".jpg") for p in tested.column("path").to_pylist())

    new = tmp_path / "new"
    new.mkdir()
    truth = {}
    for i in range(30):
        label, image = draw(100_000 + i, 48, 0.08, seed=11)
        image.save(new / f"{i}.jpg")
        truth[f"{i}.jpg"] = label
    scored = tmp_path / "scored"
    proc = run_cli(["stages=[infer]", f"model_path={run_dir}", "data@inference.data=images",
                    f"inference.data.path={new}", f"hydra.run.dir={scored}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no labels: no metrics" in proc.stdout + proc.stderr  # a flat folder: unlabelled
    rows = pq.read_table(scored / "predictions.parquet").to_pylist()
    assert len(rows) == 30 and "label" not in rows[0]
    right = sum(CLASSES[truth[r["path"].rsplit("/", 1)[-1]]] == r["prediction"] for r in rows)
    assert right >= 24
