"""Tasks: classification's loss, metrics and predictions by hand; the task chosen by config
and what it allows ``search.metric`` to be, checked before Spark starts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from runner.errors import RunnerError
from runner.tasks import TASKS, Binary, Classification, Multilabel, Regression, is_auto, task_for
from runner.train.trial import metric_directions
from tests.conftest import compose_config, run_cli

LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]])
LABELS = torch.tensor([0, 2, 2, 1])


def _cross_entropy(row: int) -> float:
    logits = LOGITS[row].tolist()
    return math.log(sum(math.exp(v) for v in logits)) - logits[int(LABELS[row])]


def test_classification_metrics_are_the_hand_computed_ones():
    task = Classification()
    metrics = task.metrics(task.sums(LOGITS, LABELS))
    assert metrics["accuracy"] == 0.5  # rows 0 and 2 right
    assert metrics["loss"] == pytest.approx(sum(_cross_entropy(i) for i in range(4)) / 4)
    assert float(task.loss(LOGITS, LABELS)) == pytest.approx(metrics["loss"])
    assert set(metrics) == set(task.directions)


def test_sums_add_up_over_batches():
    task = Classification()
    halves = task.sums(LOGITS[:1], LABELS[:1]) + task.sums(LOGITS[1:], LABELS[1:])
    assert task.sums(LOGITS, LABELS).dtype == torch.float64
    assert task.metrics(halves) == pytest.approx(task.metrics(task.sums(LOGITS, LABELS)))


def test_predictions_fit_the_output_schema():
    task = Classification()
    columns = task.predict(LOGITS)
    assert list(columns) == task.output_schema.names == ["prediction", "probability"]
    assert columns["prediction"].dtype == np.int32 and list(columns["prediction"]) == [0, 1, 2, 0]
    assert columns["probability"].dtype == np.float32
    assert np.allclose(columns["probability"].sum(1), 1.0)
    assert columns["probability"][2, 2] == pytest.approx(math.exp(3) / (math.exp(3) + 2))


def test_the_model_is_told_the_number_of_classes():
    assert Classification().model_kwargs({"num_classes": 7, "rows": {}}) == {"num_classes": 7}


def test_the_task_comes_from_the_config():
    cfg = compose_config(["task=classification"])
    assert isinstance(task_for(cfg.task), Classification)
    assert metric_directions(task_for(cfg.task)) == {
        "train_loss": "minimize", "val_accuracy": "maximize", "val_balanced_accuracy": "maximize",
        "val_f1_macro": "maximize", "val_log_loss": "minimize", "val_loss": "minimize"}
    for name, cls in TASKS.items():
        assert isinstance(task_for(compose_config([f"task={name}"]).task), cls)
    assert is_auto(compose_config([]).task)  # the default: chosen from the label
    with pytest.raises(RunnerError, match=r"^task._target_: cannot build 'runner.tasks.Nope'"):
        task_for({"_target_": "runner.tasks.Nope"})
    with pytest.raises(RunnerError, match=r"^task._target_: 'collections.OrderedDict' is not"):
        task_for({"_target_": "collections.OrderedDict"})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["task=classification", "search.metric=val_rmse"],
         "error: search.metric: 'val_rmse' is not a metric of the task; choose one of "
         "train_loss, val_accuracy, val_balanced_accuracy, val_f1_macro, val_log_loss, val_loss"),
        (["search.metric=val_bogus"],  # task=auto: any task's metric
         "error: search.metric: 'val_bogus' is not a metric of the task; choose one of "
         "train_loss, val_accuracy, val_balanced_accuracy, val_f1_macro, val_log_loss, val_loss, "
         "val_auroc, val_f1, val_average_precision, val_rmse, val_mae, val_r2, val_auroc_macro"),
        (["search.metric=val_loss", "search.direction=maximize"],
         "error: search.direction: the task's val_loss is minimized; "
         "set search.direction=minimize or leave it out"),
    ],
)
def test_a_wrong_search_metric_is_one_line_before_spark(tmp_path, overrides, expected):
    proc = run_cli([*overrides, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == expected
    assert not (tmp_path / "run" / "logs").exists()  # Spark never started


def test_classification_balanced_accuracy_f1_and_weights():
    task = Classification()
    metrics = task.metrics(task.sums(LOGITS, LABELS))
    # recalls: class 0 1/1, class 1 0/1, class 2 1/2; F1: 2/3 (0: tp1 fp1), 0, 2/3 (2: tp1 fn1)
    assert metrics["balanced_accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
    assert metrics["log_loss"] == pytest.approx(metrics["loss"])
    weighted = Classification(weight=[1.0, 2.0, 1.0])
    expected = torch.nn.functional.cross_entropy(LOGITS, LABELS, weight=torch.tensor([1.0, 2, 1]))
    assert weighted.metrics(weighted.sums(LOGITS, LABELS))["loss"] == pytest.approx(float(expected))


def test_binary_metrics_match_scikit_learn():
    from sklearn.metrics import (average_precision_score, balanced_accuracy_score, f1_score,
                                 log_loss, roc_auc_score)

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    logits = torch.tensor(labels * 1.5 + rng.normal(size=400), dtype=torch.float32)[:, None]
    target = torch.tensor(labels, dtype=torch.float32)
    task = Binary()
    sums = task.sums(logits[:150], target[:150]) + task.sums(logits[150:], target[150:])
    metrics = task.metrics(sums)
    p = torch.sigmoid(logits[:, 0]).numpy()
    assert metrics["auroc"] == pytest.approx(roc_auc_score(labels, p), abs=0.01)
    assert metrics["average_precision"] == pytest.approx(average_precision_score(labels, p), abs=0.02)
    assert metrics["accuracy"] == pytest.approx(((p >= 0.5) == labels).mean())
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, p >= 0.5))
    assert metrics["f1"] == pytest.approx(f1_score(labels, p >= 0.5))
    assert metrics["log_loss"] == pytest.approx(log_loss(labels, p), rel=1e-4)
    assert set(metrics) == set(task.directions)
    assert list(task.predict(logits[:3])) == task.output_schema.names
    assert Binary().model_kwargs({}) == {"num_classes": 1}
    weighted = Binary(pos_weight=3.0)
    assert float(weighted.loss(logits, target)) > float(task.loss(logits, target))


def test_regression_learns_standardised_and_reports_in_the_labels_units():
    task = Regression(loss="mse", mean=10.0, std=2.0)
    labels = torch.tensor([8.0, 10.0, 12.0, 14.0])
    outputs = torch.tensor([[-1.0], [0.0], [1.0], [1.5]])  # predicts 8, 10, 12, 13
    assert list(task.predict(outputs)["prediction"]) == [8.0, 10.0, 12.0, 13.0]
    metrics = task.metrics(task.sums(outputs[:2], labels[:2]) + task.sums(outputs[2:], labels[2:]))
    assert metrics["rmse"] == pytest.approx(math.sqrt(1 / 4))
    assert metrics["mae"] == pytest.approx(1 / 4)
    assert metrics["r2"] == pytest.approx(1 - 1 / 20)  # SSE 1, spread around 11: 9+1+1+9
    assert metrics["loss"] == pytest.approx(float(task.loss(outputs, labels)))
    assert float(task.loss(outputs, labels)) == pytest.approx(0.5 ** 2 / 4)  # (14-10)/2 vs 1.5
    with pytest.raises(RunnerError, match="task.loss: 'l3'"):
        Regression(loss="l3")
    assert Regression(loss="huber").loss(outputs, labels) >= 0


def test_multilabel_metrics_per_tag():
    task = Multilabel(tags=["a", "b"])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    outputs = torch.tensor([[3.0, -3.0], [-3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]])
    metrics = task.metrics(task.sums(outputs, labels))
    assert metrics["accuracy"] == pytest.approx(7 / 8)
    assert metrics["f1_macro"] == pytest.approx((1.0 + 2 / 3) / 2)  # b: tp 1, fn 1
    assert metrics["auroc_macro"] == pytest.approx((1.0 + 0.75) / 2)
    assert task.model_kwargs({}) == {"num_classes": 2}
    assert task.predict(outputs)["prediction"].tolist() == [[1, 0], [0, 1], [1, 0], [0, 0]]


def _write_csv(path, label_of, n=1200, seed=0):
    """A CSV of 5 Gaussian features and ``label_of(features)``: what a user brings."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    labels = label_of(x, rng)
    lines = ["a,b,c,d,e,target"] + [
        ",".join(f"{v:.5f}" for v in row) + f",{label}" for row, label in zip(x, labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_task(tmp_path, csv, *overrides):
    run_dir = tmp_path / "run"
    proc = run_cli(["data=csv", f"data.path={csv}", "data.label=target",
                    "data.steps=[{op: dropna, columns: [target]}]",
                    f"data.cache_dir={tmp_path / 'cache'}", "stages=[preprocess,sweep,infer]",
                    "search=none", "optimizer.lr=0.01",
                    "train.epochs=12", *overrides, f"hydra.run.dir={run_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    return summary, run_dir


def test_regression_is_inferred_from_a_float_label_and_learns(tmp_path):
    csv = _write_csv(tmp_path / "houses.csv", lambda x, rng: [
        f"{100 + 20 * a - 15 * b + 10 * np.sin(2 * c) + rng.normal():.4f}" for a, b, c, *_ in x])
    summary, run_dir = _run_task(tmp_path, csv)  # no task=: a float label is regression
    assert summary["task"]["_target_"] == "runner.tasks.Regression"
    assert summary["search"] == {"metric": "val_rmse", "direction": "minimize"}
    assert abs(summary["task"]["mean"] - 100) < 3 and summary["task"]["std"] > 10
    assert summary["test_metrics"]["test_r2"] >= 0.8
    assert set(summary["test_metrics"]) == {"test_rmse", "test_mae", "test_r2", "test_loss"}
    import pandas as pd

    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    assert predictions["prediction"].dtype == np.float32  # in the label's units
    assert abs(predictions["prediction"].mean() - 100) < 5
    assert "test_r2" in (run_dir / "report.md").read_text()


def test_binary_learns_an_imbalanced_label_with_balanced_weights(tmp_path):
    csv = _write_csv(tmp_path / "churn.csv", lambda x, rng: [
        "yes" if 2 * a + b - c + 0.3 * rng.normal() > 1.6 else "no" for a, b, c, *_ in x])
    summary, run_dir = _run_task(tmp_path, csv, "task=binary", "train.class_weight=balanced",
                                 "search.metric=val_average_precision")
    task = summary["task"]
    assert task["_target_"] == "runner.tasks.Binary" and task["classes"] == ["no", "yes"]
    assert summary["search"] == {"metric": "val_average_precision", "direction": "maximize"}
    assert summary["test_metrics"]["test_auroc"] >= 0.9
    assert summary["test_metrics"]["test_balanced_accuracy"] >= 0.8
    import json

    saved = json.loads((run_dir / "model" / "model.json").read_text())["task"]
    assert saved["pos_weight"] > 2  # about 1 positive in 6 rows


def test_multilabel_from_delimited_tags(tmp_path):
    csv = _write_csv(tmp_path / "tags.csv", lambda x, rng: [
        "|".join(t for t, v in zip("xyz", row[:3]) if v > 0) or "none" for row in x])
    summary, run_dir = _run_task(tmp_path, csv, "task=multilabel", "task.delimiter=|")
    assert summary["task"]["tags"] == ["none", "x", "y", "z"]
    assert summary["test_metrics"]["test_f1_macro"] >= 0.8
    assert summary["test_metrics"]["test_auroc_macro"] >= 0.9
    import pandas as pd

    row = pd.read_parquet(run_dir / "predictions.parquet").iloc[0]
    assert len(row["prediction"]) == len(row["probability"]) == 4


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model._target_=net.Nope"],
         "error: model._target_: cannot import 'net.Nope' (ModuleNotFoundError: No module named "
         "'net'); name an nn.Module class"),
        (["train.epochs=0"], "error: train.epochs: must be at least 1, got 0"),
        (["train.batch_size=-1"], "error: train.batch_size: must be at least 1, got -1"),
        (["task=regression", "search.metric=val_accuracy"],
         "error: search.metric: 'val_accuracy' is not a metric of the task; choose one of "
         "train_loss, val_rmse, val_mae, val_r2, val_loss"),
    ],
)
def test_bad_model_or_loop_settings_are_one_line_before_spark(tmp_path, overrides, expected):
    proc = run_cli([*overrides, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(expected)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "logs").exists()  # Spark never started
