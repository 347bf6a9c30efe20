"""Typed schemas of every config group, registered in Hydra's ConfigStore.

Each group option in ``conf/`` starts its defaults list with the schema it fills
(``- base_sklearn``), so a misspelt key or a wrong type is refused by Hydra with
the full key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class SplitConfig:
    """Deterministic train/val/test split, by hashing each row id with ``seed``."""

    train: float = 0.7
    val: float = 0.15
    test: float = 0.15
    seed: int = 0
    stratify: bool = True


@dataclass
class DataConfig:
    """Where the rows come from and how they are prepared."""

    name: str = MISSING
    split: SplitConfig = field(default_factory=SplitConfig)
    scaling: str = "standard"  # standard | minmax | none
    cache: bool = True
    cache_dir: str = "outputs/cache"  # relative to the directory the runner was started in


@dataclass
class SklearnDataConfig(DataConfig):
    """A data set bundled with scikit-learn (no download)."""

    dataset: str = MISSING  # digits | wine | breast_cancer | iris
    image_shape: Optional[list[int]] = None  # e.g. [1, 8, 8] for digits; null: tabular


@dataclass
class ModelConfig:
    """A torch ``nn.Module`` built by ``hydra.utils.instantiate``.

    The runner passes ``input_shape`` and ``num_classes`` from the prepared data.
    """

    _target_: str = MISSING


@dataclass
class MLPConfig(ModelConfig):
    _target_: str = "models.mlp.MLP"
    hidden: int = 128
    depth: int = 2
    dropout: float = 0.1


@dataclass
class CNNConfig(ModelConfig):
    _target_: str = "models.cnn.CNN"
    channels: int = 32
    hidden: int = 128
    dropout: float = 0.2


@dataclass
class OptimizerConfig:
    """A ``torch.optim`` optimizer; the runner passes the model's parameters."""

    _target_: str = "torch.optim.AdamW"
    lr: float = 1e-3
    weight_decay: float = 1e-4


@dataclass
class TrainConfig:
    """How a model trains: every sweep trial, and the distributed ``train`` stage.

    The train stage retrains the best trial's configuration (or, without a sweep, this
    config's own) on train+val with ``num_processes`` DDP processes launched by
    TorchDistributor. It runs when ``enabled`` and ``train`` is in ``stages``.
    """

    epochs: int = 20
    batch_size: int = 64  # the global batch: each of N processes takes batch_size / N
    seed: int = 0
    enabled: bool = False
    num_processes: int = 2
    use_gpu: Optional[bool] = None  # null: GPUs when the deploy target has them
    local_mode: Optional[bool] = None  # null: torchrun on the driver for local* masters


@dataclass
class SearchConfig:
    """The hyperparameter search.

    ``params`` maps any key of the composed config to an expression of Hydra's
    sweeper grammar: ``choice(64,128)``, ``range(1,4)``, ``interval(0,0.5)``,
    ``tag(log, interval(1e-4,1e-1))``, ``tag(int, interval(8,64))``.
    """

    n_trials: int = 8
    parallelism: Optional[int] = None  # concurrent trials; null: the cluster's task slots
    metric: str = "val_accuracy"
    direction: str = "maximize"  # maximize | minimize
    sampler: str = "tpe"  # tpe | random | grid
    pruner: str = "none"  # none | median | asha: stop bad trials after an epoch
    trial_timeout: Optional[float] = None  # seconds; a trial past it fails
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)  # nested or dotted keys


@dataclass
class DeployConfig:
    """The Spark cluster the experiment runs on."""

    name: str = MISSING
    master: str = "local[*]"
    app_name: str = "spark-dl-runner"
    conf: dict[str, str] = field(default_factory=dict)  # any spark.* setting, passed through
    cpus_per_trial: int = 1  # cores (and torch threads) per trial
    gpus_per_trial: float = 0.0  # GPUs per trial; fractions pack trials (0.25: four per GPU)


@dataclass
class InferenceConfig:
    """Batched inference of the best model with ``predict_batch_udf``."""

    batch_size: int = 1024


@dataclass
class RunnerConfig:
    """The whole experiment."""

    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    search: SearchConfig = MISSING
    deploy: DeployConfig = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    seed: int = 0
    quiet: bool = False
    # Which stages run, in this order; see runner/stages.py for the subsets allowed.
    stages: list[str] = field(default_factory=lambda: ["preprocess", "sweep", "train", "infer"])


def register_configs() -> None:
    """Store every schema; safe to call more than once."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=RunnerConfig)
    cs.store(group="data", name="base_sklearn", node=SklearnDataConfig)
    cs.store(group="model", name="base_mlp", node=MLPConfig)
    cs.store(group="model", name="base_cnn", node=CNNConfig)
    cs.store(group="search", name="base_search", node=SearchConfig)
    cs.store(group="deploy", name="base_deploy", node=DeployConfig)


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose(overrides: list[str] | None = None) -> Any:
    """The config ``python -m runner <overrides>`` runs, composed outside a Hydra app."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return hydra_compose(config_name="config", overrides=overrides or [])


def as_plain(node: Any) -> Any:
    """A resolved, plain-Python copy of a config node (for shipping to executors)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)
