"""Declarative steps: every op fitted on train into one PipelineModel, reused on new rows."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from pyspark.sql import functions as F

from runner.data import preprocess
from runner.data import steps
from runner.data.sources.file import FileDataConfig
from runner.errors import RunnerError

STEPS = [
    {"op": "filter", "expr": "x2 >= 0"},
    {"op": "dropna", "columns": ["animal"]},
    {"op": "impute", "columns": ["x1"], "strategy": "mean"},
    {"op": "onehot", "columns": ["color"]},
    {"op": "select", "exprs": ["animal", "x1", "x2 * 2 AS x2", "color"]},
]


def _rows(n=400, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x1": rng.normal(size=n),
        "x2": rng.normal(size=n),
        "color": rng.choice(["red", "green", "blue"], size=n),
        "animal": rng.choice(["cat", "dog"], size=n),
        "note": "text",
    })
    frame.loc[::7, "x1"] = np.nan
    frame.loc[::11, "animal"] = None
    return frame


def _cfg(path, cache_dir, **kw):
    kw.setdefault("steps", STEPS)
    kw.setdefault("scaling", "minmax")
    return OmegaConf.merge(FileDataConfig, dict(
        name="csv", format="csv", path=str(path), label="animal", cache_dir=str(cache_dir),
        options={"header": "true", "inferSchema": "true"}, **kw))


@pytest.fixture(scope="module")
def csv_rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("steps") / "rows.csv"
    frame = _rows()
    frame.to_csv(path, index=False)
    return path, frame


@pytest.fixture(scope="module")
def prepared(spark, csv_rows, tmp_path_factory):
    path, _ = csv_rows
    cache = tmp_path_factory.mktemp("cache")
    return preprocess.run(spark, _cfg(path, cache), cache)


def test_every_step_applies_in_order(prepared, csv_rows):
    _, frame = csv_rows
    kept = frame[(frame.x2 >= 0) & frame.animal.notna()]
    assert sum(prepared.rows.values()) == len(kept)
    assert prepared.input_shape == (5,)  # x1, x2, color one-hot over 3 colours (last dropped)
    assert prepared.num_classes == 2
    meta = prepared.meta
    assert meta["label"]["classes"] == ["cat", "dog"] and meta["features"] == ["x1", "x2", "color"]
    table = prepared.table(["train", "val", "test"])
    features = np.stack(table.column("features").to_pylist())
    assert not np.isnan(features).any()  # imputed
    train = np.stack(prepared.table(["train"]).column("features").to_pylist())
    assert np.allclose(train.min(0), 0) and np.allclose(train.max(0), 1)  # min-max on train


def test_inference_reuses_the_fitted_transforms(spark, prepared, csv_rows):
    path, _ = csv_rows
    source = spark.read.options(header="true", inferSchema="true").csv(str(path))
    from pyspark.sql import functions as F

    again = preprocess.apply_transform(
        spark, prepared, source.withColumn("id", F.monotonically_increasing_id())
    ).toPandas().set_index("id").sort_index()
    written = prepared.table(["train", "val", "test"]).to_pandas().set_index("id").sort_index()
    assert list(again.index) == list(written.index)  # the same filters drop the same rows
    assert np.allclose(np.stack(again.features), np.stack(written.features))
    assert again.label.tolist() == written.label.tolist()

    new = spark.createDataFrame(pd.DataFrame(
        {"x1": [None, 0.0], "x2": [1.0, -5.0], "color": ["purple", "red"], "note": ["", ""],
         "animal": ["dog", "dog"]}
    ))
    out = preprocess.apply_transform(spark, prepared, new).toPandas()
    assert len(out) == 1  # x2 < 0 is filtered as in training
    assert out.label.tolist() == [1]  # "dog", indexed as in training
    assert out.features[0][2:].tolist() == [0.0, 0.0, 0.0]  # unseen colour: no one-hot bit


def test_standard_scaling_and_numeric_labels(spark, tmp_path):
    frame = pd.DataFrame({"a": np.arange(60.0), "b": np.arange(60.0) ** 2, "label": [0, 1, 2] * 20})
    frame.to_parquet(tmp_path / "rows.parquet")
    cfg = OmegaConf.structured(FileDataConfig(
        name="parquet", path=str(tmp_path / "rows.parquet"), features=["b"],
        cache_dir=str(tmp_path / "cache")))
    prepared = preprocess.run(spark, cfg, tmp_path / "cache")
    assert prepared.input_shape == (1,) and prepared.num_classes == 3
    train = prepared.table(["train"]).to_pandas()
    train_b = frame.b[train.id]
    values = np.stack(train.features)[:, 0]
    assert abs(values.mean()) < 1e-4 and abs(values.std(ddof=1) - 1) < 1e-3

    unlabelled = spark.createDataFrame(frame.drop(columns="label").iloc[:3])
    out = preprocess.apply_transform(spark, prepared, unlabelled).toPandas()
    assert out.label.isna().all() and len(out) == 3  # new rows need no label
    scaled = (frame.b[:3] - train_b.mean()) / train_b.std(ddof=1)
    assert np.allclose(np.stack(out.features)[:, 0], scaled, atol=1e-4)


def test_step_configs_are_checked_before_spark(tmp_path):
    cfg = _cfg(tmp_path, tmp_path, steps=[{"op": "explode"}, {"op": "filter"},
                                          {"op": "impute", "strategy": "mode!"}])
    assert steps.validate(cfg.steps) == [
        "data.steps[0].op: 'explode' is not one of filter, select, dropna, impute, onehot, "
        "categorical",
        "data.steps[1]: filter needs expr, a Spark SQL condition",
        "data.steps[2].strategy: 'mode!' is not mean, median or mode",
    ]


@pytest.mark.parametrize("overrides, message", [
    ({"steps": [{"op": "filter", "expr": "x2 > 100"}]},
     r"data.steps\[0\] \(filter\): leaves no rows"),
    ({"steps": [{"op": "dropna"}], "features": ["x1", "x9"]},
     r"data.features: no column 'x9' after data.steps; available: x1, x2, color, animal, note"),
    ({"steps": [{"op": "dropna"}], "features": ["x1", "color"]},
     r"data.features: non-numeric feature color \(string\)"),
    ({"steps": [{"op": "impute", "columns": ["nope"]}]},
     r"data.steps\[0\] \(impute\): no column 'nope'; available: x1, x2"),
    ({"steps": [{"op": "dropna", "columns": ["animal"]}]},
     r"data.features: some rows have null or NaN features; add \{op: dropna\}"),
])
def test_bad_inputs_are_one_clear_error_and_cache_nothing(spark, csv_rows, tmp_path,
                                                          overrides, message):
    path, _ = csv_rows
    overrides.setdefault("features", ["x1", "x2"])
    cfg = _cfg(path, tmp_path / "cache", **overrides)
    with pytest.raises(RunnerError, match=message):
        preprocess.run(spark, cfg, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_scoring_skips_only_the_row_conditions_that_read_the_label(spark):
    """dropna loses the label from its columns, a filter reading the label does not run, one
    that does not still runs; a select keeps the user's columns (carried along)."""
    train = spark.createDataFrame(
        [(i, "a" if i % 2 else "b", float(i), f"k{i}") for i in range(20)],
        "id long, y string, x double, key string")
    config = OmegaConf.create([
        {"op": "dropna", "columns": ["y", "x"]},
        {"op": "filter", "expr": "y != 'zzz'"},
        {"op": "filter", "expr": "x < 100"},
        {"op": "select", "exprs": ["y", "x * 2 AS x"]},
    ])
    fitted = steps.fit(config, "none", train, "y", ["x"],
                       {"_target_": "runner.tasks.Classification"})
    new = spark.createDataFrame([(1, 5.0, "k1"), (2, None, "k2"), (3, 500.0, "k3")],
                                "id long, x double, key string")
    from pyspark.sql import functions as F

    new = (new.withColumn(steps.KEPT, F.struct("key"))
           .withColumn("y", F.lit(None).cast("string")))
    scored = steps.run_stages(fitted.model, steps.to_input(new), "y", scoring=True)
    assert scored.skipped == ["y != 'zzz'"]
    out = scored.df.select(F.col(steps.KEPT)["key"].alias("key"), "x").toPandas()
    assert list(out["key"]) == ["k1"]  # k2: x is null (dropna on x), k3: filtered (x < 100)
    assert list(out["x"]) == [10.0]


