"""Image preparation: our Spark stage vs a torch DataLoader with Pillow, on the same cores.

Both read the same shapes JPEGs (drawn once by ``data=shapes``, ``--size`` pixels) and bring
each to ``--to`` x ``--to`` RGB with the same ``decode`` (Pillow, draft + bilinear resize).
Spark: the whole preprocess stage on ``local[C]`` (``binaryFile`` listing and reading,
decoding in ``mapInArrow``, the split, the per-channel statistics, uint8 Parquet written).
DataLoader: ``num_workers=C`` processes decoding the files into uint8 tensors in memory,
nothing written. Each engine and count runs in a fresh process, which reports its wall
time (Spark: session start excluded) and the driver's peak memory.

    python -m runner.bench images [--counts 4000,16000] [--size 128] [--to 64] [--cores 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from torch.utils.data import Dataset

OUT = Path("outputs/bench/images.md")
DATA = Path("outputs/bench/images-data")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bench images")
    parser.add_argument("--counts", default="4000,16000")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--to", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--job", nargs=2, metavar=("ENGINE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(_job(args.job[0], int(args.job[1]), args)))
        return 0

    results = []
    for count in (int(c) for c in args.counts.split(",")):
        for engine in ("draw", "spark", "dataloader"):
            print(f"[bench] {engine} {count:,} images ...", flush=True)
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "runner.bench",
                    "images",
                    "--job",
                    engine,
                    str(count),
                    "--size",
                    str(args.size),
                    "--to",
                    str(args.to),
                    "--cores",
                    str(args.cores),
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            if engine != "draw":
                results.append(result)
                rate = result["images_per_s"]
                print(f"[bench] {engine} {count:,}: {rate:,} images/s", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(_table(results, args))
    print(OUT.read_text())
    return 0


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


def _session(cores: int, tmp: Path):
    from runner.cluster.spark import build_session
    from runner.cluster.targets.local import local

    return build_session(local(f"local[{cores}]", app_name="bench-images"), tmp / "logs")


def _job(engine: str, count: int, args: argparse.Namespace) -> dict:
    from runner.cluster.spark import stop_session
    from runner.data.sources import shapes

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        cfg = _config(count, args, tmp / "cache")
        jvm_peak = None
        if engine == "dataloader":
            start = time.perf_counter()
            _dataloader(shapes.folder(cfg), args)
            seconds = time.perf_counter() - start
        else:
            spark = _session(args.cores, tmp)
            try:
                start = time.perf_counter()
                if engine == "draw":
                    shapes.generate(spark, cfg)
                else:
                    from runner.data import preprocess

                    prepared = preprocess.run(spark, cfg, tmp / "cache")
                    assert sum(prepared.rows.values()) == count
                seconds = time.perf_counter() - start
                status = Path(f"/proc/{spark.sparkContext._gateway.proc.pid}/status").read_text()
                jvm_peak = round(
                    int(
                        next(
                            line for line in status.splitlines() if line.startswith("VmHWM")
                        ).split()[1]
                    )
                    / 1024
                )
            finally:
                stop_session()
    return {
        "engine": engine,
        "images": count,
        "seconds": round(seconds, 2),
        "images_per_s": round(count / seconds),
        "python_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "jvm_peak_mb": jvm_peak,
    }


class _Files(Dataset):
    """A map-style dataset: (uint8 C x H x W, class index) per JPEG, decoded like our stage."""

    def __init__(self, root: str, to: int):
        self.files = sorted(Path(root).glob("*/*.jpg"))
        self.classes = sorted({f.parent.name for f in self.files})
        self.to = to

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        import torch

        from runner.data.preparations.image import decode

        path = self.files[i]
        image = decode(path.read_bytes(), "RGB", (self.to, self.to), "resize")
        return torch.from_numpy(image), self.classes.index(path.parent.name)


def _dataloader(root: str, args: argparse.Namespace) -> None:
    from torch.utils.data import DataLoader

    dataset = _Files(root, args.to)
    loader: DataLoader = DataLoader(dataset, batch_size=256, num_workers=args.cores)
    seen = sum(len(labels) for _, labels in loader)
    assert seen == len(dataset), (seen, len(dataset))


def _table(results: list[dict], args: argparse.Namespace) -> str:
    loader = {r["images"]: r for r in results if r["engine"] == "dataloader"}
    lines = [
        f"# Image preparation: {args.size}x{args.size} JPEGs -> {args.to}x{args.to} RGB uint8",
        "",
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
        f"{datetime.now():%Y-%m-%d %H:%M}. Both on {args.cores} cores: Spark `local[{args.cores}]`"
        f" (the whole preprocess stage, Parquet written), DataLoader `num_workers={args.cores}` "
        "(decoded into memory only).",
        "",
        "| engine | images | seconds | images/s | spark/DataLoader | driver Python peak MB "
        "| driver JVM peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        base = loader.get(r["images"])
        ratio = (
            f"{r['images_per_s'] / base['images_per_s']:.2f}"
            if r["engine"] == "spark" and base
            else ""
        )
        lines.append(
            f"| {r['engine']} | {r['images']:,} | {r['seconds']} | "
            f"{r['images_per_s']:,} | {ratio} | {r['python_peak_mb']:,} | "
            f"{r['jvm_peak_mb'] or ''} |"
        )
    return "\n".join(lines) + "\n"
