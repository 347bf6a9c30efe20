"""One Hydra job of the runner, for the CLI and the Python API alike."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

if TYPE_CHECKING:
    from runner.observe.result import RunResult


def experiment(cfg: DictConfig, prefix: str = "") -> "RunResult":
    """Check ``cfg`` against the schemas, let the command line win over the search space and
    run the recipe into the job's directory; return its result. A failure leaves
    ``error.txt`` there and propagates."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from runner import multirun, pipeline, predict, stages
    from runner.config import composition

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        composition.unknown_keys(cfg)
        for key in composition.command_line_wins(cfg, list(hydra_cfg.overrides.task)):
            if not cfg.quiet:
                print(f"{prefix}[search] {key}: set on the command line, not searched", flush=True)
        recipe = predict.run if stages.saved_model(cfg) else pipeline.run
        return recipe(cfg, run_dir, Path(hydra.utils.get_original_cwd()), prefix)
    except Exception as err:
        multirun.record_failure(run_dir, err)
        raise
