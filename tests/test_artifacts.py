"""Saved models: a round trip keeps the task, a model saved before tasks still loads, and
artifacts on disk are written whole or not at all."""

from __future__ import annotations

import json

import pytest
import torch

from runner.serve import artifacts
from runner.serve.artifacts import atomic_write
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


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == [
        "weights.pt"]


def test_a_failed_atomic_write_leaves_no_temp_file(tmp_path):
    path = tmp_path / "weights.pt"
    (path / "in-the-way").mkdir(parents=True)  # a directory where the file should go
    with pytest.raises(OSError):
        atomic_write(path, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "other.pt", "not bytes")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]


def test_a_full_disk_leaves_the_old_file_whole_and_names_the_path(tmp_path, monkeypatch):
    import errno
    import os

    path = tmp_path / "summary.json"
    path.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left") as failed:
        atomic_write(path, b"new")
    assert failed.value.filename == str(path) and failed.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
