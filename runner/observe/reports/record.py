"""One run directory read back from disk: summary, trials, config, predictions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import RunnerError
from runner.tasks import gain

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RunRecord:
    """Everything a report shows, as read from a run directory."""

    run_dir: Path
    summary: dict[str, Any]
    trials: list[dict[str, Any]]  # trials.jsonl records, in trial order
    config: dict[str, Any]  # .hydra/config.yaml
    config_text: str
    overrides: list[str]  # .hydra/overrides.yaml

    @property
    def metric(self) -> str:
        """What trials were ranked by: the summary's (defaulted by the task) or the config's."""
        return (
            self.summary.get("search", {}).get("metric")
            or self.config["search"]["metric"]
            or "val_loss"
        )

    @property
    def direction(self) -> str:
        return (
            self.summary.get("search", {}).get("direction")
            or self.config["search"].get("direction")
            or "minimize"
        )

    def ranked(self) -> list[dict[str, Any]]:
        """Complete trials best first, then the others by number."""
        sign = -gain(self.direction)  # sorted ascending: best first
        return sorted(
            self.trials,
            key=lambda t: (
                t["state"] != "COMPLETE",
                sign * t["metrics"].get(self.metric, 0.0),
                t["number"],
            ),
        )

    def params_of(self, number: int) -> dict[str, Any]:
        return next((t["params"] for t in self.trials if t["number"] == number), {})

    def predictions(self) -> "pd.DataFrame | None":
        """The test predictions (label, prediction[, probability]), if written; None for
        predictions of new data (``inference.data``: the user's columns, no ``label``)."""
        import pandas as pd
        import pyarrow as pa
        import pyarrow.dataset as ds

        path = self.run_dir / "predictions.parquet"  # the run's own, wherever the run now lies
        if not path.exists():
            written = self.summary.get("predictions", {}).get("path")  # inference.output
            if not written or not Path(written).exists():
                return None
            path = Path(written)
        schema = ds.dataset(path, format="parquet", partitioning="hive").schema
        if "label" not in schema.names:
            return None
        flat_probability = "probability" in schema.names and pa.types.is_floating(
            schema.field("probability").type
        )
        columns = ["label", "prediction", *(["probability"] if flat_probability else [])]
        return pd.read_parquet(path, columns=columns)


def load(run_dir: Path, summary: dict[str, Any] | None = None) -> RunRecord:
    """Read a finished run; ``summary`` stands in for a ``summary.json`` not yet written."""
    import yaml

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunnerError(f"{run_dir}: no such directory; pass a run directory (outputs/DATE/TIME)")
    if summary is None:
        if not (run_dir / "summary.json").exists():
            raise RunnerError(
                f"{run_dir}: not a finished run (no summary.json); pass a run directory "
                "such as outputs/DATE/TIME"
            )
        summary = json.loads((run_dir / "summary.json").read_text())
    config_path = run_dir / ".hydra" / "config.yaml"
    if not config_path.exists():
        raise RunnerError(
            f"{run_dir}: no .hydra/config.yaml; not a run directory of python -m runner"
        )
    config_text = config_path.read_text()
    overrides_path = run_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_path.read_text()) or [] if overrides_path.exists() else []
    trials_path = run_dir / "trials.jsonl"
    lines = trials_path.read_text().splitlines() if trials_path.exists() else []  # no sweep: none
    trials = [json.loads(line) for line in lines if line.strip()]
    return RunRecord(
        run_dir=run_dir,
        summary=summary,
        trials=sorted(trials, key=lambda t: t["number"]),
        config=yaml.safe_load(config_text),
        config_text=config_text,
        overrides=[str(o) for o in overrides],
    )
