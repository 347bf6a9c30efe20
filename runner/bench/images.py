"""Images: our Spark preparation vs a torch DataLoader on the same cores, and a trial's
training from the prepared Parquet vs from memory.

Preparation: both read the same shapes JPEGs (drawn once by ``data=shapes``, ``--size``
pixels) and bring each to ``--to`` x ``--to`` RGB with the same ``decode`` (Pillow, draft +
bilinear resize). Spark: the whole preprocess stage on ``local[C]`` (``binaryFile`` listing
and reading, decoding in ``mapInArrow``, the split, the fit, uint8 Parquet written), its
Spark jobs counted. DataLoader: ``num_workers=C`` processes decoding the files into uint8
tensors in memory, nothing written. Each engine and count runs in a fresh process, which
reports its wall time (Spark: session start excluded) and its peak memory (``VmHWM``).

Training: the train split the Spark stage wrote for ``--train-count`` images, read as a
trial reads it with ``train.streaming`` (``ParquetBatches``: windows of row groups read and
shuffled together, each batch turned into normalised floats, by a background thread), vs the
same uint8 images held as one tensor, normalised batch by batch. The same small ``cnn``,
batch size, seed and ``C`` torch threads, no augmentation; epochs alternate between the
two, the best of ``--repeats`` each.

    python -m runner.bench images [--counts 4000,20000] [--train-count 4000] [--size 128]
        [--to 64] [--cores 2] [--batch-size 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.bench import machine, peak_mb, run_job

OUT = Path("outputs/bench/images.md")
DATA = Path("outputs/bench/images-data")
KEPT = DATA / "prepared"  # the Spark stage's entry for --train-count, read by the train job
MODEL = {"_target_": "models.cnn.CNN", "channels": 8, "hidden": 64, "dropout": 0.0}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bench images")
    parser.add_argument("--counts", default="4000,20000")
    parser.add_argument("--train-count", type=int, default=4000, help="0: no training run")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--to", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--entry", help=argparse.SUPPRESS)
    parser.add_argument("--job", nargs=2, metavar=("ENGINE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(_job(args.job[0], int(args.job[1]), args)))
        return 0

    options = [f"--{k}={getattr(args, k.replace('-', '_'))}" for k in _SHARED]
    counts = [int(c) for c in args.counts.split(",") if c]
    if args.train_count and args.train_count not in counts:
        counts.insert(0, args.train_count)
    results = []
    for count in counts:
        for engine in ("draw", "spark", "dataloader"):
            result = run_job("images", [engine, count, *options], f"{engine} {count:,} images")
            if result is None:
                return 1
            if engine != "draw":
                results.append(result)
        if count == args.train_count:
            entry = results[-2]["entry"]
            result = run_job(
                "images",
                ["train", count, f"--entry={entry}", *options],
                f"training on {count:,} prepared images",
            )
            if result is None:
                return 1
            results.append(result)
    shutil.rmtree(KEPT, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(_table(results, args))
    print(OUT.read_text())
    return 0


_SHARED = ("size", "to", "cores", "batch-size", "repeats")


def _config(count: int, args: argparse.Namespace, cache_dir: Path):
    from omegaconf import OmegaConf

    from runner.data.sources.shapes import ShapesDataConfig

    cfg = OmegaConf.structured(
        ShapesDataConfig(
            name="shapes",
            path=str(DATA.resolve()),
            count=count,
            size=args.size,
            cache=False,
            cache_dir=str(cache_dir),
        )
    )
    cfg.image.size = [args.to, args.to]
    return cfg


def _job(engine: str, count: int, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"engine": engine, "images": count}
    if engine == "train":
        result.update(_train(args.entry, args))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            if engine == "dataloader":
                from runner.data.sources import shapes

                _dataloader(shapes.folder(_config(count, args, Path(tmp))), args)
            else:
                result.update(_spark(engine, count, args, Path(tmp)))
            result["seconds"] = round(time.perf_counter() - start - result.get("session_s", 0), 2)
        result["images_per_s"] = round(count / result["seconds"])
    result["python_peak_mb"] = peak_mb(os.getpid())
    return result


def _spark(engine: str, count: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Draw the images, or prepare them (the entry kept in ``KEPT`` for the train job), on
    ``local[cores]``: the session's start apart, the jobs, the driver JVM's peak memory."""
    from runner.cluster.spark import build_session, stop_session
    from runner.cluster.targets.local import local
    from runner.data import preprocess
    from runner.data.sources import shapes

    start = time.perf_counter()
    spark = build_session(local(f"local[{args.cores}]", app_name="bench-images"), tmp / "logs")
    session_s = time.perf_counter() - start
    out: dict[str, Any] = {"session_s": round(session_s, 2)}
    try:
        context = spark.sparkContext
        context.setJobGroup("bench", engine)
        if engine == "draw":
            shapes.generate(spark, _config(count, args, tmp))
        else:
            shutil.rmtree(KEPT, ignore_errors=True)
            prepared = preprocess.run(spark, _config(count, args, KEPT), KEPT)
            assert sum(prepared.rows.values()) == count
            out["entry"] = prepared.uri
        out["jobs"] = len(context.statusTracker().getJobIdsForGroup("bench"))
        gateway = context._gateway
        assert gateway is not None  # a classic (not Connect) session
        out["jvm_peak_mb"] = peak_mb(gateway.proc.pid)
    finally:
        stop_session()
    return out


