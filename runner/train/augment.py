"""Image augmentation at training time, per trial, seeded: random flips, random crops (pad
then crop back) and brightness/contrast jitter on the normalized C x H x W batches.

``train.augment`` keys are ordinary config keys, so a search space can tune them
(``train.augment.flip: choice(true, false)``). Only train batches are augmented; val,
test and inference never are. No pyspark, no torchvision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import torch


@dataclass
class AugmentConfig:
    """``train.augment``: all off by default."""

    flip: bool = False  # mirror left-right with probability 0.5
    crop: int = 0  # pad each side by this many pixels (zeros), crop back at a random offset
    jitter: float = 0.0  # brightness and contrast: x * (1 + U(-j, j)) + U(-j, j), per image


def validate(augment: Any, input_shape: Sequence[Optional[int]]) -> list[str]:
    """Problems with ``train.augment`` for input of ``input_shape`` (None: not known yet)."""
    problems = []
    if augment.crop < 0:
        problems.append(f"train.augment.crop: must be 0 or more pixels, got {augment.crop}")
    if augment.jitter < 0:
        problems.append(f"train.augment.jitter: must be 0 or more, got {augment.jitter}")
    if _enabled(augment) and len(input_shape) != 3:
        problems.append(
            "train.augment: flips, crops and jitter need image data shaped "
            "(C, H, W); turn them off for this data"
        )
    return problems


def augmenter(
    augment: Optional[Mapping[str, Any]], seed: int
) -> Optional[Callable[["torch.Tensor"], "torch.Tensor"]]:
    """A function augmenting a batch (N x C x H x W), drawing from its own generator seeded
    by ``seed``; None when ``augment`` turns nothing on."""
    if not augment or not _enabled(augment):
        return None
    import torch

    generator = torch.Generator().manual_seed(int(seed))
    flip, crop, jitter = (
        bool(augment.get("flip")),
        int(augment.get("crop") or 0),
        float(augment.get("jitter") or 0.0),
    )

    def apply(x: "torch.Tensor") -> "torch.Tensor":
        n = len(x)
        if n == 0:
            return x
        if flip:
            mirrored = torch.rand(n, generator=generator) < 0.5
            x = torch.where(mirrored.to(x.device)[:, None, None, None], x.flip(3), x)
        if crop:
            height, width = x.shape[2], x.shape[3]
            padded = torch.nn.functional.pad(x, (crop, crop, crop, crop))
            dy = torch.randint(0, 2 * crop + 1, (n,), generator=generator).tolist()
            dx = torch.randint(0, 2 * crop + 1, (n,), generator=generator).tolist()
            x = torch.stack(
                [padded[i, :, dy[i] : dy[i] + height, dx[i] : dx[i] + width] for i in range(n)]
            )
        if jitter:
            scale = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * jitter
            shift = (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * jitter
            x = x * scale.to(x.device) + shift.to(x.device)
        return x

    return apply


def augmented(
    batches: Iterable[tuple["torch.Tensor", "torch.Tensor"]],
    apply: Optional[Callable[["torch.Tensor"], "torch.Tensor"]],
) -> Iterator[tuple["torch.Tensor", "torch.Tensor"]]:
    """``batches`` with ``apply`` run on each input (as they are without it)."""
    for x, y in batches:
        yield (apply(x) if apply is not None else x), y


def _enabled(augment: Any) -> bool:
    return bool(augment.get("flip")) or bool(augment.get("crop")) or bool(augment.get("jitter"))
