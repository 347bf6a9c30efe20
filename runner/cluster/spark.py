"""A deploy target -> SparkSession: the only place a session is built."""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.cluster import class_cache
from runner.errors import RunIncomplete, RunnerError, first_line

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from runner.cluster.targets import Target

# Quiet, small-data-friendly defaults; any of them can be overridden in deploy.spark_conf.
_SPARK_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.python.worker.reuse": "true",
    # Concurrent experiments (hydra/launcher=spark) each submit to their own pool.
    "spark.scheduler.mode": "FAIR",
}
# ...and SQL settings, the only ones a Spark Connect client can set.
_SQL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # A write partitioned by a few values (inference.partition_by into a table) keeps a
    # writer per value open instead of sorting every task's rows by them first (-3 s of
    # 14 s when the prepared splits, 10M rows, were written so).
    "spark.sql.maxConcurrentOutputFileWriters": "4",
    # The optimizer would evaluate every projection over an in-memory table (a scikit-learn
    # data set, a pandas frame) on the driver, interpreted: planning digits' prepared rows
    # took 0.8-1.4 s of a 1 s job. Spark's own test suites exclude the rule too.
    "spark.sql.optimizer.excludedRules": (
        "org.apache.spark.sql.catalyst.optimizer.ConvertToLocalRelation"
    ),
    # pyspark records the Python call site of every DataFrame call for error messages (and
    # imports IPython to do so, 0.5 s); ours are one line naming the key.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
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

_active: dict[str, Any] = {}  # key, session, log (the session's spark.log)
_active_jvm: dict[str, Path] = {}  # archive: the class archive the driver JVM writes at exit
_running: dict[int, str] = {}  # thread id -> the experiment it runs (its FAIR pool)
_lock = threading.RLock()


def build_session(target: "Target", log_dir: Path) -> "SparkSession":
    """Start (or reuse, when the settings are unchanged) the session of a deploy target.

    Spark's own log goes to ``log_dir/spark.log``, not the terminal; a job that reuses the
    session gets a link there to the session's log. The session is stopped when the process
    exits, so a multirun shares one session across jobs; jobs running at once (on threads)
    must agree on it. A master that does not answer within ``deploy.connect_timeout_s`` is a
    RunnerError.
    """
    deploy = target.cfg
    defaults = _SQL_DEFAULTS if target.remote else {**_SPARK_DEFAULTS, **_SQL_DEFAULTS}
    conf = {
        **defaults,
        **target.spark_conf(),
        **{str(k): str(v) for k, v in deploy.spark_conf.items()},
    }
    key = json.dumps({"master": deploy.master, "conf": conf}, sort_keys=True)
    with _lock:  # concurrent jobs build one session
        if _active.get("key") == key:
            _link_log(_active["log"], log_dir)
        elif _active and len(_running) > 1:
            raise RunnerError(
                f"deploy: this job's settings differ from those of the Spark application "
                f"the concurrent jobs share ({deploy.master}); give every job of the multirun "
                "the same deploy settings, or run it with hydra.launcher.parallelism=1"
            )
        else:
            _active.update(
                key=key,
                session=_build(target, log_dir, conf),
                log=log_dir / "spark.log",
                deploy=deploy,
            )
        session = _active["session"]
    name = _running.get(threading.get_ident())
    if name is not None and not target.remote:
        session.sparkContext.setLocalProperty("spark.scheduler.pool", name)
    return session


@contextmanager
def experiment(name: str) -> Iterator[None]:
    """This thread runs experiment ``name``: its Spark jobs go to the FAIR scheduler pool
    ``name``, and experiments running at once share the task slots (:func:`fair_share`)."""
    ident = threading.get_ident()
    with _lock:
        _running[ident] = name
    try:
        yield
    finally:
        with _lock:
            _running.pop(ident, None)


def fair_share(slots: int) -> int:
    """This experiment's part of ``slots`` when others run beside it in this process."""
    return max(1, slots // max(1, len(_running)))


def _build(target: "Target", log_dir: Path, conf: dict[str, str]) -> "SparkSession":
    deploy = target.cfg
    _probe_master(deploy)
    stop_session()

    from pyspark.sql import SparkSession

    logging.getLogger("py4j").setLevel(logging.WARNING)
    if target.remote:
        session = _start(SparkSession.builder.remote(deploy.master), deploy, conf)
        _bound_retries(session, deploy.connect_timeout_s)
        return session
    _require_java()
    os.environ["PYSPARK_PYTHON"] = deploy.python or sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_dir.mkdir(parents=True, exist_ok=True)
    log4j = log_dir / "log4j2.properties"
    log4j.write_text(_LOG4J2.format(log_file=log_dir / "spark.log"))
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j}"
    shared, pending = _class_sharing(deploy, conf)
    conf["spark.driver.extraJavaOptions"] = " ".join(
        filter(None, [conf.get("spark.driver.extraJavaOptions"), shared, java_opts])
    )
    with _stderr_to(log_dir / "spark.log"), _registration_bound(deploy) as gave_up:
        try:
            session = _start(SparkSession.builder.master(deploy.master), deploy, conf)
        except RunnerError:
            if pending is not None:
                class_cache.release(pending)
            if not gave_up.is_set():
                raise
            raise RunnerError(
                f"deploy.master: {deploy.master} answers but did not take the application "
                f"within {deploy.connect_timeout_s:g} s (+{REGISTER_MARGIN_S:g} s); is it a Spark "
                "master? Fix deploy.master, start the cluster (just cluster), or use deploy=local"
            ) from None
    session.sparkContext.setLogLevel("ERROR")
    if pending is not None:
        _active_jvm["archive"] = pending
    _plain_interrupt()
    if target.waits_for_executors:
        _await_executor(session, deploy)
    return session


