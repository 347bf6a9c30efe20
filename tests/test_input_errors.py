"""Bad input outside the config's keys (where a run writes, what its data holds) is one
``error:`` line naming the key and the fix, exit 2, no traceback and no finished-looking run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

FAST = ["search.n_trials=2", "train.epochs=2", "stages=[preprocess]"]


def _one_line(proc, *expected: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr


def _unwritable(tmp_path: Path) -> Path:
    """A directory this user cannot create entries in (root ignores modes: use sysfs)."""
    if os.geteuid() == 0:
        return Path("/sys")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    return read_only


def test_a_run_dir_that_cannot_be_created(tmp_path):
    run_dir = _unwritable(tmp_path) / "spark-dl-runner-test" / "run"
    proc = run_cli([*FAST, f"hydra.run.dir={run_dir}"], tmp_path, timeout=60)
    _one_line(proc, f"hydra.run.dir={run_dir}: cannot create it", "set hydra.run.dir to")
    assert not run_dir.exists()


def test_a_run_dir_under_a_file(tmp_path):
    (tmp_path / "rows.csv").write_text("a,label\n1,0\n")
    proc = run_cli([*FAST, f"hydra.run.dir={tmp_path / 'rows.csv' / 'run'}"], tmp_path,
                   timeout=60)
    _one_line(proc, "rows.csv is a file, not a directory", "set hydra.run.dir to")


def test_a_multirun_sweep_dir_that_cannot_be_created(tmp_path):
    sweep_dir = _unwritable(tmp_path) / "spark-dl-runner-test" / "multi"
    proc = run_cli(["-m", *FAST, "model=mlp,cnn", f"hydra.sweep.dir={sweep_dir}"], tmp_path,
                   timeout=60)
    _one_line(proc, "hydra.sweep.dir=", "cannot create it")


def test_inference_data_without_a_path_names_its_key(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["data@inference.data=csv", f"hydra.run.dir={run_dir}"], tmp_path,
                   timeout=60)
    _one_line(proc, "inference.data.path: required", "set inference.data.path=")
    assert not (run_dir / "logs").exists()  # refused before Spark started


def test_an_empty_data_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    run_dir = tmp_path / "run"
    proc = run_cli([*FAST, "data=csv", f"data.path={tmp_path / 'empty'}",
                    f"hydra.run.dir={run_dir}"], tmp_path, timeout=60)
    _one_line(proc, "data.path:", "holds no data files")
    assert not (run_dir / "logs").exists() and not (run_dir / "summary.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_data_file_without_read_permission(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,label\n1,0\n")
    rows.chmod(0)
    proc = run_cli([*FAST, "data=csv", f"data.path={rows}", f"hydra.run.dir={tmp_path / 'run'}"],
                   tmp_path, timeout=60)
    _one_line(proc, "data.path:", "not readable")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "content", "data", "expected"),
    [
        ("header.csv", "a,b,label\n", "csv", ["no rows with a value in the label column",
                                              "data.path"]),
        ("rows.parquet", "not a parquet file\n", "parquet",
         ["data.path: cannot read", "CANNOT_READ_FILE_FOOTER", "data.format"]),
    ],
)
def test_data_spark_cannot_use(tmp_path, name, content, data, expected):
    (tmp_path / name).write_text(content)
    run_dir = tmp_path / "run"
    proc = run_cli([*FAST, f"data={data}", f"data.path={tmp_path / name}",
                    f"hydra.run.dir={run_dir}", f"data.cache_dir={tmp_path / 'cache'}"],
                   tmp_path, timeout=180)
    _one_line(proc, *expected)
    assert "occurred while calling" not in proc.stderr
    assert not (run_dir / "summary.json").exists()


def test_help_lists_no_schemas_even_with_hydra_full_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run([sys.executable, "-m", "runner", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "model: cnn, mlp" in proc.stdout
    assert "base_" not in proc.stdout


def test_a_bad_option_with_help_is_one_line(tmp_path):
    _one_line(run_cli(["model=mlpp", "--help"], tmp_path, timeout=60), "model=mlpp: no such option")
