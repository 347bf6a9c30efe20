"""Search spaces written in Hydra's sweeper grammar, turned into Optuna distributions.

``choice(a,b)`` -> categorical; ``range(start,stop[,step])`` -> int (or stepped float);
``interval(lo,hi)`` -> float; ``tag(log, ...)`` -> log scale; ``tag(int, interval(...))``
-> int. Keys are dotted paths into the composed config (``model.hidden``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.errors import RunnerError

SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "grid": "RandomSampler",  # over enqueued grid points: see create_study
}
# Samplers whose draws ignore finished trials: a sweep can draw all of them at once.
RESULT_BLIND = ("random", "grid")


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"hidden": "choice(1,2)"}}`` -> ``{"model.hidden": "choice(1,2)"}``."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = str(value)
    return flat


def parse(params: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted key -> Optuna distribution; raises ``RunnerError`` naming each bad key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    space, problems = {}, []
    for key, expression in flatten(params).items():
        try:
            override = parser.parse_override(f"{key}={expression}")
            space[key] = _distribution(override.value())
        except (HydraException, ValueError) as err:
            detail = str(err).strip().splitlines()[0]
            problems.append(
                f"search.params.{key}: cannot read {expression!r} ({detail}); write e.g. "
                "choice(32,64), range(1,4), interval(0,0.5) or tag(log, interval(1e-4,1e-1))"
            )
    if problems:
        raise RunnerError("; ".join(problems))
    return space


def create_study(name: str, seed: int, space: Mapping[str, Any], **study_args: Any):
    """An Optuna study sampling ``space`` with the sampler called ``name``, seeded.

    An existing study of the same name in ``study_args["storage"]`` is loaded, not
    replaced. ``grid`` enqueues every combination in a seeded order (Optuna's
    ``GridSampler`` calls ``study.stop()``, which ask/tell does not allow).
    """
    import itertools
    import random

    import optuna

    if name not in SAMPLERS:
        raise RunnerError(f"search.sampler: {name!r} is not one of {', '.join(SAMPLERS)}")
    if name == "grid":
        grid = grid_values(space)
        points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        random.Random(seed).shuffle(points)
        study = optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed), load_if_exists=True, **study_args
        )
        if not study.trials:
            for point in points:
                study.enqueue_trial(point)
        return study
    sampler = getattr(optuna.samplers, SAMPLERS[name])(seed=seed)
    return optuna.create_study(sampler=sampler, load_if_exists=True, **study_args)


def grid_values(space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Every value of each parameter, for the grid sampler (intervals have none)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    grid = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[key] = list(range(dist.low, dist.high + 1, dist.step))
        else:
            raise RunnerError(
                f"search.params.{key}: search.sampler=grid needs choice() or range(), "
                "not an interval; use search.sampler=tpe or random"
            )
    return grid


def grid_size(space: Mapping[str, Any]) -> int:
    size = 1
    for values in grid_values(space).values():
        size *= len(values)
    return size


def _distribution(sweep: Any):
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    tags = set(getattr(sweep, "tags", ()) or ())
    log = "log" in tags
    if isinstance(sweep, ChoiceSweep):
        choices = list(sweep.list)
        if not choices or any(isinstance(c, (list, dict)) for c in choices):
            raise ValueError("choice() needs one or more plain values")
        return CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        start, stop, step = sweep.start, sweep.stop, sweep.step or 1
        if all(isinstance(v, int) for v in (start, stop, step)):
            high = start + ((stop - 1 - start) // step) * step
            if high < start:
                raise ValueError("range() is empty")
            return IntDistribution(start, high, step=step, log=log)
        return FloatDistribution(start, stop - step, step=step)
    if isinstance(sweep, IntervalSweep):
        if "int" in tags:
            return IntDistribution(int(sweep.start), int(sweep.end), log=log)
        return FloatDistribution(sweep.start, sweep.end, log=log)
    raise ValueError("not a sweep expression")