def _class_sharing(deploy: Any, conf: dict[str, str]) -> tuple[str, Path | None]:
    """The driver JVM's class-data-sharing options (``deploy.class_cache``), and the archive
    it will write at exit; none once this process's JVM runs (its options are set)."""
    from pyspark import SparkContext

    if not deploy.class_cache or SparkContext._gateway is not None:
        return "", None
    return class_cache.java_options(conf)


def _at_exit() -> None:
    """Stop the session; publish the class archive this process's JVM writes as it exits."""
    stop_session()
    archive = _active_jvm.pop("archive", None)
    if archive is None:
        return
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is not None and getattr(gateway, "proc", None) is not None:
        class_cache.publish(archive, gateway.proc.pid)
    else:
        class_cache.release(archive)


def _plain_interrupt() -> None:
    """Ctrl-C raises KeyboardInterrupt where the main thread is, as in any program.

    pyspark's own SIGINT handler cancels the jobs over the py4j connection the main thread is
    blocked on (a reentrant call: pages of py4j tracebacks); stopping the session cancels
    them instead. py4j logs the interrupted call, and its retries on a connection the
    interrupt closed, with tracebacks on the root logger (its own loggers are set to
    WARNING): those records are dropped; a real failure still raises.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_ctrl_c)
    logging.getLogger().addFilter(_not_py4j_on_root)
    # The interrupted call's connection is shut down over a socket the Ctrl-C (sent to the
    # whole process group, the driver JVM included) may have closed: py4j logs that at ERROR
    # with two tracebacks. Nothing is lost by closing a dead connection.
    logging.getLogger("py4j.clientserver").addFilter(_not_a_failed_shutdown)


_ctrl_c = threading.Event()


def _on_ctrl_c(signum: int, frame: Any) -> None:
    _ctrl_c.set()
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether Ctrl-C was pressed, even where the KeyboardInterrupt was lost: py4j closes the
    interrupted call's connection inside its ``except KeyboardInterrupt``, and when that fails
    its own error replaces the interrupt (a Spark job failure to whoever catches it)."""
    return _ctrl_c.is_set()


def _not_a_failed_shutdown(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Exception occurred while shutting down")


def _not_py4j_on_root(record: logging.LogRecord) -> bool:
    return not (record.name == "root" and f"{os.sep}py4j{os.sep}" in record.pathname)


def _link_log(session_log: Path, log_dir: Path) -> None:
    """``log_dir/spark.log`` -> the shared session's log (a job that reuses the session)."""
    link = log_dir / "spark.log"
    if not session_log.exists() or link.absolute() == session_log.absolute():
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(session_log.absolute())


def stop_session() -> None:
    """Stop the session this module started, if any (a Connect session whose server is gone:
    without asking it to release the session, which would only be retried)."""
    session = _active.pop("session", None)
    deploy = _active.get("deploy")
    _active.clear()
    if session is None:
        return
    if is_connect(session) and deploy is not None and not _answers(deploy):
        _give_up_on(session)
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
            f"deploy.master: could not start Spark at {deploy.master!r} ({first_line(err)}); "
            "check deploy.master or use deploy=local"
        ) from None


REGISTER_MARGIN_S = 5.0  # beyond deploy.connect_timeout_s, for the driver to register


@contextmanager
def _registration_bound(deploy: Any) -> Iterator[threading.Event]:
    """Bound a standalone driver's registration with its master to ``connect_timeout_s`` +
    a margin, counted from the JVM's start. A port that answers but is not a Spark master
    would otherwise hold the start for ~60 s (Spark's own 3 x 20 s registration retries):
    past the bound the driver JVM is stopped, so the start fails; the event says so."""
    gave_up = threading.Event()
    if not deploy.master.startswith("spark://"):
        yield gave_up
        return

    def watch(done: threading.Event) -> None:
        from pyspark import SparkContext

        while SparkContext._gateway is None:  # the JVM is starting (seconds on a busy host)
            if done.wait(0.1):
                return
        if done.wait(deploy.connect_timeout_s + REGISTER_MARGIN_S):
            return
        gateway = SparkContext._gateway
        gave_up.set()
        logging.getLogger().addFilter(_not_py4j_on_root)  # py4j's tracebacks of the dead JVM
        proc = getattr(gateway, "proc", None)
        if proc is not None:
            proc.kill()

    try:
        with _watching(watch):
            yield gave_up
    finally:
        if gave_up.is_set():  # the dead JVM's gateway must not serve a later session
            from pyspark import SparkContext

            SparkContext._gateway = None
            SparkContext._jvm = None


