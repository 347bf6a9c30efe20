"""Stage 3: retrain one configuration on train+val, data-parallel across the cluster.

``pyspark.ml.torch.distributor.TorchDistributor`` starts ``train.num_processes``
processes running ``runner.train.ddp.train_process``: in local mode ``torchrun`` on the
driver, otherwise one barrier task per process on the executors. Each process reads
its own shard of the prepared Parquet; nothing is collected to the driver but the
trained weights. ``<run_dir>/train/checkpoint.pt`` is rewritten every epoch, and a
train stage started again in the same run directory resumes after its last epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.serve.artifacts import ModelArtifact
from runner.errors import RunnerError
from runner.data.prepared import PreparedDataset
from runner.tasks import is_auto
from runner.train.model import model_kwargs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPLITS = ["train", "val"]


@dataclass(frozen=True)
class TrainResult:
    """The trained model and how its training went."""

    artifact: ModelArtifact
    metrics: dict[str, float]  # the task's metrics on train+val after training, as train_*
    history: list[dict[str, float]]  # per epoch: epoch, train_loss, epoch_s (slowest rank)
    start_epoch: int  # > 1 when resumed from a checkpoint
    num_processes: int
    local_mode: bool
    device: str  # cpu | cuda
    checkpoint: str
    duration_s: float


def validate(cfg: Any) -> list[str]:
    """Problems with the ``train`` section for distributed training, each naming its key."""
    train = cfg.train
    problems = []
    if train.num_processes < 1:
        problems.append(f"train.num_processes: must be at least 1, got {train.num_processes}")
    if train.batch_size >= 1 and train.batch_size < max(1, train.num_processes):
        problems.append(
            f"train.batch_size: {train.batch_size} is the global batch and must be at least "
            f"train.num_processes ({train.num_processes})"
        )
    from runner.cluster.targets import target_for

    local_mode = resolve_local_mode(train.local_mode, target_for(cfg.deploy).is_local)
    if train.use_gpu and not local_mode and _task_gpus(cfg.deploy.spark_conf) < 1:
        problems.append(
            "train.use_gpu: GPU training on executors needs deploy.spark_conf."
            "spark.task.resource.gpu.amount set to a whole number >= 1; set it, or "
            "train.use_gpu=false"
        )
    return problems


def resolve_local_mode(local_mode: Any, is_local: bool) -> bool:
    """``null``: local mode (torchrun on the driver) on a local target, barrier tasks on a cluster.

    On a local target (``Target.is_local``: ``local[N]``, ``local-cluster[...]``) the driver
    sees every core and GPU, and executors' GPUs are usually claimed per sweep trial by
    stage-level profiles, which TorchDistributor cannot use.
    """
    return is_local if local_mode is None else bool(local_mode)


def run(
    spark: "SparkSession",
    prepared: PreparedDataset,
    sections: dict[str, Any],
    task: dict[str, Any],
    run_dir: Path,
    *,
    is_local: bool,
) -> TrainResult:
    """Train ``sections`` (resolved ``model``/``optimizer``/``train``) for ``task`` (its
    resolved config) on train+val; ``is_local``: the deploy target is this machine
    (``Target.is_local``).

    Raises:
        RunnerError: the checkpoint in ``run_dir`` belongs to another configuration, or
            the cluster cannot host ``train.num_processes`` processes on the asked device.
    """
    from pyspark.ml.torch.distributor import TorchDistributor

    from runner.train.ddp import CHECKPOINT, train_process

    train = sections["train"]
    local_mode = resolve_local_mode(train["local_mode"], is_local)
    use_gpu, spark_gpu = _resolve_gpu(spark, train, local_mode)
    num_processes = int(train["num_processes"])
    if not local_mode:
        _require_slots(spark, num_processes)
    task = prepared.task if is_auto(task) else task
    out_dir = run_dir / "train"
    out_dir.mkdir(parents=True, exist_ok=True)
    key = _key(sections, prepared)
    _check_checkpoint(out_dir / CHECKPOINT, key)
    job = {
        "entry": prepared.uri,
        "splits": SPLITS,
        "model": sections["model"],
        "optimizer": sections["optimizer"],
        "train": {
            k: train.get(k)
            for k in ("epochs", "batch_size", "seed", "scheduler", "grad_clip", "precision")
        },
        "input_shape": list(prepared.input_shape),
        "task": task,
        "model_kwargs": model_kwargs(task, prepared),
        "checkpoint_dir": str(out_dir),
        "key": key,
        "use_gpu": use_gpu,
        "threads": _threads(spark, local_mode, num_processes),
    }
    distributor = TorchDistributor(
        num_processes=num_processes, local_mode=local_mode, use_gpu=spark_gpu
    )
    distributor.logger.setLevel(logging.WARNING)  # its start/finish lines are not news
    log = run_dir / "logs" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # torchrun's and the processes' output goes to the log, not the user's terminal.
    threads = _env("OMP_NUM_THREADS", str(job["threads"]))
    with open(log, "a") as sink, redirect_stdout(sink), threads:
        out = distributor.run(train_process, job)
    assert out is not None  # train_process returns its result on every rank
    duration = time.perf_counter() - started
    history = out["history"]
    return TrainResult(
        artifact=ModelArtifact.trained(sections["model"], task, prepared, out["weights"]),
        metrics=out["metrics"],
        history=history,
        start_epoch=out["start_epoch"],
        num_processes=out["world_size"],
        local_mode=local_mode,
        device=out["device"],
        checkpoint=str(out_dir / CHECKPOINT),
        duration_s=duration,
    )


def _resolve_gpu(
    spark: "SparkSession", train: dict[str, Any], local_mode: bool
) -> tuple[bool, bool]:
    """(train on GPUs, tell TorchDistributor to manage GPUs through Spark's resources).

    ``train.use_gpu: null`` uses GPUs when the target has them: the driver's CUDA devices
    in local mode, ``spark.task.resource.gpu.amount`` on executors otherwise.
    """
    if not local_mode:
        has_gpus = (
            _task_gpus(
                {
                    "spark.task.resource.gpu.amount": spark.conf.get(
                        "spark.task.resource.gpu.amount", "0"
                    )
                }
            )
            >= 1
        )
        use_gpu = has_gpus if train["use_gpu"] is None else bool(train["use_gpu"])
        return use_gpu, use_gpu
    import torch

    gpus = torch.cuda.device_count()
    use_gpu = gpus > 0 if train["use_gpu"] is None else bool(train["use_gpu"])
    if use_gpu and gpus < int(train["num_processes"]):
        raise RunnerError(
            f"train.num_processes: {train['num_processes']} GPU processes but the driver has "
            f"{gpus} CUDA devices; lower train.num_processes or set train.use_gpu=false"
        )
    # Spark manages driver GPUs only when spark.driver.resource.gpu.* is configured.
    return use_gpu, use_gpu and "gpu" in _driver_resources(spark)


def _driver_resources(spark: "SparkSession") -> dict[str, Any]:
    try:
        return dict(spark.sparkContext.resources)
    except Exception:  # Spark Connect: no SparkContext on the client
        return {}


def _require_slots(spark: "SparkSession", num_processes: int) -> None:
    from runner.cluster.spark import task_slots

    try:
        slots = task_slots(spark)
    except Exception:  # Spark Connect: no SparkContext to ask; let Spark refuse
        return
    if slots < num_processes:
        raise RunnerError(
            f"train.num_processes: {num_processes} barrier tasks need as many task slots but "
            f"the cluster has {slots}; lower train.num_processes or set train.local_mode=true"
        )


def _threads(spark: "SparkSession", local_mode: bool, num_processes: int) -> int:
    """CPU threads per process: the driver's cores shared, or the executor task's cores."""
    if local_mode:
        return max(1, (os.cpu_count() or 1) // num_processes)
    return max(1, int(spark.conf.get("spark.task.cpus", "1") or "1"))


def _task_gpus(conf: Any) -> float:
    try:
        return float(conf.get("spark.task.resource.gpu.amount", 0) or 0)
    except ValueError:
        return 0.0


def _key(sections: dict[str, Any], prepared: PreparedDataset) -> str:
    """What a checkpoint must match to be resumed: everything but the number of epochs."""
    train = sections["train"]
    blob = json.dumps(
        {
            "model": sections["model"],
            "optimizer": sections["optimizer"],
            "batch_size": train["batch_size"],
            "seed": train["seed"],
            "data": prepared.fingerprint,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_checkpoint(path: Path, key: str) -> None:
    if not path.exists():
        return
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("key") != key:
        raise RunnerError(
            f"train: {path} was written for another model, optimizer, batch size, seed or "
            "data set; delete it or run in a new hydra.run.dir"
        )


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block (torchrun reads it), then restore it."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
