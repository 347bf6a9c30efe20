"""Tiny Hydra app for the Spark launcher tests.

    python tests/launcher_app/my_app.py -m hydra/launcher=spark x=1,2,3

Each job writes `result.txt` ("<2x> <pid>") in its output dir and returns 2x; x=fail raises.
"""

import os
from pathlib import Path

import arith  # a module next to the app: Spark tasks must import it too
import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def my_app(cfg: DictConfig) -> int:
    if cfg.x == "fail":
        raise ValueError("job asked to fail")
    result = arith.double(int(cfg.x))
    Path("result.txt").write_text(f"{result} {os.getpid()}\n")  # cwd is the job dir
    return result


if __name__ == "__main__":
    my_app()
