"""Stage 3: a saved model over rows, scored and written in the executors' Python workers.

One Spark job of ``mapInArrow`` tasks. Each task gets its rows as Arrow batches, runs the
model in batches of ``inference.batch_size`` (the model rebuilt once per Python worker, on
the task's GPU when Spark assigned it one, with the task's CPUs as torch threads) and writes
the task's (``runner.tasks``) output columns as Parquet files with pyarrow; only row counts
and metric sums return to the driver. A prepared split's row groups are dealt into one task
per slot and read by the tasks themselves, so the features never pass through the JVM; any
other rows (new data prepared with a run's fitted transform) come from their DataFrame as
Arrow buffers, without a Python object per row. Measured here against pyspark's
``predict_batch_udf`` (pandas, one NumPy array per row, Spark's Parquet writer): ``just
bench infer``. DataFrame-only, so it also runs over Spark Connect; the output directory,
like the prepared data the trials read, must be on storage the executors share with the
driver.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shutil
import uuid
import warnings
from importlib.util import find_spec
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from runner.data.prepared import PreparedDataset, RowGroup, deal, label_array
from runner.serve.artifacts import ModelArtifact
from runner.errors import RunnerError
from runner.tasks import Task, task_for

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from runner.data.preprocess import ScoringRows
    from pyspark.sql import DataFrame, SparkSession

TABLE_FORMATS = ("parquet", "delta")  # inference.table_format
KEPT = ("id", "label", "path")  # input columns the output carries over, when present
# Parquet batches a task reads at a time (model batches are inference.batch_size).
READ_BATCH_ROWS = 65_536
# Most rows one task of a prepared split reads (a retried task repeats at most this).
TASK_ROWS = 4_000_000


@dataclass(frozen=True)
class InferenceResult:
    """Where the predictions are and how good they are (empty metrics without labels)."""

    path: str
    rows: int
    metrics: dict[str, float]
    labelled: int | None = None  # rows with a label (metrics are over them); None: all
    unseen: dict[str, int] = field(default_factory=dict)  # onehot column -> rows unseen
    skipped: list[str] = field(default_factory=list)  # training-only row conditions
    table: str | None = None  # inference.table, when the rows were saved there too

    def notes(self) -> list[str]:
        """What a user should know about the scoring, in plain words."""
        lines = [f"saved as table {self.table}"] if self.table else []
        if not self.metrics:
            lines.append("no labels: no metrics")
        elif self.labelled is not None and self.labelled < self.rows:
            lines.append(f"metrics over the {self.labelled} of {self.rows} rows with a label")
        lines += [
            f"{n} rows with a {column} not seen in training (scored as unknown)"
            for column, n in self.unseen.items()
            if n
        ]
        lines += [f"training-only step not applied: WHERE {c}" for c in self.skipped]
        return lines


@dataclass(frozen=True)
class Scorer:
    """How tasks score Arrow batches (picklable: shipped to the executors): the model,
    which input columns pass through, where the labels and features are, the onehot
    columns' unseen flags and what to do about them (``keep`` or ``fail``)."""

    artifact: ModelArtifact
    batch_size: int
    kept: tuple[str, ...] = ()
    label: str | None = None
    features: str = "features"
    unseen: tuple[tuple[str, str], ...] = ()  # (onehot column, its flag column)
    on_unseen: str = "keep"

    def task(self) -> Task:
        return task_for(self.artifact.task).named(self.artifact.classes)

    def schema(self, kept_types: dict[str, "pa.DataType"]) -> "pa.Schema":
        """The scored batches' schema: the kept columns, then the task's."""
        import pyarrow as pa

        return pa.schema(
            [
                *((c, pa.string() if self._named(c) else kept_types[c]) for c in self.kept),
                *self.task().output_schema,
            ]
        )

    def _named(self, column: str) -> bool:
        """A kept label of class indices (a prepared split's), written by class name, as
        the task writes its predictions (classification's; binary keeps 0/1)."""
        return column == self.label and self.artifact.classes is not None and self._predicts_names

    @functools.cached_property
    def _predicts_names(self) -> bool:
        import pyarrow as pa

        return pa.types.is_string(self.task().output_schema.field("prediction").type)

    def score(
        self,
        batches: Iterator["pa.RecordBatch"],
        schema: "pa.Schema",
        counts: dict[str, Any] | None = None,
    ) -> Iterator["pa.RecordBatch"]:
        """``batches`` scored; ``counts`` (if given) gathers rows, the labelled rows' metric
        sums and the unseen values per onehot column."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import torch

        from runner.train import engine

        model, device = _worker_model(
            hashlib.sha256(self.artifact.weights).hexdigest(), self.artifact
        )
        task = self.task()
        counts = {} if counts is None else counts
        counts.setdefault("rows", 0)
        counts.setdefault("labelled", 0)
        counts.setdefault("sums", None)
        counts.setdefault("unseen", [0] * len(self.unseen))
        for batch in batches:
            for i, (column, flag) in enumerate(self.unseen):
                n = int(pc.sum(batch.column(flag)).as_py() or 0)
                if n and self.on_unseen == "fail":
                    raise RunnerError(
                        f"inference.unseen: {n} rows have a {column} not seen in training "
                        "(policy fail); set inference.unseen=keep to score them as unknown"
                    )
                counts["unseen"][i] += n
            out = engine.outputs(
                model,
                _features(batch.column(self.features), self.artifact),
                self.batch_size,
                device,
            )
            columns = task.predict(out)
            counts["rows"] += len(out)
            if self.label is not None:
                labels = batch.column(self.label)
                known = pc.is_valid(labels).to_numpy(zero_copy_only=False)
                if known.any():
                    scored = out if known.all() else out[torch.from_numpy(known)]
                    values = label_array(labels.filter(pa.array(known)))
                    sums = task.sums(scored, torch.from_numpy(values))
                    counts["sums"] = sums if counts["sums"] is None else counts["sums"] + sums
                    counts["labelled"] += int(known.sum())
            yield pa.RecordBatch.from_arrays(
                [
                    *(
                        pc.take(pa.array(self.artifact.classes), batch.column(c))
                        if self._named(c)
                        else batch.column(c)
                        for c in self.kept
                    ),
                    *(_arrow(columns[f.name], f.type) for f in task.output_schema),
                ],
                schema=schema,
            )


@dataclass(frozen=True)
class PreparedSplit:
    """One split of a prepared entry: the tasks read its Parquet row groups themselves."""

    dataset: PreparedDataset
    name: str


Rows = Union[PreparedSplit, "ScoringRows", "DataFrame"]


def validate(cfg: Any, out: Path | None, task: Task) -> list[str]:
    """Problems with an ``inference`` config (writing to ``out``, if known, the columns of
    ``task``), each naming its key."""
    import pyarrow as pa

    problems = []
    if cfg.get("table_format", "parquet") not in TABLE_FORMATS:
        problems.append(
            f"inference.table_format: {cfg.table_format!r} is not one of {', '.join(TABLE_FORMATS)}"
        )
    elif cfg.get("table") and cfg.table_format == "delta" and find_spec("delta") is None:
        problems.append(
            "inference.table_format: delta needs delta-spark; pip install 'spark-dl-runner[delta]'"
        )
    if cfg.get("table") and cfg.get("streaming"):
        problems.append(
            "inference.table: not with inference.streaming (its output is a "
            "file sink); read inference.output with Spark instead"
        )
    if cfg.get("unseen", "keep") not in ("keep", "fail"):
        problems.append(f"inference.unseen: {cfg.unseen!r} is not keep or fail")
    if cfg.batch_size < 1:
        problems.append(f"inference.batch_size: must be at least 1, got {cfg.batch_size}")
    if cfg.get("streaming") and cfg.get("data") is None:
        problems.append(
            "inference.streaming: needs inference.data, a folder that receives "
            "files; set data@inference.data=csv inference.data.path=DIR"
        )
    if cfg.get("streaming") and not cfg.get("output"):
        problems.append(
            "inference.output: streaming appends every call's rows to one "
            "output; set inference.output=PATH"
        )
    if out is not None and out.exists() and not cfg.overwrite and not cfg.get("streaming"):
        problems.append(
            f"inference.output: {out} exists; remove it, choose another "
            "inference.output, or set inference.overwrite=true"
        )
    columns = [*KEPT, *(f.name for f in task.output_schema if not pa.types.is_nested(f.type))]
    if cfg.get("data") is not None:  # the user's kept columns: checked once they are read
        columns += cfg.get("keep_columns") or []
    bad = [
        c
        for c in cfg.partition_by
        if c not in columns and (cfg.get("data") is None or cfg.get("keep_columns"))
    ]
    if bad:
        problems.append(
            f"inference.partition_by: {bad} not among the output columns {', '.join(columns)}"
        )
    return problems


def inference_keyed(problem: str) -> str:
    """A source's problem with ``data.*`` keys renamed to ``inference.data.*`` (and the
    option ``data=x`` to ``data@inference.data=x``)."""
    import re

    return re.sub(
        r"(?<![\w./@-])data([.=])(?=[a-z_])",
        lambda m: "inference.data." if m[1] == "." else "data@inference.data=",
        problem,
    )


def data_problems(data: Any, meta: dict[str, Any] | None = None) -> list[str]:
    """Problems with ``inference.data`` (rows to score: no label needed) found before Spark
    starts, each naming ``inference.data.*``; with the model's prepared ``meta``, also the
    feature columns a local CSV or Parquet input lacks."""
    from runner.data import preprocess, sources

    if data is None:
        return []
    try:
        source = sources.source_for(data)
        problems = [p for p in source.validate(data) if not p.startswith("data.label")]
    except RunnerError as err:
        problems = [str(err)]
    problems = [inference_keyed(p) for p in problems]
    columns = getattr(source, "columns", None) if not problems else None
    given = columns(data) if columns is not None and meta is not None else None
    if given is not None and meta is not None:
        missing = preprocess.missing_features(meta, given)
        if missing:
            problems.append(
                f"inference.data.path: {data.path} has no column "
                f"{', '.join(map(repr, missing))}; the model reads "
                f"{', '.join(meta['features'])}"
            )
    return problems


def stream(
    spark: "SparkSession", model: Any, data: Any, out: Path, checkpoint: Path
) -> InferenceResult:
    """Score the files in ``data``'s folder that no earlier call scored, as a Structured
    Streaming query (``trigger(availableNow=True)``: every file there now, then stop),
    appending them to the Parquet dataset ``out``. ``checkpoint`` records which files were
    scored and Spark's file sink commits each micro-batch once, so a stopped or failed call
    rerun scores each file exactly once. Metrics and unseen counts are not gathered here
    (``inference.unseen=fail`` still stops the query)."""
    from runner.data import sources

    static = sources.source_for(data).load(spark, data, labelled=False).df  # the schema
    options = {str(k): str(v) for k, v in data.options.items()}
    rows = (
        spark.readStream.format(data.format)
        .options(**options)
        .schema(static.schema)
        .load(data.path)
    )
    scored = model.transform(rows)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    query = (
        scored.writeStream.format("parquet")
        .outputMode("append")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start(str(out))
    )
    with _task_errors_as_one_line():
        try:
            query.awaitTermination()
        except Exception as err:  # a task's error reaches the driver as the query's
            from pyspark.errors import StreamingQueryException

            if not isinstance(err, StreamingQueryException):
                raise
            lines = [ln.strip() for ln in str(err).splitlines() if "RunnerError: " in ln]
            if lines:
                raise RunnerError(lines[-1].split("RunnerError: ", 1)[1]) from None
            raise
    total = sum(int(p["numInputRows"]) for p in query.recentProgress)
    return InferenceResult(path=str(out), rows=total, metrics={}, labelled=0)


def output_path(cfg: Any, run_dir: Path, original_cwd: Path) -> Path:
    """``inference.output`` (relative to where the runner started) or the run's default."""
    if not cfg.output:
        return run_dir / "predictions.parquet"
    out = Path(cfg.output)
    return out if out.is_absolute() else original_cwd / out


