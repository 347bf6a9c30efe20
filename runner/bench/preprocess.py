"""Preprocessing from files: our Spark stage vs the same steps in pandas and in Polars.

The inputs are written once per size (under ``outputs/bench/inputs/``): Parquet with ``id``,
16 numeric features and a string label (4 classes), and a CSV variant with nulls in one
feature and a categorical column, so that impute and one-hot are timed too. Every engine
does what the stage does: a stratified split by a hash of ``id``, the steps fitted on the
train rows (impute, one-hot, standard scaling), the three splits written as Parquet with
``features`` as one float array. Each run is a fresh process; for Spark the session's start
is reported apart from the preparation, with the Spark jobs the preparation ran, the
driver's Python and JVM peak memory. ``local[1]`` pinned to one core (JVM, Python workers
and all) vs ``local[2]`` on two, on the largest size, shows how the stage scales; cold
``data=digits`` (the default experiment's data) shows the fixed cost small data pays.

    python -m runner.bench preprocess [--rows 1000000,10000000] [--csv-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.bench import peak_mb, run_job

OUT = Path("outputs/bench/preprocess.md")
INPUTS = Path("outputs/bench/inputs")
FEATURES = 16
CLASSES = ["c0", "c1", "c2", "c3"]
CITIES = ["berlin", "lima", "oslo", "pune", "quito"]
SPLIT = (0.8, 0.1)  # train, val; test is the rest
_SEED = 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bench preprocess")
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--csv-rows", default="1000000", help="sizes of the CSV variant")
    parser.add_argument(
        "--job", nargs=4, metavar=("ENGINE", "INPUT", "ROWS", "CORES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.job:
        engine, kind, rows, cores = args.job
        print(json.dumps(_job(engine, kind, int(rows), int(cores))))
        return 0

    sizes = [int(r) for r in args.rows.split(",") if r]
    csv_sizes = [int(r) for r in args.csv_rows.split(",") if r]
    plan = [("spark", "digits", 1797, 2)]
    for kind, kind_sizes in (("parquet", sizes), ("csv", csv_sizes)):
        for rows in kind_sizes:
            _write_input(kind, rows)
            plan += [
                ("pandas", kind, rows, 1),
                ("polars", kind, rows, os.cpu_count() or 1),
                ("spark", kind, rows, 2),
            ]
    if sizes:
        plan.append(("spark", "parquet", max(sizes), 1))
    results = []
    for engine, kind, rows, cores in plan:
        result = run_job(
            "preprocess",
            [engine, kind, rows, cores],
            f"{engine} {kind} {rows:,} rows, {cores} cores",
        )
        if result is None:
            return 1
        results.append(result)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(_table(results))
    print(OUT.read_text())
    return 0


def _input_path(kind: str, rows: int) -> Path:
    return INPUTS / f"{kind}-{rows}.{kind}"


def _write_input(kind: str, rows: int) -> None:
    """The input, written once (numpy + pyarrow, in chunks of 1M rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = _input_path(kind, rows)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rng = np.random.default_rng(_SEED)
    centroids = rng.normal(0, 2, size=(len(CLASSES), FEATURES))
    writer = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        label = rng.integers(0, len(CLASSES), size=n)
        x = centroids[label] + rng.normal(size=(n, FEATURES))
        columns: dict[str, Any] = {"id": np.arange(start, start + n)}
        columns.update({f"f{j}": x[:, j] for j in range(FEATURES)})
        if kind == "csv":
            columns["f0"] = pa.array(x[:, 0], mask=rng.random(n) < 0.05)  # 5% missing
            columns["city"] = pa.array(np.array(CITIES)[rng.integers(0, len(CITIES), size=n)])
        columns["label"] = pa.array(np.array(CLASSES)[label])
        table = pa.table(columns)
        if kind == "parquet":
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=250_000)
        else:
            writer = writer or pacsv.CSVWriter(tmp, table.schema)
            writer.write_table(table)
    assert writer is not None
    writer.close()
    tmp.rename(path)


def _job(engine: str, kind: str, rows: int, cores: int) -> dict:
    if engine == "spark" and cores < (os.cpu_count() or 1):
        # local[N] alone still lets the JVM's compiler and collector threads and the Python
        # workers use every core: pin the whole job (the JVM and its workers inherit it)
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    with tempfile.TemporaryDirectory() as tmp:
        result: dict[str, Any] = {"engine": engine, "input": kind, "rows": rows, "cores": cores}
        start = time.perf_counter()
        if engine == "spark":
            result.update(_spark(kind, rows, cores, Path(tmp)))
        else:
            (_pandas if engine == "pandas" else _polars)(kind, rows, Path(tmp))
        result["seconds"] = round(time.perf_counter() - start - result.get("session_s", 0), 2)
    result["rows_per_s"] = round(rows / result["seconds"])
    result["python_peak_mb"] = peak_mb(os.getpid())
    return result


