"""Per-trial CPUs and GPUs: Spark resource requests on the driver, a device on the executor.

Spark decides placement: a trial asks for ``deploy.cpus_per_trial`` cores and
``deploy.gpus_per_trial`` GPUs (fractions pack several trials on one GPU) through a
task resource profile. ``local[*]`` cannot schedule GPU tasks at all (it waits
forever), so on one machine with GPUs the runner uses ``local-cluster[1,C,M]`` with
the GPUs on its worker; on a machine without GPUs the same config runs on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import RunnerError

DISCOVERY_SCRIPT = Path(__file__).with_name("gpu_discovery.sh")


@dataclass(frozen=True)
class GpuPlan:
    """The deploy settings to use, and a line for the user when they changed."""

    deploy: Any
    note: str = ""


def plan(deploy: Any, visible_gpus: int | None = None) -> GpuPlan:
    """Fit GPU requests to this machine: drop them without GPUs, give a local cluster its GPUs."""
    from omegaconf import OmegaConf, open_dict

    if deploy.gpus_per_trial <= 0:
        return GpuPlan(deploy)
    if deploy.gpus_per_trial > 1 and deploy.gpus_per_trial != int(deploy.gpus_per_trial):
        raise RunnerError(
            f"deploy.gpus_per_trial: {deploy.gpus_per_trial} must be at most 1 or a whole number"
        )
    local = deploy.master.startswith("local")
    if not local:
        return GpuPlan(deploy)
    gpus = count_gpus() if visible_gpus is None else visible_gpus
    conf = dict(deploy.spark_conf)
    if gpus == 0 and "spark.worker.resource.gpu.discoveryScript" not in conf:
        cpu_only = OmegaConf.merge(deploy, {"gpus_per_trial": 0.0})
        return GpuPlan(cpu_only, "no GPU found on this machine: trials run on the CPU")
    note = ""
    master = deploy.master
    if master.startswith("local["):
        cores = os.cpu_count() or 1
        master = f"local-cluster[1,{cores},{max(2048, 1024 * cores)}]"
        note = f"{gpus} GPU(s) found: running {master} so Spark can schedule them"
    conf.setdefault("spark.worker.resource.gpu.amount", str(gpus))
    conf.setdefault("spark.worker.resource.gpu.discoveryScript", str(DISCOVERY_SCRIPT))
    conf.setdefault("spark.executor.resource.gpu.amount",
                    conf["spark.worker.resource.gpu.amount"])
    planned = OmegaConf.merge(deploy, {})  # a copy; struct mode refuses new spark_conf keys
    with open_dict(planned):
        planned.master = master
        planned.spark_conf = conf
    return GpuPlan(planned, note)


def count_gpus() -> int:
    """CUDA devices visible to this process (0 without torch's CUDA build)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def trial_profile(deploy: Any):
    """The task resource profile for the sweep's slot tasks, or None for Spark's default."""
    if deploy.master.startswith("local[") or (
        deploy.cpus_per_trial <= 1 and deploy.gpus_per_trial <= 0
    ):
        return None
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    requests = TaskResourceRequests().cpus(max(1, int(deploy.cpus_per_trial)))
    if deploy.gpus_per_trial > 0:
        requests = requests.resource("gpu", float(deploy.gpus_per_trial))
    return ResourceProfileBuilder().require(requests).build


def slots_per_cluster(task_slots: int, deploy: Any) -> int:
    """Trials that fit at once when each takes ``cpus_per_trial`` cores."""
    return max(1, task_slots // max(1, int(deploy.cpus_per_trial)))


def task_gpu(context: Any) -> str:
    """The address of the GPU Spark assigned to this task, or ""."""
    gpu = (context.resources() if context is not None else {}).get("gpu")
    return gpu.addresses[0] if gpu is not None and gpu.addresses else ""


def device_for(gpu: str) -> str:
    """The torch device for an assigned GPU address (CPU when CUDA is not usable)."""
    if not gpu:
        return "cpu"
    import torch

    return f"cuda:{gpu}" if torch.cuda.is_available() else "cpu"
