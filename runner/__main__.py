"""``python -m runner [overrides]``: compose the config with Hydra and run the recipe.

``python -m runner report|compare ...`` are tools over finished runs (runner.observe.reports.cli).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hydra_plugins.hydra_spark_launcher.spark_launcher import driver_job
from runner.config import register_configs
from runner.errors import RunnerError

register_configs()


@hydra.main(version_base=None, config_path="../conf", config_name="config")
@driver_job  # hydra/launcher=spark runs our jobs on driver threads sharing one Spark app
def main(cfg: DictConfig) -> float | None:
    """Run one experiment; return the best val metric (for Hydra sweepers; None for stages=[infer])."""
    import threading

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from runner import multirun, pipeline

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # Jobs on other threads run beside each other: plain lines, each with its job's number.
    prefix = "" if threading.current_thread() is threading.main_thread() else (
        f"[#{hydra_cfg.job.num}] ")
    try:
        summary = pipeline.run(cfg, run_dir, Path(hydra.utils.get_original_cwd()), prefix)
    except KeyboardInterrupt:  # Ctrl-C: one line, Spark stopped, the run dir resumable
        from runner import rerun
        from runner.cluster.spark import stop_session

        signal.signal(signal.SIGINT, lambda *_: os._exit(130))  # a second Ctrl-C: out now
        stop_session()  # first: a trial may still finish meanwhile, and counts
        print(f"{prefix}{rerun.interrupted(run_dir, cfg.search.n_trials)}", file=sys.stderr,
              flush=True)
        sys.exit(130)
    except Exception as err:
        multirun.record_failure(run_dir, err)
        if not isinstance(err, RunnerError):
            raise
        # A job on a thread prints beside the others (stderr may be going to the log file
        # of a Spark session another job is starting).
        print(f"{prefix}error: {err}", file=sys.stdout if prefix else sys.stderr, flush=True)
        if in_multirun:  # this job fails; Hydra runs the others
            raise multirun.JobFailed(hydra_cfg.job.num, hydra_cfg.overrides.task, err) from None
        sys.exit(err.exit_code)
    return summary["best"]["metrics"][cfg.search.metric] if "best" in summary else None


if __name__ == "__main__":
    if sys.argv[1:2] in (["report"], ["compare"]):  # tools over finished runs, not experiments
        from runner.observe.reports.cli import main as tool

        sys.exit(tool(sys.argv[1:]))
    main()
