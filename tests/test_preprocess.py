"""Spark preprocessing: deterministic stratified split, scaling fitted on train, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runner.data import preprocess
from runner.errors import RunnerError


def _ids(prepared, split):
    return set(prepared.table([split], ["id"]).column("id").to_pylist())


def test_prepares_digits_into_disjoint_splits(spark, cfg, tmp_path):
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    assert not prepared.cache_hit
    assert prepared.input_shape == (1, 8, 8) and prepared.num_classes == 10
    train, val, test = (_ids(prepared, s) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert len(train | val | test) == 1797
    assert prepared.rows == {"train": len(train), "val": len(val), "test": len(test)}
    assert abs(len(train) / 1797 - 0.7) < 0.02


def test_split_is_stratified(spark, cfg, tmp_path):
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    labels = prepared.table(["val"], ["label"]).column("label")
    counts = np.bincount(labels.to_numpy(), minlength=10)
    assert counts.min() >= 22 and counts.max() <= 30  # ~15% of ~180 per class


def test_scaler_is_fitted_on_train_and_saved(spark, cfg, tmp_path):
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    features, _ = prepared.read("train")
    used = features.std(axis=0) > 0
    assert np.allclose(features[:, used].mean(axis=0), 0, atol=1e-4)
    assert np.allclose(features[:, used].std(axis=0, ddof=1), 1, atol=1e-3)
    from pyspark.ml import PipelineModel

    assert PipelineModel.load(prepared.transform_uri)


def test_second_run_is_a_cache_hit_and_cache_false_recomputes(spark, cfg, tmp_path):
    first = preprocess.run(spark, cfg.data, tmp_path / "cache")
    again = preprocess.run(spark, cfg.data, tmp_path / "cache")
    assert again.cache_hit and again.fingerprint == first.fingerprint
    cfg.data.cache = False
    forced = preprocess.run(spark, cfg.data, tmp_path / "cache")
    assert not forced.cache_hit and forced.fingerprint == first.fingerprint
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.fingerprint]


def test_fingerprint_follows_settings(spark, cfg):
    base = preprocess.fingerprint(spark, cfg.data)
    cfg.data.split.seed = 1
    assert preprocess.fingerprint(spark, cfg.data) != base
    cfg.data.split.seed = 0
    cfg.data.cache = False
    assert preprocess.fingerprint(spark, cfg.data) == base


def test_same_seed_same_split(spark, cfg, tmp_path):
    a = preprocess.run(spark, cfg.data, tmp_path / "a")
    b = preprocess.run(spark, cfg.data, tmp_path / "b")
    assert _ids(a, "test") == _ids(b, "test")


def test_bad_image_shape_leaves_nothing_cached(spark, cfg, tmp_path):
    cfg.data.image_shape = [1, 9, 9]
    with pytest.raises(RunnerError, match="data.image_shape"):
        preprocess.run(spark, cfg.data, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_meta_records_the_config(spark, cfg, tmp_path):
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    meta = json.loads((tmp_path / "cache" / prepared.fingerprint / "meta.json").read_text())
    assert meta["config"]["dataset"] == "digits"


def test_jobs_preparing_the_same_data_at_once_build_one_entry(spark, cfg, tmp_path):
    # Two concurrent multirun jobs (driver threads) need digits: one builds, one waits and hits.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: preprocess.run(spark, cfg.data, tmp_path / "cache"),
                                range(2)))
    assert sorted(r.cache_hit for r in results) == [False, True]
    assert results[0].uri == results[1].uri
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert [p.name for p in entries] == [results[0].fingerprint]
    assert (entries[0] / "meta.json").exists()
