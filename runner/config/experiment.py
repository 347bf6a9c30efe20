"""The root schema (``RunnerConfig``) and its plain sections: optimizer, train, inference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from runner.cluster.targets import DeployConfig
from runner.config.data import DataConfig
from runner.config.search import SearchConfig
from runner.observe.trackers import TrackingConfig
from runner.tasks import TaskConfig
from runner.train.augment import AugmentConfig


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
    # The loop (every trial; the train stage but patience): early stopping on search.metric
    # after `patience` epochs without improvement, keeping the best epoch's weights (null: off);
    patience: Optional[int] = None
    # any torch.optim.lr_scheduler class: {_target_: ...CosineAnnealingLR, interval: epoch|step};
    # epochs, steps_per_epoch, total_steps and T_max are filled in when left out
    scheduler: Optional[Any] = None
    grad_clip: Optional[float] = None  # clip the gradients' global norm to this
    precision: str = "32"  # 32 | bf16 | fp16: autocast on CUDA devices only (CPU trains in 32)
    class_weight: Optional[str] = None  # balanced: weigh classes by the train split's counts
    compile: bool = False  # torch.compile the model (pays off for long trials; slow to start)
    streaming: bool = False  # stream train batches from Parquet row groups (data > memory)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # images: flip, crop, jitter
    enabled: bool = False
    num_processes: int = 2
    use_gpu: Optional[bool] = None  # null: GPUs when the deploy target has them
    local_mode: Optional[bool] = None  # null: torchrun on the driver on a local target


@dataclass
class InferenceConfig:
    """Batched inference of the best model in Spark tasks (``runner.serve.infer``)."""

    batch_size: int = 1024
    data: Optional[DataConfig] = None  # data@inference.data=<option>; null: the run's test split
    output: Optional[str] = None  # null: <run dir>/predictions.parquet
    partition_by: list[str] = field(default_factory=list)  # output columns to partition by
    overwrite: bool = False  # replace an existing output instead of refusing
    torchscript: bool = False  # also export model/model.ts
    # inference.data's columns written beside the predictions; null: every non-feature column
    keep_columns: Optional[list[str]] = None
    unseen: str = "keep"  # a onehot value not seen in training: keep (scored as unknown) | fail
    # stages=[infer]: score inference.data's folder as a stream; each run scores the files
    # that arrived since the last (checkpoint under model_path's run), appending to output
    streaming: bool = False
    # also save the predictions as this catalog table (saveAsTable; inference.overwrite
    # replaces an existing one), stored as table_format: parquet | delta
    table: Optional[str] = None
    table_format: str = "parquet"


@dataclass
class RunnerConfig:
    """The whole experiment."""

    data: DataConfig = MISSING
    task: TaskConfig = MISSING
    model: Any = MISSING  # a ModelConfig (bundled models) or a user's model without schema
    search: SearchConfig = MISSING
    deploy: DeployConfig = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    tracking: TrackingConfig = MISSING
    quiet: bool = False  # no output but errors
    verbose: bool = False  # every trial in the live table; per-epoch lines in plain output
    # Which stages run, in this order; see runner/stages.py for the subsets allowed.
    stages: list[str] = field(default_factory=lambda: ["preprocess", "sweep", "train", "infer"])
    model_path: Optional[str] = None  # a finished run's directory, for stages=[infer]
