"""``tracking=mlflow``: the experiment as an MLflow run with one nested run per trial
(params, per-epoch metrics, status) and the best model, the reports and the summary as
artifacts. Trials are logged from the driver as they finish, from their reported history.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Optional, cast

from runner.errors import RunnerError, first_line
from runner.observe.trackers import Tracker, TrackingConfig
from runner.observe.result import RunResult
from runner.train.trial import TrialOutcome

_STATUS = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}


@dataclass
class MLflowTrackingConfig(TrackingConfig):
    """The experiment as an MLflow run, each trial a nested run (``pip install .[tracking]``)."""

    _target_: str = "runner.observe.trackers.mlflow.MLflowTracker"
    name: str = "mlflow"
    # a directory (file store; relative to where the runner started) or any tracking URI
    uri: str = "mlruns"
    experiment: str = "spark-dl-runner"
    run_name: Optional[str] = None  # null: the run directory's name


class MLflowTracker(Tracker):
    """One MLflow run per experiment, a nested run per trial (client API: thread-agnostic),
    ended as failed when the run raised."""

    @classmethod
    def validate(cls, cfg: Any) -> list[str]:
        if importlib.util.find_spec("mlflow") is None:
            return [
                "tracking=mlflow: mlflow is not installed; pip install -e '.[tracking]' "
                "or use tracking=none"
            ]
        return []

    def __init__(self, cfg: Any, run_dir: Path, original_cwd: Path):
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.uri = tracking_uri(cfg.tracking.uri, original_cwd)
        try:
            self.client = MlflowClient(self.uri)
            experiment = self.client.get_experiment_by_name(cfg.tracking.experiment)
            self.experiment_id = (
                experiment.experiment_id
                if experiment is not None
                else self.client.create_experiment(cfg.tracking.experiment)
            )
            self.run_id = self.client.create_run(
                self.experiment_id,
                run_name=cfg.tracking.run_name or run_dir.name,
                tags={"run_dir": str(run_dir)},
            ).info.run_id
        except Exception as err:  # an unreachable server, a bad URI
            raise RunnerError(
                f"tracking.uri: could not record to {self.uri!r} ({first_line(err)}); "
                "check tracking.uri or use tracking=none"
            ) from None
        self._log(self.run_id, params=_flatten(_plain(cfg)))

    def trial_finished(self, outcome: TrialOutcome, params: dict[str, Any]) -> None:
        now_ms = int(time.time() * 1000)
        child = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{outcome.number}",
            start_time=now_ms - int(outcome.duration_s * 1000),
            tags={
                "mlflow.parentRunId": self.run_id,
                "state": outcome.state,
                "device": outcome.device,
                "host": outcome.host,
                **({"error": outcome.error[:5000]} if outcome.error else {}),
            },
        ).info.run_id
        steps = [
            (key, value, int(h["epoch"]))
            for h in outcome.history
            for key, value in h.items()
            if key != "epoch"
        ]
        self._log(child, params=params, metrics=[*steps, ("duration_s", outcome.duration_s, 0)])
        self.client.set_terminated(
            child, status=_STATUS.get(outcome.state, "FAILED"), end_time=now_ms
        )

    def run_finished(self, result: RunResult) -> None:
        best = result.best  # a run without the sweep stage has none
        metrics = [(f"best_{k}", v, 0) for k, v in (best.metrics if best else {}).items()]
        metrics += [(k, v, 0) for k, v in (result.test_metrics or {}).items()]
        self._log(self.run_id, metrics=metrics)
        if best:
            self.client.set_tag(self.run_id, "best_trial", str(best.number))
        run_dir = Path(result.run_dir)
        if (run_dir / "model").is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / "model"), "model")
        for name in ("report.html", "report.md", "summary.json", "trials.jsonl"):
            if (run_dir / name).exists():
                self.client.log_artifact(self.run_id, str(run_dir / name))

    def __exit__(self, *exc: Any) -> None:
        self.client.set_terminated(self.run_id, status="FAILED" if exc[0] else "FINISHED")

    def _log(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        metrics: list[tuple[str, float, int]] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param

        now_ms = int(time.time() * 1000)
        param_list = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        metric_list = [Metric(k, float(v), now_ms, step) for k, v, step in (metrics or [])]
        for i in range(0, max(len(param_list), len(metric_list)), 100):  # MLflow's batch limits
            self.client.log_batch(
                run_id, metrics=metric_list[i : i + 100], params=param_list[i : i + 100]
            )


def tracking_uri(uri: str, original_cwd: Path) -> str:
    """A directory (relative to where the runner started) becomes a ``file:`` store URI."""
    if ":" in uri and not uri.startswith("file:"):
        return uri
    path = Path(uri.removeprefix("file://").removeprefix("file:"))
    # MLflow 3 keeps the file store only on request; a directory here is that request.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (original_cwd / path).resolve().as_uri()


def _plain(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=True))


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out
