"""One process of distributed data-parallel training: the function TorchDistributor runs.

No pyspark here. Every process is started by ``torchrun`` (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` set), joins the process group (gloo on
CPU, NCCL on GPU), reads only its own shard of the prepared Parquet with pyarrow,
trains a ``DistributedDataParallel`` model and checkpoints every epoch. What it
returns is identical on every rank, so any rank's value will do.
"""

from __future__ import annotations

import io
import math
import os
import time
from typing import Any

from runner.data.prepared import PreparedDataset

CHECKPOINT = "checkpoint.pt"


def train_process(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``job``'s model on this rank's shard; return weights and history.

    ``job``: ``entry`` (the prepared data's path or URI), ``splits``, ``model``,
    ``optimizer``, ``train`` (``epochs``, ``batch_size`` — the global batch —, ``seed``),
    ``input_shape``, ``num_classes``,
    ``checkpoint_dir``, ``key`` (identifies the run a checkpoint belongs to),
    ``use_gpu`` and ``threads`` (CPU threads per process).
    """
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if job["use_gpu"]:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, int(job["threads"])))
        backend = "gloo"
    dist.init_process_group(backend)
    try:
        return _train(job, rank, world, device, backend)
    finally:
        dist.destroy_process_group()


def _train(job: dict[str, Any], rank: int, world: int, device, backend: str) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from hydra.utils import instantiate
    from torch.nn.parallel import DistributedDataParallel

    from runner.train.trial import build_model

    train = job["train"]
    seed = int(train["seed"])
    x_np, y_np = PreparedDataset(job["entry"]).shard(job["splits"], rank, world)
    x = torch.from_numpy(x_np).reshape(-1, *job["input_shape"]).to(device)
    y = torch.from_numpy(y_np).to(device)
    batch = max(1, math.ceil(int(train["batch_size"]) / world))  # global batch kept
    steps = int(_reduce(torch.tensor(math.ceil(len(y) / batch), device=device), dist.ReduceOp.MAX))

    torch.manual_seed(seed)
    module = build_model(job["model"], tuple(job["input_shape"]), job["num_classes"]).to(device)
    optimizer = instantiate(job["optimizer"], params=module.parameters())
    checkpoint = os.path.join(job["checkpoint_dir"], CHECKPOINT)
    history: list[dict[str, float]] = []
    start_epoch = 1
    if os.path.exists(checkpoint):
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        assert state["key"] == job["key"], f"{checkpoint} belongs to another run"
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        start_epoch = int(state["epoch"]) + 1
    model = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = torch.nn.CrossEntropyLoss()

    for epoch in range(start_epoch, int(train["epochs"]) + 1):
        began = time.perf_counter()
        # Seeded per epoch and rank, so a resumed run shuffles as an uninterrupted one.
        torch.manual_seed(seed * 100_003 + epoch * 1_009 + rank)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch * 1_009 + rank)
        repeats = math.ceil(steps * batch / max(1, len(y)))
        order = torch.cat([torch.randperm(len(y), generator=generator) for _ in range(repeats)])
        order = order.to(device)
        model.train()
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss * rows, rows
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            sums += torch.tensor([loss.item() * len(idx), len(idx)], dtype=torch.float64, device=device)
        sums = _reduce(sums, dist.ReduceOp.SUM)
        train_loss = float(sums[0] / sums[1])
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"non-finite training loss {train_loss} at epoch {epoch}")
        epoch_s = float(_reduce(torch.tensor(time.perf_counter() - began, device=device),
                                dist.ReduceOp.MAX))
        history.append({"epoch": epoch, "train_loss": train_loss, "epoch_s": epoch_s})
        if rank == 0:
            _save(checkpoint, {"key": job["key"], "epoch": epoch, "model": module.state_dict(),
                               "optimizer": optimizer.state_dict(), "history": history})
        dist.barrier()

    module.eval()
    with torch.no_grad():
        correct = float((module(x).argmax(1) == y).sum()) if len(y) else 0.0
    counts = _reduce(torch.tensor([correct, len(y)], dtype=torch.float64, device=device),
                     dist.ReduceOp.SUM)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buffer)
    return {
        "weights": buffer.getvalue(),
        "history": history,
        "start_epoch": start_epoch,
        "world_size": world,
        "backend": backend,
        "device": device.type,
        "rows": int(counts[1]),
        "train_accuracy": float(counts[0] / counts[1]),
    }


def _reduce(tensor, op):
    """``all_reduce`` of a copy; the result is the same on every rank."""
    import torch.distributed as dist

    out = tensor.clone()
    dist.all_reduce(out, op=op)
    return out


def _save(path: str, state: dict[str, Any]) -> None:
    """Write the checkpoint under a temporary name, then rename it into place."""
    import torch

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
