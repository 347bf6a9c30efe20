"""``spark-dl-runner [overrides]`` (or ``python -m runner``): compose the config with Hydra and
run the recipe.

``spark-dl-runner report|compare ...`` are tools over finished runs (runner.observe.reports.cli);
``spark-dl-runner init DIR`` writes a starter project (runner.project).
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys

import hydra
from omegaconf import DictConfig

from hydra_plugins.hydra_spark_launcher.spark_launcher import driver_job
from runner.config import register_configs
from runner.config.composition import CONFIG_MODULE, CONFIG_NAME
from runner.errors import RunnerError, storage_error

register_configs()
# At exit, after the handlers registered later (the Spark session's stop), the objects
# torch, Spark and Hydra made are frozen: the interpreter's last garbage collection skips
# them, 1.5-2 s of every run here (nothing of ours waits on it).
atexit.register(gc.freeze)


@hydra.main(version_base=None, config_path=CONFIG_MODULE, config_name=CONFIG_NAME)
@driver_job  # hydra/launcher=spark runs our jobs on driver threads sharing one Spark app
def main(cfg: DictConfig) -> float | None:
    """Run one experiment; return the best val metric (for Hydra sweepers; None for
    stages=[infer])."""
    import threading

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from runner import multirun
    from runner.cluster.spark import interrupted, stop_session
    from runner.job import experiment

    hydra_cfg = HydraConfig.get()
    in_multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # Jobs on other threads run beside each other: plain lines, each with its job's number.
    prefix = (
        ""
        if threading.current_thread() is threading.main_thread()
        else (f"[#{hydra_cfg.job.num}] ")
    )
    try:
        try:
            result = experiment(cfg, prefix)
        except OSError as err:  # disk full, read-only: one line naming the path
            if (failure := storage_error(err, hydra_cfg.runtime.output_dir)) is None:
                raise
            raise failure from None
        except RunnerError:
            if interrupted():  # a failure Ctrl-C caused (py4j's error in its place)
                raise KeyboardInterrupt from None
            raise
    except KeyboardInterrupt:  # Ctrl-C: one line, Spark stopped, the run dir resumable
        from pathlib import Path

        from runner import rerun

        signal.signal(signal.SIGINT, lambda *_: os._exit(130))  # a second Ctrl-C: out now
        stop_session()  # first: a trial may still finish meanwhile, and counts
        run_dir = Path(hydra_cfg.runtime.output_dir)
        print(
            f"{prefix}{rerun.interrupted(run_dir, cfg.search.n_trials)}",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(130)
    except RunnerError as err:
        # A job on a thread prints beside the others (stderr may be going to the log file
        # of a Spark session another job is starting).
        print(f"{prefix}error: {err}", file=sys.stdout if prefix else sys.stderr, flush=True)
        if in_multirun:  # this job fails; Hydra runs the others
            raise multirun.JobFailed(hydra_cfg.job.num, hydra_cfg.overrides.task, err) from None
        sys.exit(err.exit_code)
    return result.best_value  # what a Hydra sweeper optimizes: search.metric or the task's


def cli() -> None:
    """The console script: the tools, ``init``, or an experiment (its composition checked first)."""
    from runner import project
    from runner.config import composition
    from runner.config.help import text as help_text

    command = sys.argv[1:2]
    if command in (["report"], ["compare"]):  # tools over finished runs, not experiments
        from runner.observe.reports.cli import main as tool

        sys.exit(tool(sys.argv[1:]))
    if command == ["init"]:
        sys.exit(project.main(sys.argv[2:]))
    project.importable_from_cwd()
    try:
        if {"--help", "-h"} & set(sys.argv[1:]):  # ours even with HYDRA_FULL_ERROR: no schemas
            print(help_text(sys.argv[1:]))
            sys.exit(0)
        composition.check(sys.argv[1:])
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if not composition.full_error():
        sys.stderr = composition.QuietHydra(sys.stderr)
    main()


if __name__ == "__main__":
    cli()
