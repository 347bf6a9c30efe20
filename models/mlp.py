"""A multi-layer perceptron over flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """``depth`` hidden layers of width ``hidden`` with ReLU and dropout."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: int = 128,
        depth: int = 2,
        dropout: float = 0.1,
    ) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
