"""Records benchmark: what crash safety costs a trial.

Every finished trial appends one line to ``trials.jsonl``, flushed and fsynced
(``runner.tune.jsonl.append``). The overhead per trial is the median time of that append
minus the same append without the fsync, on the file system of the run dir (``--dir``,
default ``outputs/``), with a record the size of a 12-epoch trial's.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from runner.bench import write_table

APPENDS = 200


def measure(directory: Path, appends: int = APPENDS) -> dict[str, float]:
    """Median seconds per append, with and without the fsync, and the record's size."""
    from runner.tune import jsonl

    record = {
        "number": 0,
        "state": "COMPLETE",
        "metrics": {"val_accuracy": 0.97, "val_loss": 0.1},
        "history": [
            {"epoch": e, "train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.9}
            for e in range(1, 13)
        ],
        "error": "",
        "duration_s": 4.2,
        "pid": 1234,
        "host": "h",
        "device": "cpu",
        "gpu": "",
        "reasks": None,
        "params": {"optimizer.lr": 0.003, "model.hidden": 128},
    }
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as work:
        synced, plain = Path(work) / "synced.jsonl", Path(work) / "plain.jsonl"
        with_fsync, without = [], []
        for number in range(appends):  # interleaved: the machine's drift hits both alike
            record["number"] = number
            start = time.perf_counter()
            jsonl.append(synced, record)
            with_fsync.append(time.perf_counter() - start)
            start = time.perf_counter()
            with open(plain, "ab") as fh:
                fh.write(json.dumps(record).encode() + b"\n")
                fh.flush()
            without.append(time.perf_counter() - start)
    return {
        "with_fsync": statistics.median(with_fsync),
        "without": statistics.median(without),
        "p95_with_fsync": sorted(with_fsync)[int(0.95 * appends)],
        "bytes": len(json.dumps(record)) + 1,
    }


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m runner.bench records")
    parser.add_argument("--dir", type=Path, default=Path("outputs"))
    parser.add_argument("--appends", type=int, default=APPENDS)
    args = parser.parse_args(argv)
    m = measure(args.dir, args.appends)
    overhead = m["with_fsync"] - m["without"]
    rows = [
        ["record", f"{m['bytes']} bytes", "a 12-epoch trial's line of trials.jsonl"],
        [
            "append, flushed and fsynced (median)",
            f"{1e3 * m['with_fsync']:.3f} ms",
            f"p95 {1e3 * m['p95_with_fsync']:.3f} ms; {args.appends} appends",
        ],
        ["append, flushed, no fsync (median)", f"{1e3 * m['without']:.3f} ms", ""],
        ["fsync overhead per trial", f"{1e3 * overhead:.3f} ms", "target <= 2 ms"],
        ["file system", _filesystem(args.dir), ""],
    ]
    write_table(
        "records", "Records benchmark (crash-safe trials.jsonl)", ["measure", "value", "note"], rows
    )
    return 0


def _filesystem(path: Path) -> str:
    """The mount type of ``path`` (Linux), or "?"."""
    try:
        target = os.path.realpath(path)
        best = ("", "?")
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, kind, *_ = line.split()
            if target.startswith(mount) and len(mount) > len(best[0]):
                best = (mount, kind)
        return best[1]
    except OSError:
        return "?"
