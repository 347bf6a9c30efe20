"""One trial, without Spark: it learns, and failures come back as data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from runner.data.prepared import write_entry
from runner.train.trial import TrialSpec, run_trial


@pytest.fixture
def blobs(tmp_path):
    """Two well separated Gaussian blobs, a prepared entry; its path."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 200), ("val", 100)):
        labels = rng.integers(0, 2, n)
        features = rng.normal(size=(n, 4)).astype(np.float32) + labels[:, None] * 3.0
        splits[split] = [pa.table({
            "id": np.arange(n),
            "label": labels,
            "features": pa.array(list(features), type=pa.list_(pa.float32())),
        })]
    return write_entry(str(tmp_path / "entry"), splits, (4,), 2).uri


def spec(path: str, **changes) -> TrialSpec:
    fields = dict(
        number=0,
        params={},
        model={"_target_": "models.mlp.MLP", "hidden": 16, "depth": 1, "dropout": 0.0},
        optimizer={"_target_": "torch.optim.Adam", "lr": 0.01},
        train={"epochs": 5, "batch_size": 32, "seed": 0},
        entry=path,
        input_shape=(4,),
        task={"_target_": "runner.tasks.Classification"},
        model_kwargs={"num_classes": 2},
        metric="val_accuracy",
    )
    return TrialSpec(**{**fields, **changes})


def test_trial_learns_and_records_every_epoch(blobs):
    outcome = run_trial(spec(blobs))
    assert outcome.state == "COMPLETE", outcome.error
    assert outcome.metrics["val_accuracy"] >= 0.95
    assert [h["epoch"] for h in outcome.history] == [1, 2, 3, 4, 5]
    assert outcome.history[-1]["train_loss"] < outcome.history[0]["train_loss"]
    assert outcome.weights and outcome.pid > 0


def test_same_seed_same_result(blobs):
    assert run_trial(spec(blobs)).metrics == run_trial(spec(blobs)).metrics


def test_exception_becomes_failed_outcome(blobs):
    outcome = run_trial(spec(blobs, optimizer={"_target_": "torch.optim.Adam", "lr": -1.0}))
    assert outcome.state == "FAIL"
    assert "Invalid learning rate" in outcome.error
    assert outcome.weights == b""


def test_non_finite_loss_fails_the_trial(blobs):
    outcome = run_trial(spec(blobs, optimizer={"_target_": "torch.optim.SGD", "lr": 1e30}))
    assert outcome.state == "FAIL"
    assert "non-finite" in outcome.error


def test_streaming_trial_learns_from_row_groups(blobs):
    outcome = run_trial(spec(blobs, train={"epochs": 5, "batch_size": 32, "seed": 0,
                                           "streaming": True}))
    assert outcome.state == "COMPLETE", outcome.error
    assert outcome.metrics["val_accuracy"] >= 0.95


@pytest.fixture
def bars(tmp_path):
    """Grey 8x8 uint8 images, a bright bar left (class 0) or right (class 1), stored as
    bytes with their per-channel stats in meta.json, in small row groups."""
    from runner.data.prepared import PreparedDataset

    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 160), ("val", 80)):
        labels = rng.integers(0, 2, n)
        images = rng.integers(0, 60, (n, 1, 8, 8)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 0, :, 1 + 5 * label] = 250
        splits[split] = [pa.table({"id": np.arange(n), "label": labels,
                                   "features": pa.array([x.tobytes() for x in images],
                                                        pa.binary())})]
    entry = write_entry(str(tmp_path / "images"), splits, (1, 8, 8), 2, row_group_size=32)
    meta = dict(PreparedDataset(entry.uri).meta)
    entry.write_meta({**meta, "input": {"kind": "image", "mean": [50.0], "std": [70.0]}})
    return entry.uri


@pytest.mark.parametrize("streaming", [False, True])
def test_image_trial_learns_with_augmentation(bars, streaming):
    outcome = run_trial(spec(
        bars, input_shape=(1, 8, 8),
        model={"_target_": "models.cnn.CNN", "channels": 8, "hidden": 16, "dropout": 0.0},
        train={"epochs": 6, "batch_size": 16, "seed": 0, "streaming": streaming,
               "augment": {"flip": False, "crop": 1, "jitter": 0.1}}))
    assert outcome.state == "COMPLETE", outcome.error
    assert outcome.metrics["val_accuracy"] >= 0.95


