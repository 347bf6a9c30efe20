"""The config schema: groups compose, types and unknown keys are checked."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from runner.config import CNNConfig, MLPConfig, SearchConfig
from runner.errors import RunnerError
from runner.pipeline import validate
from tests.conftest import compose_config


def test_default_experiment_composes_typed_groups():
    cfg = compose_config()
    assert cfg.data.name == "digits" and list(cfg.data.image_shape) == [1, 8, 8]
    assert cfg.model._target_ == MLPConfig._target_
    assert cfg.search.n_trials == 8
    assert cfg.search.sampler._target_ == "optuna.samplers.TPESampler"
    assert cfg.deploy.master == "local[*]"
    validate(cfg)


@pytest.mark.parametrize(("option", "target"), [("mlp", "models.mlp.MLP"),
                                                ("cnn", "models.cnn.CNN"),
                                                ("resnet", "models.resnet.ResNet"),
                                                ("tabular", "models.tabular.Tabular")])
def test_every_model_option_composes(option, target):
    cfg = compose_config([f"model={option}"])
    assert cfg.model._target_ == target
    assert cfg.model.weights_path is None and cfg.model.freeze == []  # every model's


def test_experiment_config_applies_its_deltas():
    cfg = compose_config(["+experiment=digits_cnn"])
    assert cfg.model._target_ == CNNConfig._target_
    assert cfg.search.n_trials == 6 and cfg.train.epochs == 15
    validate(cfg)


def test_wrong_type_is_refused_naming_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(["search.n_trials=abc"])
    assert "search.n_trials" in str(err.value.__cause__ or err.value)


def test_unknown_key_is_refused_naming_the_schema():
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(["model.widht=3"])
    assert "widht" in str(err.value)
    assert "not in 'MLPConfig'" in str(err.value.__cause__)


def test_unknown_option_is_refused():
    with pytest.raises(Exception, match="model/nope"):
        compose_config(["model=nope"])


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["search.n_trials=0"], "search.n_trials"),
        (["search.sampler=annealing"], "search/sampler=annealing"),
        (["deploy=k8s"], "deploy.image"),
        (["deploy.gpus_per_trial=1.5"], "deploy.gpus_per_trial"),
        (["data.split.train=0.9"], "data.split"),
        (["model=cnn", "data=wine"], "model=cnn"),
        (["+search.params.model.hiden='choice(1,2)'"], "search.params.model.hiden"),
    ],
)
def test_bad_values_are_gathered_into_one_runner_error(overrides, key):
    with pytest.raises(RunnerError, match=key.replace(".", r"\.")):
        validate(compose_config(overrides))


def test_search_schema_defaults():
    schema = SearchConfig()
    assert schema.parallelism is None
    assert schema.metric is None and schema.direction is None  # the task's headline, its direction


def test_component_packages_store_one_schema_per_module():
    from runner.cluster.targets import DeployConfig
    from runner.config.data import DataConfig
    from runner.config.store import component_schemas

    data = component_schemas("runner.data.sources", DataConfig)
    assert {k: v.__name__ for k, v in data.items()} == {
        "file": "FileDataConfig", "sklearn": "SklearnDataConfig",
        "synthetic": "SyntheticDataConfig", "images": "ImagesDataConfig",
        "shapes": "ShapesDataConfig", "text": "TextDataConfig", "reviews": "ReviewsDataConfig",
        "image_table": "ImageTableDataConfig", "table": "TableDataConfig"}
    deploy = component_schemas("runner.cluster.targets", DeployConfig)
    assert sorted(deploy) == ["connect", "k8s", "local", "local_cluster", "standalone", "yarn"]
    for name, schema in {**data, **deploy}.items():  # each schema names its module's class
        assert schema._target_.startswith(f"{schema.__module__}.")


def test_csv_default_dropna_follows_data_label():
    """The CSV option's label-cleaning step names whatever column data.label names."""
    from omegaconf import OmegaConf

    cfg = compose_config(["data=csv", "data.path=rows.csv", "data.label=y"])
    steps = OmegaConf.to_container(cfg.data.steps, resolve=True)
    assert steps[0]["op"] == "dropna" and steps[0]["columns"] == ["y"]
