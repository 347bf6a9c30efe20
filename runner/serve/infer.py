"""Stage 3: a saved model over rows, scored and written in the executors' Python workers.

One Spark job of ``mapInArrow`` tasks. Each task gets its rows as Arrow batches, runs the
model in batches of ``inference.batch_size`` (the model rebuilt once per Python worker, on
the task's GPU when Spark assigned it one, with the task's CPUs as torch threads) and
writes the task's (``runner.tasks``) output columns as Parquet files with pyarrow; only
row counts and metric sums return to the driver. A prepared split's row groups are dealt into one task per slot and read by the
tasks themselves, so the features never pass through the JVM; any other rows (new data
prepared with a run's fitted transform) come from their DataFrame as Arrow buffers,
without a Python object per row. Measured here against pyspark's ``predict_batch_udf``
(pandas, one NumPy array per row, Spark's Parquet writer): ``just bench infer``.
DataFrame-only, so it also runs over Spark Connect; the output directory, like the
prepared data the trials read, must be on storage the executors share with the driver.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from runner.data.prepared import PreparedDataset, RowGroup, deal, label_array
from runner.serve.artifacts import ModelArtifact
from runner.errors import RunnerError
from runner.tasks import Task, task_for

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

KEPT = ("id", "label")  # input columns the output carries over, when present
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


@dataclass(frozen=True)
class PreparedSplit:
    """One split of a prepared entry: the tasks read its Parquet row groups themselves."""

    dataset: PreparedDataset
    name: str


Rows = Union[PreparedSplit, "DataFrame"]


def validate(cfg: Any, out: Path | None, task: Task) -> list[str]:
    """Problems with an ``inference`` config (writing to ``out``, if known, the columns of
    ``task``), each naming its key."""
    import pyarrow as pa

    problems = []
    if cfg.batch_size < 1:
        problems.append(f"inference.batch_size: must be at least 1, got {cfg.batch_size}")
    if out is not None and out.exists() and not cfg.overwrite:
        problems.append(f"inference.output: {out} exists; remove it, choose another "
                        "inference.output, or set inference.overwrite=true")
    columns = [*KEPT, *(f.name for f in task.output_schema if not pa.types.is_nested(f.type))]
    bad = [c for c in cfg.partition_by if c not in columns]
    if bad:
        problems.append(f"inference.partition_by: {bad} not among the output columns "
                        f"{', '.join(columns)}")
    return problems


def output_path(cfg: Any, run_dir: Path, original_cwd: Path) -> Path:
    """``inference.output`` (relative to where the runner started) or the run's default."""
    if not cfg.output:
        return run_dir / "predictions.parquet"
    out = Path(cfg.output)
    return out if out.is_absolute() else original_cwd / out


def load_rows(spark: "SparkSession", data: Any, prepared: PreparedDataset) -> Rows:
    """The rows to predict: the prepared entry's test split, or the source ``data``
    (an ``inference.data`` config) prepared with the entry's fitted transform."""
    from runner.data import preprocess
    from runner.data import sources

    if data is None:
        return PreparedSplit(prepared, "test")
    raw = sources.source_for(data).load(spark, data)
    return preprocess.apply_transform(spark, prepared, raw.df)


def shares(split: PreparedSplit, slots: int) -> list[list[RowGroup]]:
    """The split's row groups dealt into tasks of about equal rows: one task per slot
    (each Python task costs ~0.1 s to start here), more only to keep a task under
    ``TASK_ROWS`` rows, never more than row groups."""
    groups = split.dataset.row_groups([split.name])
    total = sum(group.rows for group in groups)
    return deal(groups, min(len(groups), max(slots, math.ceil(total / TASK_ROWS))))


