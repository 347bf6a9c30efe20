"""Inference throughput: our stage vs a bare batched torch loop, and vs stock
``predict_batch_udf``.

All three read the same Parquet (synthetic rows of 64 float features), run the same MLP
in batches and write ``id``, ``prediction``, ``probability`` as Parquet, on the same
cores: Spark ``local[C]`` (``runner.serve.infer.run``, ``mapInArrow``: a Python worker per
core, one torch thread each), the same over pyspark's ``predict_batch_udf``, and C warm
processes, each looping over its share of the files with one torch thread. All are
warmed up first; the stage's time includes its feature-width check and the rename of
its finished output. This machine drifts 10-20 % from minute to minute, so the sides
are interleaved and the best of ``--repeats`` kept. The DataFrame-input and stock runs
come after all of those: run between them, they slowed the stage's next run (the stage
alone, repeated: 1.15-1.48 s per 1M rows; between them: best 1.77 s).

    python -m runner.bench infer
    python -m runner.bench.infer [--rows 1000000] [--batch-sizes 256,1024,4096] [--cores C]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

from runner.bench import write_table

WORK = Path("outputs/bench/infer")
WIDTH = 64
ROWS = 1_000_000
MODEL = {"_target_": "models.mlp.MLP", "hidden": 128, "depth": 2, "dropout": 0.0}
TASK, TOLD = {"_target_": "runner.tasks.Classification"}, {"num_classes": 10}
# Stage runs before timing: the first starts the Python workers and builds the model; on
# 2 cores the JVM (mostly its JIT compiler, C2) then still takes 0.3-1.1 CPU-s of each
# 1.3 s run for at least 10 runs (CPU time per thread), competing with the two workers.
WARMUP_RUNS = 6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.bench infer")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--batch-sizes", default="256,1024,4096")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings per cell")
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    from omegaconf import OmegaConf

    from runner.cluster.spark import build_session, stop_session
    from runner.cluster.targets.local import local
    from runner.serve import infer

    target = local(
        f"local[{args.cores}]",
        app_name="bench-infer",
        spark_conf={"spark.sql.shuffle.partitions": str(args.cores)},
    )
    spark = build_session(target, WORK / "logs")
    data = _synthetic(spark, args.rows, args.cores)
    files = data.files("test")
    artifact = _artifact()
    out = WORK / "predictions.parquet"

    def stage(batch_size: int, rows: infer.Rows) -> float:
        cfg = OmegaConf.create(
            {"batch_size": batch_size, "output": None, "partition_by": [], "overwrite": True}
        )
        start = time.perf_counter()
        result = infer.run(spark, rows, artifact, cfg, out)
        assert result.rows == args.rows
        return time.perf_counter() - start

    def stock(batch_size: int) -> float:
        """The same rows through pyspark's predict_batch_udf, written the same way."""
        start = time.perf_counter()
        _stock_predictions(
            spark.read.parquet(data.split_uri("test")), artifact, batch_size
        ).write.mode("overwrite").parquet(str(WORK / "stock"))
        return time.perf_counter() - start

    def transform(batch_size: int, frame) -> float:
        """``load_model(RUN).transform(df)`` (a ScoringModel) written by Spark's writer."""
        from runner.serve.model import ScoringModel

        start = time.perf_counter()
        model = ScoringModel(artifact, data, keep_columns=["id"], batch_size=batch_size)
        model.transform(frame).write.mode("overwrite").parquet(str(WORK / "transform"))
        return time.perf_counter() - start

    def scoring(batch_size: int, frame) -> float:
        """The CLI's infer stage over new data: the same ScoringModel's rows, pyarrow writer."""
        from runner.serve.model import ScoringModel

        cfg = OmegaConf.create(
            {
                "batch_size": batch_size,
                "output": None,
                "partition_by": [],
                "overwrite": True,
                "data": None,
                "unseen": "keep",
            }
        )
        start = time.perf_counter()
        model = ScoringModel(artifact, data, keep_columns=["id"], batch_size=batch_size)
        result = infer.run(spark, model.rows(frame), artifact, cfg, out)
        assert result.rows == args.rows
        return time.perf_counter() - start

    times: dict[int, dict[str, list[float]]] = {
        b: {"stage": [], "bare": [], "frame": [], "transform": [], "scoring": [], "stock": []}
        for b in batch_sizes
    }
    with ProcessPoolExecutor(args.cores, mp_context=get_context("spawn")) as pool:
        list(pool.map(_warm, [artifact.weights] * args.cores))
        split = infer.PreparedSplit(data, "test")
        frame = spark.read.parquet(data.split_uri("test"))
        for _ in range(WARMUP_RUNS):  # Python workers and model, then the JVM's JIT
            stage(1024, split)
        for batch_size in batch_sizes:
            for _ in range(args.repeats):  # interleaved: drift hits both sides alike
                times[batch_size]["stage"].append(stage(batch_size, split))
                times[batch_size]["bare"].append(_bare(pool, files, artifact.weights, batch_size))
    for batch_size in batch_sizes:  # after, not between: see the module docstring
        times[batch_size]["frame"] = [stage(batch_size, frame) for _ in range(args.repeats)]
        times[batch_size]["transform"] = [transform(batch_size, frame) for _ in range(args.repeats)]
        times[batch_size]["scoring"] = [scoring(batch_size, frame) for _ in range(args.repeats)]
        times[batch_size]["stock"] = [stock(batch_size) for _ in range(args.repeats)]
    results = [
        {"batch_size": b, **{f"{side}_rows_s": args.rows / min(t) for side, t in sides.items()}}
        for b, sides in times.items()
    ]
    for row in results:
        print(f"[bench] {json.dumps({k: round(v) for k, v in row.items()})}", flush=True)
    stop_session()
    for scratch in ("bare", "stock", "transform"):
        shutil.rmtree(WORK / scratch, ignore_errors=True)
    write_table(  # infer.md for the default size, infer-<rows>.md for others
        "infer" if args.rows == ROWS else f"infer-{args.rows}",
        "Inference: our stage vs a bare batched torch loop and stock predict_batch_udf",
        [
            "batch size",
            "bare loop rows/s",
            "stage, prepared split: rows/s",
            "/ bare",
            "stage, DataFrame input: rows/s",
            "/ bare",
            "load_model().transform: rows/s",
            "/ bare",
            "stage, new data (ScoringModel rows): rows/s",
            "/ bare",
            "predict_batch_udf rows/s",
            "/ bare",
        ],
        [
            [
                str(r["batch_size"]),
                f"{r['bare_rows_s']:,.0f}",
                *(
                    cell
                    for side in ("stage", "frame", "transform", "scoring", "stock")
                    for cell in (
                        f"{r[f'{side}_rows_s']:,.0f}",
                        f"{r[f'{side}_rows_s'] / r['bare_rows_s']:.2f}",
                    )
                ),
            ]
            for r in results
        ],
        [
            f"{args.rows:,} rows x {WIDTH} float features (Parquet), MLP 64-128-128-10, "
            f"{args.cores} cores: Spark local[{args.cores}] vs {args.cores} processes, one torch "
            "thread each; all write id, prediction, probability as Parquet. The stage over a "
            "prepared split reads the Parquet in its tasks (what a run's infer stage does); over "
            "a DataFrame (new data) the rows come from Spark's reader as Arrow batches; stock is "
            "pyspark's predict_batch_udf written by Spark; load_model().transform is the "
            "ScoringModel's lazy mapInArrow (fitted preprocessing + network) written by Spark's "
            "writer; the stage over new data is the CLI's path with the same ScoringModel. Best of "
            f"{args.repeats}; the stage and the bare loop interleaved."
        ],
    )


