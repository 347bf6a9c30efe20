"""A test-only model whose construction kills its Python worker, as an out-of-memory kill would.

``tickets`` is a directory: building the model takes one file from it (the first
``os.unlink`` wins) and, if it got one, the process exits at once. So N files = N crashes,
wherever the trials run (in Spark tasks only: the driver's check that the model builds
takes none); an empty or missing directory = a plain MLP.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.mlp import MLP


class CrashingMLP(MLP):
    def __init__(self, *args, tickets: str = "", **kwargs) -> None:
        from pyspark import TaskContext

        in_task = TaskContext.get() is not None
        for ticket in sorted(Path(tickets).glob("*")) if tickets and in_task else []:
            try:
                ticket.unlink()
            except FileNotFoundError:  # another trial took it
                continue
            os._exit(1)
        super().__init__(*args, **kwargs)


def crash_tickets(directory: Path, n: int) -> str:
    """A directory holding ``n`` crash tickets; its path, for ``model.tickets``."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (directory / f"{i:03d}").touch()
    return str(directory)
