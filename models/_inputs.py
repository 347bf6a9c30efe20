"""What models share: the check that rows have the shape a model reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

IMAGES = (3, "image data shaped (C, H, W)", "use model=mlp or set data.image_shape")
TOKENS = (1, "token ids shaped (max_length,)", "use text data (data=reviews or data=text)")


def shape_problems(
    option: str, input_shape: Sequence[Optional[int]], wanted: tuple[int, str, str]
) -> list[str]:
    """Problems with ``input_shape`` for ``model=<option>``, which reads ``wanted`` rows
    (:data:`IMAGES` or :data:`TOKENS`: their rank, what they are, the fix)."""
    rank, what, fix = wanted
    if len(input_shape) == rank:
        return []
    return [f"model={option} needs {what} but gets {len(input_shape)}-d rows; {fix}"]
