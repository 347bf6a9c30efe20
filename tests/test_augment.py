"""Train-time image augmentation: seeded, shape-preserving, off by default, image data only."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from runner.train.augment import AugmentConfig, augmented, augmenter, validate


def _cfg(**keys):
    return OmegaConf.structured(AugmentConfig(**keys))


def test_nothing_on_means_no_augmenter():
    assert augmenter(_cfg(), seed=0) is None and augmenter(None, seed=0) is None
    batches = [(torch.ones(2, 1, 4, 4), torch.zeros(2))]
    assert next(iter(augmented(batches, None)))[0] is batches[0][0]


def test_augmenting_is_seeded_and_keeps_the_shape():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    keys = {"flip": True, "crop": 2, "jitter": 0.2}
    first = augmenter(_cfg(**keys), seed=7)(x)
    again = augmenter(_cfg(**keys), seed=7)(x)
    other = augmenter(_cfg(**keys), seed=8)(x)
    assert first.shape == x.shape and torch.equal(first, again) and not torch.equal(first, other)


def test_flip_mirrors_some_images_and_leaves_the_others():
    x = torch.arange(64 * 4, dtype=torch.float32).reshape(64, 1, 2, 2)
    out = augmenter(_cfg(flip=True), seed=0)(x)
    mirrored = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert (mirrored | kept).all() and mirrored.any() and kept.any()


def test_validate_names_keys_and_needs_images():
    assert validate(_cfg(), [None]) == []
    assert validate(_cfg(flip=True), [3, 8, 8]) == []
    problems = " ".join(validate(_cfg(crop=-1, jitter=-0.1, flip=True), [None]))
    assert "train.augment.crop" in problems and "train.augment.jitter" in problems
    assert "(C, H, W)" in problems
