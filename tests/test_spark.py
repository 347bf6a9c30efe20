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


def test_concurrent_experiments_share_one_session_in_their_own_pools(spark, tmp_path):
    # Two experiments on threads (hydra/launcher=spark): one session, a FAIR pool each, half
    # of the slots each for their sweeps, and every job a logs/spark.log.
    import threading

    from runner.cluster.spark import experiment, fair_share
    from runner.cluster.targets.local import local

    deploy = local("local[2]", app_name="tests", spark_conf={"spark.sql.shuffle.partitions": "2"})
    barrier = threading.Barrier(2)
    seen = {}

    def job(name):
        with experiment(name):
            session = build_session(deploy, tmp_path / name / "logs")
            barrier.wait()  # both running
            seen[name] = (session, session.sparkContext.getLocalProperty("spark.scheduler.pool"),
                          fair_share(4))
            barrier.wait()

    threads = [threading.Thread(target=job, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["a"][0] is seen["b"][0] is spark
    assert spark.conf.get("spark.scheduler.mode") == "FAIR"
    assert [seen[n][1:] for n in ("a", "b")] == [("a", 2), ("b", 2)]
    assert fair_share(4) == 4  # nobody else running
    assert all((tmp_path / n / "logs" / "spark.log").exists() for n in ("a", "b"))


def test_a_failed_shutdown_of_an_interrupted_py4j_connection_is_not_logged(spark, caplog):
    """After Ctrl-C, py4j logs closing the interrupted call's dead socket at ERROR with two
    tracebacks (seen in the chaos test); the one line that says how to resume is enough."""
    import logging

    logger = logging.getLogger("py4j.clientserver")
    with caplog.at_level(logging.ERROR, logger="py4j.clientserver"):
        logger.error("Exception occurred while shutting down connection")
        logger.error("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
