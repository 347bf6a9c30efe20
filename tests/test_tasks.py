"""Tasks: classification's loss, metrics and predictions by hand; the task chosen by config
and what it allows ``search.metric`` to be, checked before Spark starts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from runner.errors import RunnerError
from runner.tasks import Classification, task_for
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
    cfg = compose_config([])
    assert isinstance(task_for(cfg.task), Classification)
    assert metric_directions(task_for(cfg.task)) == {
        "train_loss": "minimize", "val_accuracy": "maximize", "val_loss": "minimize"}
    with pytest.raises(RunnerError, match=r"^task._target_: cannot build 'runner.tasks.Nope'"):
        task_for({"_target_": "runner.tasks.Nope"})
    with pytest.raises(RunnerError, match=r"^task._target_: 'collections.OrderedDict' is not"):
        task_for({"_target_": "collections.OrderedDict"})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["search.metric=val_f1"], "error: search.metric: 'val_f1' is not a metric of the task; "
                                   "choose one of train_loss, val_accuracy, val_loss"),
        (["search.metric=val_loss"], "error: search.direction: the task's val_loss is minimized; "
                                     "set search.direction=minimize"),
    ],
)
def test_a_wrong_search_metric_is_one_line_before_spark(tmp_path, overrides, expected):
    proc = run_cli([*overrides, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == expected
    assert not (tmp_path / "run" / "logs").exists()  # Spark never started