@pytest.mark.parametrize("scaling", ["standard", "minmax", "none"])
def test_numbers_and_arrays_are_scaled_as_the_ml_scalers_do(spark, scaling):
    """Statistics of the train rows per value (a constant value: 0, or 0.5 for minmax); the
    features are one array<float>, the arrays' values after the numbers they follow."""
    rng = np.random.default_rng(1)
    x, a = rng.normal(3, 2, size=50), rng.normal(size=(50, 3))
    train = spark.createDataFrame(
        [(i, "y", float(x[i]), 7.0, [float(v) for v in a[i]]) for i in range(50)],
        "id long, y string, x double, c double, a array<double>")
    fitted = steps.fit([], scaling, train, "y", ["x", "c", "a"],
                       {"_target_": "runner.tasks.Classification"})
    out = steps.to_output(fitted.model.transform(train), fitted.task, "y")
    assert dict(out.dtypes)["features"] == "array<float>"
    got = np.stack(out.orderBy("id").toPandas().features)
    values = np.column_stack([x, np.full(50, 7.0), a])
    if scaling == "standard":
        std = values.std(0, ddof=1)
        expected = (values - values.mean(0)) / np.where(std > 0, std, np.inf)
    elif scaling == "minmax":
        span = values.max(0) - values.min(0)
        expected = np.where(span > 0, (values - values.min(0)) / np.where(span > 0, span, 1), 0.5)
    else:
        expected = values
    assert np.allclose(got, expected.astype(np.float32), atol=1e-6)


