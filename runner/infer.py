"""Stage 3: a saved model over a DataFrame of rows with ``predict_batch_udf``.

The model is rebuilt once per Python worker (``predict_batch_udf`` caches the predict
function), on the task's GPU when Spark assigned it one, and applied in batches of
``inference.batch_size`` rows. DataFrame-only, so it also runs over Spark Connect.
"""

from __future__ import annotations

import math
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.artifacts import ModelArtifact
from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OUTPUT_COLUMNS = ("id", "label", "prediction", "probability")


@dataclass(frozen=True)
class InferenceResult:
    """Where the predictions are and how good they are (empty metrics without labels)."""

    path: str
    rows: int
    metrics: dict[str, float]


def validate(cfg: Any, out: Path | None) -> list[str]:
    """Problems with an ``inference`` config (writing to ``out``, if known), each naming its key."""
    problems = []
    if cfg.batch_size < 1:
        problems.append(f"inference.batch_size: must be at least 1, got {cfg.batch_size}")
    if out is not None and out.exists() and not cfg.overwrite:
        problems.append(f"inference.output: {out} exists; remove it, choose another "
                        "inference.output, or set inference.overwrite=true")
    bad = [c for c in cfg.partition_by if c not in OUTPUT_COLUMNS or c == "probability"]
    if bad:
        problems.append(f"inference.partition_by: {bad} not among the output columns "
                        "id, label, prediction")
    return problems


def output_path(cfg: Any, run_dir: Path, original_cwd: Path) -> Path:
    """``inference.output`` (relative to where the runner started) or the run's default."""
    if not cfg.output:
        return run_dir / "predictions.parquet"
    out = Path(cfg.output)
    return out if out.is_absolute() else original_cwd / out


def load_rows(spark: "SparkSession", data: Any, entry: Path,
              artifact: ModelArtifact) -> "DataFrame":
    """The rows to predict: the prepared entry's test split, or the source ``data``
    (an ``inference.data`` config) prepared with the entry's fitted transform."""
    from runner import preprocess, sources

    if data is None:
        return spark.read.parquet(str(entry / "data" / "split=test"))
    raw = sources.source_for(data).load(spark, data)
    rows = preprocess.apply_transform(spark, entry, raw.df)
    check_width(rows, math.prod(artifact.input_shape), artifact.input_shape)
    return rows


def run(
    spark: "SparkSession",
    rows: "DataFrame",
    artifact: ModelArtifact,
    cfg: Any,
    out: Path,
) -> InferenceResult:
    """Predict every row (``id``, ``features``, optional ``label``) and write Parquet to ``out``.

    Written under a temporary name and renamed when complete, so a failed job leaves
    nothing at ``out``; an existing ``out`` is replaced only with ``inference.overwrite``.
    """
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql.types import FloatType, IntegerType, StructField, StructType

    problems = validate(cfg, out)
    if problems:
        raise RunnerError("; ".join(problems))
    width = math.prod(artifact.input_shape)
    check_width(rows, width, artifact.input_shape)
    # One scalar field per class, assembled into the array column by Spark: returning a
    # 2-D array would make predict_batch_udf convert the probabilities row by row.
    classes = [_probability_field(k) for k in range(artifact.num_classes)]
    return_type = StructType(
        [StructField("prediction", IntegerType())]
        + [StructField(name, FloatType()) for name in classes]
    )
    predict = predict_batch_udf(
        _predictor_factory(artifact),
        return_type=return_type,
        batch_size=cfg.batch_size,
        input_tensor_shapes=[[width]],
    )
    labelled = "label" in rows.columns
    scored = rows.withColumn("_out", predict("features")).select(
        "id",
        *(["label"] if labelled else []),
        F.col("_out.prediction").alias("prediction"),
        F.array(*(F.col(f"_out.{name}") for name in classes)).alias("probability"),
    )
    _write_atomically(scored, out, list(cfg.partition_by))

    written = spark.read.parquet(str(out))
    aggs = [F.count("*").alias("rows")]
    if labelled:
        aggs.append(F.avg((F.col("prediction") == F.col("label")).cast("double")).alias("acc"))
    stats = written.agg(*aggs).first()
    metrics = {"test_accuracy": float(stats["acc"])} if labelled and stats["rows"] else {}
    return InferenceResult(path=str(out), rows=stats["rows"], metrics=metrics)


def check_width(rows: "DataFrame", width: int, input_shape: tuple[int, ...]) -> None:
    """Refuse rows whose feature count (of the first row) is not the model's input size."""
    from pyspark.sql import functions as F

    first = rows.select(F.size("features")).first()
    if first is not None and first[0] != width:
        raise RunnerError(
            f"inference.data: rows have {first[0]} features but the model expects {width} "
            f"(input_shape {list(input_shape)}); use data with the model's features"
        )


def _write_atomically(df: "DataFrame", out: Path, partition_by: list[str]) -> None:
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer = df.write.partitionBy(*partition_by) if partition_by else df.write
        writer.parquet(str(tmp))
        if out.exists():  # inference.overwrite was checked by validate()
            old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _predictor_factory(artifact: ModelArtifact):
    """``make_predict_fn`` for predict_batch_udf; runs on the worker, once per process."""

    def make_predict_fn():
        import numpy as np
        import torch

        device = _task_device()
        model = artifact.build(device)
        shape = (-1, *artifact.input_shape)

        def predict(features: np.ndarray) -> dict[str, np.ndarray]:
            batch = torch.from_numpy(features.astype(np.float32, copy=False)).reshape(shape)
            with torch.inference_mode():
                probs = torch.softmax(model(batch.to(device)), dim=1).cpu()
            columns = {"prediction": probs.argmax(1).numpy().astype(np.int32)}
            columns.update((_probability_field(k), column) for k, column in enumerate(probs.numpy().T))
            return columns

        return predict

    return make_predict_fn


def _probability_field(k: int) -> str:
    return f"p{k}"


def _task_device() -> str:
    """``cuda:<address>`` of the GPU Spark gave this task, else ``cpu``."""
    import torch
    from pyspark import TaskContext

    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context is not None else None
    if gpus is not None and gpus.addresses and torch.cuda.is_available():
        return f"cuda:{gpus.addresses[0]}"
    return "cpu"
