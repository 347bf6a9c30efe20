"""A small convolutional network for single- or multi-channel images (8x8 to 28x28)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from torch import nn

from models._inputs import IMAGES, shape_problems


class CNN(nn.Sequential):
    """Two 3x3 conv blocks, a 2x2 pool, a pool to 4x4, then a dense head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: int = 32,
        hidden: int = 128,
        dropout: float = 0.2,
    ) -> None:
        problems = self.check_input(input_shape)
        if problems:
            raise ValueError(problems[0])
        in_channels = input_shape[0]
        super().__init__(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * channels * 16, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    @classmethod
    def check_input(cls, input_shape: Sequence[Optional[int]]) -> list[str]:
        """Problems with ``input_shape`` (None: a size known only after preprocessing)."""
        return shape_problems("cnn", input_shape, IMAGES)