CONNECT_BACKOFF_MS = (50, 4.0, 2000)  # a Connect client's first wait, its growth, its cap


def _bound_retries(session: "SparkSession", seconds: float) -> None:
    """Make a Connect client give up on a server that stopped answering after about
    ``seconds`` (``deploy.connect_timeout_s``), where its default policy retries for about
    ten minutes (15 retries, waits growing to 60 s), and ``session.stop()`` as long again."""
    import warnings

    from pyspark.sql.connect.client.retries import DefaultPolicy

    warnings.filterwarnings("ignore", message=r"\[RETRIES_EXCEEDED\]")  # the error says so
    first, growth, cap = CONNECT_BACKOFF_MS
    retries, waited, wait = 0, 0.0, float(first)
    while waited < seconds * 1000:
        waited, wait, retries = waited + min(wait, cap), wait * growth, retries + 1
    policy = DefaultPolicy(
        max_retries=retries, initial_backoff=first, backoff_multiplier=growth, max_backoff=cap
    )
    session.client.set_retry_policies([policy])


def server_lost(deploy: Any, run_dir: Path) -> RunIncomplete | None:
    """The error of a run whose remote master (a Spark Connect server) stopped answering,
    or None while it answers."""
    if _answers(deploy):
        return None
    session = _active.get("session")
    if session is not None and is_connect(session):
        _give_up_on(session)
    return RunIncomplete(
        f"deploy.master: the server at {deploy.master} stopped answering; restart it, then "
        f"rerun the same command with hydra.run.dir={run_dir} to resume"
    )


def _give_up_on(session: "SparkSession") -> None:
    """No more calls to a Connect server that is gone: none retried (the client's pending
    release calls would each retry for ``connect_timeout_s`` as the process exits), and
    ``stop()`` does not ask it to release the session."""
    _bound_retries(session, 0)
    session.release_session_on_close = False  # type: ignore[attr-defined]


def _answers(deploy: Any) -> bool:
    """Whether something listens at the master's host:port (always, for a local master)."""
    address = _master_address(deploy.master)
    if address is None:
        return True
    try:
        socket.create_connection(address, timeout=deploy.connect_timeout_s).close()
    except OSError:
        return False
    return True


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


EXECUTOR_POLL_S = 1.0  # how often a watched job's executors are counted


@contextmanager
def executors_watched(
    spark: "SparkSession", target: "Target", say: Callable[[str], None]
) -> Iterator[threading.Event]:
    """Watch a cluster's executors while the block runs its Spark jobs. When none is left,
    ``say`` gets a ``warning:`` line (and a ``note:`` when one is back); when none came back
    within ``deploy.executor_wait_s``, every job is cancelled (Spark itself would wait for
    executors forever) and the event is set, so the caller says why its job failed.
    A target without executors of its own (``local[N]``, Spark Connect) is not watched."""
    gave_up = threading.Event()
    if not target.waits_for_executors or is_connect(spark):
        yield gave_up
        return
    deploy = target.cfg
    tracker = spark.sparkContext._jsc.sc().statusTracker()

    def watch(done: threading.Event) -> None:
        gone_since: float | None = None
        while not done.wait(EXECUTOR_POLL_S):
            try:
                executors = len(tracker.getExecutorInfos()) - 1  # the driver counts as one
            except Exception:  # the session is stopping
                return
            if executors > 0 and gone_since is not None:
                say(f"note: {executors} executor(s) registered again with {deploy.master}")
                gone_since = None
            elif executors == 0 and gone_since is None:
                gone_since = time.monotonic()
                say(
                    f"warning: no executor left at {deploy.master}; waiting up to "
                    f"{deploy.executor_wait_s:g} s (deploy.executor_wait_s) for one to register"
                )
            elif gone_since is not None and time.monotonic() - gone_since > deploy.executor_wait_s:
                gave_up.set()
                spark.sparkContext.cancelAllJobs()
                return

    with _watching(watch):
        yield gave_up


@contextmanager
def _watching(watch: Callable[[threading.Event], None]) -> Iterator[None]:
    """``watch(done)`` on a daemon thread while the block runs; ``done`` is set as it ends."""
    done = threading.Event()
    thread = threading.Thread(target=watch, args=(done,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def executors_gone(deploy: Any, run_dir: Path) -> RunIncomplete:
    """The error of a run whose executors were all gone for ``deploy.executor_wait_s``."""
    return RunIncomplete(
        f"deploy.master: no executor left at {deploy.master} for {deploy.executor_wait_s:g} s "
        "(deploy.executor_wait_s); restart the cluster's workers (python -m runner.cluster "
        f"status, start), then rerun the same command with hydra.run.dir={run_dir} to resume"
    )


def _master_address(master: str) -> tuple[str, int] | None:
    """``(host, port)`` of a remote master URL; None for local masters and YARN."""
    match = re.match(r"^(?:spark|sc|k8s://https?)://\[?([^\]/:]+)\]?:(\d+)", master)
    return (match.group(1), int(match.group(2))) if match else None


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


atexit.register(_at_exit)
