"""Append-only JSON-lines files that survive a crash: ``trials.jsonl`` and Optuna's
``study.journal`` (which Optuna appends to the same way).

A record is one whole line, written in one call, flushed and fsynced. A crash or a full
disk can still leave a torn last line (cut short, or not JSON); :func:`repair` cuts it
off before anything is appended, so no record is ever written onto a partial one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runner.errors import with_path


def append(path: Path, record: dict[str, Any]) -> None:
    """Add ``record`` as one line, on disk when this returns (an ``OSError`` names ``path``)."""
    try:
        with open(path, "ab") as fh:
            fh.write(json.dumps(record).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise with_path(err, path) from err


def repair(path: Path) -> str | None:
    """Cut a torn last line off ``path``; a one-line note saying so, or None if it was whole."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    start = data.rfind(b"\n", 0, len(data) - 1) + 1  # where the last line begins
    if not data or (data.endswith(b"\n") and _is_json(data[start:])):
        return None
    os.truncate(path, start)
    return (
        f"note: {path.name}: cut off a torn last line ({len(data) - start} bytes, left by "
        "a crash or a full disk); what it recorded is redone"
    )


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
