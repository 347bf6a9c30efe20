"""A convolutional text classifier over token ids (Kim, 2014): embedding, parallel 1-d
convolutions of several widths, max over time, a dense head with one hidden layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch import nn

from models._inputs import TOKENS, shape_problems


class TextCNN(nn.Module):
    """``input_shape`` is ``(max_length,)`` token ids; id 0 is padding."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        vocab_size: int,
        embed_dim: int = 64,
        channels: int = 64,
        widths: Sequence[int] = (2, 3, 4),
        hidden: int = 64,
        dropout: float = 0.2,
    ) -> None:
        problems = self.check_input(input_shape)
        if problems:
            raise ValueError(problems[0])
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = nn.ModuleList(
            nn.Conv1d(embed_dim, channels, w, padding=w // 2) for w in widths
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(channels * len(widths), hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids.long()).transpose(1, 2)  # batch, embed, length
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]
        return self.head(torch.cat(pooled, dim=1))

    @classmethod
    def check_input(cls, input_shape: Sequence[Optional[int]]) -> list[str]:
        return shape_problems("text_cnn", input_shape, TOKENS)
