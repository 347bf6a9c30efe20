"""Benchmarks: ``python -m runner.bench <name>`` writes ``outputs/bench/<name>.md``."""
