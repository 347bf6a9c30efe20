"""Composition mistakes are one ``error:`` line and exit 2, before Hydra makes a run dir."""

from __future__ import annotations

import pytest

from runner.config import composition
from runner.errors import RunnerError
from tests.conftest import compose_config, run_cli


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model=mlpp", "model=mlpp: no such option — use one of cnn, mlp"),
        ("search.n_trial=4", "did you mean search.n_trials?"),
        ("search.n_trials=abc", "search.n_trials: Value 'abc'"),
        ("search.n_trials=1.5", "search.n_trials: Value '1.5'"),
        ("foo=1", "foo: the config has no such key"),
        ("search.n_trials=[1,", "cannot read the override 'search.n_trials=[1,'"),
        ("+search.foo=1", "search.foo: search has no such key — use one of direction"),
        ("+search.n_trial=2", "did you mean search.n_trials?"),
        ("+unknown=1", "unknown: the config has no such key"),
        ("+experiment=nope", "experiment=nope: no such option — use one of digits_cnn"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2(tmp_path, override, expected):
    run_dir = tmp_path / "run"
    proc = run_cli([override, f"hydra.run.dir={run_dir}"], tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and expected in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert not run_dir.exists()


def test_a_multirun_with_a_bad_option_stops_before_any_job(tmp_path):
    proc = run_cli(["-m", "model=mlp,nope", f"hydra.sweep.dir={tmp_path / 'multi'}"], tmp_path,
                   timeout=60)
    assert proc.returncode == 2 and proc.stderr == "error: model=nope: no such option — use one of cnn, mlp, resnet, tabular, text_cnn, text_transformer\n"
    assert not (tmp_path / "multi").exists()


def test_hydra_full_error_leaves_the_report_to_hydra(monkeypatch):
    with pytest.raises(RunnerError):
        composition.check(["model=mlpp"])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    composition.check(["model=mlpp"])  # Hydra reports it, with its traceback


def test_help_lists_options_not_schemas(tmp_path):
    proc = run_cli(["--help"], tmp_path, timeout=60)
    assert proc.returncode == 0
    assert "model: cnn, mlp" in proc.stdout and "search: default, none" in proc.stdout
    assert "base_" not in proc.stdout


def test_the_command_line_wins_over_the_search_space():
    cfg = compose_config(["optimizer.lr=0.01"])
    assert composition.command_line_wins(cfg, ["optimizer.lr=0.01", "train.epochs=2"]) == [
        "optimizer.lr"]
    assert "optimizer.lr" not in cfg.search.params and "model.hidden" in cfg.search.params


def test_an_experiment_replaces_the_search_space():
    cfg = compose_config(["+experiment=digits_cnn"])
    assert set(cfg.search.params) == {"optimizer.lr", "model.channels", "model.dropout"}
    assert compose_config(["search=none"]).search.params == {}


def test_keys_no_schema_has_are_refused_but_search_params_are_free():
    composition.unknown_keys(compose_config(["+search.params.model.depth='range(1,3)'"]))
    with pytest.raises(RunnerError, match="search.foo: search has no such key"):
        composition.unknown_keys(compose_config(["+search.foo=1"]))


def test_a_whole_dict_with_new_keys_says_to_add_them_with_plus_plus(tmp_path):
    from tests.conftest import run_cli

    proc = run_cli(["deploy.spark_conf={spark.sql.shuffle.partitions:4}"], tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: deploy.spark_conf: a dict given as a whole is merged key by key; add new keys "
        "with ++: '++deploy.spark_conf={...}' (or one key: '++deploy.spark_conf.KEY=VALUE')"]
