"""The driver JVM's class-data-sharing archive: a cold start maps Spark's classes from one
file instead of reading, parsing and verifying them from ~250 jars (JDK 13+, ``-Xshare``).

Per Java, Spark and classpath, one session's JVM (one at a time: a claim file) writes the
archive of the classes it loaded as it exits (``-XX:ArchiveClassesAtExit``, under a temp
name, ~15 s on 2 cores, after this process has exited); a detached process waits for that
JVM and publishes the archive by a rename, so no JVM ever maps a half-written one. Later
sessions map it (``-XX:SharedArchiveFile``): here the session's start 7.7 -> 3.3 s, a cold
``data=digits`` preparation 15 -> 10.5 s. The JVM's CDS logging is off: an archive it
cannot use (another JDK build, a changed jar) is ignored silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from runner.cluster.processes import pid_alive

_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
# Settings that shape the driver JVM's classpath or heap layout: part of the archive's key.
_KEYED_CONF = (
    "spark.driver.memory",
    "spark.driver.extraClassPath",
    "spark.driver.extraJavaOptions",
    "spark.jars",
    "spark.jars.packages",
)


def directory() -> Path:
    """Where archives are kept: ``$XDG_CACHE_HOME/spark-dl-runner/jvm`` (``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spark-dl-runner" / "jvm"


def java_options(conf: dict[str, str]) -> tuple[str, Path | None]:
    """The driver's JVM options for a session with ``conf``, and the temp archive this
    process's JVM will write at its exit (None: an archive is in use, another process is
    making it, or none can be made); :func:`publish` it once the JVM is started."""
    if "SharedArchiveFile" in conf.get("spark.driver.extraJavaOptions", ""):
        return "", None  # the user's own archive
    key = _key(conf)
    if key is None:
        return "", None
    archive = directory() / f"{key}.jsa"
    if archive.exists():
        return f"-XX:SharedArchiveFile={archive} {_QUIET}", None
    if not _claim(archive.with_suffix(".making")):
        return "", None
    pending = archive.with_name(f"{key}.{os.getpid()}.tmp")
    return f"-XX:ArchiveClassesAtExit={pending} {_QUIET}", pending


def publish(pending: Path, jvm_pid: int) -> None:
    """Move ``pending`` into place once the JVM ``jvm_pid`` has exited and written it, from
    a detached process: this one exits at once (the JVM exits as its stdin closes, then
    writes the archive for several seconds)."""
    import subprocess
    import sys

    subprocess.Popen(
        [sys.executable, "-m", __name__, str(jvm_pid), str(pending)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _await_and_rename(jvm_pid: int, pending: Path, timeout_s: float = 300.0) -> None:
    """Wait for ``jvm_pid`` to exit, then publish what it wrote; release the claim."""
    import time

    final = _sibling(pending, ".jsa")
    deadline = time.monotonic() + timeout_s
    while pid_alive(jvm_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not pid_alive(jvm_pid) and pending.exists() and pending.stat().st_size > 0:
        os.replace(pending, final)
    release(pending)


def release(pending: Path) -> None:
    """Give up making ``pending``'s archive (its JVM did not start, or is gone)."""
    pending.unlink(missing_ok=True)
    _sibling(pending, ".making").unlink(missing_ok=True)


def _sibling(pending: Path, suffix: str) -> Path:
    """The file of ``pending``'s key (``<key>.<pid>.tmp``) with ``suffix``."""
    return pending.with_name(pending.name.split(".")[0] + suffix)


def _claim(marker: Path, stale_s: float = 600.0) -> bool:
    """Whether this process makes the archive: one maker at a time per key (a marker file
    made exclusively; a maker that died without releasing it is replaced after ``stale_s``)."""
    import time

    marker.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            try:
                if time.time() - marker.stat().st_mtime < stale_s:
                    return False
                marker.unlink()
            except FileNotFoundError:
                pass
    return False


def _key(conf: dict[str, str]) -> str | None:
    """A hash of the Java binary, Spark's jars and the keyed settings; None without Java."""
    import pyspark

    home = os.environ.get("JAVA_HOME")
    java = Path(home) / "bin" / "java" if home else shutil.which("java")
    if java is None or not Path(java).exists():
        return None
    java = Path(java).resolve()
    jars = Path(pyspark.__file__).parent / "jars"
    listing = sorted((e.name, e.stat().st_size) for e in os.scandir(jars)) if jars.is_dir() else []
    blob = json.dumps(
        {
            "java": [str(java), java.stat().st_mtime_ns],
            "spark": [pyspark.__version__, listing],
            "conf": {k: conf.get(k) for k in _KEYED_CONF},
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


if __name__ == "__main__":  # publish's detached process: python -m ... JVM_PID PENDING
    import sys

    _await_and_rename(int(sys.argv[1]), Path(sys.argv[2]))
