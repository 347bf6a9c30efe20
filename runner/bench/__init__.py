"""Benchmarks: ``python -m runner.bench NAME``; each writes ``outputs/bench/NAME.md``."""

# name -> module with ``main(argv: list[str]) -> None``, imported only when asked for
BENCHES = {
    "infer": "runner.bench.infer",
}
