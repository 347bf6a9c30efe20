"""The GPU plan: a frozen target for this machine; the composed config is left as saved."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from runner.cluster import resources
from runner.cluster.targets import target_for
from tests.conftest import compose_config


def _plan(overrides: list[str], gpus: int):
    cfg = compose_config(overrides)
    saved = OmegaConf.to_yaml(cfg)
    plan = resources.plan(target_for(cfg.deploy), visible_gpus=gpus)
    assert OmegaConf.to_yaml(cfg) == saved  # the config Hydra saved still reproduces the run
    return plan


def test_no_gpu_request_keeps_the_target():
    plan = _plan([], gpus=2)
    assert plan.note == "" and plan.target.cfg.master == "local[*]"
    assert resources.trial_profile(plan.target) is None


def test_without_gpus_trials_run_on_the_cpu_and_say_so():
    plan = _plan(["deploy.gpus_per_trial=0.5"], gpus=0)
    assert plan.target.cfg.gpus_per_trial == 0 and "trials run on the CPU" in plan.note
    assert plan.target.embedded


def test_local_with_gpus_becomes_a_local_cluster_that_owns_them():
    plan = _plan(["deploy.gpus_per_trial=0.25", "deploy.cpus_per_trial=2"], gpus=2)
    target = plan.target
    assert target.cfg.master.startswith("local-cluster[1,") and "2 GPU(s) found" in plan.note
    assert target.is_local and not target.embedded
    conf = target.spark_conf()
    assert conf["spark.worker.resource.gpu.amount"] == "2"
    assert conf["spark.executor.resource.gpu.amount"] == "2"
    assert target.cfg.gpus_per_trial == 0.25 and target.cfg.cpus_per_trial == 2
    assert resources.trial_profile(target) is not None  # Spark places the trials


@pytest.mark.parametrize("option", ["local_gpu", "local_cluster"])
def test_a_local_cluster_gets_the_machines_gpus_dealt_to_its_executors(option):
    plan = _plan([f"deploy={option}", "deploy.gpus_per_trial=0.5"], gpus=2)
    conf = plan.target.spark_conf()
    executors = plan.target.cfg.executors
    assert int(conf["spark.executor.resource.gpu.amount"]) * executors <= 2
    assert conf["spark.worker.resource.gpu.amount"] == str(2 // executors * executors)


def test_cluster_targets_are_left_to_the_cluster():
    plan = _plan(["deploy=standalone", "deploy.gpus_per_trial=1"], gpus=0)
    assert plan.note == "" and plan.target.cfg.gpus_per_trial == 1
