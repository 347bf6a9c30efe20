"""What image models share: the check that rows are images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional


def image_input_problems(option: str, input_shape: Sequence[Optional[int]]) -> list[str]:
    """Problems with ``input_shape`` for ``model=<option>``, which takes (C, H, W) images."""
    if len(input_shape) == 3:
        return []
    return [f"model={option} needs image data shaped (C, H, W) but gets {len(input_shape)}-d "
            "rows; use model=mlp or set data.image_shape"]
