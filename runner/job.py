"""One Hydra job of the runner, for the CLI and the Python API alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def experiment(cfg: DictConfig, prefix: str = "") -> dict[str, Any]:
    """Check ``cfg`` against the schemas, let the command line win over the search space and
    run the recipe into the job's directory; return the summary. A failure leaves
    ``error.txt`` there and propagates."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from runner import multirun, pipeline
    from runner.config import composition

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        composition.unknown_keys(cfg)
        for key in composition.command_line_wins(cfg, list(hydra_cfg.overrides.task)):
            if not cfg.quiet:
                print(f"{prefix}[search] {key}: set on the command line, not searched", flush=True)
        return pipeline.run(cfg, run_dir, Path(hydra.utils.get_original_cwd()), prefix)
    except Exception as err:
        multirun.record_failure(run_dir, err)
        raise
