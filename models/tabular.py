"""Tables with categories: an embedding per categorical column, concatenated with the
numeric features, into a multi-layer perceptron."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
from torch import nn


class Tabular(nn.Module):
    """Rows of numeric features followed by one category index per column of ``categories``
    (``{op: categorical}`` in ``data.steps``; 0: unseen in training, or null). Each column's
    index is embedded in ``embedding_dim`` values (None: ``min(50, (indices + 1) // 2)``),
    then ``depth`` hidden layers of width ``hidden`` with ReLU and dropout."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        categories: Sequence[int] = (),
        embedding_dim: Optional[int] = None,
        hidden: int = 128,
        depth: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.numeric = math.prod(input_shape) - len(categories)
        if self.numeric < 0:
            raise ValueError(f"{len(categories)} categories but rows of {list(input_shape)}")
        dims = [embedding_dim or min(50, (n + 1) // 2) for n in categories]
        self.embeddings = nn.ModuleList(nn.Embedding(n, d) for n, d in zip(categories, dims))
        width = self.numeric + sum(dims)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        codes = x[:, self.numeric :].long()
        embedded = [embed(codes[:, i]) for i, embed in enumerate(self.embeddings)]
        return self.head(torch.cat([x[:, : self.numeric], *embedded], dim=1))
