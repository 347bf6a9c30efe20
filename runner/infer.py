"""Stage 3: the best model over the test split with ``predict_batch_udf``.

The model is rebuilt once per Python worker (``predict_batch_udf`` caches the
predict function) and applied in batches of ``inference.batch_size`` rows.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.artifacts import ModelArtifact
from runner.preprocess import PreparedData

if TYPE_CHECKING:
    from pyspark.sql import SparkSession



@dataclass(frozen=True)
class InferenceResult:
    """Where the predictions are and how good they are."""

    path: str
    rows: int
    metrics: dict[str, float]


def run(
    spark: "SparkSession",
    prepared: PreparedData,
    artifact: ModelArtifact,
    cfg: Any,
    out: Path,
) -> InferenceResult:
    """Predict every test row, write Parquet to ``out`` atomically, score it."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType, IntegerType, StructField, StructType

    return_type = StructType(
        [
            StructField("prediction", IntegerType()),
            StructField("probability", ArrayType(FloatType())),
        ]
    )
    width = 1
    for n in artifact.input_shape:
        width *= n
    predict = predict_batch_udf(
        _predictor_factory(artifact),
        return_type=return_type,
        batch_size=cfg.batch_size,
        input_tensor_shapes=[[width]],
    )
    scored = (
        spark.read.parquet(prepared.split_path("test"))
        .withColumn("_out", predict("features"))
        .select(
            "id",
            "label",
            F.col("_out.prediction").alias("prediction"),
            F.col("_out.probability").alias("probability"),
        )
    )
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    scored.write.parquet(str(tmp))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)

    written = spark.read.parquet(str(out))
    stats = written.agg(
        F.count("*").alias("rows"),
        F.avg((F.col("prediction") == F.col("label")).cast("double")).alias("accuracy"),
    ).first()
    return InferenceResult(path=str(out), rows=stats["rows"],
                           metrics={"test_accuracy": float(stats["accuracy"])})


def _predictor_factory(artifact: ModelArtifact):
    """``make_predict_fn`` for predict_batch_udf; runs on the worker, once per process."""

    def make_predict_fn():
        import numpy as np
        import torch

        model = artifact.build("cpu")
        shape = (-1, *artifact.input_shape)

        def predict(features: np.ndarray) -> dict[str, np.ndarray]:
            with torch.no_grad():
                logits = model(torch.from_numpy(features.astype(np.float32)).reshape(shape))
                probs = torch.softmax(logits, dim=1)
            return {
                "prediction": probs.argmax(1).numpy().astype(np.int32),
                "probability": probs.numpy(),
            }

        return predict

    return make_predict_fn
