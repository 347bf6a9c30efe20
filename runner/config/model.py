"""The ``model`` group: a torch ``nn.Module`` by ``_target_``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING


@dataclass
class ModelConfig:
    """A torch ``nn.Module`` built by ``hydra.utils.instantiate``.

    The runner passes ``input_shape`` (from the prepared data), the task's ``model_kwargs``
    (classification: ``num_classes``) and the preparation's (``categorical`` steps:
    ``categories``); see ``runner/train/model.py``.
    """

    _target_: str = MISSING
    # fine-tuning: a state_dict file loaded into the built model (weights_only), and the
    # parameter-name prefixes kept frozen (e.g. [0, 1] for a Sequential's first layers)
    weights_path: Optional[str] = None
    freeze: list[str] = field(default_factory=list)


@dataclass
class MLPConfig(ModelConfig):
    _target_: str = "models.mlp.MLP"
    hidden: int = 128
    depth: int = 2
    dropout: float = 0.1


@dataclass
class TabularConfig(ModelConfig):
    _target_: str = "models.tabular.Tabular"
    embedding_dim: Optional[int] = None  # per categorical column; None: min(50, (n + 1) // 2)
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
class ResNetConfig(ModelConfig):
    _target_: str = "models.resnet.ResNet"
    width: int = 16  # the stem's channels; each stage doubles them
    depth: int = 2  # basic blocks per stage
    stages: int = 3
    dropout: float = 0.0


@dataclass
class TextTransformerConfig(ModelConfig):
    _target_: str = "models.text_transformer.TextTransformer"
    vocab_size: int = MISSING  # conf/model/text_transformer.yaml: ${data.tokenizer.vocab_size}
    embed_dim: int = 64
    heads: int = 4  # embed_dim must be a multiple of it
    layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.1


@dataclass
class TextCNNConfig(ModelConfig):
    _target_: str = "models.text_cnn.TextCNN"
    vocab_size: int = MISSING  # conf/model/text_cnn.yaml: ${data.tokenizer.vocab_size}
    embed_dim: int = 64
    channels: int = 64
    widths: list[int] = field(default_factory=lambda: [2, 3, 4])
    hidden: int = 64
    dropout: float = 0.2