def _synthetic(spark, rows: int, cores: int):
    """A prepared entry whose test split is ``rows`` rows of ``id`` and 64 uniform float
    features, written once and reused."""
    from pyspark.sql import functions as F

    from runner.data.prepared import PreparedDataset

    from runner.data import preprocess, steps

    # an entry of this version of the prepared layout (and of the fitted stages)
    entry = PreparedDataset(str(WORK / f"entry-{rows}x{WIDTH}-v{preprocess.FORMAT_VERSION}"))
    if not entry.problems(["test"]) and "label" in entry.meta:
        return entry
    features = F.array(*[F.rand(seed=i) for i in range(WIDTH)]).cast("array<float>")
    spark.range(rows, numPartitions=2 * cores).select("id", features.alias("features")).write.mode(
        "overwrite"
    ).parquet(entry.split_uri("test"))
    # the fitted preprocessing ScoringModel applies: the features array assembled, no scaling
    fit_rows = spark.range(64).select("id", F.lit(0).alias("label"), features.alias("features"))
    task = {"_target_": "runner.tasks.Classification"}
    fitted = steps.fit([], "none", fit_rows, "label", ["features"], task)
    fitted.model.write().overwrite().save(entry.transform_uri)
    entry.write_meta(
        {
            "input_shape": [WIDTH],
            "num_classes": 10,
            "rows": {"test": rows},
            "task": fitted.task,
            "label": {"column": "label", "type": "bigint", "classes": None},
            "features": ["features"],
            "config": {"steps": []},
        }
    )
    return entry


