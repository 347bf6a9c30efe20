"""Tiny Hydra app for the Spark launcher tests.

    python tests/launcher_app/my_app.py -m hydra/launcher=spark x=1,2,3

Each job writes `result.txt` ("<2x> <pid>") in its output dir and returns 2x; x=fail raises,
x=exit calls sys.exit(3), x=unpicklable raises an exception that does not pickle. Every
start of a job appends a line to `attempts.txt` in its output dir.
"""

import os
import sys
import threading
from pathlib import Path

import arith  # a module next to the app: Spark tasks must import it too
import hydra
from omegaconf import DictConfig


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


@hydra.main(version_base=None, config_path="conf", config_name="config")
def my_app(cfg: DictConfig) -> int:
    with open("attempts.txt", "a") as attempts:
        attempts.write(f"{os.getpid()}\n")
    if cfg.x == "fail":
        raise ValueError("job asked to fail")
    if cfg.x == "exit":
        sys.exit(3)
    if cfg.x == "unpicklable":
        raise Unpicklable("job holds a lock")
    result = arith.double(int(cfg.x))
    Path("result.txt").write_text(f"{result} {os.getpid()}\n")  # cwd is the job dir
    return result


if __name__ == "__main__":
    my_app()
