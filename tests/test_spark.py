"""Deploy targets map to SparkSession settings; a dead master fails fast and clearly."""

from __future__ import annotations

import time

import pytest

from runner.cluster.standalone import free_port
from runner.errors import RunnerError
from runner.cluster.spark import build_session, target_settings, task_slots
from runner.config import CONF_DIR
from tests.conftest import compose_config

GPU = "spark.executor.resource.gpu.amount"


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "deploy").glob("*.yaml")))
def test_every_deploy_option_composes_and_maps(option):
    overrides = [f"deploy={option}"] + (["deploy.image=repo/img:1"] if option == "k8s" else [])
    deploy = compose_config(overrides).deploy
    assert deploy.name == option
    settings = target_settings(deploy)
    assert all(k.startswith("spark.") and isinstance(v, str) for k, v in settings.items())
    assert GPU not in settings  # CPU unless asked


def test_cluster_targets_ask_for_gpus_and_a_discovery_script():
    gpu = ["deploy.gpus_per_executor=1"]
    local_cluster = target_settings(compose_config(["deploy=local_cluster", *gpu]).deploy)
    assert local_cluster[GPU] == "1" and "spark.task.resource.gpu.amount" not in local_cluster
    assert local_cluster["spark.worker.resource.gpu.amount"] == "2"  # one worker owns them all
    assert local_cluster["spark.worker.resource.gpu.discoveryScript"].endswith("gpu_discovery.sh")

    k8s = target_settings(compose_config(["deploy=k8s", "deploy.image=r/i:1", *gpu]).deploy)
    assert k8s["spark.executor.resource.gpu.vendor"] == "nvidia.com"
    assert k8s["spark.kubernetes.container.image"] == "r/i:1"
    yarn = target_settings(compose_config(["deploy=yarn", "deploy.queue=gpu", *gpu]).deploy)
    assert yarn["spark.yarn.queue"] == "gpu" and yarn["spark.executor.instances"] == "2"


def test_local_cluster_master_follows_its_sizes():
    deploy = compose_config(["deploy=local_cluster", "deploy.executors=3", "deploy.cores=2"]).deploy
    assert deploy.master == "local-cluster[3,2,1024]"


def test_spark_conf_passes_through_and_wins(spark):
    # the session fixture sets spark.sql.shuffle.partitions=2 over the default 8
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert task_slots(spark) == 2


def test_k8s_without_an_image_names_the_key():
    with pytest.raises(RunnerError, match=r"deploy.image"):
        target_settings(compose_config(["deploy=k8s"]).deploy)


@pytest.mark.parametrize("scheme", ["spark", "sc"])
def test_unreachable_master_fails_fast_naming_the_key(tmp_path, scheme, spark):
    option = "standalone" if scheme == "spark" else "connect"
    deploy = compose_config(
        [f"deploy={option}", f"deploy.master={scheme}://127.0.0.1:{free_port()}",
         "deploy.connect_timeout_s=2"]
    ).deploy
    start = time.monotonic()
    with pytest.raises(RunnerError, match=r"deploy.master: nothing answers at .*just cluster"):
        build_session(deploy, tmp_path)
    assert time.monotonic() - start < 5
    assert spark.range(3).count() == 3  # the running session is untouched
