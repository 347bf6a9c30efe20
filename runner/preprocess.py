"""Stage 1: source -> split -> scale (pyspark.ml) -> Parquet, cached by fingerprint."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import sources
from runner.config import as_plain
from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPLITS = ("train", "val", "test")
# Bump when the prepared layout or the steps' semantics change: old entries stop matching.
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class PreparedData:
    """The prepared data set on disk: ``<path>/split=<name>/*.parquet`` plus ``meta.json``."""

    path: str
    fingerprint: str
    cache_hit: bool
    input_shape: tuple[int, ...]
    num_classes: int
    rows: dict[str, int]

    def split_path(self, split: str) -> str:
        return f"{self.path}/split={split}"


def validate(cfg: Any) -> list[str]:
    """Problems with a ``data`` config, each naming its key."""
    problems = []
    ratios = [cfg.split.train, cfg.split.val, cfg.split.test]
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        problems.append(
            f"data.split: train/val/test ratios {ratios} must be non-negative and sum to 1"
        )
    if min(cfg.split.train, cfg.split.val, cfg.split.test) <= 0:
        problems.append("data.split: train, val and test each need a ratio above 0")
    if cfg.scaling not in ("standard", "minmax", "none"):
        problems.append(f"data.scaling: {cfg.scaling!r} is not one of standard, minmax, none")
    return problems


def fingerprint(cfg: Any) -> str:
    """A content key over the source's identity and every preparation setting."""
    settings = {k: v for k, v in as_plain(cfg).items() if k not in ("cache", "cache_dir")}
    blob = json.dumps(
        {"v": _FORMAT_VERSION, "data": settings, "source": sources.identity(cfg)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(spark: "SparkSession", cfg: Any, cache_root: Path) -> PreparedData:
    """Prepare the data set, or reuse a complete cache entry with the same fingerprint."""
    key = fingerprint(cfg)
    final = cache_root / key
    if cfg.cache and (final / "meta.json").exists():
        return _read_entry(final, key, cache_hit=True)
    if final.exists():
        shutil.rmtree(final)

    tmp = cache_root / f".{key}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    try:
        _prepare(spark, cfg, tmp)
        try:
            tmp.rename(final)
        except OSError:  # a concurrent job finished the same entry first
            shutil.rmtree(tmp)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _read_entry(final, key, cache_hit=False)


def _prepare(spark: "SparkSession", cfg: Any, out: Path) -> None:
    from pyspark.sql import functions as F

    df = _assign_split(sources.load(spark, cfg), cfg.split).persist()
    input_width = len(df.select("features").first()[0])
    shape = tuple(cfg.image_shape) if cfg.image_shape else (input_width,)
    if math.prod(shape) != input_width:
        raise RunnerError(
            f"data.image_shape: {list(shape)} holds {math.prod(shape)} values but rows have "
            f"{input_width} features"
        )
    scaled = _scale(df, cfg.scaling, out / "transform")
    scaled.select("id", "label", "features", "split").write.partitionBy("split").parquet(
        str(out / "data")
    )
    counts = {r["split"]: r["count"] for r in df.groupBy("split").count().collect()}
    num_classes = int(df.agg(F.max("label")).first()[0]) + 1
    df.unpersist()
    meta = {
        "input_shape": list(shape),
        "num_classes": num_classes,
        "rows": {s: int(counts.get(s, 0)) for s in SPLITS},
        "config": as_plain(cfg),
    }
    for split in SPLITS:
        if meta["rows"][split] == 0:
            raise RunnerError(f"data.split: the {split} split is empty; raise data.split.{split}")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))


def _assign_split(df: "DataFrame", split: Any) -> "DataFrame":
    """Add ``split`` by a seeded hash of ``id``: the same rows land in the same split every run.

    Stratified: rows are ranked by hash within their label, so each split gets each
    class in proportion.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    hashed = F.abs(F.xxhash64("id", F.lit(split.seed))) % 1_000_003 / 1_000_003.0
    df = df.withColumn("_u", hashed)
    if split.stratify:
        df = df.withColumn("_u", F.percent_rank().over(Window.partitionBy("label").orderBy("_u")))
    return df.withColumn(
        "split",
        F.when(F.col("_u") < split.train, "train")
        .when(F.col("_u") < split.train + split.val, "val")
        .otherwise("test"),
    ).drop("_u")


def _scale(df: "DataFrame", scaling: str, save_to: Path) -> "DataFrame":
    """Fit the scaler on the train split only, save it, and apply it to every split."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import MinMaxScaler, StandardScaler
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    if scaling == "none":
        return _transformed(None, df)
    scaler_cls = StandardScaler if scaling == "standard" else MinMaxScaler
    kwargs = {"withMean": True, "withStd": True} if scaling == "standard" else {}
    model = Pipeline(stages=[scaler_cls(inputCol="_vec", outputCol="_scaled", **kwargs)]).fit(
        df.where(F.col("split") == "train").withColumn("_vec", array_to_vector("features"))
    )
    model.write().save(str(save_to))
    return _transformed(model, df)


def apply_transform(df: "DataFrame", entry: Path) -> "DataFrame":
    """New rows prepared like a cache entry's data: its fitted ``transform/``, if it has one."""
    from pyspark.ml import PipelineModel

    transform = entry / "transform"
    return _transformed(PipelineModel.load(str(transform)) if transform.exists() else None, df)


def _transformed(model: Any, df: "DataFrame") -> "DataFrame":
    """``features`` as float32 arrays, scaled by ``model`` (a fitted PipelineModel) if given."""
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql import functions as F

    if model is None:
        return df.withColumn("features", F.col("features").cast("array<float>"))
    scaled = model.transform(df.withColumn("_vec", array_to_vector("features")))
    return scaled.withColumn("features", vector_to_array("_scaled", dtype="float32")).drop(
        "_vec", "_scaled"
    )


def _read_entry(path: Path, key: str, cache_hit: bool) -> PreparedData:
    meta = json.loads((path / "meta.json").read_text())
    return PreparedData(
        path=str(path / "data"),
        fingerprint=key,
        cache_hit=cache_hit,
        input_shape=tuple(meta["input_shape"]),
        num_classes=meta["num_classes"],
        rows=meta["rows"],
    )

