"""Data sources: a ``data`` config -> a Spark DataFrame of raw rows, keyed by schema type.

Every source gives an ``id`` (long, unique), a label column and feature columns: either
one ``features`` array (scikit-learn, synthetic) or plain columns that the steps in
``runner.data.steps`` turn into the features vector (files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlparse

from runner.config import FileDataConfig, SklearnDataConfig, SyntheticDataConfig
from runner.errors import RunnerError, first_line

if TYPE_CHECKING:
    import numpy as np
    from pyspark.sql import DataFrame, SparkSession

SKLEARN_DATASETS = ("digits", "wine", "breast_cancer", "iris")
FILE_FORMATS = ("parquet", "csv", "json", "delta")
# Bump when the synthetic generator changes: its cache entries stop matching.
_SYNTHETIC_VERSION = 1
_BLOCK = 1024  # synthetic rows are drawn in blocks of ids, so partitioning never changes them
_VALUES_PER_PARTITION = 8_000_000  # feature values per partition (~64 MB as doubles)


@dataclass(frozen=True)
class RawData:
    """A source's rows: ``id`` plus the label and feature columns it names."""

    df: "DataFrame"
    label: str
    features: Optional[list[str]]  # null: every numeric column but the label and id


class Source:
    """One kind of source; subclasses are registered by the config schema they read."""

    def validate(self, cfg: Any) -> list[str]:
        """Problems found without Spark, each naming its key."""
        return []

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        """What identifies the input's content beyond the config, for the cache key."""
        return {}

    def load(self, spark: "SparkSession", cfg: Any) -> RawData:
        raise NotImplementedError


class SklearnSource(Source):
    """A data set bundled with scikit-learn: small, built on the driver."""

    def validate(self, cfg: Any) -> list[str]:
        if cfg.dataset in SKLEARN_DATASETS:
            return []
        return [f"data.dataset: unknown scikit-learn data set {cfg.dataset!r}; "
                f"choose one of {', '.join(SKLEARN_DATASETS)}"]

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        import sklearn

        return {"sklearn": sklearn.__version__}

    def load(self, spark: "SparkSession", cfg: Any) -> RawData:
        import pandas as pd
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{cfg.dataset}")()
        frame = pd.DataFrame(
            {
                "id": range(len(bunch.target)),
                "label": bunch.target.astype("int64"),
                "features": list(bunch.data.astype("float64")),
            }
        )
        df = spark.createDataFrame(frame, schema="id long, label long, features array<double>")
        return RawData(df, "label", None)


