"""Saved models: a round trip keeps the task, and a model saved before tasks still loads."""

from __future__ import annotations

import json

import torch

from runner.serve import artifacts
from runner.train.model import build_model, weights_of

MLP = {"_target_": "models.mlp.MLP", "hidden": 8, "depth": 1, "dropout": 0.0}
TASK = {"_target_": "runner.tasks.Classification"}


def _artifact() -> artifacts.ModelArtifact:
    torch.manual_seed(0)
    weights = weights_of(build_model(MLP, (4,), {"num_classes": 3}))
    return artifacts.ModelArtifact(MLP, (4,), TASK, {"num_classes": 3}, weights)


def test_round_trip_keeps_the_task_and_the_model(tmp_path):
    saved = _artifact()
    artifacts.save(saved, tmp_path)
    loaded = artifacts.load(tmp_path)
    assert loaded == saved
    x = torch.randn(5, 4)
    assert torch.equal(loaded.build()(x), saved.build()(x))


def test_a_model_saved_before_tasks_loads_as_a_classifier(tmp_path):
    saved = _artifact()
    artifacts.save(saved, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    old = {"model": meta["model"], "input_shape": meta["input_shape"], "num_classes": 3}
    (tmp_path / "model.json").write_text(json.dumps(old))
    assert artifacts.load(tmp_path) == saved
