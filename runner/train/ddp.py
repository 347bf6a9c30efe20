"""One process of distributed data-parallel training: the function TorchDistributor runs.

No pyspark here. Every process is started by ``torchrun`` (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` set), joins the process group (gloo on
CPU, NCCL on GPU), reads only its own shard of the prepared Parquet with pyarrow,
trains a ``DistributedDataParallel`` model and checkpoints every epoch. What it
returns is identical on every rank, so any rank's value will do.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from runner.data.prepared import PreparedDataset
from runner.tasks import task_for
from runner.train import augment, engine
from runner.train.model import build_model, compiled, pretrained, weights_of

CHECKPOINT = "checkpoint.pt"


def train_process(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``job``'s model on this rank's shard; return weights and history.

    ``job``: ``entry`` (the prepared data's path or URI), ``splits``, ``model``,
    ``optimizer``, ``train`` (``epochs``, ``batch_size`` — the global batch —, ``seed``),
    ``input_shape``, ``task`` (its config), ``model_kwargs`` (what the task tells the model),
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

    train = job["train"]
    seed = int(train["seed"])
    x_np, y_np = PreparedDataset(job["entry"]).shard(job["splits"], rank, world)
    x = torch.from_numpy(x_np).reshape(-1, *job["input_shape"]).to(device)
    y = torch.from_numpy(y_np).to(device)
    batch = max(1, math.ceil(int(train["batch_size"]) / world))  # global batch kept
    steps = int(_reduce(torch.tensor(math.ceil(len(y) / batch), device=device), dist.ReduceOp.MAX))

    torch.manual_seed(seed)
    task = task_for(job["task"])
    module = pretrained(
        build_model(job["model"], tuple(job["input_shape"]), job["model_kwargs"]), job["model"]
    ).to(device)
    optimizer = instantiate(job["optimizer"], params=module.parameters())
    loop = engine.Loop.of(train, optimizer, device, steps)
    checkpoint = os.path.join(job["checkpoint_dir"], CHECKPOINT)
    history: list[dict[str, float]] = []
    start_epoch = 1
    if os.path.exists(checkpoint):
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        assert state["key"] == job["key"], f"{checkpoint} belongs to another run"
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if loop.scheduler is not None and state.get("scheduler"):
            loop.scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        start_epoch = int(state["epoch"]) + 1
    device_ids = [device.index] if device.type == "cuda" else None
    model = compiled(DistributedDataParallel(module, device_ids=device_ids), train)

    def total(sums):
        return _reduce(sums, dist.ReduceOp.SUM)

    for epoch in range(start_epoch, int(train["epochs"]) + 1):
        began = time.perf_counter()
        # Seeded per epoch and rank, so a resumed run shuffles as an uninterrupted one.
        torch.manual_seed(seed * 100_003 + epoch * 1_009 + rank)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch * 1_009 + rank)
        repeats = math.ceil(steps * batch / max(1, len(y)))
        order = torch.cat([torch.randperm(len(y), generator=generator) for _ in range(repeats)])
        order = order[: steps * batch].to(device)
        apply = augment.augmenter(train.get("augment"), seed * 100_003 + epoch * 1_009 + rank)
        train_loss = engine.train_epoch(
            model,
            task,
            optimizer,
            augment.augmented(engine.batches(x, y, batch, order), apply),
            reduce=total,
            loop=loop,
        )
        loop.end_epoch()
        epoch_s = float(
            _reduce(torch.tensor(time.perf_counter() - began, device=device), dist.ReduceOp.MAX)
        )
        history.append({"epoch": epoch, "train_loss": train_loss, "epoch_s": epoch_s})
        if rank == 0:
            _save(
                checkpoint,
                {
                    "key": job["key"],
                    "epoch": epoch,
                    "model": module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "history": history,
                    "scheduler": (
                        loop.scheduler.state_dict() if loop.scheduler is not None else None
                    ),
                },
            )
        dist.barrier()

    fitted = engine.evaluate(module, task, engine.batches(x, y, engine.EVAL_ROWS), reduce=total)
    rows = total(torch.tensor(len(y), dtype=torch.float64, device=device))
    return {
        "weights": weights_of(module),
        "history": history,
        "start_epoch": start_epoch,
        "world_size": world,
        "backend": backend,
        "device": device.type,
        "rows": int(rows),
        "metrics": {f"train_{k}": v for k, v in fitted.items()},  # train+val rows, after training
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