class SyntheticSource(Source):
    """Rows generated in parallel on the executors; nothing is built on the driver.

    Class ``k`` is a Gaussian around a fixed random centroid (``class_sep`` apart in
    units of the unit noise), so the signal is learnable. Rows are drawn in blocks of
    ids, each from its own seeded generator: the data depend on the config only.
    """

    def validate(self, cfg: Any) -> list[str]:
        problems = []
        if cfg.rows < 1:
            problems.append(f"data.rows: must be at least 1, got {cfg.rows}")
        if cfg.num_classes < 2:
            problems.append(f"data.num_classes: must be at least 2, got {cfg.num_classes}")
        if not cfg.image_shape and cfg.num_features < 1:
            problems.append(f"data.num_features: must be at least 1, got {cfg.num_features}")
        if cfg.partitions is not None and cfg.partitions < 1:
            problems.append(f"data.partitions: must be at least 1 or null, got {cfg.partitions}")
        return problems

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        return {"generator": _SYNTHETIC_VERSION}

    def load(self, spark: "SparkSession", cfg: Any) -> RawData:
        from runner.cluster.spark import task_slots

        centroids, seed = synthetic_centroids(cfg), int(cfg.seed)

        def generate(batches):  # Arrow in and out: no Python object per row
            import numpy as np
            import pyarrow as pa

            for batch in batches:
                ids = batch.column(0).to_numpy()
                labels, features = synthetic_rows(ids, seed, centroids)
                rows, width = features.shape
                offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
                yield pa.RecordBatch.from_arrays(
                    [pa.array(ids), pa.array(labels),
                     pa.ListArray.from_arrays(offsets, pa.array(features.ravel()))],
                    names=["id", "label", "features"],
                )

        rows, width = int(cfg.rows), centroids.shape[1]
        partitions = cfg.partitions or max(
            task_slots(spark, default=2), -(-rows * width // _VALUES_PER_PARTITION)
        )
        df = spark.range(rows, numPartitions=int(partitions)).mapInArrow(
            generate, "id long, label long, features array<double>"
        )
        return RawData(df, "label", None)


def synthetic_centroids(cfg: Any) -> "np.ndarray":
    """The fixed class centroids (classes x width) of a synthetic config."""
    import math

    import numpy as np

    width = math.prod(cfg.image_shape) if cfg.image_shape else cfg.num_features
    return np.random.default_rng([int(cfg.seed), 0]).normal(
        scale=float(cfg.class_sep), size=(int(cfg.num_classes), width)
    )


def synthetic_rows(ids: "np.ndarray", seed: int, centroids: "np.ndarray"):
    """Labels and features of the synthetic rows ``ids``, the same whoever draws them."""
    import numpy as np

    classes, width = centroids.shape
    labels = np.empty(len(ids), dtype=np.int64)
    features = np.empty((len(ids), width))
    blocks = ids // _BLOCK
    order = np.argsort(blocks, kind="stable")  # rows grouped by block: linear in len(ids)
    starts = np.flatnonzero(np.diff(blocks[order], prepend=-1))
    for rows in np.split(order, starts[1:]):
        rng = np.random.default_rng([seed, 1, int(blocks[rows[0]])])
        y = rng.integers(classes, size=_BLOCK)
        x = centroids[y] + rng.standard_normal((_BLOCK, width))
        offsets = ids[rows] % _BLOCK
        labels[rows], features[rows] = y[offsets], x[offsets]
    return labels, features


class FileSource(Source):
    """Parquet, CSV, JSON or Delta read by Spark from any URI it understands.

    The input's identity is every file under ``path`` with its size and modification
    time (listed through Hadoop's FileSystem, so s3a:// and hdfs:// work too).
    """

    def validate(self, cfg: Any) -> list[str]:
        from omegaconf import OmegaConf

        if OmegaConf.is_missing(cfg, "path"):
            return [f"data.path: required for data={cfg.name}; set data.path=URI"]
        problems = []
        if cfg.format not in FILE_FORMATS:
            problems.append(f"data.format: {cfg.format!r} is not one of {', '.join(FILE_FORMATS)}")
        elif cfg.format == "delta" and not _importable("delta"):
            problems.append("data.format: delta needs delta-spark; "
                            "pip install 'spark-dl-runner[delta]'")
        local = _local_path(cfg.path)
        if local is not None and not any(ch in str(local) for ch in "*?[{") and not local.exists():
            problems.append(f"data.path: {cfg.path} not found; set data.path to a file or folder")
        if cfg.features is not None and cfg.label in cfg.features:
            problems.append(f"data.features: lists the label column {cfg.label!r}; remove it")
        return problems

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        jvm = spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(cfg.path)
        fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        statuses = fs.globStatus(path)
        if not statuses:
            raise RunnerError(f"data.path: {cfg.path} not found; set data.path to a file or folder")
        files = []
        for status in statuses:
            listing = fs.listFiles(status.getPath(), True)
            while listing.hasNext():
                f = listing.next()
                files.append([f.getPath().toString(), f.getLen(), f.getModificationTime()])
        return {"files": sorted(files)}

    def load(self, spark: "SparkSession", cfg: Any) -> RawData:
        from pyspark.sql import functions as F

        options = {str(k): str(v) for k, v in cfg.options.items()}
        try:
            df = spark.read.format(cfg.format).options(**options).load(cfg.path)
            df.schema  # noqa: B018 -- schema inference is where an unreadable file fails
        except Exception as err:
            raise RunnerError(
                f"data.path: cannot read {cfg.path} as {cfg.format} ({first_line(err)}); "
                "check data.format and data.options"
            ) from None
        if cfg.label not in df.columns:
            raise RunnerError(
                f"data.label: no column {cfg.label!r} in {cfg.path}; "
                f"available: {', '.join(df.columns)}"
            )
        if "id" not in df.columns:
            df = df.withColumn("id", F.monotonically_increasing_id())
        return RawData(df, cfg.label, list(cfg.features) if cfg.features is not None else None)


_REGISTRY: dict[type, Source] = {
    SklearnDataConfig: SklearnSource(),
    SyntheticDataConfig: SyntheticSource(),
    FileDataConfig: FileSource(),
}


def source_for(cfg: Any) -> Source:
    """The source that reads a ``data`` config, chosen by the schema it was built from."""
    from omegaconf import OmegaConf

    schema = OmegaConf.get_type(cfg)
    if schema not in _REGISTRY:
        raise RunnerError(
            f"data: {getattr(schema, '__name__', schema)} is not a data source schema; start the "
            f"option's defaults list with one of base_sklearn, base_synthetic, base_file"
        )
    return _REGISTRY[schema]


def _local_path(uri: str) -> Optional[Path]:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    return None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