def _dataloader(root: str, args: argparse.Namespace) -> None:
    """Every JPEG under ``root`` decoded like our stage, by a map-style dataset (uint8
    C x H x W, class index) in ``num_workers=cores`` processes."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    from runner.data.preparations.image import decode

    files = sorted(Path(root).glob("*/*.jpg"))
    classes = sorted({f.parent.name for f in files})

    class Files(Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int):
            image = decode(files[i].read_bytes(), "RGB", (args.to, args.to), "resize")
            return torch.from_numpy(image), classes.index(files[i].parent.name)

    loader: DataLoader = DataLoader(Files(), batch_size=256, num_workers=args.cores)
    seen = sum(len(labels) for _, labels in loader)
    assert seen == len(files), (seen, len(files))


def _train(uri: str, args: argparse.Namespace) -> dict[str, Any]:
    """Epochs of the same model alternately fed by the trial's streaming reader and from
    uint8 tensors in memory; the best epoch of each."""
    import torch

    from runner.data.prepared import PreparedDataset
    from runner.tasks import task_for
    from runner.train import engine
    from runner.train.model import build_model
    from runner.train.trial import TrialSpec, train_batches

    torch.set_num_threads(args.cores)
    entry = PreparedDataset(uri)
    task = task_for(entry.task)
    kwargs = task.model_kwargs(entry.meta)
    spec = TrialSpec(
        number=0,
        params={},
        model=MODEL,
        optimizer={"_target_": "torch.optim.AdamW", "lr": 1e-3},
        train={"batch_size": args.batch_size, "seed": 0, "streaming": True, "epochs": 1},
        entry=uri,
        input_shape=entry.input_shape,
        task=entry.task,
        model_kwargs=kwargs,
        metric="val_loss",
    )
    feeds = {"memory": _in_memory(entry, args.batch_size), "parquet": train_batches(spec, "cpu")[0]}
    runs = {}
    for side, feed in feeds.items():
        torch.manual_seed(0)  # the same initial weights
        model = build_model(MODEL, entry.input_shape, kwargs)
        runs[side] = (feed, model, torch.optim.AdamW(model.parameters(), lr=1e-3))
    seconds: dict[str, list[float]] = {side: [] for side in runs}
    losses: dict[str, float] = {}
    reading: dict[str, list[float]] = {side: [] for side in runs}
    for _ in range(args.repeats):
        for side, (feed, model, optimizer) in runs.items():
            start = time.perf_counter()
            losses[side] = engine.train_epoch(model, task, optimizer, feed())
            seconds[side].append(time.perf_counter() - start)
            start = time.perf_counter()
            for _batch in feed():  # the feed alone, no model
                pass
            reading[side].append(time.perf_counter() - start)
    rows = entry.rows["train"]
    best = {side: min(times) for side, times in seconds.items()}
    return {
        "train_rows": rows,
        "row_groups": len(entry.row_groups(["train"])),
        "seconds": {side: [round(t, 2) for t in times] for side, times in seconds.items()},
        "images_per_s": {side: round(rows / t) for side, t in best.items()},
        "feed_images_per_s": {side: round(rows / min(t)) for side, t in reading.items()},
        "ratio": round(best["memory"] / best["parquet"], 3),
        "last_loss": {side: round(loss, 4) for side, loss in losses.items()},
    }


def _in_memory(entry: Any, batch_size: int):
    """A function giving one epoch of shuffled, normalised batches from the train split's
    uint8 images held as one tensor (read once, not timed)."""
    import numpy as np
    import torch

    table = entry.table(["train"], ["features", "label"])
    shape = (-1, *entry.input_shape)
    images = torch.from_numpy(
        np.stack([np.frombuffer(b, np.uint8) for b in table.column("features").to_pylist()])
    ).reshape(shape)
    labels = torch.from_numpy(table.column("label").to_numpy())
    mean = torch.tensor(entry.input["mean"], dtype=torch.float32)[:, None, None]
    std = torch.tensor(entry.input["std"], dtype=torch.float32)[:, None, None]
    generator = torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield (images[idx].float() - mean) / std, labels[idx]

    return epoch


def _table(results: list[dict], args: argparse.Namespace) -> str:
    loader = {r["images"]: r for r in results if r["engine"] == "dataloader"}
    lines = [
        f"# Images: {args.size}x{args.size} JPEGs -> {args.to}x{args.to} RGB uint8",
        "",
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end, "
        f"{datetime.now():%H:%M}.",
        "",
        f"## Preparation, both on {args.cores} cores: Spark `local[{args.cores}]` (the whole "
        f"preprocess stage, Parquet written), DataLoader `num_workers={args.cores}` (decoded "
        "into memory only)",
        "",
        "| engine | images | seconds | images/s | spark/DataLoader | Spark jobs "
        "| driver Python peak MB | driver JVM peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r["engine"] == "train":
            continue
        base = loader.get(r["images"])
        ratio = (
            f"{r['images_per_s'] / base['images_per_s']:.2f}x"
            if r["engine"] == "spark" and base
            else ""
        )
        lines.append(
            f"| {r['engine']} | {r['images']:,} | {r['seconds']} | {r['images_per_s']:,} | "
            f"{ratio} | {r.get('jobs', '')} | {r['python_peak_mb']:,} | "
            f"{r.get('jvm_peak_mb', '')} |"
        )
    for r in results:
        if r["engine"] != "train":
            continue
        lines += [
            "",
            f"## Training: {r['train_rows']:,} train images ({r['row_groups']} row groups), "
            f"`{MODEL['_target_']}` {MODEL['channels']} channels, batch {args.batch_size}, "
            f"{args.cores} threads, best of {args.repeats} interleaved epochs",
            "",
            "| fed from | images/s trained | epochs s | images/s fed (no model) |",
            "|---|---:|---|---:|",
        ]
        for side, label in (("memory", "uint8 tensors in memory"), ("parquet", "Parquet")):
            times = ", ".join(str(t) for t in r["seconds"][side])
            lines.append(
                f"| {label} | {r['images_per_s'][side]:,} | {times} | "
                f"{r['feed_images_per_s'][side]:,} |"
            )
        lines += ["", f"Parquet / memory: **{r['ratio']:.2f}x**"]
    return "\n".join(lines) + "\n"
