"""``python -m runner.bench NAME [args]``: run one benchmark (all of them without NAME)."""

from __future__ import annotations

import importlib
import sys

from runner.bench import BENCHES


def main(argv: list[str]) -> None:
    names = [argv[0]] if argv else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        sys.exit(f"error: unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    for name in names:
        importlib.import_module(BENCHES[name]).main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
