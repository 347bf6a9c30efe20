"""Benchmarks: ``python -m runner.bench <name>...``; each writes ``outputs/bench/<name>.md``.

Figures are ratios against a baseline measured in the same run, on the same machine.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OUT_DIR = Path("outputs/bench")


def machine() -> str:
    """One line naming the machine the figures came from."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (
        f"{platform.node()}: {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load:.1f} at start, "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}"
    )


def write_table(
    name: str, title: str, header: list[str], rows: list[list[str]], notes: Sequence[str] = ()
) -> Path:
    """A markdown table with the machine line, written to ``outputs/bench/<name>.md``."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {title}",
        "",
        f"Machine: {machine()}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *notes]
    path = OUT_DIR / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return path


def run_job(benchmark: str, args: Sequence[object], what: str) -> dict[str, Any] | None:
    """``python -m runner.bench <benchmark> --job ARGS`` in a fresh process (no imports,
    memory or JIT state carried over from this one): the JSON object its last output line
    prints, or None (its stderr's tail printed) when it fails. ``what`` names it in the log."""
    print(f"[bench] {what} ...", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "runner.bench", benchmark, "--job", *map(str, args)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"[bench] {what}: {result}", flush=True)
    return result


def peak_mb(pid: int) -> int:
    """A process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not carried over
    from the parent a job was started from)."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return round(int(hwm.split()[1]) / 1024)
