"""DeployConfig -> SparkSession: the only place a session is built."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Quiet, small-data-friendly defaults; any of them can be overridden in deploy.conf.
_DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
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


def build_session(deploy: Any, log_dir: Path) -> "SparkSession":
    """Start (or reuse, when the deploy settings are unchanged) the experiment's session.

    Spark's own log goes to ``log_dir/spark.log``, not the terminal. The session is
    stopped when the process exits, so a multirun shares one session across jobs.
    """
    _require_java()
    conf = {**_DEFAULT_CONF, **{str(k): str(v) for k, v in deploy.conf.items()}}
    key = json.dumps({"master": deploy.master, "conf": conf}, sort_keys=True)
    if _active.get("key") == key:
        return _active["session"]
    stop_session()

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_dir.mkdir(parents=True, exist_ok=True)
    log4j = log_dir / "log4j2.properties"
    log4j.write_text(_LOG4J2.format(log_file=log_dir / "spark.log"))
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j}"
    conf["spark.driver.extraJavaOptions"] = " ".join(
        filter(None, [conf.get("spark.driver.extraJavaOptions"), java_opts])
    )

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(deploy.master).appName(deploy.app_name)
    for k, v in conf.items():
        builder = builder.config(k, v)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        with _stderr_to(log_dir / "spark.log"):
            session = builder.getOrCreate()
    except Exception as err:  # the JVM's own message is long; keep its first line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunnerError(
            f"deploy.master: could not start Spark at {deploy.master!r} ({first}); "
            "check deploy.master or use deploy=local"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    _active.update(key=key, session=session)
    return session


def stop_session() -> None:
    """Stop the session this module started, if any."""
    session = _active.pop("session", None)
    _active.pop("key", None)
    if session is not None:
        session.stop()


def task_slots(spark: "SparkSession") -> int:
    """How many tasks the cluster runs at once."""
    return max(1, spark.sparkContext.defaultParallelism)


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
