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
from typing import Any

from runner.cluster.targets import Target, target_for


@dataclass(frozen=True)
class GpuPlan:
    """The target this run starts on this machine, and a line for the user when it differs
    from the configured one. The run's config is never changed: it reproduces the run."""

    target: Target
    note: str = ""


def plan(target: Target, visible_gpus: int | None = None) -> GpuPlan:
    """Fit GPU requests to this machine: drop them without GPUs, give a local cluster its GPUs.

    ``local[*]`` cannot schedule GPU tasks, so with GPUs it becomes ``local-cluster[1,C,M]``.
    """
    from omegaconf import OmegaConf

    from runner.cluster.targets.local_cluster import LocalClusterDeployConfig

    deploy = target.cfg
    if deploy.gpus_per_trial <= 0 or not target.is_local:
        return GpuPlan(target)
    gpus = count_gpus() if visible_gpus is None else visible_gpus
    if gpus == 0 and "spark.worker.resource.gpu.discoveryScript" not in deploy.spark_conf:
        cpu_only = OmegaConf.merge(deploy, {"gpus_per_trial": 0.0})
        return GpuPlan(
            type(target)(cpu_only), "no GPU found on this machine: trials run on the CPU"
        )
    note = ""
    if target.embedded:
        cores = os.cpu_count() or 1
        common = {
            k: deploy[k]
            for k in (
                "name",
                "app_name",
                "spark_conf",
                "python",
                "connect_timeout_s",
                "cpus_per_trial",
                "gpus_per_trial",
            )
        }
        deploy = OmegaConf.merge(
            OmegaConf.structured(LocalClusterDeployConfig),
            common,
            {"executors": 1, "cores": cores, "memory_mb": max(2048, 1024 * cores)},
        )
        note = f"{gpus} GPU(s) found: running {deploy.master} so Spark can schedule them"
    if deploy.gpus_per_executor <= 0:  # the machine's GPUs, dealt to the executors
        deploy = OmegaConf.merge(deploy, {"gpus_per_executor": max(1, gpus // deploy.executors)})
    planned = target_for(deploy)
    return GpuPlan(planned, note)


def count_gpus() -> int:
    """CUDA devices visible to this process (0 without torch's CUDA build)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def trial_profile(target: Target):
    """The task resource profile for the sweep's slot tasks, or None for Spark's default."""
    deploy = target.cfg
    if target.embedded or (deploy.cpus_per_trial <= 1 and deploy.gpus_per_trial <= 0):
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
