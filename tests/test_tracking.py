"""``tracking=mlflow``: the experiment as an MLflow run, trials nested, in a local file store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.observe.trackers import validate
from runner.observe.trackers.mlflow import tracking_uri
from tests.conftest import compose_config

mlflow = pytest.importorskip("mlflow")


# one worker runs every test of the shared multirun fixture (pytest -n 2 --dist loadgroup)
pytestmark = pytest.mark.xdist_group("terminal_multirun")


def test_tracking_options_compose_and_validate():
    assert compose_config([]).tracking.name == "none"
    cfg = compose_config(["tracking=mlflow", "tracking.uri=http://127.0.0.1:5000"])
    assert cfg.tracking.experiment == "spark-dl-runner" and validate(cfg) == []
    with pytest.raises(Exception, match="tracking"):
        compose_config(["tracking=wandb"])


def test_a_directory_becomes_a_file_store_uri(tmp_path):
    assert tracking_uri("mlruns", tmp_path) == (tmp_path / "mlruns").as_uri()
    assert tracking_uri("http://host:5000", tmp_path) == "http://host:5000"
    assert tracking_uri("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


@pytest.mark.slow
def test_runs_trials_and_metrics_are_recorded(terminal_multirun):
    from mlflow.tracking import MlflowClient

    sweep_dir, _, mlruns = terminal_multirun
    client = MlflowClient(tracking_uri(str(mlruns), Path.cwd()))
    experiment = client.get_experiment_by_name("spark-dl-runner")
    runs = client.search_runs([experiment.experiment_id])
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert sorted(r.data.tags["run_dir"] for r in parents.values()) == [
        str(sweep_dir / "0"), str(sweep_dir / "1")]

    for parent in parents.values():
        run_dir = Path(parent.data.tags["run_dir"])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert parent.info.status == "FINISHED"
        assert parent.data.params["search.n_trials"] == "2"
        assert parent.data.metrics["test_accuracy"] == pytest.approx(
            summary["test_metrics"]["test_accuracy"])
        assert parent.data.tags["best_trial"] == str(summary["best"]["number"])
        artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert {"model", "report.html", "summary.json"} <= artifacts
        assert {a.path for a in client.list_artifacts(parent.info.run_id, "model")} == {
            "model/model.json", "model/weights.pt"}

        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        trials = {t["number"]: t for t in map(json.loads, (run_dir / "trials.jsonl").open())}
        assert sorted(c.info.run_name for c in children) == [f"trial-{n}" for n in sorted(trials)]
        for child in children:
            trial = trials[int(child.info.run_name.split("-")[1])]
            assert child.info.status == "FINISHED" and child.data.tags["state"] == "COMPLETE"
            assert child.data.params == {k: str(v) for k, v in trial["params"].items()}
            history = client.get_metric_history(child.info.run_id, "val_accuracy")
            assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
                (h["epoch"], pytest.approx(h["val_accuracy"])) for h in trial["history"]]


def test_a_run_without_sweep_or_infer_finishes_its_mlflow_run(tmp_path):
    from mlflow.tracking import MlflowClient

    from runner.observe.result import RunResult
    from runner.observe.trackers import tracker_for

    cfg = compose_config(["tracking=mlflow", f"tracking.uri={tmp_path / 'mlruns'}"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text("{}")
    with tracker_for(cfg, run_dir, tmp_path) as sink:  # no best, no test_metrics, no model
        sink.run_finished(RunResult(run_dir=str(run_dir), timings_s={"preprocess": 1.0}))
    client = MlflowClient(tracking_uri(str(tmp_path / "mlruns"), tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("spark-dl-runner").experiment_id])
    assert run.info.status == "FINISHED" and "best_trial" not in run.data.tags
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"summary.json"}
