"""The wheel as a user gets it: built, installed into a fresh venv outside the repository, and
run as ``spark-dl-runner`` from a directory of the user's (the default experiment, then
``init`` and the starter project). No network: the venv sees this environment's packages
(torch, pyspark, ...) through ``--system-site-packages`` and installs only the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# ~1.5 min: a wheel, a venv and two small runs at once; on one worker, so one wheel and venv.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]

# Small and quick, and still a real test: 2 trials of 2 epochs on digits reach ~0.95.
FAST = ["search.n_trials=2", "train.epochs=2", "search.parallelism=2", "hydra.run.dir=run"]
_NOT_SOURCE = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                                     "outputs", "multirun", "spark-warehouse", "mlruns", ".venv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin/`` of a new venv with only the built wheel installed in it."""
    root = tmp_path_factory.mktemp("packaging")
    # Build from a copy, so the build/ and egg-info setuptools leaves stay out of the checkout.
    source = root / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_NOT_SOURCE)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"),
                    str(source)], check=True, cwd=root)
    (wheel,) = (root / "dist").glob("spark_dl_runner-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    # --ignore-installed: the venv gets its own copy and console script even where this
    # environment has the project installed (CI's editable install) under the same version.
    install = subprocess.run([str(venv / "bin" / "python"), *pip[1:], "install", "--no-deps",
                              "--no-index", "--ignore-installed", str(wheel)],
                             cwd=root, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (venv / "bin" / "spark-dl-runner").is_file(), install.stdout + install.stderr
    return venv / "bin"


def _user_env() -> dict[str, str]:
    """The environment of a user's shell: not this checkout on the path, no debugging flags."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    return {**env, "SPARK_LOCAL_IP": "127.0.0.1"}


def _start(bin_dir: Path, args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(bin_dir / "spark-dl-runner"), *args], cwd=cwd, env=_user_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs(installed, tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """The default experiment from an empty directory and the starter experiment from an
    ``init`` project, run at the same time (most of each is Spark's start and job latency):
    name -> (exit status, output, run dir)."""
    user = tmp_path_factory.mktemp("user")
    init = subprocess.run([str(installed / "spark-dl-runner"), "init", "mine"], cwd=user,
                          env=_user_env(), capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stdout + init.stderr
    project = user / "mine"
    started = {
        "default": (_start(installed, FAST, user), user / "run"),
        "project": (_start(installed, ["--config-dir", "conf", "+experiment=starter", *FAST],
                            project), project / "run"),
    }
    done = {}
    for name, (proc, run_dir) in started.items():
        output, _ = proc.communicate(timeout=300)
        done[name] = (proc.returncode, output, run_dir)
    return done


def test_the_wheel_holds_the_configs_and_imports_from_the_venv(installed, tmp_path):
    code = ("import runner, models, runner.conf; from importlib.resources import files; "
            "print(runner.__file__); print(models.__file__); "
            "print(files('runner.conf').joinpath('config.yaml').is_file())")
    proc = subprocess.run([str(installed / "python"), "-c", code], cwd=tmp_path,
                          env=_user_env(), capture_output=True, text=True, check=True)
    runner_file, models_file, has_config = proc.stdout.split()
    venv = str(installed.parent)
    assert runner_file.startswith(venv) and models_file.startswith(venv)  # not this checkout
    assert has_config == "True"


def test_the_default_experiment_runs_from_any_directory(runs):
    status, output, run_dir = runs["default"]
    assert status == 0, output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 2}
    assert summary["test_metrics"]["test_accuracy"] > 0.85
    assert (run_dir / "model" / "weights.pt").exists()


def test_init_then_a_run_from_the_new_project(runs):
    status, output, run_dir = runs["project"]
    assert status == 0, output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 2}
    model = json.loads((run_dir / "model" / "model.json").read_text())["model"]
    assert model["_target_"] == "mine.net.Net"
