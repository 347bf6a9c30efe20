"""Batched inference with predict_batch_udf agrees with the model run directly."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import torch

from runner import artifacts, infer, preprocess, sweep
from runner.trial import load_split


def test_predictions_match_the_model_and_are_scored(spark, cfg, tmp_path):
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    swept = sweep.run(spark, prepared, cfg, tmp_path)
    artifact = artifacts.ModelArtifact(
        model=sweep.trial_config(cfg, swept.params[swept.best.number])["model"],
        input_shape=prepared.input_shape,
        num_classes=prepared.num_classes,
        weights=swept.best.weights,
    )
    artifacts.save(artifact, tmp_path / "model")
    cfg.inference.batch_size = 50
    out = tmp_path / "predictions.parquet"
    result = infer.run(spark, prepared, artifacts.load(tmp_path / "model"), cfg.inference, out)

    table = pq.read_table(out).to_pandas().sort_values("id")
    assert result.rows == len(table) == prepared.rows["test"]
    assert set(table.columns) == {"id", "label", "prediction", "probability"}
    probs = np.stack(table["probability"].to_numpy())
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)

    features, labels = load_split(prepared.path, "test")
    ids = pq.read_table(prepared.split_path("test"), columns=["id"]).column("id").to_numpy()
    with torch.no_grad():
        logits = artifact.build()(torch.from_numpy(features).reshape(-1, 1, 8, 8))
    direct = dict(zip(ids, logits.argmax(1).numpy()))
    assert all(direct[i] == p for i, p in zip(table["id"], table["prediction"]))
    assert result.metrics["test_accuracy"] == float(np.mean(table["prediction"] == table["label"]))
    assert not (tmp_path / ".predictions.parquet.tmp").exists()
