"""DeployConfig -> SparkSession: the only place a session is built."""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Quiet, small-data-friendly defaults; any of them can be overridden in deploy.spark_conf.
_DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
}
# Over Spark Connect only session-level (SQL) settings can be set by the client.
_CONNECT_DEFAULTS = {
    "spark.sql.shuffle.partitions": _DEFAULT_CONF["spark.sql.shuffle.partitions"],
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n
"""

_active: dict[str, Any] = {}

_GPU_DISCOVERY = Path(__file__).with_name("gpu_discovery.sh")


def target_settings(deploy: Any) -> dict[str, str]:
    """The ``spark.*`` settings a deploy config maps to (before ``deploy.spark_conf``)."""
    return _TARGETS[_schema_name(deploy)](deploy)


def build_session(deploy: Any, log_dir: Path) -> "SparkSession":
    """Start (or reuse, when the deploy settings are unchanged) the experiment's session.

    Spark's own log goes to ``log_dir/spark.log``, not the terminal. The session is
    stopped when the process exits, so a multirun shares one session across jobs.
    A master that does not answer within ``deploy.connect_timeout_s`` is a RunnerError.
    """
    connect = _is_connect_url(deploy.master)
    defaults = _CONNECT_DEFAULTS if connect else _DEFAULT_CONF
    conf = {**defaults, **target_settings(deploy),
            **{str(k): str(v) for k, v in deploy.spark_conf.items()}}
    key = json.dumps({"master": deploy.master, "conf": conf}, sort_keys=True)
    if _active.get("key") == key:
        return _active["session"]
    _probe_master(deploy)
    stop_session()

    from pyspark.sql import SparkSession

    logging.getLogger("py4j").setLevel(logging.WARNING)
    if connect:
        session = _start(SparkSession.builder.remote(deploy.master), deploy, conf)
    else:
        _require_java()
        os.environ["PYSPARK_PYTHON"] = deploy.get("python") or sys.executable
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        log_dir.mkdir(parents=True, exist_ok=True)
        log4j = log_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log_file=log_dir / "spark.log"))
        java_opts = f"-Dlog4j2.configurationFile=file:{log4j}"
        conf["spark.driver.extraJavaOptions"] = " ".join(
            filter(None, [conf.get("spark.driver.extraJavaOptions"), java_opts])
        )
        with _stderr_to(log_dir / "spark.log"):
            session = _start(SparkSession.builder.master(deploy.master), deploy, conf)
        session.sparkContext.setLogLevel("ERROR")
        if "executor_wait_s" in deploy:
            _await_executor(session, deploy)
    _active.update(key=key, session=session)
    return session


def stop_session() -> None:
    """Stop the session this module started, if any."""
    session = _active.pop("session", None)
    _active.pop("key", None)
    if session is not None:
        session.stop()


def is_connect(spark: "SparkSession") -> bool:
    """Whether ``spark`` is a Spark Connect client (no SparkContext, no RDD API)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def long_columns(*names: str):
    """A schema of ``long`` columns, built in Python: parsing a DDL string instead is a
    round trip to the JVM (~20 ms here)."""
    from pyspark.sql.types import LongType, StructField, StructType

    return StructType([StructField(name, LongType()) for name in names])


def task_slots(spark: "SparkSession", default: int | None = None) -> int:
    """How many tasks the cluster runs at once.

    Spark Connect has no SparkContext to ask: ``spark.default.parallelism`` (set by
    ``deploy.task_slots``) answers there, else ``default``, else the caller must be told.
    """
    if not is_connect(spark):
        return max(1, spark.sparkContext.defaultParallelism)
    slots = spark.conf.get("spark.default.parallelism", None)
    if slots is None:
        if default is not None:
            return default
        raise RunnerError(
            "search.parallelism: a Spark Connect session cannot report its task slots; "
            "set search.parallelism or deploy.task_slots"
        )
    return max(1, int(slots))


def _start(builder: Any, deploy: Any, conf: dict[str, str]) -> "SparkSession":
    builder = builder.appName(deploy.app_name)
    for k, v in conf.items():
        builder = builder.config(k, v)
    try:
        return builder.getOrCreate()
    except Exception as err:  # the JVM's own message is long; keep its first line
        raise RunnerError(
            f"deploy.master: could not start Spark at {deploy.master!r} ({_first_line(err)}); "
            "check deploy.master or use deploy=local"
        ) from None


def _probe_master(deploy: Any) -> None:
    """Fail fast when nothing listens at the master's host:port (Spark would retry for minutes)."""
    address = _master_address(deploy.master)
    if address is None:
        return
    try:
        socket.create_connection(address, timeout=deploy.connect_timeout_s).close()
    except OSError as err:
        raise RunnerError(
            f"deploy.master: nothing answers at {deploy.master} within "
            f"{deploy.connect_timeout_s:g} s ({err.strerror or type(err).__name__}); start the "
            "cluster (just cluster), fix deploy.master, or use deploy=local"
        ) from None


def _await_executor(spark: "SparkSession", deploy: Any) -> None:
    """Wait until at least one executor has registered; a cluster without workers is an error."""
    tracker = spark.sparkContext._jsc.sc().statusTracker()
    deadline = time.monotonic() + deploy.executor_wait_s
    while len(tracker.getExecutorInfos()) < 2:  # the driver counts as one
        if time.monotonic() > deadline:
            spark.stop()
            raise RunnerError(
                f"deploy.master: no executor registered with {deploy.master} within "
                f"{deploy.executor_wait_s:g} s; check that the cluster has a worker with free "
                "cores and memory, or raise deploy.executor_wait_s"
            )
        time.sleep(0.2)


def _master_address(master: str) -> tuple[str, int] | None:
    """``(host, port)`` of a remote master URL; None for local masters and YARN."""
    match = re.match(r"^(?:spark|sc|k8s://https?)://\[?([^\]/:]+)\]?:(\d+)", master)
    return (match.group(1), int(match.group(2))) if match else None


def _is_connect_url(master: str) -> bool:
    return master.startswith("sc://")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _schema_name(deploy: Any) -> str:
    """The ``base_<name>`` schema a deploy config was built from ("deploy" for a plain dict)."""
    from omegaconf import OmegaConf

    from runner.config import DEPLOY_SCHEMAS

    node_type = OmegaConf.get_type(deploy) if OmegaConf.is_config(deploy) else None
    names = {schema: name for name, schema in DEPLOY_SCHEMAS.items()}
    return names.get(node_type, "deploy")


def _none(deploy: Any) -> dict[str, str]:
    return {}


def _executors(deploy: Any) -> dict[str, str]:
    """Executor sizes and GPUs, common to every cluster target.

    No default task GPU amount: trials ask for theirs (``deploy.gpus_per_trial``) through a
    task resource profile, which Spark allows only when the default is left unset.
    """
    conf = {}
    if deploy.executor_cores is not None:
        conf["spark.executor.cores"] = str(deploy.executor_cores)
    if deploy.executor_memory is not None:
        conf["spark.executor.memory"] = str(deploy.executor_memory)
    if deploy.gpus_per_executor > 0:
        script = deploy.gpu_discovery_script or str(_GPU_DISCOVERY)
        conf.update({
            "spark.executor.resource.gpu.amount": str(deploy.gpus_per_executor),
            "spark.executor.resource.gpu.discoveryScript": script,
        })
    return conf


def _local_cluster(deploy: Any) -> dict[str, str]:
    """The embedded Worker owns the GPUs (all on it: several workers would claim the same)."""
    conf = _executors(deploy)
    if deploy.gpus_per_executor > 0:
        conf["spark.worker.resource.gpu.amount"] = str(deploy.gpus_per_executor * deploy.executors)
        conf["spark.worker.resource.gpu.discoveryScript"] = conf[
            "spark.executor.resource.gpu.discoveryScript"]
    return conf


def _standalone(deploy: Any) -> dict[str, str]:
    conf = _executors(deploy)
    if deploy.cores_max is not None:
        conf["spark.cores.max"] = str(deploy.cores_max)
    return conf


def _yarn(deploy: Any) -> dict[str, str]:
    conf = {**_executors(deploy), "spark.executor.instances": str(deploy.executors)}
    if deploy.queue:
        conf["spark.yarn.queue"] = deploy.queue
    return conf


def _k8s(deploy: Any) -> dict[str, str]:
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(deploy, "image"):
        raise RunnerError("deploy.image: deploy=k8s needs the executors' container image; "
                          "set deploy.image=REGISTRY/IMAGE:TAG")
    conf = {
        **_executors(deploy),
        "spark.kubernetes.container.image": deploy.image,
        "spark.kubernetes.namespace": deploy.namespace,
        "spark.executor.instances": str(deploy.executors),
    }
    if deploy.gpus_per_executor > 0:
        conf["spark.executor.resource.gpu.vendor"] = deploy.gpu_vendor
    return conf


def _connect(deploy: Any) -> dict[str, str]:
    if deploy.task_slots is None:
        return {}
    return {"spark.default.parallelism": str(deploy.task_slots)}


# schema name (runner.config.DEPLOY_SCHEMAS) -> its spark.* settings
_TARGETS = {
    "deploy": _none,
    "local": _none,
    "local_cluster": _local_cluster,
    "standalone": _standalone,
    "yarn": _yarn,
    "k8s": _k8s,
    "connect": _connect,
}


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to ``path`` while the JVM starts.

    The JVM and the Python workers it forks inherit that descriptor, so their
    console noise lands in the log file instead of the user's terminal.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return
    if shutil.which("java") is None:
        raise RunnerError(
            "Java not found: Spark needs Java 17 or newer; install it (e.g. apt-get install "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )


atexit.register(stop_session)
