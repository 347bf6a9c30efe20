"""Inference throughput: our ``predict_batch_udf`` stage vs a bare batched torch loop.

Both read the same Parquet (synthetic rows of 64 float features), run the same MLP in
batches and write ``id``, ``prediction``, ``probability`` as Parquet, on the same cores:
Spark ``local[C]`` (``runner.infer.run``: a Python worker per core, one torch thread each)
vs C warm processes, each looping over its share of the files with one torch thread.
Both sides are warmed up first; the stage's time includes its feature-width check and
the read-back count of what it wrote.

    python -m runner.bench infer
    python -m runner.bench.infer [--rows 1000000] [--batch-sizes 256,1024,4096] [--cores C]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

OUT = Path("outputs/bench/infer.md")
WORK = Path("outputs/bench/infer")
WIDTH = 64
MODEL = {"_target_": "models.mlp.MLP", "hidden": 128, "depth": 2, "dropout": 0.0}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.bench infer")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-sizes", default="256,1024,4096")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=1, help="best of N timings per cell")
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    from omegaconf import OmegaConf

    from runner import infer
    from runner.spark import build_session, stop_session

    load_before = os.getloadavg()
    deploy = OmegaConf.create({
        "master": f"local[{args.cores}]", "app_name": "bench-infer",
        "spark_conf": {"spark.sql.shuffle.partitions": str(args.cores)},
    })
    spark = build_session(deploy, WORK / "logs")
    data = _synthetic(spark, args.rows, args.cores)
    files = sorted(str(p) for p in data.glob("*.parquet"))
    artifact = _artifact()
    out = WORK / "predictions.parquet"

    def stage(batch_size: int, rows: int | None = None) -> float:
        cfg = OmegaConf.create({"batch_size": batch_size, "output": None, "partition_by": [],
                                "overwrite": True})
        df = spark.read.parquet(str(data))
        start = time.perf_counter()
        result = infer.run(spark, df.limit(rows) if rows else df, artifact, cfg, out)
        assert result.rows == (rows or args.rows)
        return time.perf_counter() - start

    def spark_io() -> float:
        """Spark reading the rows and writing them back, no model: a floor for any stage."""
        start = time.perf_counter()
        spark.read.parquet(str(data)).write.mode("overwrite").parquet(str(WORK / "io"))
        return time.perf_counter() - start

    results = []
    with ProcessPoolExecutor(args.cores, mp_context=get_context("spawn")) as pool:
        list(pool.map(_warm, [artifact.weights] * args.cores))
        stage(1024, rows=10_000)  # start the Python workers, load the model
        for batch_size in batch_sizes:
            stage_s = min(stage(batch_size) for _ in range(args.repeats))
            bare_s = min(_bare(pool, files, artifact.weights, batch_size)
                         for _ in range(args.repeats))
            io_s = min(spark_io() for _ in range(args.repeats))
            row = {"batch_size": batch_size, "stage_rows_s": args.rows / stage_s,
                   "bare_rows_s": args.rows / bare_s, "io_rows_s": args.rows / io_s}
            row["ratio"] = row["stage_rows_s"] / row["bare_rows_s"]
            results.append(row)
            print(f"[bench] {json.dumps({k: round(v, 3) for k, v in row.items()})}", flush=True)
    stop_session()
    shutil.rmtree(WORK / "bare", ignore_errors=True)
    shutil.rmtree(WORK / "io", ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(_table(results, args, load_before, os.getloadavg()))
    print(OUT.read_text())


def _synthetic(spark, rows: int, cores: int) -> Path:
    """``rows`` rows of ``id`` and 64 uniform float features, written once and reused."""
    from pyspark.sql import functions as F

    path = WORK / f"data-{rows}x{WIDTH}"
    if (path / "_SUCCESS").exists():
        return path
    features = F.array(*[F.rand(seed=i) for i in range(WIDTH)]).cast("array<float>")
    spark.range(rows, numPartitions=2 * cores).select(
        "id", features.alias("features")
    ).write.mode("overwrite").parquet(str(path))
    return path


def _artifact():
    import io

    import torch

    from runner.artifacts import ModelArtifact
    from runner.trial import build_model

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(build_model(MODEL, (WIDTH,), 10).state_dict(), buffer)
    return ModelArtifact(MODEL, (WIDTH,), 10, buffer.getvalue())


def _bare(pool: ProcessPoolExecutor, files: list[str], weights: bytes, batch_size: int) -> float:
    """Wall time of the bare loop: every file through the model, one task per file."""
    out = WORK / "bare"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    rows = sum(pool.map(_predict_file, files, [str(out)] * len(files),
                        [weights] * len(files), [batch_size] * len(files)))
    elapsed = time.perf_counter() - start
    assert rows == sum(_count(f) for f in files)
    return elapsed


@lru_cache(maxsize=1)
def _model(weights: bytes):
    import torch

    from runner.artifacts import ModelArtifact

    torch.set_num_threads(1)
    return ModelArtifact(MODEL, (WIDTH,), 10, weights).build("cpu")


def _warm(weights: bytes) -> None:
    import torch

    with torch.inference_mode():
        _model(weights)(torch.zeros(8, WIDTH))


def _predict_file(path: str, out: str, weights: bytes, batch_size: int) -> int:
    """Runs in a pool process: one Parquet file -> predictions Parquet, batch by batch."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    model = _model(weights)
    rows = 0
    writer = None
    for batch in pq.ParquetFile(path).iter_batches(batch_size, columns=["id", "features"]):
        flat = np.array(batch.column(1).flatten(), dtype=np.float32)  # a writable copy
        x = torch.from_numpy(flat).reshape(-1, WIDTH)
        with torch.inference_mode():
            probs = torch.softmax(model(x), dim=1)
        n, k = probs.shape
        table = pa.table({
            "id": batch.column(0),
            "prediction": pa.array(probs.argmax(1).numpy().astype(np.int32)),
            "probability": pa.ListArray.from_arrays(
                pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
                pa.array(probs.numpy().ravel()),
            ),
        })
        if writer is None:
            writer = pq.ParquetWriter(f"{out}/{Path(path).name}", table.schema)
        writer.write_table(table)
        rows += n
    if writer is not None:
        writer.close()
    return rows


def _count(path: str) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _table(results: list[dict], args, load_before, load_after) -> str:
    import pyspark
    import torch

    lines = [
        "# Inference: predict_batch_udf stage vs bare batched torch loop",
        "",
        f"{args.rows:,} rows x {WIDTH} float features (Parquet), MLP 64-128-128-10, "
        f"{args.cores} cores: Spark local[{args.cores}] vs {args.cores} processes "
        "(one torch thread each); both write id, prediction, probability as Parquet. "
        f"Best of {args.repeats}.",
        "",
        "| batch size | stage rows/s | bare loop rows/s | stage / bare | Spark read+write only "
        "rows/s (no model) | that / bare |",
        "|---:|---:|---:|---:|---:|---:|",
        *(f"| {r['batch_size']} | {r['stage_rows_s']:,.0f} | {r['bare_rows_s']:,.0f} | "
          f"{r['ratio']:.2f} | {r['io_rows_s']:,.0f} | {r['io_rows_s'] / r['bare_rows_s']:.2f} |"
          for r in results),
        "",
        "The last two columns are Spark's own floor here: reading the same Parquet and writing "
        "it back, with no Python and no model, against the whole bare loop.",
        "",
        f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
        "after (a shared machine: compare the ratio, not absolute rows/s). "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"pyspark {pyspark.__version__}. {datetime.now():%Y-%m-%d %H:%M}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
