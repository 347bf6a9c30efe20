"""``python -m runner [overrides]``: compose the config with Hydra and run the recipe.

``python -m runner report|compare ...`` are tools over finished runs (runner.observe.reports.cli).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from runner.config import register_configs
from runner.errors import RunnerError

register_configs()


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one experiment; return the best val metric (for Hydra sweepers; None for stages=[infer])."""
    from hydra.core.hydra_config import HydraConfig

    from runner import pipeline

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = pipeline.run(cfg, run_dir, Path(hydra.utils.get_original_cwd()))
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    return summary["best"]["metrics"][cfg.search.metric] if "best" in summary else None


if __name__ == "__main__":
    if sys.argv[1:2] in (["report"], ["compare"]):  # tools over finished runs, not experiments
        from runner.observe.reports.cli import main as tool

        sys.exit(tool(sys.argv[1:]))
    main()
