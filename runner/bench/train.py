"""Distributed training: epoch time with 1 vs 2 processes, and final accuracy, on synthetic data.

``python -m runner.bench train [--rows N] [--epochs E] [--seeds S]`` writes
``outputs/bench/train.md``. Each configuration runs the real train stage
(TorchDistributor local mode, DDP over gloo) once per seed; the 1-process runs' spread
over seeds is the noise the 2-process accuracy is compared with.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from runner.bench import write_table

CLASSES, WIDTH, FILES = 10, 64, 8


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.bench train")
    parser.add_argument(
        "--rows", type=int, default=40_000, help="train rows (val, test: a quarter)"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512, help="global batch")
    args = parser.parse_args(argv)
    import torch
    from runner.train import retrain
    from runner.cluster.spark import build_session, stop_session
    from runner.cluster.targets.local import local

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    prepared = _synthetic(work / "synthetic", args.rows)
    spark = build_session(local("local[2]", app_name="bench-train"), work / "logs")
    try:
        x_test, y_test = prepared.read("test")
        load_before = os.getloadavg()
        rows = []
        for n in (1, 2):
            for seed in range(args.seeds):
                sections = {
                    "model": {
                        "_target_": "models.mlp.MLP",
                        "hidden": 256,
                        "depth": 2,
                        "dropout": 0.1,
                    },
                    "optimizer": {
                        "_target_": "torch.optim.AdamW",
                        "lr": 1e-3,
                        "weight_decay": 1e-4,
                    },
                    "train": {
                        "epochs": args.epochs,
                        "batch_size": args.batch_size,
                        "seed": seed,
                        "num_processes": n,
                        "use_gpu": False,
                        "local_mode": True,
                    },
                }
                began = time.perf_counter()
                result = retrain.run(
                    spark,
                    prepared,
                    sections,
                    {"_target_": "runner.tasks.Classification"},
                    work / f"n{n}-s{seed}",
                    is_local=True,
                )
                wall = time.perf_counter() - began
                model = result.artifact.build()
                with torch.no_grad():
                    predicted = model(torch.from_numpy(x_test)).argmax(1).numpy()
                epochs = [h["epoch_s"] for h in result.history[1:]]  # the first warms up
                rows.append(
                    {
                        "processes": n,
                        "seed": seed,
                        "epoch_s": statistics.median(epochs),
                        "wall_s": wall,
                        "accuracy": float((predicted == y_test).mean()),
                    }
                )
                print(f"[bench train] {rows[-1]}", flush=True)
    finally:
        stop_session()
    _write(rows, args, load_before, os.getloadavg())


def _synthetic(root: Path, rows: int):
    """A prepared entry of Gaussian class clusters in ``WIDTH`` dimensions, overlapping
    enough to be learnt slowly."""
    import pyarrow as pa

    from runner.data.prepared import write_entry

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=0.35, size=(CLASSES, WIDTH))
    splits = {}
    for split, n in (("train", rows), ("val", rows // 4), ("test", rows // 4)):
        labels = rng.integers(0, CLASSES, n)
        features = (centres[labels] + rng.normal(size=(n, WIDTH))).astype(np.float32)
        splits[split] = [
            pa.table(
                {
                    "id": part,
                    "label": labels[part],
                    "features": pa.array(list(features[part]), type=pa.list_(pa.float32())),
                }
            )
            for part in np.array_split(np.arange(n), FILES)
        ]
    return write_entry(str(root), splits, (WIDTH,), CLASSES)


def _write(rows: list[dict], args: argparse.Namespace, load_before, load_after) -> None:
    def mean(n: int, key: str) -> float:
        return statistics.mean(r[key] for r in rows if r["processes"] == n)

    t1, t2 = mean(1, "epoch_s"), mean(2, "epoch_s")
    acc1 = [r["accuracy"] for r in rows if r["processes"] == 1]
    spread = max(acc1) - min(acc1) if len(acc1) > 1 else float("nan")
    write_table(
        "train",
        "Distributed training: 1 vs 2 processes",
        ["processes", "seed", "epoch s (median of epochs 2+)", "stage wall s", "test accuracy"],
        [
            [
                str(r["processes"]),
                str(r["seed"]),
                f"{r['epoch_s']:.3f}",
                f"{r['wall_s']:.1f}",
                f"{r['accuracy']:.4f}",
            ]
            for r in rows
        ],
        [
            f"Synthetic data: {args.rows} train + {args.rows // 4} val rows trained on, "
            f"{args.rows // 4} test rows scored; {WIDTH} features, {CLASSES} classes, {FILES} "
            f"Parquet files per split. MLP 256x2, global batch {args.batch_size}, AdamW 1e-3, "
            f"{args.epochs} epochs; the train stage itself (TorchDistributor local mode, DDP over "
            "gloo on CPU, torch threads = cores / processes).",
            "",
            f"- speed-up 1 -> 2 processes: **{t1 / t2:.2f}x**, scaling efficiency "
            f"**{t1 / (2 * t2):.2f}** (epoch time, same run, same machine)",
            f"- test accuracy: 1 process {mean(1, 'accuracy'):.4f}, 2 processes "
            f"{mean(2, 'accuracy'):.4f} "
            f"(difference {mean(2, 'accuracy') - mean(1, 'accuracy'):+.4f};"
            f" 1-process spread over seeds {spread:.4f})",
            f"- load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; absolute "
            "times on this VM drift by 10-20 %: compare within a run.",
        ],
    )
