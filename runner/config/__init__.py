"""Typed schemas of the config groups, registered in Hydra's ConfigStore.

Each group option in ``conf/`` starts its defaults list with the schema it fills
(``- base_file``), so a misspelt key or a wrong type is refused by Hydra with the full
key named. Schemas live per group here (``experiment``, ``data``, ``model``,
``search``) or beside their component's code (data sources in ``runner/data/sources/``,
deploy targets in ``runner/cluster/targets/``, tasks in ``runner/tasks/``, trackers in
``runner/observe/trackers/``).
"""

from runner.config.data import DataConfig, SplitConfig, StepConfig
from runner.config.experiment import InferenceConfig, OptimizerConfig, RunnerConfig, TrainConfig
from runner.config.model import CNNConfig, MLPConfig, ModelConfig
from runner.config.search import SearchConfig
from runner.config.store import CONF_DIR, as_plain, compose, register_configs

__all__ = [
    "CONF_DIR",
    "CNNConfig",
    "DataConfig",
    "InferenceConfig",
    "MLPConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RunnerConfig",
    "SearchConfig",
    "SplitConfig",
    "StepConfig",
    "TrainConfig",
    "as_plain",
    "compose",
    "register_configs",
]
