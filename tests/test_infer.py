"""Batched inference: agrees with the model, writes safely, refuses bad input."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from runner.serve import artifacts
from runner.serve import infer
from runner.data import preprocess
from runner.tune import sweep
from runner.errors import RunnerError
from runner.tasks import Classification
from runner.train.model import build_model, weights_of
from tests.conftest import run_cli

MLP = {"_target_": "models.mlp.MLP", "hidden": 16, "depth": 1, "dropout": 0.0}


CLASSIFICATION = {"_target_": "runner.tasks.Classification"}


def _artifact(input_shape: tuple[int, ...], num_classes: int = 10) -> artifacts.ModelArtifact:
    """A real, untrained model (seeded) saved the way the sweep saves the best one."""
    torch.manual_seed(0)
    told = {"num_classes": num_classes}
    weights = weights_of(build_model(MLP, input_shape, told))
    return artifacts.ModelArtifact(MLP, input_shape, CLASSIFICATION, told, weights)


def _direct(artifact, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = artifact.build()(torch.from_numpy(features).reshape(-1, *artifact.input_shape))
    return logits.argmax(1).numpy()


@pytest.fixture
def prepared(spark, cfg, tmp_path):
    return preprocess.run(spark, cfg.data, tmp_path / "cache")


def test_predictions_match_the_model_and_are_scored(spark, cfg, prepared, tmp_path):
    swept = sweep.run(spark, prepared, cfg, tmp_path)
    artifact = artifacts.ModelArtifact.trained(
        sweep.trial_config(cfg, swept.params[swept.best.number])["model"], CLASSIFICATION,
        prepared, swept.best.weights)
    artifacts.save(artifact, tmp_path / "model")
    artifact = artifacts.load(tmp_path / "model")
    cfg.inference.batch_size = 50
    out = tmp_path / "predictions.parquet"
    rows = infer.load_rows(spark, None, prepared)
    result = infer.run(spark, rows, artifact, cfg.inference, out)

    table = pq.read_table(out).to_pandas().sort_values("id")
    assert result.rows == len(table) == prepared.rows["test"]
    assert set(table.columns) == {"id", "label", "prediction", "probability"}
    probs = np.stack(table["probability"].to_numpy())
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)

    features, _ = prepared.read("test")
    ids = prepared.table(["test"], ["id"]).column("id").to_numpy()
    direct = dict(zip(ids, _direct(artifact, features)))
    assert all(direct[i] == p for i, p in zip(table["id"], table["prediction"]))
    assert result.metrics["test_accuracy"] == float(np.mean(table["prediction"] == table["label"]))
    assert result.metrics["test_accuracy"] > 0.5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".predictions")] == []


def test_existing_output_is_refused_unless_overwrite(spark, cfg, prepared, tmp_path):
    artifact = _artifact(prepared.input_shape)
    rows = infer.load_rows(spark, None, prepared)
    out = tmp_path / "out" / "predictions.parquet"
    cfg.inference.partition_by = ["prediction"]
    first = infer.run(spark, rows, artifact, cfg.inference, out)
    assert first.rows == prepared.rows["test"]
    assert {p.name.split("=")[0] for p in out.iterdir() if p.is_dir()} == {"prediction"}

    with pytest.raises(RunnerError, match=r"inference.output: .* exists.*inference.overwrite=true"):
        infer.run(spark, rows, artifact, cfg.inference, out)
    cfg.inference.overwrite = True
    cfg.inference.partition_by = []
    some = spark.read.parquet(prepared.split_uri("test")).limit(5)  # the other input path
    again = infer.run(spark, some, artifact, cfg.inference, out)
    assert again.rows == 5 and pq.read_table(out).num_rows == 5
    assert sorted(p.name for p in out.parent.iterdir()) == ["predictions.parquet"]


def test_shape_mismatch_and_bad_settings_are_refused(spark, cfg, prepared, tmp_path):
    wine_model = _artifact((13,), 3)
    rows = infer.load_rows(spark, None, prepared)
    out = tmp_path / "predictions.parquet"
    with pytest.raises(RunnerError, match=r"inference.data: rows have 64 features .* expects 13"):
        infer.run(spark, rows, wine_model, cfg.inference, out)
    assert not out.exists()

    cfg.inference.partition_by = ["probability"]
    cfg.inference.batch_size = 0
    problems = infer.validate(cfg.inference, out, Classification())
    assert [p.split(":")[0] for p in problems] == ["inference.batch_size", "inference.partition_by"]


def test_dataframe_input_agrees_with_the_split_path_and_partitions(spark, cfg, prepared,
                                                                   tmp_path):
    artifact = _artifact(prepared.input_shape)
    split = infer.load_rows(spark, None, prepared)
    frame = spark.read.parquet(prepared.split_uri("test"))
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    spark.conf.set(key, "7")  # Arrow batches smaller than a model batch
    try:
        cfg.inference.batch_size = 50
        cfg.inference.partition_by = ["label"]
        from_frame = infer.run(spark, frame, artifact, cfg.inference, tmp_path / "frame")
        assert spark.conf.get(key) == "7"  # raised to 50 for the stage only
    finally:
        spark.conf.unset(key)
    cfg.inference.batch_size = 3
    cfg.inference.partition_by = []
    from_split = infer.run(spark, split, artifact, cfg.inference, tmp_path / "split")

    assert from_frame.rows == from_split.rows == prepared.rows["test"]
    assert from_frame.metrics == pytest.approx(from_split.metrics, rel=1e-6)  # batch sums
    labels = {p.name for p in (tmp_path / "frame").iterdir() if p.is_dir()}
    assert labels == {f"label={k}" for k in range(10)}
    a = spark.read.parquet(str(tmp_path / "frame")).toPandas().sort_values("id")
    b = pq.read_table(tmp_path / "split").to_pandas().sort_values("id")
    features, _ = prepared.read("test")
    ids = prepared.table(["test"], ["id"]).column("id").to_numpy()
    direct = dict(zip(ids, _direct(artifact, features)))
    assert list(a["prediction"]) == list(b["prediction"]) == [direct[i] for i in b["id"]]
    assert np.allclose(np.stack(a["probability"]), np.stack(b["probability"]), atol=1e-6)
    assert (tmp_path / "split" / "_SUCCESS").exists()


def test_no_rows_give_an_empty_readable_dataset(spark, cfg, prepared, tmp_path):
    artifact = _artifact(prepared.input_shape)
    empty = spark.read.parquet(prepared.split_uri("test")).where("id < 0")
    result = infer.run(spark, empty, artifact, cfg.inference, tmp_path / "none")
    assert result.rows == 0 and result.metrics == {}
    written = spark.read.parquet(str(tmp_path / "none"))
    assert written.columns == ["id", "label", "prediction", "probability"] and written.count() == 0


def test_a_failing_task_is_one_line_naming_the_cause(spark, cfg, prepared, tmp_path):
    from pyspark.sql import functions as F

    artifact = _artifact(prepared.input_shape)
    rows = spark.read.parquet(prepared.split_uri("test"))
    holed = rows.withColumn("features", F.when(F.col("id") % 7 == 0, None)
                            .otherwise(F.col("features")))
    with pytest.raises(RunnerError, match=r"^inference.data: rows with null features; drop"):
        infer.run(spark, holed, artifact, cfg.inference, tmp_path / "out")
    # every row's width is checked, not only the first row's
    ragged = rows.withColumn("features", F.when(F.col("id") % 7 == 3, F.slice("features", 1, 8))
                             .otherwise(F.col("features")))
    with pytest.raises(RunnerError, match=r"^inference.data: rows have 8 features but the "
                                          r"model expects 64"):
        infer.run(spark, ragged, artifact, cfg.inference, tmp_path / "out")
    # weights that do not fit the model config: the model fails to build in the task
    other = _artifact(prepared.input_shape, num_classes=3)
    broken = replace(artifact, weights=other.weights)
    with pytest.raises(RunnerError, match=r"^inference: a Spark task failed: .*size mismatch"):
        infer.run(spark, rows, broken, cfg.inference, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_a_split_is_dealt_into_one_task_per_slot(tmp_path, monkeypatch):
    import pyarrow as pa

    from runner.data.prepared import write_entry

    tables = [pa.table({"id": np.arange(n), "label": np.zeros(n, dtype=np.int64),
                        "features": [[0.0]] * n}) for n in (100, 100, 50)]
    split = infer.PreparedSplit(write_entry(str(tmp_path), {"test": tables}, (1,), 1,
                                            row_group_size=50), "test")
    shares = infer.shares(split, slots=2)
    assert len(shares) == 2 and sorted(sum(g.rows for g in s) for s in shares) == [100, 150]
    assert sum(len(s) for s in shares) == 5
    assert len(infer.shares(split, slots=16)) == 5  # never more tasks than row groups
    monkeypatch.setattr(infer, "TASK_ROWS", 60)  # more tasks only to keep each small
    assert len(infer.shares(split, slots=2)) == 5


def test_missing_model_files_name_model_path(tmp_path):
    with pytest.raises(RunnerError, match=r"model_path: .* has no model.json or weights.pt"):
        artifacts.load(tmp_path)


@pytest.mark.slow
def test_stage_infer_runs_a_saved_model_on_new_data(spark, cfg, prepared, tmp_path):
    # a finished run's layout, as the pipeline leaves it: model/ and prepared -> cache entry
    run = tmp_path / "run"
    artifact = _artifact(prepared.input_shape)
    artifacts.save(artifact, run / "model")
    os.symlink(prepared.local_path(), run / "prepared")

    out = tmp_path / "new" / "all.parquet"
    args = [f"model_path={run}", f"hydra.run.dir={tmp_path / 'infer'}"]
    proc = run_cli(["stages=[infer]", *args, "data@inference.data=digits",
                    f"inference.output={out}", "inference.batch_size=100",
                    "tracking=mlflow", f"tracking.uri={tmp_path / 'mlruns'}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"[summary] 1797 predictions -> {out}" in proc.stdout
    table = pq.read_table(out).to_pandas().set_index("id")
    assert len(table) == 1797  # every digit, not only the test split
    # the saved scaler was applied: test rows agree with the model on the prepared test split
    features, _ = prepared.read("test")
    ids = prepared.table(["test"], ["id"]).column("id").to_numpy()
    assert (table.loc[ids, "prediction"].to_numpy() == _direct(artifact, features)).all()
    summary = json.loads((tmp_path / "infer" / "summary.json").read_text())
    assert summary["stages"] == ["infer"] and summary["predictions"]["rows"] == 1797
    from mlflow.tracking import MlflowClient  # the score recipe is tracked as the train one is

    from runner.observe.trackers.mlflow import tracking_uri

    client = MlflowClient(tracking_uri(str(tmp_path / "mlruns"), tmp_path))
    (tracked,) = client.search_runs([client.get_experiment_by_name("spark-dl-runner").experiment_id])
    assert tracked.info.status == "FINISHED"
    assert tracked.data.metrics["test_accuracy"] == pytest.approx(summary["test_metrics"]["test_accuracy"])

    again = run_cli(["stages=[infer]", f"model_path={run}", f"hydra.run.dir={tmp_path / 'again'}",
                     f"inference.output={out}"], tmp_path, timeout=60)
    assert again.returncode == 2 and "inference.overwrite=true" in again.stderr
    missing = run_cli(["stages=[infer]", f"model_path={tmp_path / 'nope'}"], tmp_path, timeout=60)
    assert missing.returncode == 2 and "model_path:" in missing.stderr
    assert "Traceback" not in again.stderr + missing.stderr


def _score_cli(run, csv, run_dir, *extra):
    return run_cli(["stages=[infer]", f"model_path={run}", "data@inference.data=csv",
                    f"inference.data.path={csv}", f"hydra.run.dir={run_dir}", *extra],
                   run_dir.parent)


def test_cli_scores_unlabelled_rows_by_class_name_keeping_the_users_columns(scoring_run,
                                                                          tmp_path):
    import pandas as pd

    run, _, new = scoring_run
    proc = _score_cli(run, new, tmp_path / "new")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = pd.read_csv(new)
    west = int((rows["city"] == "west").sum())
    assert "no labels: no metrics" in proc.stdout
    assert f"{west} rows with a city not seen in training" in proc.stdout
    table = pq.read_table(tmp_path / "new" / "predictions.parquet")
    assert table.schema.names == ["customer", "day", "prediction", "prediction_index",
                                  "probability"]  # the non-features, then the task's columns
    assert table.schema.field("probability").type.names == ["high", "low", "medium"]
    out = table.to_pandas().set_index("customer").loc[rows["customer"]]  # every row, once
    assert len(out) == len(rows) == 200  # the training-only dropna on the label did not run
    classes = np.array(["high", "low", "medium"])
    assert (out["prediction"].to_numpy() == classes[out["prediction_index"]]).all()
    probability = np.array([[p[c] for c in classes] for p in out["probability"]])
    assert np.allclose(probability.sum(1), 1, atol=1e-5)
    assert (classes[probability.argmax(1)] == out["prediction"].to_numpy()).all()
    summary = json.loads((tmp_path / "new" / "summary.json").read_text())
    assert summary["test_metrics"] == {} and summary["predictions"]["unseen"] == {"city": west}
    assert summary["predictions"]["skipped_steps"] == ["`species` IS NOT NULL"]


def test_cli_scores_labelled_rows_and_chosen_columns(scoring_run, tmp_path):
    import pandas as pd

    run, labelled, _ = scoring_run
    proc = _score_cli(run, labelled, tmp_path / "lab", "inference.keep_columns=[customer,species]")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "lab" / "summary.json").read_text())
    assert summary["test_metrics"]["test_accuracy"] > 0.7
    assert summary["predictions"]["labelled_rows"] == 200
    out = pq.read_table(tmp_path / "lab" / "predictions.parquet").to_pandas()
    assert list(out.columns[:2]) == ["customer", "species"]
    given = pd.read_csv(labelled).set_index("customer")["species"]
    assert (out.set_index("customer")["species"] == given.loc[out["customer"]]).all()


def test_cli_unseen_fail_and_bad_keep_columns_leave_nothing(scoring_run, tmp_path):
    run, _, new = scoring_run
    failed = _score_cli(run, new, tmp_path / "fail", "inference.unseen=fail")
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "inference.unseen:" in failed.stderr and "city" in failed.stderr
    bad = _score_cli(run, new, tmp_path / "bad", "inference.keep_columns=[nope]")
    assert bad.returncode == 2 and "inference.keep_columns: no column 'nope'" in bad.stderr
    for run_dir in (tmp_path / "fail", tmp_path / "bad"):
        assert not (run_dir / "predictions.parquet").exists()
        assert not (run_dir / "summary.json").exists()
    assert "Traceback" not in failed.stderr + bad.stderr


def test_bad_inference_data_is_refused_before_spark_naming_inference_data(scoring_run, tmp_path):
    import pandas as pd

    run, _, new = scoring_run
    pd.read_csv(new).drop(columns=["age"]).to_csv(tmp_path / "no_age.csv", index=False)
    cases = {
        "no_path": ([], "inference.data.path: required for data@inference.data=csv"),
        "missing": ([f"inference.data.path={tmp_path / 'nope.csv'}"],
                    "inference.data.path: " + str(tmp_path / "nope.csv") + " not found"),
        "no_age": ([f"inference.data.path={tmp_path / 'no_age.csv'}"],
                   "inference.data.path: " + str(tmp_path / "no_age.csv") + " has no column 'age'"),
    }
    for name, (extra, message) in cases.items():
        proc = run_cli(["stages=[infer]", f"model_path={run}", "data@inference.data=csv", *extra,
                        f"hydra.run.dir={tmp_path / name}"], tmp_path, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, (name, proc.stderr)
        assert not (tmp_path / name / "logs").exists()  # Spark never started
        assert not (tmp_path / name / "summary.json").exists()
    # a whole run: refused before the sweep, so no model/ is left behind
    proc = run_cli(["data@inference.data=csv", *["search.n_trials=1"],
                    f"hydra.run.dir={tmp_path / 'whole'}"], tmp_path, timeout=120)
    assert proc.returncode == 2 and "inference.data.path: required" in proc.stderr
    assert not (tmp_path / "whole" / "model").exists()
    assert not (tmp_path / "whole" / "summary.json").exists()
    assert "Traceback" not in proc.stderr


def test_streaming_scores_each_arriving_file_exactly_once_across_restarts(spark, scoring_run,
                                                                          tmp_path):
    import pandas as pd

    run, _, new = scoring_run
    rows = pd.read_csv(new)
    watched, out = tmp_path / "in", tmp_path / "scored"
    watched.mkdir()
    rows[:80].to_csv(watched / "a.csv", index=False)
    rows[80:150].to_csv(watched / "b.csv", index=False)

    def call(name):
        proc = _score_cli(run, watched, tmp_path / name, "inference.streaming=true",
                          f"inference.output={out}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads((tmp_path / name / "summary.json").read_text())["predictions"]["rows"]

    assert call("first") == 150
    rows[150:].to_csv(watched / "c.csv", index=False)  # arrives while no query runs
    assert call("second") == 50  # the restarted query resumes from its checkpoint
    assert call("third") == 0
    scored = spark.read.parquet(str(out)).toPandas()  # the sink's log: committed files only
    assert sorted(scored["customer"]) == sorted(rows["customer"])  # each row exactly once
    assert list(scored.columns) == ["customer", "day", "prediction", "prediction_index",
                                    "probability"]
    assert any((run / "checkpoints").iterdir())  # under the model's run


def test_streaming_needs_a_saved_model_inference_data_and_output(scoring_run, tmp_path):
    run, _, new = scoring_run
    proc = run_cli(["stages=[infer]", f"model_path={run}", "inference.streaming=true",
                    f"hydra.run.dir={tmp_path / 'x'}"], tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "inference.streaming: needs inference.data" in proc.stderr
    assert "inference.output: streaming appends" in proc.stderr


def test_a_whole_run_scores_unlabelled_inference_data(scoring_run, tmp_path):
    """Train and score new rows in one run: no metrics, a report without a confusion matrix,
    and a filter on the label that cleans only training rows."""
    run, _, new = scoring_run
    proc = run_cli(["data=csv", f"data.path={run.parent / 'train.csv'}", "data.label=species",
                    "data.steps=[{op:dropna,columns:[species]},{op:filter,expr:\"species != 'x'\"},"
                    "{op:impute,strategy:mean},{op:onehot,columns:[city]}]",
                    "search.n_trials=1", "search.parallelism=1", "train.epochs=2",
                    "stages=[preprocess,sweep,infer]", "data@inference.data=csv",
                    f"inference.data.path={new}", f"hydra.run.dir={tmp_path / 'run'}",
                    f"data.cache_dir={tmp_path / 'cache'}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[infer] no labels: no metrics" in proc.stdout and "ERROR" not in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_metrics"] == {} and summary["predictions"]["rows"] == 200
    assert summary["predictions"]["skipped_steps"] == ["`species` IS NOT NULL", "species != 'x'"]
    assert (tmp_path / "run" / "model" / "model.json").exists()
    assert "Confusion" not in (tmp_path / "run" / "report.md").read_text()
