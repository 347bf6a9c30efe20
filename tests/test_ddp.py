"""DDP training processes without Spark: identical ranks, resume from checkpoint (the
shards they read are tested in test_prepared.py)."""

from __future__ import annotations

import io
import os
import socket

import numpy as np
import pyarrow as pa
import pytest
import torch

from runner.data.prepared import write_entry
from runner.train.ddp import CHECKPOINT, train_process


@pytest.fixture
def blobs(tmp_path):
    """Two separable Gaussian blobs, a prepared entry at ``tmp_path / "entry"``: train in
    3 files, val in 2 (row groups of 40)."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, n, files in (("train", 300, 3), ("val", 100, 2)):
        labels = rng.integers(0, 2, n)
        features = (rng.normal(size=(n, 4)) + labels[:, None] * 3.0).astype(np.float32)
        splits[split] = [pa.table({
            "id": rows,
            "label": labels[rows],
            "features": pa.array(list(features[rows]), type=pa.list_(pa.float32())),
        }) for rows in np.array_split(np.arange(n), files)]
    write_entry(str(tmp_path / "entry"), splits, (4,), 2, row_group_size=40)
    return tmp_path


def job(root, **train) -> dict:
    return {
        "entry": str(root / "entry"),
        "splits": ["train", "val"],
        "model": {"_target_": "models.mlp.MLP", "hidden": 16, "depth": 1, "dropout": 0.1},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 32, "seed": 0, **train},
        "input_shape": [4],
        "task": {"_target_": "runner.tasks.Classification"},
        "model_kwargs": {"num_classes": 2},
        "checkpoint_dir": str(root / "train"),
        "key": "k",
        "use_gpu": False,
        "threads": 1,
    }


def _process(rank: int, world: int, port: int, spec: dict, results) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    results.put((rank, train_process(spec)))


def launch(spec: dict, world: int) -> list[dict]:
    """What torchrun does: ``world`` processes with the rendezvous environment set."""
    ctx = torch.multiprocessing.get_context("spawn")
    results = ctx.Queue()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = [ctx.Process(target=_process, args=(r, world, port, spec, results)) for r in range(world)]
    for p in procs:
        p.start()
    out = dict(results.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return [out[r] for r in range(world)]


def test_two_processes_agree_and_learn(blobs):
    results = launch(job(blobs), world=2)
    assert results[0] == results[1]  # any rank's value will do
    out = results[0]
    assert out["world_size"] == 2 and out["backend"] == "gloo" and out["rows"] == 400
    assert [h["epoch"] for h in out["history"]] == [1, 2, 3]
    assert out["metrics"]["train_accuracy"] >= 0.95


def in_process(spec: dict, monkeypatch) -> dict:
    """A one-process world in the test's own process (no start-up cost)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in dict(RANK=0, WORLD_SIZE=1, LOCAL_RANK=0, MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=port).items():
        monkeypatch.setenv(name, str(value))
    return train_process(spec)


def test_resume_continues_after_the_last_checkpoint(blobs, monkeypatch):
    first = in_process(job(blobs, epochs=2), monkeypatch)
    assert (blobs / "train" / CHECKPOINT).exists()
    resumed = in_process(job(blobs, epochs=4), monkeypatch)
    assert resumed["start_epoch"] == 3
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4]
    assert resumed["history"][:2] == first["history"]
    assert torch.load(blobs / "train" / CHECKPOINT, weights_only=True)["epoch"] == 4

    # an uninterrupted run lands on the same weights: shuffles and dropout are seeded per epoch
    (blobs / "train" / CHECKPOINT).unlink()
    straight = in_process(job(blobs, epochs=4), monkeypatch)
    assert straight["start_epoch"] == 1
    a = torch.load(io.BytesIO(resumed["weights"]), weights_only=True)
    b = torch.load(io.BytesIO(straight["weights"]), weights_only=True)
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_a_finished_checkpoint_is_not_trained_again(blobs, monkeypatch):
    done = in_process(job(blobs, epochs=2), monkeypatch)
    again = in_process(job(blobs, epochs=2), monkeypatch)
    assert again["start_epoch"] == 3 and again["weights"] == done["weights"]
