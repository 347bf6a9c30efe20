"""Multirun benchmark: 4 experiments (2 models x 2 data sets, small sweeps) run one after
another by Hydra's basic launcher vs at once by ``hydra/launcher=spark``, on the same
Spark session size (``local[2]``), each from an empty data cache, through the CLI.

- wall time: the whole ``python -m runner -m ...`` command;
- slot utilisation: the Spark task time of the application (its event log) over
  slots x the application's lifetime: how much of the cluster the multirun kept busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.bench import write_table

SLOTS = 2
EXPERIMENTS = ["model.depth=1,3", "data=digits,breast_cancer"]  # 2 MLPs x 2 data sets
LAUNCHERS = {"basic (one after another)": [], "spark (at once)": ["hydra/launcher=spark"]}


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m runner.bench multirun")
    parser.add_argument("--trials", type=int, default=4, help="per experiment")
    parser.add_argument("--epochs", type=int, default=4, help="per trial")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, interleaved")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-multirun-"))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in LAUNCHERS}
    for repeat in range(args.repeats):
        for i, (name, launcher) in enumerate(LAUNCHERS.items()):
            runs[name].append(_run(work / f"{repeat}-{i}", launcher, args.trials, args.epochs))

    best = {name: min(results, key=lambda r: r["wall"]) for name, results in runs.items()}
    rows = [
        [
            name,
            f"{r['wall']:.1f}",
            f"{r['app']:.1f}",
            f"{r['busy']:.1f}",
            f"{r['busy'] / (SLOTS * r['app']):.2f}",
            f"{r['finished']:.0f}/4",
        ]
        for name, r in best.items()
    ]
    basic, spark = best.values()
    write_table(
        "multirun",
        "Multirun: 4 experiments, basic launcher vs hydra/launcher=spark",
        ["launcher", "wall s", "Spark app s", "task busy s", "slot utilisation", "finished"],
        rows,
        [
            f"Experiments: {' '.join(EXPERIMENTS)}, search.n_trials={args.trials}, "
            f"train.epochs={args.epochs}, deploy.master=local[{SLOTS}], empty cache each run; "
            f"best of {args.repeats} run(s) per side, interleaved.",
            f"Wall time ratio basic / spark: {basic['wall'] / spark['wall']:.2f}x.",
            "Slot utilisation = sum of Spark task durations / (slots x application lifetime).",
        ],
    )
    return 0


def _run(work: Path, launcher: list[str], trials: int, epochs: int) -> dict[str, float]:
    """One multirun through the CLI; its wall time and its Spark application's task time."""
    events = work / "events"
    events.mkdir(parents=True)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        "PYSPARK_SUBMIT_ARGS": " ".join(
            f"--conf {k}={v}"
            for k, v in {  # one plain JSON file
                "spark.eventLog.enabled": "true",
                "spark.eventLog.dir": f"file://{events}",
                "spark.eventLog.compress": "false",
                "spark.eventLog.rolling.enabled": "false",
            }.items()
        )
        + " pyspark-shell",
    }
    cmd = [
        sys.executable,
        "-m",
        "runner",
        "-m",
        *launcher,
        *EXPERIMENTS,
        f"search.n_trials={trials}",
        f"train.epochs={epochs}",
        "quiet=true",
        f"deploy.master='local[{SLOTS}]'",
        f"hydra.sweep.dir={work / 'multi'}",
        f"data.cache_dir={work / 'cache'}",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    finished = len(list((work / "multi").glob("*/summary.json")))
    return {"wall": wall, "finished": finished, **_task_time(events)}


def _task_time(events: Path) -> dict[str, float]:
    """The application's lifetime and the summed duration of its tasks, in seconds."""
    (log,) = events.iterdir()  # one application per multirun
    busy_ms, times = 0, []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        kind = event["Event"]
        if kind == "SparkListenerTaskEnd":
            info = event["Task Info"]
            busy_ms += info["Finish Time"] - info["Launch Time"]
        elif kind in ("SparkListenerApplicationStart", "SparkListenerApplicationEnd"):
            times.append(event["Timestamp"])
    return {"app": (max(times) - min(times)) / 1000, "busy": busy_ms / 1000}
