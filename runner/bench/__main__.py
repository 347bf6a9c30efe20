"""``python -m runner.bench [name [args]]``: run one benchmark, or all of them."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = (
    "preprocess",
    "sweep",
    "trainloop",
    "records",
    "train",
    "infer",
    "multirun",
    "images",
)


def main(argv: list[str]) -> int:
    if argv and argv[0] not in BENCHMARKS:
        print(f"usage: python -m runner.bench [{'|'.join(BENCHMARKS)}] [args]", file=sys.stderr)
        return 2
    names = [argv[0]] if argv else list(BENCHMARKS)
    status = 0
    for name in names:
        status |= importlib.import_module(f"runner.bench.{name}").main(argv[1:]) or 0
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
