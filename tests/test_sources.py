"""Data sources: scikit-learn, synthetic rows generated on the executors, files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from runner.config import CONF_DIR
from runner.data import preprocess, sources
from runner.data.sources import synthetic
from runner.data.sources.file import FileDataConfig, FileSource
from runner.data.sources.sklearn import SklearnDataConfig
from runner.data.sources.synthetic import SyntheticDataConfig
from runner.errors import RunnerError
from tests.conftest import compose_config


def _synthetic(**kw):
    return OmegaConf.structured(SyntheticDataConfig(name="synthetic", **kw))


def _file(path, fmt="parquet", **kw):
    return OmegaConf.structured(FileDataConfig(name=fmt, format=fmt, path=str(path), **kw))


def _collect(df):
    return df.toPandas().sort_values("id").reset_index(drop=True)


def test_sklearn_source_gives_id_label_features(spark):
    cfg = OmegaConf.structured(SklearnDataConfig(name="wine", dataset="wine"))
    raw = sources.source_for(cfg).load(spark, cfg)
    assert raw.label == "label" and raw.features is None
    assert raw.df.dtypes == [("id", "bigint"), ("label", "bigint"), ("features", "array<double>")]
    assert raw.df.count() == 178


def test_synthetic_rows_do_not_depend_on_partitioning(spark):
    one = _collect(sources.source_for(_synthetic()).load(spark, _synthetic(rows=3000, partitions=1)).df)
    three = _collect(sources.source_for(_synthetic()).load(spark, _synthetic(rows=3000, partitions=3)).df)
    assert len(one) == 3000 and one["id"].tolist() == list(range(3000))
    assert one["label"].equals(three["label"])
    assert np.array_equal(np.stack(one["features"]), np.stack(three["features"]))
    centroids = synthetic.synthetic_centroids(_synthetic())
    other_seed = synthetic.synthetic_rows(np.arange(3000), 1, centroids)
    assert not np.array_equal(other_seed[0], one["label"].to_numpy())


def test_synthetic_signal_is_learnable_and_image_shaped():
    cfg = _synthetic(image_shape=[1, 4, 4], num_classes=3, class_sep=3.0)
    centroids = synthetic.synthetic_centroids(cfg)
    labels, features = synthetic.synthetic_rows(np.arange(5000), 0, centroids)
    assert features.shape == (5000, 16) and set(labels) == {0, 1, 2}
    nearest = ((features[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == labels).mean() > 0.9  # nearest centroid recovers the class


def test_synthetic_prepares_through_the_stage(spark, tmp_path):
    cfg = _synthetic(rows=2000, num_features=5, num_classes=3)
    prepared = preprocess.run(spark, cfg, tmp_path / "cache")
    assert sum(prepared.rows.values()) == 2000
    assert prepared.input_shape == (5,) and prepared.num_classes == 3


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_file_sources_read_label_and_columns(spark, tmp_path, fmt):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6], "y": ["u", "v", "u"]})
    path = tmp_path / f"rows.{fmt}"
    {"parquet": frame.to_parquet, "csv": lambda p: frame.to_csv(p, index=False),
     "json": lambda p: frame.to_json(p, orient="records", lines=True)}[fmt](path)
    options = {"header": "true", "inferSchema": "true"} if fmt == "csv" else {}
    cfg = _file(path, fmt, label="y", options=options)
    raw = sources.source_for(cfg).load(spark, cfg)
    assert raw.label == "y" and raw.features is None
    rows = _collect(raw.df)
    assert rows["a"].tolist() == [1.0, 2.0, 3.0] and rows["y"].tolist() == ["u", "v", "u"]
    assert rows["id"].is_unique


def test_file_fingerprint_follows_the_files(spark, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,label\n1,0\n2,1\n")
    cfg = _file(path, "csv", options={"header": "true"})
    before = preprocess.fingerprint(spark, cfg)
    assert preprocess.fingerprint(spark, cfg) == before
    path.write_text("a,label\n1,0\n2,1\n3,1\n")
    assert preprocess.fingerprint(spark, cfg) != before


def test_missing_path_is_refused_before_spark(tmp_path):
    problems = preprocess.validate(_file(tmp_path / "nope.parquet"))
    assert problems == [f"data.path: {tmp_path / 'nope.parquet'} not found; "
                        "set data.path to a file or folder"]


def test_required_path_and_unknown_format(tmp_path):
    cfg = OmegaConf.structured(FileDataConfig(name="csv"))
    assert preprocess.validate(cfg) == ["data.path: required for data=csv; set data.path=URI"]
    (tmp_path / "x").write_text("")
    assert "data.format: 'xls' is not one of" in preprocess.validate(_file(tmp_path / "x", "xls"))[0]


def test_unreadable_file_is_one_clear_error(spark, tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not a parquet file at all")
    cfg = _file(bad)
    with pytest.raises(RunnerError, match=r"data.path: cannot read .*broken.parquet as parquet"):
        preprocess.run(spark, cfg, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_missing_label_lists_the_columns(spark, tmp_path):
    pd.DataFrame({"a": [1.0], "b": [2.0]}).to_parquet(tmp_path / "rows.parquet")
    cfg = _file(tmp_path / "rows.parquet", label="target")
    with pytest.raises(RunnerError, match="data.label: no column 'target' .*available: a, b"):
        preprocess.run(spark, cfg, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_cli_refuses_a_missing_file_in_one_line(tmp_path):
    from tests.conftest import run_cli

    proc = run_cli(["data=csv", f"data.path={tmp_path / 'nope.csv'}",
                    f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: data.path: {tmp_path / 'nope.csv'} not found; "
                                   "set data.path to a file or folder")
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "data").glob("*.yaml")))
def test_every_data_option_names_its_source_class(option, tmp_path):
    (tmp_path / "rows.csv").write_text("a,label\n1,0\n")
    cfg = compose_config([f"data={option}"])
    assert cfg.data._target_.startswith("runner.data.sources.")
    if OmegaConf.is_missing(cfg.data, "path"):  # file, text and image sources
        problems = sources.source_for(cfg.data).validate(cfg.data)
        assert len(problems) == 1
        assert problems[0].startswith(f"data.path: required for data={option}; set data.path=URI")
        cfg.data.path = str(tmp_path / "rows.csv")
    if OmegaConf.is_missing(cfg.data, "table"):
        problems = sources.source_for(cfg.data).validate(cfg.data)
        assert problems == [f"data.table: required for data={option}; set data.table=NAME"]
        cfg.data.table = "rows"
    assert sources.source_for(cfg.data).validate(cfg.data) == []


def test_an_unknown_source_class_names_the_key():
    cfg = _file("x").copy()
    cfg._target_ = "runner.data.sources.file.NoSuchSource"
    with pytest.raises(RunnerError, match=r"data\._target_: cannot load"):
        sources.source_for(cfg)


class _ConnectLike:
    """A session as Spark Connect gives it: the DataFrame API, no SparkContext."""

    def __init__(self, spark):
        self.read = spark.read

    @property
    def sparkContext(self):
        raise AttributeError("a Spark Connect session has no sparkContext")


def test_file_identity_lists_nested_files_and_globs_without_a_spark_context(spark, tmp_path):
    table = tmp_path / "table"
    for part, rows in (("k=1", "a,label\n1,0\n"), ("k=2", "a,label\n2,1\n3,0\n")):
        (table / part).mkdir(parents=True)
        (table / part / "rows.csv").write_text(rows)
    (table / "_SUCCESS").write_text("")
    session = _ConnectLike(spark)
    identity = FileSource().identity(session, _file(table, "csv"))
    files = identity["files"]
    assert [f[0].rsplit("table/", 1)[1] for f in files] == ["k=1/rows.csv", "k=2/rows.csv"]
    assert [f[1] for f in files] == [12, 16] and all(f[2] > 0 for f in files)
    glob = FileSource().identity(session, _file(f"{table}/k=2/*.csv", "csv"))
    assert glob["files"] == files[1:]
    with pytest.raises(RunnerError, match=r"data\.path: .*nope not found"):
        FileSource().identity(session, _file(tmp_path / "nope", "csv"))
