"""Stage 1: source -> rows -> split -> preparation fitted on train -> Parquet, cached.

The source's preparation (``runner.data.preparations``: tables, images, text) decides
how rows become features. The result is a :class:`~runner.data.prepared.PreparedDataset`,
the cache entry ``<cache_dir>/<fingerprint>/`` (its layout is ``runner.data.prepared``'s):
the splits, the fitted preparation that ``apply_transform`` reuses on new rows, and ``meta.json``,
written last: an entry without it is incomplete and never read. Builders of one local
entry take turns (a lock file in the temp dir), so jobs that need the same data at once build
it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.data import sources
from runner.data import steps
from runner.data.preparations import (
    NUMERIC,
    FittedPreparation,
    preparation_named,
    preparation_of,
    preparation_path,
)
from runner.data.prepared import PreparedDataset, WrittenRows, building, entry_in, row_writer
from runner.config import as_plain
from runner.errors import RunnerError, first_line

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPLITS = ("train", "val", "test")
# Bump when the prepared layout or the steps' semantics change: old entries stop matching.
FORMAT_VERSION = 6
_LOCK_DIR = Path(tempfile.gettempdir()) / "spark-dl-runner-locks"
_HASH_MOD = 1_000_000_007  # split hash resolution: ties only between ids 1e9 apart
_BUCKETS = 1_000  # of the hash, per label: where stratified cut points fall


def validate(cfg: Any) -> list[str]:
    """Problems with a ``data`` config found without Spark, each naming its key."""
    problems = []
    ratios = [cfg.split.train, cfg.split.val, cfg.split.test]
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        problems.append(
            f"data.split: train/val/test ratios {ratios} must be non-negative and sum to 1"
        )
    if min(cfg.split.train, cfg.split.val, cfg.split.test) <= 0:
        problems.append("data.split: train, val and test each need a ratio above 0")
    source = sources.source_for(cfg)
    return problems + preparation_of(source).validate(cfg) + source.validate(cfg)


def fingerprint(spark: "SparkSession", cfg: Any, task: Any = None) -> str:
    """A content key over every preparation setting, the task (it shapes the label) and
    the input's identity.

    The identity is what the config cannot say: the scikit-learn version, the
    generator's version, or each input file's path, size and modification time.
    """
    settings = {k: v for k, v in as_plain(cfg).items() if k not in ("cache", "cache_dir")}
    blob = json.dumps(
        {
            "v": FORMAT_VERSION,
            "data": settings,
            "task": _task_settings(task),
            "source": sources.source_for(cfg).identity(spark, cfg),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(
    spark: "SparkSession", cfg: Any, cache_root: "str | Path", task: Any = None
) -> PreparedDataset:
    """Prepare the data set under ``cache_root`` (a path or URI) for ``task`` (a task config;
    None or ``task=auto``: chosen from the label's type), or reuse a complete cache entry
    with the same fingerprint. The entry's ``task`` is the resolved task config."""
    problems = validate(cfg)
    if problems:
        raise RunnerError("; ".join(problems))
    key = fingerprint(spark, cfg, task)
    entry = entry_in(str(cache_root), key)
    with _builder_lock(str(cache_root), key):  # a job that needs the entry meanwhile waits here
        if cfg.cache and not entry.problems():
            return PreparedDataset(entry.uri, cache_hit=True)
        with building(str(cache_root), key) as tmp:
            _prepare(spark, cfg, tmp, _task_settings(task))
    return entry


def _task_settings(task: Any) -> dict[str, Any]:
    """A task config as plain data; ``{"_target_": "auto"}`` when none is given."""
    from runner.tasks import AUTO

    if task is None:
        return {"_target_": AUTO}
    return task if isinstance(task, dict) else as_plain(task)


@contextmanager
def _builder_lock(cache_root: str, key: str) -> Iterator[None]:
    """Hold a lock file for the entry: one builder of an entry at a time, across threads
    and processes (each ``open`` is its own lock holder for ``flock``). The lock lives in
    the temp dir, so the cache holds only entries. A remote cache root (a URI) has no lock:
    concurrent builders there each publish, the first one stays."""
    if "://" in cache_root and not cache_root.startswith("file://"):
        yield
        return
    root = Path(cache_root.removeprefix("file://")).resolve()
    name = hashlib.sha256(f"{root}/{key}".encode()).hexdigest()[:16]
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(_LOCK_DIR / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def apply_transform(
    spark: "SparkSession", prepared: PreparedDataset, df: "DataFrame"
) -> "DataFrame":
    """New rows -> the prepared layout, through the entry's fitted preparation.

    ``df`` has the source's columns; it may lack the label (the output's is then
    null, as it is for a string label unseen in training) and ``id`` (one is added).
    """
    fitted, rows = _fitted_rows(prepared, df)
    return fitted.transform(rows)


def _fitted_rows(
    prepared: PreparedDataset, df: "DataFrame"
) -> tuple[FittedPreparation, "DataFrame"]:
    """The entry's fitted preparation and ``df`` made ready for it (``Preparation.rows``),
    with an ``id`` and a label column (null) added where ``df`` has none."""
    from omegaconf import OmegaConf
    from pyspark.sql import functions as F

    from runner.data.sources import RawData

    label = prepared.meta["label"]
    if "id" not in df.columns:  # steps may read it; a stream cannot number its rows
        df = df.withColumn(
            "id", F.lit(None).cast("long") if df.isStreaming else F.monotonically_increasing_id()
        )
    if label["column"] not in df.columns:
        df = df.withColumn(label["column"], F.lit(None).cast(label["type"]))
    preparation = preparation_named(prepared.meta.get("preparation", NUMERIC))
    cfg = OmegaConf.create(prepared.meta.get("config", {}))
    return preparation.load(prepared), preparation.rows(RawData(df, label["column"], None), cfg)


@dataclass(frozen=True)
class ScoringRows:
    """New rows ready for a model: the user's ``kept`` columns, ``LABEL`` (the label's
    index; absent without a label column), ``FEATURES`` and one flag per onehot column."""

    df: "DataFrame"
    kept: list[str]
    labelled: bool  # the rows came with the run's label column
    skipped: list[str]  # row conditions of data.steps that ran only in training
    unseen: dict[str, str]  # onehot column -> its flag column in ``df``


LABEL = "__label"
FEATURES = "__features"


def missing_features(meta: dict[str, Any], columns: list[str]) -> list[str]:
    """The features a model was trained on that ``columns`` (new rows') lack; none known
    when a ``select`` step may have made them."""
    steps_ = (meta.get("config") or {}).get("steps") or []
    if any(step.get("op") == "select" for step in steps_):
        return []
    return [c for c in meta.get("features") or [] if c not in columns]


def default_kept(prepared: PreparedDataset, columns: list[str]) -> list[str]:
    """What scoring passes through by default: every input column that is not a feature."""
    features = set(prepared.meta.get("features") or ["features"])
    return [c for c in columns if c not in features]


def scoring_rows(
    prepared: PreparedDataset, df: "DataFrame", kept: list[str] | None = None
) -> ScoringRows:
    """New rows -> the model's input, as the entry's fitted preparation scores them
    (``FittedPreparation.scoring``): no label needed, training-only row conditions left
    out, ``kept`` (default: ``default_kept``) passed through unchanged. Lazy: no Spark job
    runs."""
    from pyspark.sql import functions as F

    kept = default_kept(prepared, df.columns) if kept is None else list(kept)
    labelled = prepared.meta["label"]["column"] in df.columns
    df = df.withColumn(steps.KEPT, F.struct(*(F.col(f"`{c}`") for c in kept)))
    fitted, rows = _fitted_rows(prepared, df)
    scored = fitted.scoring(rows)
    columns = [F.col(steps.KEPT)[c].alias(c) for c in kept]
    if labelled:
        columns.append(F.col("label").alias(LABEL))
    columns.append(F.col("features").alias(FEATURES))
    columns += [F.col(flag) for flag in scored.unseen.values()]
    return ScoringRows(scored.df.select(*columns), kept, labelled, scored.skipped, scored.unseen)


def _prepare(spark: "SparkSession", cfg: Any, out: PreparedDataset, task: dict[str, Any]) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from runner.tasks import infer, is_auto, task_for

    source = sources.source_for(cfg)
    preparation = preparation_of(source)
    raw = source.load(spark, cfg)
    kinds = dict(raw.df.dtypes)
    if raw.label not in kinds:
        raise RunnerError(
            f"data.label: no column {raw.label!r}; available: "
            f"{', '.join(c for c in kinds if c != 'id')}"
        )
    task = infer(kinds[raw.label]) if is_auto(task) else task
    stratify = cfg.split.stratify and task_for(task).stratify
    # The split's cut points, the fit and the write each scan the rows: unless reading
    # them again is as cheap (raw.reread), read (or generate, or decode) the source once,
    # kept on the executors' local disks (memory-safe at any size).
    rows = preparation.rows(raw, cfg)
    if not raw.reread:
        rows = rows.persist(StorageLevel.DISK_ONLY)
    try:
        df = _assign_split(rows, raw.label, cfg.split, stratify)
        fitted = preparation.fit(spark, cfg, df, raw, task)
        fitted.save(out)
        # One pass writes the three splits: each row's split rides along in KEPT.
        carried = df.withColumn(steps.KEPT, F.struct("split")).drop("split")
        prepared = (
            fitted.transform(carried)
            .select("*", F.col(steps.KEPT)["split"].alias("split"))
            .drop(steps.KEPT)
        )
        writer = row_writer(out.uri, task_for(fitted.task).counts_labels)
        written = WrittenRows()
        try:
            for counted in prepared.mapInArrow(writer, "counts string").collect():
                written.add(json.loads(counted["counts"]))
        except RunnerError:
            raise
        except Exception as err:
            raise steps.spark_error(
                err, f"data: preparing the rows failed ({first_line(err)})"
            ) from err
    finally:
        if not raw.reread:
            rows.unpersist()
    meta = _describe(cfg, written, fitted)
    out.write_meta({**meta, "preparation": preparation_path(source)})


def _describe(cfg: Any, written: WrittenRows, fitted: FittedPreparation) -> dict:
    """Check the written rows (as the writer tasks counted them) and describe them for
    ``meta.json``."""
    from runner.tasks import task_for

    rows = {s: written.rows.get(s, 0) for s in SPLITS}
    for split in SPLITS:
        if rows[split] == 0:
            raise RunnerError(
                f"data.split: the {split} split is empty; raise data.split.{split} "
                "or loosen the filters in data.steps"
            )
    unlabelled = written.unlabelled
    if unlabelled:
        raise RunnerError(
            f"data.label: {unlabelled} rows have no label; add "
            f"{{op: dropna, columns: [{fitted.label}]}} to data.steps"
        )
    described = task_for(fitted.task).describe_label(written.labels)

    own = fitted.describe()
    return {
        **own,
        **described,
        "rows": rows,
        "task": fitted.task,
        "label": {
            "column": fitted.label,
            "type": fitted.label_type,
            "classes": fitted.task.get("classes"),
        },
        "features": fitted.features,
        "config": as_plain(cfg),
    }


def _assign_split(df: "DataFrame", label: str, split: Any, stratify: bool) -> "DataFrame":
    """Add ``split`` from a seeded hash of ``id``: the same rows land in the same split.

    Stratified: each label's train/val cut points come from a histogram of the hash (one
    small aggregation, kept on the driver as a literal map): a label's rows up to the first
    of ``_BUCKETS`` buckets where its running count reaches the ratio go to train (within
    1/``_BUCKETS`` of its rows; exact for small classes), so every split gets each class in
    proportion without sorting or shuffling the rows. Counting buckets costs half of
    ``percentile_approx``'s sketches (1.6-1.9 vs 2.7-3.7 s for 10M rows on 2 cores).
    """
    from itertools import chain

    from pyspark.sql import functions as F

    u = F.pmod(F.xxhash64("id", F.lit(split.seed)), F.lit(_HASH_MOD)) / float(_HASH_MOD)
    df = df.withColumn("_u", u)
    ratios = [split.train, split.train + split.val]
    if stratify:
        table = {r[label]: r["c"] for r in _cut_points(df, label, ratios) if r[label] is not None}
        if not table:
            raise RunnerError(
                f"data: no rows with a value in the label column {label!r} "
                "(a header-only file?); give data.path a file with rows, "
                "or check data.label"
            )
        lookup = F.create_map(
            *chain.from_iterable(
                (F.lit(k), F.array(F.lit(c[0]), F.lit(c[1]))) for k, c in table.items()
            )
        )[F.col(label)]
        first, second = lookup[0], lookup[1]
    else:
        first, second = F.lit(ratios[0]), F.lit(ratios[1])
    return df.withColumn(
        "split",
        F.when(F.col("_u") < first, "train").when(F.col("_u") < second, "val").otherwise("test"),
    ).drop("_u")


def _cut_points(df: "DataFrame", label: str, ratios: list[float]) -> list[Any]:
    """Per label, the ``_u`` below which each of ``ratios`` of its rows lie: the upper
    edge of the first histogram bucket where the label's running count reaches it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    buckets = df.groupBy(label, F.floor(F.col("_u") * _BUCKETS).alias("b")).count()
    per_label = Window.partitionBy(label)
    running = per_label.orderBy("b").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    counted = buckets.select(
        label,
        "b",
        F.sum("count").over(running).alias("running"),
        F.sum("count").over(per_label).alias("rows"),
    )
    edges = [
        (F.min(F.when(F.col("running") >= ratio * F.col("rows"), F.col("b"))) + 1) / _BUCKETS
        for ratio in ratios
    ]
    return counted.groupBy(label).agg(F.array(*edges).alias("c")).collect()
