"""Preprocessing at scale: our Spark stage vs the same steps in pandas, one process.

Both generate the same synthetic rows (``runner.data.sources.synthetic.synthetic_rows``), split them
stratified by label, fit a standard scaler on train, apply it and write Parquet. Each
engine and size runs in a fresh process, which reports its wall time and peak memory:
the driver's Python process (``ru_maxrss``) and, for Spark, the driver JVM's peak
resident set (``VmHWM``; in ``local[*]`` the executors' tasks run in that JVM too).
Spark's Python workers, which generate the rows batch by batch, are not counted.

    python -m runner.bench preprocess [--rows 1000000,10000000] [--features 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

OUT = Path("outputs/bench/preprocess.md")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bench preprocess")
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--job", nargs=2, metavar=("ENGINE", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(_job(args.job[0], int(args.job[1]), args.features)))
        return 0

    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        for engine in ("spark", "pandas"):
            print(f"[bench] {engine} {rows:,} rows ...", flush=True)
            proc = subprocess.run(
                [sys.executable, "-m", "runner.bench", "preprocess", "--job", engine, str(rows),
                 "--features", str(args.features)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"[bench] {results[-1]}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(_table(results, args.features))
    print(OUT.read_text())
    return 0


def _job(engine: str, rows: int, features: int) -> dict:
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        jvm_peak = None
        if engine == "spark":
            jvm_peak = _spark(rows, features, Path(tmp))
        else:
            _pandas(rows, features, Path(tmp))
        seconds = time.perf_counter() - start
    return {
        "engine": engine,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "python_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "jvm_peak_mb": jvm_peak,
    }


def _config(rows: int, features: int, cache_dir: Path):
    from omegaconf import OmegaConf

    from runner.data.sources.synthetic import SyntheticDataConfig

    return OmegaConf.structured(SyntheticDataConfig(
        name="synthetic", rows=rows, num_features=features, num_classes=4, cache=False,
        cache_dir=str(cache_dir), scaling="standard"))


def _spark(rows: int, features: int, tmp: Path) -> int:
    """Our stage on local[*]; returns the driver JVM's peak resident MB."""
    from runner.cluster.spark import build_session, stop_session
    from runner.cluster.targets.local import local
    from runner.data import preprocess

    spark = build_session(local(app_name="bench"), tmp / "logs")
    try:
        preprocess.run(spark, _config(rows, features, tmp / "cache"), tmp / "cache")
        gateway = spark.sparkContext._gateway
        assert gateway is not None  # a classic (not Connect) session
        status = Path(f"/proc/{gateway.proc.pid}/status").read_text()
    finally:
        stop_session()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return round(int(hwm.split()[1]) / 1024)


def _pandas(rows: int, features: int, tmp: Path) -> None:
    """The same steps with numpy/pandas/pyarrow in this one process."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from runner.data.sources.synthetic import synthetic_centroids, synthetic_rows

    cfg = _config(rows, features, tmp)
    ids = np.arange(rows)
    labels, x = synthetic_rows(ids, cfg.seed, synthetic_centroids(cfg))
    frame = pd.DataFrame({"id": ids, "label": labels})
    frame["u"] = np.random.default_rng(cfg.split.seed).random(rows)
    cuts = frame.groupby("label")["u"].quantile([cfg.split.train, cfg.split.train + cfg.split.val])
    first = frame["label"].map(cuts.xs(cfg.split.train, level=1))
    second = frame["label"].map(cuts.xs(cfg.split.train + cfg.split.val, level=1))
    frame["split"] = np.where(frame.u < first, "train", np.where(frame.u < second, "val", "test"))
    train = (frame["split"] == "train").to_numpy()
    mean, std = x[train].mean(0), x[train].std(0, ddof=1)
    scaled = ((x - mean) / std).astype(np.float32)
    values = pa.FixedSizeListArray.from_arrays(pa.array(scaled.ravel()), features)
    for name in ("train", "val", "test"):
        rows_of = (frame["split"] == name).to_numpy()
        table = pa.table({"id": ids[rows_of], "label": labels[rows_of],
                          "features": values.filter(pa.array(rows_of))})
        (tmp / f"split={name}").mkdir()
        pq.write_table(table, tmp / f"split={name}" / "part-0.parquet")


def _table(results: list[dict], features: int) -> str:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    lines = [
        "# Preprocess benchmark: synthetic rows -> stratified split -> standard scale -> Parquet",
        "",
        f"Machine: {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB memory, load average "
        f"{os.getloadavg()[0]:.1f} at the end; {datetime.now():%Y-%m-%d %H:%M}. "
        f"{features} features, 4 classes. Spark: `local[*]`, default driver memory.",
        "",
        "| engine | rows | seconds | rows/s | spark/pandas rows/s | driver Python peak MB "
        "| driver JVM peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    pandas = {r["rows"]: r for r in results if r["engine"] == "pandas"}
    for r in results:
        ratio = r["rows_per_s"] / pandas[r["rows"]]["rows_per_s"] if r["rows"] in pandas else None
        lines.append(
            f"| {r['engine']} | {r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | "
            f"{f'{ratio:.2f}' if r['engine'] == 'spark' and ratio else ''} | "
            f"{r['python_peak_mb']:,} | {r['jvm_peak_mb'] or ''} |"
        )
    lines += [
        "",
        "Peak memory is each process's own: the driver's Python (`ru_maxrss`) and the driver "
        "JVM (`VmHWM`; in `local[*]` it also runs the executors' tasks, bounded by its heap). "
        "Spark's Python workers are not counted. pandas holds every row in its one process.",
        "",
    ]
    return "\n".join(lines)
