"""Whether a process is alive, by pid: the local cluster's daemons, the JVM writing the class
archive."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """``pid`` exists (a process of another user counts; a zombie child too: reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
