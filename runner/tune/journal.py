"""The study's journal (``run_dir/study.journal``): Optuna's file storage, with a lock that a
killed run cannot leave behind.

Optuna locks each append with a symlink beside the file; a SIGKILL while it is held leaves
the symlink, and the rerun waits out Optuna's 30 s grace period and warns. An ``flock`` on
the journal itself is dropped by the kernel when its process dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock


def storage(path: Path) -> JournalStorage:
    """Optuna's journal storage at ``path``, appended under :class:`FlockLock`."""
    return JournalStorage(JournalFileBackend(str(path), lock_obj=FlockLock(path)))


class FlockLock(BaseJournalFileLock):
    """An exclusive ``flock`` on ``path`` for each append (Optuna's storage serializes its
    own threads, so one descriptor at a time)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing it drops the lock
