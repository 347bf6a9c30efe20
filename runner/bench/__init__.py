"""Benchmarks: ``python -m runner.bench <name>...``; each writes ``outputs/bench/<name>.md``.

Figures are ratios against a baseline measured in the same run, on the same machine.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Sequence
from pathlib import Path

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
