"""A compact residual network for small images (8x8 to 64x64), He et al.'s basic blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch import nn

from models._inputs import IMAGES, shape_problems


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Sequential):
    """A 3x3 stem of ``width`` channels, ``stages`` stages of ``depth`` basic blocks (each
    stage doubles the channels and halves the size), global average pooling, a linear head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 16,
        depth: int = 2,
        stages: int = 3,
        dropout: float = 0.0,
    ) -> None:
        problems = self.check_input(input_shape)
        if problems:
            raise ValueError(problems[0])
        layers: list[nn.Module] = [
            nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        channels = width
        for stage in range(stages):
            out = width * 2**stage
            for block in range(depth):
                layers.append(BasicBlock(channels, out, 2 if stage and not block else 1))
                channels = out
        layers += [
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, num_classes),
        ]
        super().__init__(*layers)

    @classmethod
    def check_input(cls, input_shape: Sequence[Optional[int]]) -> list[str]:
        """Problems with ``input_shape`` (None: a size known only after preprocessing)."""
        return shape_problems("resnet", input_shape, IMAGES)
