"""``search/sampler=grid``: every combination of the space's values once, in a seeded order."""

from __future__ import annotations

import optuna


class GridSampler(optuna.samplers.RandomSampler):
    """A grid search that works with ask/tell.

    Optuna's own ``GridSampler`` calls ``study.stop()``, which ask/tell does not allow, so
    :func:`runner.tune.search_space.create_study` enqueues every grid point (choice() and
    range() values, shuffled by ``seed``) and this sampler only draws what is left over.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.seed = seed
