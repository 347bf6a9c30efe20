"""``stages`` and ``train.enabled``: which subsets run, and clear errors for the rest."""

from __future__ import annotations

import pytest

from runner import pipeline
from runner import stages
from runner.errors import RunnerError
from tests.conftest import compose_config


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], ("preprocess", "sweep", "infer")),  # train.enabled=false: as before
        (["train.enabled=true"], ("preprocess", "sweep", "train", "infer")),
        (["stages=[preprocess,train,infer]", "train.enabled=true"], ("preprocess", "train", "infer")),
        (["stages=[preprocess,sweep]"], ("preprocess", "sweep")),
        (["stages=[preprocess]"], ("preprocess",)),
        (["stages=[infer]", "model_path=outputs/x"], ("infer",)),
    ],
)
def test_selected_stages(overrides, expected):
    cfg = compose_config(overrides)
    assert stages.validate(cfg) == []
    assert stages.selected(cfg) == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["stages=[preprocess,infer]"], "stages: infer needs a model; add sweep or train"),
        (["stages=[preprocess,train,infer]"], "set train.enabled=true"),
        (["stages=[sweep,infer]"], "stages: preprocess must be listed"),
        (["stages=[preprocess,infer,sweep]"], "in the order preprocess, sweep, train, infer"),
        (["stages=[preprocess,sweep,sweep]"], "must list each stage once"),
        (["stages=[preprocess,deploy]"], "stages: unknown stage 'deploy'"),
        (["model_path=outputs/x"], "model_path: only used with stages"),
    ],
)
def test_bad_stages_are_refused_before_spark(overrides, expected):
    with pytest.raises(RunnerError, match=expected):
        pipeline.validate(compose_config(overrides))


def test_train_settings_are_checked_only_when_train_runs():
    pipeline.validate(compose_config(["train.num_processes=0"]))
    with pytest.raises(RunnerError, match="train.num_processes"):
        pipeline.validate(compose_config(["train.num_processes=0", "train.enabled=true"]))
