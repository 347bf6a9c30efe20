"""The sweep fans trials out to executors and isolates their failures."""

from __future__ import annotations

import json
import os

import pytest

from runner import preprocess, sweep
from runner.errors import RunnerError


@pytest.fixture
def prepared(spark, cfg, tmp_path):
    return preprocess.run(spark, cfg.data, tmp_path / "cache")


def test_trials_run_in_executor_processes(spark, cfg, prepared, tmp_path):
    cfg.search.n_trials = 4
    seen = []
    result = sweep.run(spark, prepared, cfg, tmp_path, on_trial=lambda o, p: seen.append(o.number))
    assert sorted(seen) == [0, 1, 2, 3]
    assert [t.number for t in result.trials] == [0, 1, 2, 3]
    assert all(t.state == "COMPLETE" for t in result.trials)
    assert all(t.pid != os.getpid() for t in result.trials)
    assert result.best.metrics["val_accuracy"] == max(
        t.metrics["val_accuracy"] for t in result.trials
    )
    assert result.parallelism == 2
    for n, params in result.params.items():
        assert set(params) == {"optimizer.lr", "model.hidden", "train.batch_size"}
    assert (tmp_path / "study.journal").exists()


def test_params_are_applied_to_the_trial_config(cfg):
    sections = sweep.trial_config(cfg, {"model.hidden": 7, "optimizer.lr": 0.5})
    assert sections["model"]["hidden"] == 7 and sections["optimizer"]["lr"] == 0.5
    assert cfg.model.hidden != 7


def test_a_failing_trial_does_not_stop_the_sweep(spark, cfg, prepared, tmp_path):
    cfg.search.sampler = "grid"
    cfg.search.params = {"optimizer.lr": "choice(0.01, -1.0)"}
    result = sweep.run(spark, prepared, cfg, tmp_path)
    states = {json.dumps(result.params[t.number]): t.state for t in result.trials}
    assert states == {'{"optimizer.lr": 0.01}': "COMPLETE", '{"optimizer.lr": -1.0}': "FAIL"}
    assert result.counts == {"COMPLETE": 1, "FAIL": 1}


def test_sweep_fails_only_when_every_trial_fails(spark, cfg, prepared, tmp_path):
    cfg.search.params = {"optimizer.lr": "choice(-1.0, -2.0)"}
    with pytest.raises(RunnerError, match="all 2 trials failed"):
        sweep.run(spark, prepared, cfg, tmp_path)
