"""The driver JVM's class archive: made once by one process, then mapped by later sessions."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from runner.cluster import class_cache

# A session in a fresh process: prints whether its driver JVM maps a class archive.
_SESSION = """
import sys
from pathlib import Path
from runner.cluster.spark import build_session
from runner.cluster.targets.local import local
spark = build_session(local("local[1]", app_name="class-cache"), Path(sys.argv[1]))
assert spark.range(3).count() == 3
maps = Path(f"/proc/{spark.sparkContext._gateway.proc.pid}/maps").read_text()
print("mapped" if "/spark-dl-runner/jvm/" in maps and ".jsa" in maps else "not mapped")
"""


def _session(tmp_path, env) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _SESSION, str(tmp_path / "logs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_second_session_maps_the_archive_the_first_one_left(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    folder = tmp_path / "cache" / "spark-dl-runner" / "jvm"
    assert _session(tmp_path, env) == "not mapped\n"  # and no JVM output in ours
    deadline = time.monotonic() + 180  # the JVM writes the archive after the process exits
    while not list(folder.glob("*.jsa")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [p.suffix for p in folder.iterdir()] == [".jsa"]  # published; claim released
    assert _session(tmp_path, env) == "mapped\n"


def test_one_process_makes_an_archive_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    options, pending = class_cache.java_options({})
    assert "-XX:ArchiveClassesAtExit=" in options and pending is not None
    assert class_cache.java_options({}) == ("", None)  # another maker: runs without
    class_cache.release(pending)
    again, pending = class_cache.java_options({})
    assert again == options
    claim = pending.with_name(pending.name.split(".")[0] + ".making")
    os.utime(claim, (0, 0))  # a maker that died an hour ago gives way
    assert class_cache.java_options({})[1] == pending


def test_a_user_archive_or_other_settings_get_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    own = {"spark.driver.extraJavaOptions": "-XX:SharedArchiveFile=/x.jsa"}
    assert class_cache.java_options(own) == ("", None)
    _, small = class_cache.java_options({"spark.driver.memory": "1g"})
    _, large = class_cache.java_options({"spark.driver.memory": "8g"})
    assert small is not None and large is not None and small.name != large.name
