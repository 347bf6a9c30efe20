"""A failed job of a multirun: its record on disk and the multirun's closing summary.

Hydra runs every job of a batch, then raises the first failed job's exception, and its
``run_and_report`` prints a ``CompactHydraException`` as its message alone and exits 1.
:class:`JobFailed`'s message is therefore the list of every job that failed in this
process so far: one line per failed job, whichever launcher ran them.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path

from hydra.errors import CompactHydraException

from runner.errors import RunnerError, first_line
from runner.serve.artifacts import atomic_write

ERROR_FILE = "error.txt"  # a failed run's record: its error line, then the traceback of a bug

_failed: dict[int, str] = {}  # job number -> "overrides: error", for the closing summary
_lock = threading.Lock()


class JobFailed(CompactHydraException):
    """A job's bad input (a RunnerError): that job fails, the multirun goes on."""

    def __init__(self, num: int, overrides: list[str], err: RunnerError) -> None:
        self.line = f"#{num} {' '.join(overrides)}: {err}"
        super().__init__(self.line)
        with _lock:
            _failed[num] = self.line

    def __str__(self) -> str:
        with _lock:
            lines = [_failed[n] for n in sorted(_failed)] or [self.line]
        return "\n".join(
            [
                f"error: {len(lines)} job(s) of the multirun failed:",
                *(f"  {line}" for line in lines),
            ]
        )


def record_failure(run_dir: Path, err: Exception) -> None:
    """Write ``error.txt`` (never ``summary.json``, which marks a finished run)."""
    if isinstance(err, RunnerError):
        text = f"error: {err}\n"
    else:
        text = f"{type(err).__name__}: {first_line(err)}\n\n" + "".join(
            traceback.format_exception(err)
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / ERROR_FILE, text.encode())
    except OSError:
        pass  # the run dir is what failed (full, read-only): the error itself still reports
