"""A Spark standalone cluster on this machine: one Master and one Worker bound to 127.0.0.1.

``python -m runner.cluster start|stop|status`` (``just cluster``) keeps pid files, logs and
the cluster's settings (``cluster.json``) under ``outputs/cluster/``; tests start one on free
ports. ``status`` names a dead process; ``start`` restarts only what is missing: a dead
Worker alone (a running application's executors come back on it), or, with a dead Master,
both (a Worker only re-registers with a new Master after up to a minute). Both processes
come from the pip-installed pyspark (``bin/spark-class``), no SPARK_HOME needed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from runner.cluster.processes import pid_alive
from runner.errors import RunnerError

HOST = "127.0.0.1"
_ROLES = ("master", "worker")
_children: dict[int, "subprocess.Popen[bytes]"] = {}  # JVMs this process started, to reap


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its master URL and the two JVMs' process ids."""

    master_url: str
    master_pid: int
    worker_pid: int
    root: Path


def start(
    root: Path, port: int = 7077, cores: int = 2, memory: str = "2g", timeout_s: float = 60.0
) -> Cluster:
    """Start a Master on ``port`` and a Worker with ``cores``/``memory``; return once registered.
    With the Master of an earlier start still running under ``root``, only its Worker is
    started again, with that start's settings.

    Executors the Worker launches inherit this process's environment (``PYTHONPATH``,
    ``PYSPARK_PYTHON``), so they import the same project code.
    """
    alive = running(root)
    if len(alive) == len(_ROLES):
        raise RunnerError(
            f"cluster: one is already running under {root}; "
            "stop it first (python -m runner.cluster stop)"
        )
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOG_DIR": str(root),
        "SPARK_WORKER_DIR": str(root / "work"),
    }
    if "master" in alive:
        saved = json.loads((root / _SETTINGS).read_text())
        worker = _start_worker(
            root, env, saved["master_url"], saved["cores"], saved["memory"], timeout_s
        )
        return Cluster(saved["master_url"], alive["master"], worker.pid, root)
    stop(root)  # a Worker left without its Master
    if _listening(port):
        raise RunnerError(f"cluster: port {port} is taken; choose another with --port")
    root.mkdir(parents=True, exist_ok=True)
    master_url = f"spark://{HOST}:{port}"
    (root / _SETTINGS).write_text(
        json.dumps({"master_url": master_url, "cores": cores, "memory": memory})
    )
    master = _launch(
        root,
        "master",
        env,
        [
            "org.apache.spark.deploy.master.Master",
            "--host",
            HOST,
            "--port",
            str(port),
            "--webui-port",
            str(free_port()),
        ],
    )
    try:
        _wait(lambda: _listening(port), timeout_s, "the Master to listen", root / "master.log")
        worker = _start_worker(root, env, master_url, cores, memory, timeout_s)
    except BaseException:
        stop(root)
        raise
    return Cluster(master_url, master.pid, worker.pid, root)


def _start_worker(
    root: Path, env: dict[str, str], master_url: str, cores: int, memory: str, timeout_s: float
) -> "subprocess.Popen[bytes]":
    """A Worker for ``master_url``, returned once it registered."""
    log = root / "worker.log"
    registered = _read(log).count(_REGISTERED)  # a restarted Worker appends to the same log
    worker = _launch(
        root,
        "worker",
        env,
        [
            "org.apache.spark.deploy.worker.Worker",
            master_url,
            "--host",
            HOST,
            "--cores",
            str(cores),
            "--memory",
            memory,
            "--work-dir",
            str(root / "work"),
            "--webui-port",
            str(free_port()),
        ],
    )
    _wait(
        lambda: _read(log).count(_REGISTERED) > registered,
        timeout_s,
        "the Worker to register",
        log,
    )
    return worker


_REGISTERED = "Successfully registered with master"
_SETTINGS = "cluster.json"


def stop(root: Path, timeout_s: float = 20.0) -> list[int]:
    """Stop the Worker (and its executors), then the Master; return the pids stopped."""
    stopped = []
    for role in reversed(_ROLES):
        pid_file = root / f"{role}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            stopped.append(pid)
        _reap(pid)
        pid_file.unlink()
    return stopped


def running(root: Path) -> dict[str, int]:
    """Role -> pid of the processes under ``root`` that are alive."""
    return {role: pid for role, (pid, alive) in processes(root).items() if alive}


def processes(root: Path) -> dict[str, tuple[int, bool]]:
    """Role -> (pid, alive) of every process started under ``root`` and not stopped since."""
    out = {}
    for role in _ROLES:
        pid_file = root / f"{role}.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            out[role] = (pid, _alive(pid))
    return out


def status(root: Path) -> tuple[str, bool]:
    """One line on the cluster under ``root``, and whether all of it is alive."""
    found = processes(root)
    if not found:
        return "cluster: nothing running", True
    settings = root / _SETTINGS
    url = json.loads(settings.read_text())["master_url"] if settings.exists() else "?"
    parts = [
        f"{role} pid {pid} " + ("running" if alive else f"dead (see {root / f'{role}.log'})")
        for role, (pid, alive) in found.items()
    ]
    healthy = len(found) == len(_ROLES) and all(alive for _, alive in found.values())
    fix = "" if healthy else "; python -m runner.cluster start restarts what is missing"
    return f"cluster: {url}: {', '.join(parts)}{fix}", healthy


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _launch(root: Path, role: str, env: dict[str, str], args: list[str]) -> subprocess.Popen:
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    with open(root / f"{role}.log", "ab") as log:
        # spark-class execs java: the pid is the JVM's
        proc = subprocess.Popen(
            [str(spark_class), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    (root / f"{role}.pid").write_text(str(proc.pid))
    return proc


def _reap(pid: int) -> None:
    """Collect the exit status of a JVM this process started (no zombie left behind)."""
    proc = _children.pop(pid, None)
    if proc is not None:
        proc.wait()


def _wait(ready, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise RunnerError(
                f"cluster: timed out after {timeout_s:g} s waiting for {what}; see {log}"
            )
        time.sleep(0.2)


def _listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    proc = _children.get(pid)  # a child of ours that exited is a zombie until reaped
    return proc is None or proc.poll() is None


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.cluster", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", type=Path, default=Path("outputs/cluster"))
    parser.add_argument("--port", type=int, default=7077)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--memory", default="2g")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            cluster = start(args.dir.resolve(), args.port, args.cores, args.memory)
            print(
                f"cluster: {cluster.master_url} (master pid {cluster.master_pid}, worker pid "
                f"{cluster.worker_pid}); run with deploy=standalone "
                f"deploy.master={cluster.master_url}; logs in {args.dir}"
            )
        elif args.action == "stop":
            pids = stop(args.dir.resolve())
            print(f"cluster: stopped {pids}" if pids else "cluster: nothing running")
        else:
            line, healthy = status(args.dir.resolve())
            print(line)
            if not healthy:
                sys.exit(1)
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
