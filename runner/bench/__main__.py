"""``python -m runner.bench NAME [args]``: run one benchmark (``preprocess``)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("preprocess",)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m runner.bench {{{','.join(BENCHMARKS)}}} [args]", file=sys.stderr)
        return 2
    return importlib.import_module(f"runner.bench.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