def run(spark: "SparkSession", rows: Rows, artifact: ModelArtifact, cfg: Any,
        out: Path) -> InferenceResult:
    """Predict every row and write ``id``, [``label``] and the artifact's task's columns
    (classification: ``prediction``, ``probability``) as a Parquet dataset at ``out``,
    partitioned by ``inference.partition_by``; with labels, the task's metrics as ``test_*``.

    Written under a temporary name and renamed when complete, so a failed job leaves
    nothing at ``out``; an existing ``out`` is replaced only with ``inference.overwrite``.
    """
    import numpy as np
    import pyarrow as pa

    task = task_for(artifact.task)
    problems = validate(cfg, out, task)
    if problems:
        raise RunnerError("; ".join(problems))
    kept_types = _kept_types(rows)
    kept = list(kept_types)
    schema = pa.schema([*kept_types.items(), *task.output_schema])
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    write = _write_partition(artifact, cfg.batch_size, schema, str(staging), list(cfg.partition_by))
    try:
        job = _job(spark, rows, kept, write)
        arrow_batches = (nullcontext() if isinstance(rows, PreparedSplit)  # tasks read files
                         else _arrow_batches_of_at_least(spark, cfg.batch_size))
        with arrow_batches, _task_errors_as_one_line():
            counts = job.collect()
        total = sum(c["rows"] for c in counts)
        staging.mkdir(parents=True, exist_ok=True)
        if total == 0:  # no task wrote a file: one empty file keeps the schema readable
            import pyarrow.parquet as pq

            pq.write_table(schema.empty_table(), staging / "part-00000-0.parquet",
                           **parquet_options(schema))
        (staging / "_SUCCESS").touch()
        _replace(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sums = [c["sums"] for c in counts if c["sums"]]  # tasks with labelled rows
    metrics = ({f"test_{k}": v for k, v in task.metrics(np.sum(sums, axis=0)).items()}
               if "label" in schema.names and total else {})
    return InferenceResult(path=str(out), rows=total, metrics=metrics)


def _job(spark: "SparkSession", rows: Rows, kept: list[str], write) -> "DataFrame":
    """The stage's one job: a row count and the metric sums per task, the predictions
    written as a side effect."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StructField, StructType

    from runner.cluster.spark import task_slots

    counts = StructType([StructField("rows", LongType()),
                         StructField("sums", ArrayType(DoubleType()))])
    if isinstance(rows, PreparedSplit):
        dealt = shares(rows, task_slots(spark, default=2))
        tasks = spark.range(len(dealt), numPartitions=max(1, len(dealt)))
        return tasks.mapInArrow(_reading(rows.dataset, dealt, kept, write), counts)
    features = F.col("features").cast("array<float>").alias("features")
    return rows.select(*kept, features).mapInArrow(write, counts)


def parquet_options(schema: "pa.Schema") -> dict[str, Any]:
    """Writer options for predictions: dictionary encoding only for integer columns but the
    id (classes). On unique ids and float probabilities it only costs (3x slower writes
    and larger files, measured here)."""
    import pyarrow as pa

    return {"use_dictionary": [f.name for f in schema
                               if f.name != "id" and pa.types.is_integer(f.type)]}


def _kept_types(rows: Rows) -> dict[str, "pa.DataType"]:
    """The Arrow types of the input's ``id`` and ``label`` columns (those it has), which
    the output keeps."""
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

        share = dealt[TaskContext.get().partitionId()]
        yield from write(dataset.batches_of(share, [*kept, "features"], READ_BATCH_ROWS))
        for _ in ids:  # drained last: Spark reuses a Python worker only once it read its input
            pass

    return read_partition


def _write_partition(artifact: ModelArtifact, batch_size: int, schema: "pa.Schema",
                     staging: str, partition_by: list[str]):
    """The task that predicts one partition's batches and writes them under ``staging``:
    files named by partition, so a retried task replaces its earlier attempt's."""
    key = hashlib.sha256(artifact.weights).hexdigest()

    def write_partition(batches: Iterator["pa.RecordBatch"]):
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq
        import torch
        from pyspark import TaskContext

        from runner.train import engine

        model, task, device = _worker_model(key, artifact)
        predicted_names = task.output_schema.names
        kept = [c for c in schema.names if c not in predicted_names]
        counts: dict[str, Any] = {"rows": 0, "sums": None}

        def predicted() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                out = engine.outputs(model, _features(batch.column("features"), artifact),
                                     batch_size, device)
                columns = task.predict(out)
                counts["rows"] += len(out)
                if "label" in batch.schema.names:
                    labels = label_array(batch.column("label"))
                    sums = task.sums(out, torch.from_numpy(labels))
                    counts["sums"] = sums if counts["sums"] is None else counts["sums"] + sums
                yield pa.RecordBatch.from_arrays(
                    [*(batch.column(c) for c in kept),
                     *(_arrow(columns[c], schema.field(c).type) for c in predicted_names)],
                    schema=schema,
                )

        name = f"part-{TaskContext.get().partitionId():05d}-{{i}}.parquet"
        options = parquet_options(schema)
        if partition_by:
            ds.write_dataset(predicted(), staging, schema=schema, format="parquet",
                             file_options=ds.ParquetFileFormat().make_write_options(**options),
                             partitioning=partition_by, partitioning_flavor="hive",
                             basename_template=name, existing_data_behavior="overwrite_or_ignore")
        else:  # ParquetWriter: 1.6x faster here than write_dataset without partitions
            writer = None
            for batch in predicted():
                if writer is None:
                    os.makedirs(staging, exist_ok=True)
                    writer = pq.ParquetWriter(f"{staging}/{name.format(i=0)}", schema, **options)
                writer.write_batch(batch)
            if writer is not None:
                writer.close()
        sums = [] if counts["sums"] is None else counts["sums"].tolist()
        yield pa.RecordBatch.from_pydict({"rows": [counts["rows"]], "sums": [sums]},
                                         schema=pa.schema([("rows", pa.int64()),
                                                           ("sums", pa.list_(pa.float64()))]))

    return write_partition


def _arrow(values: "np.ndarray", type: "pa.DataType") -> "pa.Array":
    """One predicted column as Arrow: a 2-D array becomes a list per row."""
    import numpy as np
    import pyarrow as pa

    if values.ndim == 1:
        return pa.array(values, type=type)
    offsets = np.arange(len(values) + 1, dtype=np.int32) * values.shape[1]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel()), type=type)


