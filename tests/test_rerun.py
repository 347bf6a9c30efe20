"""Rerunning a run dir: a finished one is left alone; a sweep resumes only with its settings."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from runner import rerun
from runner.errors import RunnerError
from tests.conftest import TINY, compose_config, run_cli


def _started_sweep(run_dir, overrides):
    """A run dir whose sweep began with ``overrides`` (as a crash would leave it)."""
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose_config(overrides), run_dir / ".hydra" / "config.yaml")
    (run_dir / "study.journal").write_text("")


def test_a_resume_may_change_the_trial_count_and_parallelism(tmp_path):
    _started_sweep(tmp_path, TINY)
    cfg = compose_config([*TINY, "search.n_trials=9", "search.parallelism=1",
                          f"data.cache_dir={tmp_path}"])
    assert rerun.check(tmp_path, cfg) is None


def test_a_resume_with_other_trial_settings_names_every_changed_key(tmp_path):
    _started_sweep(tmp_path, TINY)
    cfg = compose_config([*TINY, "train.epochs=40", "search.seed=7"])
    with pytest.raises(RunnerError) as refused:
        rerun.check(tmp_path, cfg)
    assert ("changed: search.sampler.seed (0 -> 7), search.seed (0 -> 7), train.epochs (3 -> 40);"
            in str(refused.value))


def test_a_run_dir_without_a_sweep_is_not_checked(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(compose_config(TINY), tmp_path / ".hydra" / "config.yaml")
    assert rerun.check(tmp_path, compose_config([*TINY, "train.epochs=40"])) is None


@pytest.mark.slow
def test_the_cli_refuses_a_changed_resume_before_spark_and_keeps_the_saved_config(tmp_path):
    run_dir = tmp_path / "run"
    _started_sweep(run_dir, TINY)
    saved = (run_dir / ".hydra" / "config.yaml").read_bytes()
    proc = run_cli([*TINY, "train.epochs=40", f"hydra.run.dir={run_dir}"], tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: hydra.run.dir=") and "train.epochs (3 -> 40)" in proc.stderr
    assert proc.stdout == "" and not (run_dir / "logs").exists()  # Spark never started
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == saved


@pytest.mark.slow
def test_the_cli_leaves_a_finished_run_alone(tmp_path):
    run_dir = tmp_path / "run"
    _started_sweep(run_dir, TINY)
    (run_dir / "summary.json").write_text("{}")
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    proc = run_cli([*TINY, f"hydra.run.dir={run_dir}"], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        (f"{run_dir} is a finished run: nothing to do (its report: {run_dir / 'report.html'}); "
         "for a new run, choose another hydra.run.dir")]
    assert proc.stderr == ""
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