def _data_config(kind: str, rows: int, cache_dir: Path):
    from omegaconf import OmegaConf

    from runner.config.data import SplitConfig, StepConfig
    from runner.data.sources.file import FileDataConfig
    from runner.data.sources.sklearn import SklearnDataConfig

    split = SplitConfig(train=SPLIT[0], val=SPLIT[1], test=round(1 - sum(SPLIT), 6))
    if kind == "digits":
        return OmegaConf.structured(
            SklearnDataConfig(
                name="digits",
                dataset="digits",
                image_shape=[1, 8, 8],
                cache=False,
                cache_dir=str(cache_dir),
            )
        )
    cfg = FileDataConfig(
        name=kind,
        format=kind,
        path=str(_input_path(kind, rows).resolve()),
        cache=False,
        cache_dir=str(cache_dir),
        split=split,
        features=[f"f{j}" for j in range(FEATURES)],
    )
    if kind == "csv":  # read as strings (no inference pass), typed by a select step
        cfg.options = {"header": "true"}
        cfg.features = [*(cfg.features or []), "city"]
        numbers = [f"CAST(f{j} AS DOUBLE) AS f{j}" for j in range(FEATURES)]
        cfg.steps = [
            StepConfig(op="select", exprs=["CAST(id AS LONG) AS id", "label", "city", *numbers]),
            StepConfig(op="impute", columns=["f0"], strategy="mean"),
            StepConfig(op="onehot", columns=["city"]),
        ]
    return OmegaConf.structured(cfg)


def _spark(kind: str, rows: int, cores: int, tmp: Path) -> dict:
    """Our stage on ``local[cores]``: the session's start apart, the jobs it ran, peak
    memory of the driver JVM (in local mode the executors' tasks run in it too)."""
    from runner.cluster.spark import build_session, stop_session
    from runner.cluster.targets.local import local
    from runner.data import preprocess

    start = time.perf_counter()
    spark = build_session(local(master=f"local[{cores}]", app_name="bench"), tmp / "logs")
    session_s = time.perf_counter() - start
    try:
        context = spark.sparkContext
        context.setJobGroup("prepare", "the preparation")
        preprocess.run(spark, _data_config(kind, rows, tmp / "cache"), tmp / "cache")
        jobs = len(context.statusTracker().getJobIdsForGroup("prepare"))
        gateway = context._gateway
        assert gateway is not None  # a classic (not Connect) session
        jvm_peak = peak_mb(gateway.proc.pid)
    finally:
        stop_session()
    return {"session_s": round(session_s, 2), "jobs": jobs, "jvm_peak_mb": jvm_peak}


def _split_of(ids, labels):
    """The stratified split as both baselines compute it: each label's quantiles of a hash
    of ``id`` cut its rows into train / val / test."""
    import numpy as np
    import pandas as pd

    u = pd.util.hash_array(np.asarray(ids)).astype(np.float64) / 2.0**64
    frame = pd.DataFrame({"label": labels, "u": u})
    cuts = frame.groupby("label")["u"].quantile([SPLIT[0], SPLIT[0] + SPLIT[1]]).unstack()
    first, second = frame["label"].map(cuts.iloc[:, 0]), frame["label"].map(cuts.iloc[:, 1])
    return np.where(u < first, "train", np.where(u < second, "val", "test"))


def _write_splits(out: Path, ids, labels, features, split) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = features.shape[1]
    values = pa.FixedSizeListArray.from_arrays(pa.array(features.astype(np.float32).ravel()), width)
    for name in ("train", "val", "test"):
        mask = pa.array(split == name)
        table = pa.table(
            {
                "id": pa.array(ids).filter(mask),
                "label": pa.array(labels).filter(mask),
                "features": values.filter(mask),
            }
        )
        (out / f"split={name}").mkdir()
        pq.write_table(table, out / f"split={name}" / "part-0.parquet")


def _pandas(kind: str, rows: int, out: Path) -> None:
    """The same steps with pandas/numpy/pyarrow in this one process."""
    import numpy as np
    import pandas as pd

    path = _input_path(kind, rows)
    frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    split = _split_of(frame["id"], frame["label"])
    train = split == "train"
    columns = [f"f{j}" for j in range(FEATURES)]
    if kind == "csv":
        frame["f0"] = frame["f0"].fillna(frame.loc[train, "f0"].mean())
        cities = sorted(frame.loc[train, "city"].dropna().unique())
        onehot = pd.get_dummies(pd.Categorical(frame["city"], categories=cities), dtype=float)
        frame = pd.concat([frame, onehot.add_prefix("city_")], axis=1)
        columns += [f"city_{c}" for c in cities]
    x = frame[columns].to_numpy(np.float64)
    std = x[train].std(0, ddof=1)
    scaled = (x - x[train].mean(0)) / np.where(std > 0, std, np.inf)
    _write_splits(out, frame["id"].to_numpy(), frame["label"].to_numpy(), scaled, split)


