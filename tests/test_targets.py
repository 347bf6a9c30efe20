"""Deploy targets: every option's Spark settings, locality and checks."""

from __future__ import annotations

import pytest

from runner.cluster.targets import target_for
from runner.config import CONF_DIR
from tests.conftest import compose_config

GPU = "spark.executor.resource.gpu.amount"
OPTIONS = sorted(p.stem for p in (CONF_DIR / "deploy").glob("*.yaml"))
# option -> (is_local, embedded, remote, waits for executors)
FACTS = {
    "local": (True, True, False, False),
    "local_cluster": (True, False, False, True),
    "local_gpu": (True, False, False, True),
    "standalone": (False, False, False, True),
    "yarn": (False, False, False, True),
    "k8s": (False, False, False, True),
    "connect": (False, False, True, False),
}


def _target(option: str, *overrides: str):
    image = ["deploy.image=repo/img:1"] if option == "k8s" else []
    return target_for(compose_config([f"deploy={option}", *image, *overrides]).deploy)


def test_every_option_is_listed_here():
    assert sorted(FACTS) == OPTIONS


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_maps_to_spark_settings_and_says_where_it_runs(option):
    target = _target(option)
    assert target.cfg.name == option and target.validate() == []
    settings = target.spark_conf()
    assert all(k.startswith("spark.") and isinstance(v, str) for k, v in settings.items())
    assert GPU not in settings  # CPU unless asked
    assert (target.is_local, target.embedded, target.remote, target.waits_for_executors) == (
        FACTS[option])


def test_cluster_targets_ask_for_gpus_and_a_discovery_script():
    gpu = "deploy.gpus_per_executor=1"
    local_cluster = _target("local_cluster", gpu).spark_conf()
    assert local_cluster[GPU] == "1" and "spark.task.resource.gpu.amount" not in local_cluster
    assert local_cluster["spark.worker.resource.gpu.amount"] == "2"  # one worker owns them all
    assert local_cluster["spark.worker.resource.gpu.discoveryScript"].endswith("gpu_discovery.sh")

    k8s = _target("k8s", "deploy.image=r/i:1", gpu).spark_conf()
    assert k8s["spark.executor.resource.gpu.vendor"] == "nvidia.com"
    assert k8s["spark.kubernetes.container.image"] == "r/i:1"
    yarn = _target("yarn", "deploy.queue=gpu", gpu).spark_conf()
    assert yarn["spark.yarn.queue"] == "gpu" and yarn["spark.executor.instances"] == "2"
    assert _target("standalone", "deploy.cores_max=3").spark_conf() == {"spark.cores.max": "3"}
    assert _target("connect", "deploy.task_slots=4").spark_conf() == {
        "spark.default.parallelism": "4"}


def test_local_cluster_master_follows_its_sizes():
    target = _target("local_cluster", "deploy.executors=3", "deploy.cores=2")
    assert target.cfg.master == "local-cluster[3,2,1024]"


def test_k8s_without_an_image_names_the_key():
    target = target_for(compose_config(["deploy=k8s"]).deploy)
    assert target.validate() == [("deploy.image: deploy=k8s needs the executors' container "
                                  "image; set deploy.image=REGISTRY/IMAGE:TAG")]


@pytest.mark.parametrize(("override", "key"), [("deploy.gpus_per_trial=1.5", "gpus_per_trial"),
                                               ("deploy.cpus_per_trial=0", "cpus_per_trial")])
def test_resource_requests_are_checked(override, key):
    assert [p.split(":")[0] for p in _target("local", override).validate()] == [f"deploy.{key}"]