def test_bad_feature_values_fail_in_training_and_in_scoring_in_one_line(spark):
    train = spark.createDataFrame([(i, "y", float(i), [1.0, 2.0]) for i in range(10)],
                                  "id long, y string, x double, a array<double>")
    task = {"_target_": "runner.tasks.Classification"}
    fitted = steps.fit([], "standard", train, "y", ["x", "a"], task)
    short = spark.createDataFrame([(1, "y", 1.0, [1.0])], train.schema)
    with pytest.raises(RunnerError, match=r"^data.features: a row's `a` holds another number "
                                          r"of values than the 2 of the training rows$"):
        steps.fit([], "standard", train.unionByName(short), "y", ["x", "a"], task)
    for bad in [(2, "y", None, [1.0, 2.0]), (3, "y", float("nan"), [1.0, 2.0]),
                (4, "y", 1.0, None), (5, "y", 1.0, [1.0, 2.0, 3.0])]:
        rows = fitted.model.transform(spark.createDataFrame([bad], train.schema))
        with pytest.raises(Exception) as failure:
            rows.collect()
        error = steps.spark_error(failure.value, "fallback")
        assert str(error).startswith("data.features: "), (bad, str(error))


def test_onehot_categories_are_named_in_sql_and_unseen_values_flagged(spark):
    train = spark.createDataFrame([(i, "y", c) for i, c in enumerate(["b", "a", "it's", "b"])],
                                  "id long, y string, color string")
    fitted = steps.fit(OmegaConf.create([{"op": "onehot", "columns": ["color"]}]), "none",
                       train, "y", ["color"], {"_target_": "runner.tasks.Classification"})
    new = spark.createDataFrame([(9, "y", "it's"), (10, "y", "z"), (11, "y", None)],
                                train.schema).withColumn(steps.KEPT, F.struct("id"))
    scored = steps.run_stages(fitted.model, new, "y", scoring=True)
    out = steps.to_output(scored.df, fitted.task, "y", list(scored.unseen.values()))
    rows = out.orderBy("id").collect()
    assert [list(r.features) for r in rows] == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0] * 3]
    assert scored.unseen == {"color": f"{steps.UNSEEN}color"}
    assert [r[f"{steps.UNSEEN}color"] for r in rows] == [False, True, False]


def test_categorical_indices_come_last_unscaled_with_zero_for_unseen_and_null(spark):
    train = spark.createDataFrame(
        [(i, "y", c, float(i)) for i, c in enumerate(["b", "a", "it's", "b"])],
        "id long, y string, color string, x double")
    fitted = steps.fit(OmegaConf.create([{"op": "categorical", "columns": ["color"]}]),
                       "standard", train, "y", None, {"_target_": "runner.tasks.Classification"})
    assert fitted.features == ["x", "color"] and fitted.width == 2
    assert fitted.categories == [4]  # a, b, it's and 0: unseen or null
    new = spark.createDataFrame([(9, "y", "it's", 1.5), (10, "y", "z", 1.5), (11, "y", None, 1.5)],
                                train.schema).withColumn(steps.KEPT, F.struct("id"))
    scored = steps.run_stages(fitted.model, new, "y", scoring=True)
    out = steps.to_output(scored.df, fitted.task, "y", list(scored.unseen.values()))
    rows = out.orderBy("id").collect()
    assert [list(r.features) for r in rows] == [[0.0, 3.0], [0.0, 0.0], [0.0, 0.0]]
    assert [r[f"{steps.UNSEEN}color"] for r in rows] == [False, True, False]


@pytest.mark.parametrize("strategy", ["mean", "median", "mode"])
def test_impute_fills_as_pyspark_imputer_does(spark, strategy):
    from pyspark.ml.feature import Imputer

    rows = [(1.0, 2), (float("nan"), None), (3.0, 2), (None, 7), (3.0, 5), (8.0, 5)]
    df = spark.createDataFrame(rows, "x double, n int")
    step = OmegaConf.create({"op": "impute", "columns": ["x", "n"], "strategy": strategy})
    [stage], _ = steps._impute(step, df, "data.steps[0] (impute)", "label")
    ours = stage.transform(df)
    theirs = Imputer(inputCols=["x", "n"], outputCols=["x", "n"], strategy=strategy).fit(df)
    assert ours.dtypes == df.dtypes  # each column keeps its type
    assert ours.collect() == theirs.transform(df).collect()