def _features(features: "pa.Array", artifact: ModelArtifact):
    """The model's input tensor (rows x ``input_shape``, float32) of an Arrow list array;
    a RunnerError for null or wrongly sized rows."""
    import numpy as np
    import pyarrow.compute as pc
    import torch

    if features.null_count:
        raise RunnerError("inference.data: rows with null features; drop or impute them first")
    width = math.prod(artifact.input_shape)
    lengths = pc.list_value_length(features).to_numpy(zero_copy_only=False)
    if (lengths != width).any():  # every row checked, in the task
        raise RunnerError(
            f"inference.data: rows have {lengths[lengths != width][0]} features but the model "
            f"expects {width} (input_shape {list(artifact.input_shape)}); use data with the "
            "model's features")
    flat = np.asarray(features.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    with warnings.catch_warnings():  # Arrow's buffer is read-only; the model only reads it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(flat).reshape(-1, *artifact.input_shape)


_worker_models: dict[tuple[str, str], Any] = {}


def _worker_model(key: str, artifact: ModelArtifact) -> tuple[Any, Task, str]:
    """The model for ``key`` and its task in this Python worker, built on its first task only
    (one kept)."""
    import torch
    from pyspark import TaskContext

    from runner.cluster.resources import device_for, task_gpu

    context = TaskContext.get()
    device = device_for(task_gpu(context))
    torch.set_num_threads(max(1, context.cpus() if context is not None else 1))
    if (key, device) not in _worker_models:
        _worker_models.clear()
        _worker_models[key, device] = artifact.build(device), task_for(artifact.task)
    return (*_worker_models[key, device], device)


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
        raise RunnerError(cause.removeprefix(own) if cause.startswith(own)
                          else f"inference: a Spark task failed: {cause}") from None


@contextmanager
def _arrow_batches_of_at_least(spark: "SparkSession", rows: int):
    """Let a model batch be as large as ``inference.batch_size``: Arrow batches of at
    least that many rows while the stage runs (Spark's default is 10,000)."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    if int(before) <= 0 or int(before) >= rows:  # <= 0: no limit
        yield
        return
    spark.conf.set(key, str(rows))
    try:
        yield
    finally:
        spark.conf.set(key, before)