def _artifact(weights: bytes | None = None):
    """The benchmark's classifier: seeded fresh weights, or ``weights``."""
    import torch

    from runner.serve.artifacts import ModelArtifact
    from runner.train.model import build_model, weights_of

    if weights is None:
        torch.manual_seed(0)
        weights = weights_of(build_model(MODEL, (WIDTH,), TOLD))
    return ModelArtifact(MODEL, (WIDTH,), TASK, TOLD, weights)


def _bare(pool: ProcessPoolExecutor, files: list[str], weights: bytes, batch_size: int) -> float:
    """Wall time of the bare loop: every file through the model, one task per file."""
    out = WORK / "bare"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    rows = sum(
        pool.map(
            _predict_file,
            files,
            [str(out)] * len(files),
            [weights] * len(files),
            [batch_size] * len(files),
        )
    )
    elapsed = time.perf_counter() - start
    assert rows == sum(_count(f) for f in files)
    return elapsed


@lru_cache(maxsize=1)
def _model(weights: bytes):
    import torch

    torch.set_num_threads(1)
    return _artifact(weights).build("cpu")


def _warm(weights: bytes) -> None:
    import torch

    with torch.inference_mode():
        _model(weights)(torch.zeros(8, WIDTH))


def _predict_file(path: str, out: str, weights: bytes, batch_size: int) -> int:
    """Runs in a pool process: one Parquet file -> predictions Parquet, read in large
    batches (as the stage reads) and run through the model ``batch_size`` rows at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from runner.serve.infer import READ_BATCH_ROWS, parquet_options

    model = _model(weights)
    rows = 0
    writer = None
    for batch in pq.ParquetFile(path).iter_batches(
        max(batch_size, READ_BATCH_ROWS), columns=["id", "features"]
    ):
        with warnings.catch_warnings():  # read-only Arrow buffer: the model only reads it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            x = torch.from_numpy(batch.column(1).flatten().to_numpy()).reshape(-1, WIDTH)
        with torch.inference_mode():
            probs = torch.cat(
                [
                    torch.softmax(model(x[i : i + batch_size]), dim=1)
                    for i in range(0, len(x), batch_size)
                ]
            ).numpy()
        n, k = probs.shape
        table = pa.table(
            {
                "id": batch.column(0),
                "prediction": pa.array(probs.argmax(1).astype(np.int32)),
                "probability": pa.ListArray.from_arrays(
                    pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), pa.array(probs.ravel())
                ),
            }
        )
        if writer is None:  # the stage's writer options: only the overhead is compared
            writer = pq.ParquetWriter(
                f"{out}/{Path(path).name}", table.schema, **parquet_options(table.schema)
            )
        writer.write_table(table)
        rows += n
    if writer is not None:
        writer.close()
    return rows


def _count(path: str) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _stock_predictions(df, artifact, batch_size: int):
    """``predict_batch_udf`` returning one scalar per class (its fastest form: a 2-D
    array return is converted row by row), the array assembled by Spark."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql.types import FloatType, IntegerType, StructField, StructType

    classes = [f"p{k}" for k in range(artifact.model_kwargs["num_classes"])]

    def make_predict_fn():
        import numpy as np
        import torch

        model = _model(artifact.weights)

        def predict(features: np.ndarray) -> dict[str, np.ndarray]:
            with torch.inference_mode():
                probs = torch.softmax(model(torch.from_numpy(features)), dim=1)
            columns = {"prediction": probs.argmax(1).numpy().astype(np.int32)}
            columns.update(zip(classes, probs.numpy().T))
            return columns

        return predict

    predict = predict_batch_udf(
        make_predict_fn,
        batch_size=batch_size,
        input_tensor_shapes=[[WIDTH]],
        return_type=StructType(
            [StructField("prediction", IntegerType())]
            + [StructField(c, FloatType()) for c in classes]
        ),
    )
    return df.withColumn("_out", predict("features")).select(
        "id",
        F.col("_out.prediction").alias("prediction"),
        F.array(*(F.col(f"_out.{c}") for c in classes)).alias("probability"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