def _polars(kind: str, rows: int, out: Path) -> None:
    """The same steps as one lazy Polars query per split (all cores)."""
    import polars as pl

    path = str(_input_path(kind, rows))
    lazy = pl.scan_parquet(path) if kind == "parquet" else pl.scan_csv(path)
    u = pl.col("id").hash(_SEED).cast(pl.Float64) / 2.0**64
    lazy = lazy.with_columns(u.alias("u"))
    cuts = lazy.group_by("label").agg(
        pl.col("u").quantile(SPLIT[0]).alias("a"),
        pl.col("u").quantile(SPLIT[0] + SPLIT[1]).alias("b"),
    )
    frame = (
        lazy.join(cuts, on="label")
        .with_columns(
            pl.when(pl.col("u") < pl.col("a"))
            .then(pl.lit("train"))
            .when(pl.col("u") < pl.col("b"))
            .then(pl.lit("val"))
            .otherwise(pl.lit("test"))
            .alias("split")
        )
        .collect()
    )
    train = frame.filter(pl.col("split") == "train")
    columns = [f"f{j}" for j in range(FEATURES)]
    if kind == "csv":
        frame = frame.with_columns(pl.col("f0").fill_null(train["f0"].mean()))
        cities = sorted(train["city"].drop_nulls().unique().to_list())
        frame = frame.with_columns(
            *(
                (pl.col("city") == c).fill_null(False).cast(pl.Float64).alias(f"city_{c}")
                for c in cities
            )
        )
        columns += [f"city_{c}" for c in cities]
        train = frame.filter(pl.col("split") == "train")
    stats = train.select(
        *(pl.col(c).mean().alias(f"m{i}") for i, c in enumerate(columns)),
        *(pl.col(c).std().alias(f"s{i}") for i, c in enumerate(columns)),
    ).row(0)
    n = len(columns)
    scaled = [
        ((pl.col(c) - stats[i]) / (stats[n + i] or float("inf"))).cast(pl.Float32)
        for i, c in enumerate(columns)
    ]
    result = frame.select("id", "label", "split", pl.concat_list(scaled).alias("features"))
    for name in ("train", "val", "test"):
        (out / f"split={name}").mkdir()
        result.filter(pl.col("split") == name).drop("split").write_parquet(
            out / f"split={name}" / "part-0.parquet"
        )


def _table(results: list[dict]) -> str:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    lines = [
        "# Preprocess benchmark: files -> stratified split -> fitted steps -> Parquet",
        "",
        f"Machine: {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB memory, load average "
        f"{os.getloadavg()[0]:.1f} at the end; {datetime.now():%Y-%m-%d %H:%M}. "
        f"{FEATURES} numeric features, {len(CLASSES)} classes; csv: nulls in f0 (imputed) and a "
        f"{len(CITIES)}-city column (one-hot). Spark: `local[cores]` (with fewer cores than the "
        "machine's, the whole job is pinned to them), default driver memory (1 GiB); seconds "
        "exclude the session's start (its own column).",
        "",
        "| engine | input | rows | cores | seconds | rows/s | vs pandas | vs Polars | "
        "Spark jobs | session start s | driver Python peak MB | driver JVM peak MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r["engine"], r["input"], r["rows"]): r for r in results}
    for r in results:
        ratios = []
        for base in ("pandas", "polars"):
            other = by.get((base, r["input"], r["rows"]))
            ratios.append(
                f"{r['rows_per_s'] / other['rows_per_s']:.2f}x"
                if r["engine"] == "spark" and other
                else ""
            )
        lines.append(
            f"| {r['engine']} | {r['input']} | {r['rows']:,} | {r['cores']} | {r['seconds']} | "
            f"{r['rows_per_s']:,} | {ratios[0]} | {ratios[1]} | {r.get('jobs', '')} | "
            f"{r.get('session_s', '')} | {r['python_peak_mb']:,} | {r.get('jvm_peak_mb', '')} |"
        )
    lines += [
        "",
        "Peak memory is each process's own: the driver's Python (`ru_maxrss`) and the driver "
        "JVM (`VmHWM`; in local mode it also runs the executors' tasks, bounded by its heap). "
        "Spark's Python workers are not counted; pandas and Polars hold every row in their "
        "one process.",
        "",
    ]
    return "\n".join(lines)
