"""What text models share: the check that rows are token ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional


def token_input_problems(option: str, input_shape: Sequence[Optional[int]]) -> list[str]:
    """Problems with ``input_shape`` for ``model=<option>``, which takes (max_length,) ids."""
    if len(input_shape) == 1:
        return []
    return [f"model={option} needs token ids shaped (max_length,) but gets "
            f"{len(input_shape)}-d rows; use text data (data=reviews or data=text)"]