def load_rows(
    spark: "SparkSession", data: Any, prepared: PreparedDataset, keep: list[str] | None = None
) -> Rows:
    """The rows to predict: the prepared entry's test split, or the source ``data``
    (an ``inference.data`` config, its label optional) through the entry's fitted
    preprocessing as scoring runs it, passing ``keep`` (None: every non-feature) through."""
    from runner.data import preprocess
    from runner.data import sources

    if data is None:
        return PreparedSplit(prepared, "test")
    raw = sources.source_for(data).load(spark, data, labelled=False)
    return preprocess.scoring_rows(prepared, raw.df, keep)


def shares(split: PreparedSplit, slots: int) -> list[list[RowGroup]]:
    """The split's row groups dealt into tasks of about equal rows: one task per slot
    (each Python task costs ~0.1 s to start here), more only to keep a task under
    ``TASK_ROWS`` rows, never more than row groups."""
    groups = split.dataset.row_groups([split.name])
    total = sum(group.rows for group in groups)
    return deal(groups, min(len(groups), max(slots, math.ceil(total / TASK_ROWS))))


def run(
    spark: "SparkSession", rows: Rows, artifact: ModelArtifact, cfg: Any, out: Path
) -> InferenceResult:
    """Predict every row and write ``id``, [``label``] and the artifact's task's columns
    (classification: ``prediction``, ``probability``) as a Parquet dataset at ``out``,
    partitioned by ``inference.partition_by``; with labels, the task's metrics as ``test_*``.

    Written under a temporary name and renamed when complete, so a failed job leaves
    nothing at ``out``; an existing ``out`` is replaced only with ``inference.overwrite``.
    """
    import numpy as np

    from runner.data.preprocess import ScoringRows

    scorer = scorer_for(rows, artifact, cfg)
    task = scorer.task()
    problems = validate(cfg, out, task)
    if problems:
        raise RunnerError("; ".join(problems))
    schema = scorer.schema(kept_types(rows))
    bad = [c for c in cfg.partition_by if c not in schema.names or pa_nested(schema.field(c).type)]
    if bad:
        raise RunnerError(
            f"inference.partition_by: {bad} not among the output columns {', '.join(schema.names)}"
        )
    if cfg.get("table") and not cfg.overwrite and spark.catalog.tableExists(cfg.table):
        raise RunnerError(
            f"inference.table: {cfg.table} exists; drop it, choose another "
            "inference.table, or set inference.overwrite=true"
        )
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    write = _write_partition(scorer, schema, str(staging), list(cfg.partition_by))
    try:
        job = _job(spark, rows, scorer, write)
        arrow_batches = (
            nullcontext()
            if isinstance(rows, PreparedSplit)  # tasks read files
            else _arrow_batches_of_at_least(spark, cfg.batch_size)
        )
        with arrow_batches, _task_errors_as_one_line():
            counts = job.collect()
        total = sum(c["rows"] for c in counts)
        staging.mkdir(parents=True, exist_ok=True)
        if total == 0:  # no task wrote a file: one empty file keeps the schema readable
            import pyarrow.parquet as pq

            pq.write_table(
                schema.empty_table(), staging / "part-00000-0.parquet", **parquet_options(schema)
            )
        (staging / "_SUCCESS").touch()
        _replace(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sums = [c["sums"] for c in counts if c["sums"]]  # tasks with labelled rows
    labelled = sum(c["labelled"] for c in counts)
    metrics = (
        {f"test_{k}": v for k, v in task.metrics(np.sum(sums, axis=0)).items()}
        if scorer.label is not None and labelled
        else {}
    )
    unseen = {
        column: sum(c["unseen"][i] for c in counts) for i, (column, _) in enumerate(scorer.unseen)
    }
    if cfg.get("table"):
        _save_table(spark, out, cfg)
    return InferenceResult(
        path=str(out),
        rows=total,
        metrics=metrics,
        labelled=labelled if scorer.label is not None else 0,
        unseen=unseen,
        skipped=list(rows.skipped) if isinstance(rows, ScoringRows) else [],
        table=cfg.get("table"),
    )


def _save_table(spark: "SparkSession", out: Path, cfg: Any) -> None:
    """The written predictions saved as the catalog table ``inference.table`` (Spark reads
    and writes them: a managed table in the session's warehouse, partitioned as ``out``)."""
    writer = (
        spark.read.parquet(str(out))
        .write.format(cfg.get("table_format", "parquet"))
        .mode("overwrite" if cfg.overwrite else "errorifexists")
    )
    if cfg.partition_by:
        writer = writer.partitionBy(*cfg.partition_by)
    try:
        writer.saveAsTable(cfg.table)
    except Exception as err:
        from runner.errors import spark_cause

        raise RunnerError(
            f"inference.table: cannot save {cfg.table} ({spark_cause(err)}); "
            "check the name, its database and the catalog's warehouse"
        ) from None


def scorer_for(rows: Rows, artifact: ModelArtifact, cfg: Any) -> Scorer:
    """The scorer of ``rows``: a prepared split or layout keeps ``id`` and ``label`` (its
    metrics' labels); new rows keep the user's columns and carry the unseen flags."""
    from runner.data.preprocess import FEATURES, LABEL, ScoringRows

    policy, batch_size = cfg.get("unseen", "keep"), cfg.get("batch_size")
    if isinstance(rows, ScoringRows):
        return Scorer(
            artifact,
            batch_size,
            kept=tuple(rows.kept),
            label=LABEL if rows.labelled else None,
            features=FEATURES,
            unseen=tuple(rows.unseen.items()),
            on_unseen=policy,
        )
    kept = tuple(kept_types(rows))
    return Scorer(
        artifact,
        batch_size,
        kept=kept,
        label="label" if "label" in kept else None,
        on_unseen=policy,
    )


def pa_nested(type: "pa.DataType") -> bool:
    import pyarrow as pa

    return bool(pa.types.is_nested(type))


def _job(spark: "SparkSession", rows: Rows, scorer: Scorer, write) -> "DataFrame":
    """The stage's one job: a row count, labelled rows, metric sums and unseen counts per
    task, the predictions written as a side effect."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StructField, StructType

    from runner.cluster.spark import task_slots
    from runner.data.preprocess import ScoringRows

    counts = StructType(
        [
            StructField("rows", LongType()),
            StructField("labelled", LongType()),
            StructField("sums", ArrayType(DoubleType())),
            StructField("unseen", ArrayType(LongType())),
        ]
    )
    if isinstance(rows, PreparedSplit):
        dealt = shares(rows, task_slots(spark, default=2))
        tasks = spark.range(len(dealt), numPartitions=max(1, len(dealt)))
        return tasks.mapInArrow(_reading(rows.dataset, dealt, list(scorer.kept), write), counts)
    if isinstance(rows, ScoringRows):
        return rows.df.mapInArrow(write, counts)
    kind = dict(rows.dtypes)["features"]
    features = (
        F.col("features")
        if kind in ("binary", "array<int>")
        else F.col("features").cast("array<float>")
    ).alias("features")
    return rows.select(*scorer.kept, features).mapInArrow(write, counts)


def parquet_options(schema: "pa.Schema") -> dict[str, Any]:
    """Writer options for predictions: dictionary encoding only for integer columns but the
    id (classes). On unique ids and float probabilities it only costs (3x slower writes
    and larger files, measured here)."""
    import pyarrow as pa

    return {
        "use_dictionary": [f.name for f in schema if f.name != "id" and pa.types.is_integer(f.type)]
    }


def kept_types(rows: Rows) -> dict[str, "pa.DataType"]:
    """The Arrow types of the input's columns the output keeps: the user's (new rows), or
    ``id`` and ``label`` (those it has) of a prepared split or layout."""
    from runner.data.preprocess import ScoringRows

    if isinstance(rows, ScoringRows):
        from pyspark.sql.pandas.types import to_arrow_schema

        given = to_arrow_schema(rows.df.select(*(f"`{c}`" for c in rows.kept)).schema)
        return {c: given.field(c).type for c in rows.kept}
    if isinstance(rows, PreparedSplit):
        given = rows.dataset.schema(rows.name)
    else:
        from pyspark.sql.pandas.types import to_arrow_schema

        given = to_arrow_schema(rows.select(*(c for c in KEPT if c in rows.columns)).schema)
    return {c: given.field(c).type for c in KEPT if given is not None and c in given.names}


def _replace(out: Path, staging: Path) -> None:
    """Move the complete ``staging`` to ``out`` (an existing ``out`` was allowed by
    ``inference.overwrite``: validate() checked)."""
    if out.exists():
        old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old)
    else:
        staging.rename(out)


def _reading(dataset: PreparedDataset, dealt: list[list[RowGroup]], kept: list[str], write):
    """Task ``i`` of ``spark.range(len(dealt))``: read share ``i``'s row groups, then
    ``write``. The task knows ``i`` from its partition id, so it starts without waiting
    for its one input row (which reaches the worker ~40 ms into the task here)."""

    def read_partition(ids: Iterator["pa.RecordBatch"]):
        from pyspark import TaskContext

        context = TaskContext.get()
        assert context is not None  # in a Spark task
        share = dealt[context.partitionId()]
        yield from write(dataset.batches_of(share, [*kept, "features"], READ_BATCH_ROWS))
        for _ in ids:  # drained last: Spark reuses a Python worker only once it read its input
            pass

    return read_partition


def _write_partition(scorer: Scorer, schema: "pa.Schema", staging: str, partition_by: list[str]):
    """The task that scores one partition's batches and writes them under ``staging``:
    files named by partition, so a retried task replaces its earlier attempt's."""

    def write_partition(batches: Iterator["pa.RecordBatch"]):
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq
        from pyspark import TaskContext

        counts: dict[str, Any] = {}
        predicted = scorer.score(batches, schema, counts)
        context = TaskContext.get()
        assert context is not None  # in a Spark task
        name = f"part-{context.partitionId():05d}-{{i}}.parquet"
        options = parquet_options(schema)
        if partition_by:
            ds.write_dataset(
                predicted,
                staging,
                schema=schema,
                format="parquet",
                file_options=ds.ParquetFileFormat().make_write_options(**options),
                partitioning=partition_by,
                partitioning_flavor="hive",
                basename_template=name,
                existing_data_behavior="overwrite_or_ignore",
            )
        else:  # ParquetWriter: 1.6x faster here than write_dataset without partitions
            writer = None
            for batch in predicted:
                if writer is None:
                    os.makedirs(staging, exist_ok=True)
                    writer = pq.ParquetWriter(f"{staging}/{name.format(i=0)}", schema, **options)
                writer.write_batch(batch)
            if writer is not None:
                writer.close()
        sums = [] if counts.get("sums") is None else counts["sums"].tolist()
        yield pa.RecordBatch.from_pydict(
            {
                "rows": [counts.get("rows", 0)],
                "labelled": [counts.get("labelled", 0)],
                "sums": [sums],
                "unseen": [counts.get("unseen") or [0] * len(scorer.unseen)],
            },
            schema=pa.schema(
                [
                    ("rows", pa.int64()),
                    ("labelled", pa.int64()),
                    ("sums", pa.list_(pa.float64())),
                    ("unseen", pa.list_(pa.int64())),
                ]
            ),
        )

    return write_partition


def _arrow(values: "np.ndarray", type: "pa.DataType") -> "pa.Array":
    """One predicted column as Arrow: a 2-D array becomes a list per row."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_struct(type):  # one field per column
        return pa.StructArray.from_arrays(
            [pa.array(values[:, i], type=type.field(i).type) for i in range(type.num_fields)],
            fields=list(type),
        )
    if values.ndim == 1:
        return pa.array(values, type=type)
    offsets = np.arange(len(values) + 1, dtype=np.int32) * values.shape[1]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel()), type=type)


def _features(features: "pa.Array", artifact: ModelArtifact):
    """The model's input tensor (rows x ``input_shape``) of an Arrow array of stored
    features (see ``runner.data.prepared.model_input``); a RunnerError for null or wrongly
    sized rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import torch

    from runner.data.prepared import model_input

    if features.null_count:
        raise RunnerError("inference.data: rows with null features; drop or impute them first")
    width = math.prod(artifact.input_shape)
    lengths = (
        pc.binary_length(features)
        if pa.types.is_binary(features.type)
        else pc.list_value_length(features)
    ).to_numpy(zero_copy_only=False)
    if (lengths != width).any():  # every row checked, in the task
        raise RunnerError(
            f"inference.data: rows have {lengths[lengths != width][0]} features but the model "
            f"expects {width} (input_shape {list(artifact.input_shape)}); use data with the "
            "model's features"
        )
    values = model_input(features, artifact.input)
    with warnings.catch_warnings():  # Arrow's buffer is read-only; the model only reads it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(values).reshape(-1, *artifact.input_shape)


_worker_models: dict[tuple[str, str], Any] = {}


def _worker_model(key: str, artifact: ModelArtifact) -> tuple[Any, str]:
    """The model for ``key`` in this Python worker and its device, built on its first task
    only (one kept)."""
    import torch
    from pyspark import TaskContext

    from runner.cluster.resources import device_for, task_gpu

    context = TaskContext.get()
    device = device_for(task_gpu(context))
    torch.set_num_threads(max(1, context.cpus() if context is not None else 1))
    if (key, device) not in _worker_models:
        _worker_models.clear()
        _worker_models[key, device] = artifact.build(device)
    return _worker_models[key, device], device


@contextmanager
def _task_errors_as_one_line():
    """An exception raised in a task (after Spark's retries) becomes one RunnerError line:
    a task's RunnerError (bad input) as it is, anything else as
    ``inference: a Spark task failed: <its last line>``."""
    from pyspark.errors import PythonException

    try:
        yield
    except PythonException as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        cause = lines[-1] if lines else type(err).__name__
        own = f"{RunnerError.__module__}.{RunnerError.__name__}: "
        raise RunnerError(
            cause.removeprefix(own)
            if cause.startswith(own)
            else f"inference: a Spark task failed: {cause}"
        ) from None


@contextmanager
def _arrow_batches_of_at_least(spark: "SparkSession", rows: int):
    """Let a model batch be as large as ``inference.batch_size``: Arrow batches of at
    least that many rows while the stage runs (Spark's default is 10,000)."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key) or "10000"  # Spark's default
    if int(before) <= 0 or int(before) >= rows:  # <= 0: no limit
        yield
        return
    spark.conf.set(key, str(rows))
    try:
        yield
    finally:
        spark.conf.set(key, before)