def test_early_stopping_stops_and_keeps_the_best_epoch(blobs):
    """A learning rate that wrecks the model after a good first epoch: patience 2 stops at
    epoch 3 and the trial's metrics and weights are epoch 1's."""
    import io

    import torch

    from runner.train.model import build_model

    wild = spec(blobs, optimizer={"_target_": "torch.optim.SGD", "lr": 0.5, "momentum": 0.99},
                train={"epochs": 30, "batch_size": 32, "seed": 0, "patience": 2},
                metric="val_loss")
    outcome = run_trial(wild)
    assert outcome.state == "COMPLETE", outcome.error
    losses = [h["val_loss"] for h in outcome.history]
    best = min(range(len(losses)), key=losses.__getitem__) + 1
    assert outcome.best_epoch == best
    assert len(outcome.history) == best + 2 < 30  # stopped after two worse epochs
    assert outcome.metrics["val_loss"] == losses[best - 1] < losses[-1]
    # the weights are the best epoch's: they score its val loss again
    model = build_model(wild.model, (4,), {"num_classes": 2})
    model.load_state_dict(torch.load(io.BytesIO(outcome.weights), weights_only=True))
    from runner.data.prepared import PreparedDataset
    from runner.tasks import Classification
    from runner.train import engine

    x, y = PreparedDataset(blobs).read("val")
    val = engine.evaluate(model, Classification(),
                          engine.batches(torch.from_numpy(x), torch.from_numpy(y), 4096))
    assert val["loss"] == pytest.approx(outcome.metrics["val_loss"], rel=1e-5)


def test_without_patience_every_epoch_runs(blobs):
    outcome = run_trial(spec(blobs, train={"epochs": 4, "batch_size": 32, "seed": 0}))
    assert len(outcome.history) == 4 and outcome.best_epoch == 0


def test_scheduler_and_clipping_take_effect(blobs, monkeypatch):
    import torch

    from runner.train import engine

    seen: dict[str, list] = {"lr": [], "norms": []}
    clip = torch.nn.utils.clip_grad_norm_

    def spy_clip(parameters, max_norm, *args, **kwargs):
        seen["norms"].append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy_clip)
    end_epoch = engine.Loop.end_epoch

    def spy_end(self, val_loss=None):
        end_epoch(self, val_loss)
        seen["lr"].append(self.scheduler.optimizer.param_groups[0]["lr"])

    monkeypatch.setattr(engine.Loop, "end_epoch", spy_end)
    scheduled = spec(blobs, train={
        "epochs": 4, "batch_size": 32, "seed": 0, "grad_clip": 0.5,
        "scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1,
                      "gamma": 0.5}})
    outcome = run_trial(scheduled)
    assert outcome.state == "COMPLETE", outcome.error
    assert seen["lr"] == pytest.approx([0.005, 0.0025, 0.00125, 0.000625])
    assert seen["norms"] and set(seen["norms"]) == {0.5}


def test_one_cycle_gets_its_length_filled_in(blobs):
    one_cycle = spec(blobs, train={
        "epochs": 3, "batch_size": 32, "seed": 0,
        "scheduler": {"_target_": "torch.optim.lr_scheduler.OneCycleLR", "max_lr": 0.05,
                      "interval": "step"}})
    outcome = run_trial(one_cycle)
    assert outcome.state == "COMPLETE", outcome.error


def test_pretrained_weights_are_loaded_and_frozen_layers_stay(blobs, tmp_path):
    """model.weights_path starts a trial from a trained model (it scores as well after one
    epoch at a tiny learning rate) and model.freeze keeps the named layers unchanged."""
    import io

    import torch

    first = run_trial(spec(blobs))
    assert first.state == "COMPLETE", first.error
    path = tmp_path / "weights.pt"
    path.write_bytes(first.weights)
    model = {"_target_": "models.mlp.MLP", "hidden": 16, "depth": 1, "dropout": 0.0,
             "weights_path": str(path), "freeze": ["1."]}
    tuned = run_trial(spec(blobs, model=model,
                           optimizer={"_target_": "torch.optim.SGD", "lr": 1e-6},
                           train={"epochs": 1, "batch_size": 32, "seed": 1}))
    assert tuned.state == "COMPLETE", tuned.error
    assert tuned.metrics["val_accuracy"] >= first.metrics["val_accuracy"] - 0.01 >= 0.9
    before = torch.load(io.BytesIO(first.weights), weights_only=True)
    after = torch.load(io.BytesIO(tuned.weights), weights_only=True)
    assert torch.equal(before["1.weight"], after["1.weight"])  # frozen: bit-identical
    assert not torch.equal(before["4.weight"], after["4.weight"])  # trained


def test_compiled_trial_trains_and_keeps_plain_weights(blobs):
    """train.compile: the trial trains through torch.compile; its weights load into the
    plain model (no _orig_mod. prefixes)."""
    outcome = run_trial(spec(blobs, train={"epochs": 5, "batch_size": 32, "seed": 0,
                                           "compile": True}))
    assert outcome.state == "COMPLETE", outcome.error
    assert outcome.metrics["val_accuracy"] >= 0.9
    import io

    import torch

    keys = set(torch.load(io.BytesIO(outcome.weights), weights_only=True))
    assert keys == {"1.weight", "1.bias", "4.weight", "4.bias"}
