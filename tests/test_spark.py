"""The session builder: settings pass through; a dead master fails fast and clearly."""

from __future__ import annotations

import time

import pytest

from runner.cluster.standalone import free_port
from runner.errors import RunnerError
from runner.cluster.spark import build_session, task_slots
from runner.cluster.targets import target_for
from tests.conftest import compose_config


def test_spark_conf_passes_through_and_wins(spark):
    # the session fixture sets spark.sql.shuffle.partitions=2 over the default 8
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert task_slots(spark) == 2


@pytest.mark.parametrize("scheme", ["spark", "sc"])
def test_unreachable_master_fails_fast_naming_the_key(tmp_path, scheme, spark):
    option = "standalone" if scheme == "spark" else "connect"
    deploy = compose_config(
        [f"deploy={option}", f"deploy.master={scheme}://127.0.0.1:{free_port()}",
         "deploy.connect_timeout_s=2"]
    ).deploy
    start = time.monotonic()
    with pytest.raises(RunnerError, match=r"deploy.master: nothing answers at .*just cluster"):
        build_session(target_for(deploy), tmp_path)
    assert time.monotonic() - start < 5
    assert spark.range(3).count() == 3  # the running session is untouched
