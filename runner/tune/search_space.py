"""Search spaces written in Hydra's sweeper grammar, turned into Optuna distributions.

``choice(a,b)`` -> categorical; ``range(start,stop[,step])`` -> int (or stepped float);
``interval(lo,hi)`` -> float; ``tag(log, ...)`` -> log scale; ``tag(int, interval(...))``
-> int. Keys are dotted paths into the composed config (``model.hidden``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from runner.errors import RunnerError, first_line


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
            detail = first_line(err)
            problems.append(
                f"search.params.{key}: cannot read {expression!r} ({detail}); write e.g. "
                "choice(32,64), range(1,4), interval(0,0.5) or tag(log, interval(1e-4,1e-1))"
            )
    if problems:
        raise RunnerError("; ".join(problems))
    return space


def policies(search: Any) -> tuple[Any, Any]:
    """The Optuna sampler and pruner that ``search.sampler`` and ``search.pruner`` name.

    Raises:
        RunnerError: either is not a ``_target_`` node building an Optuna sampler / pruner
            (``search.sampler=random``, the old form, is told to use ``search/sampler=random``).
    """
    problems, built = [], []
    for key, base in (
        ("sampler", "optuna.samplers.BaseSampler"),
        ("pruner", "optuna.pruners.BasePruner"),
    ):
        node = search.get(key)
        if not OmegaConf.is_dict(node) or "_target_" not in node:
            problems.append(
                f"search.{key}: {node!r} is not a {key} config; choose one with "
                f"search/{key}={node if isinstance(node, str) else 'OPTION'} "
                f"(a file in conf/search/{key}/)"
            )
            continue
        try:
            built.append(_build(node, base))
        except Exception as err:  # an unknown class or wrong arguments (Hydra wraps the cause)
            cause = err.__cause__ if isinstance(err.__cause__, Exception) else err
            problems.append(
                f"search.{key}: cannot build {node._target_} "
                f"({first_line(cause)}); fix conf/search/{key}/ or "
                f"choose another with search/{key}=OPTION"
            )
    if problems:
        raise RunnerError("; ".join(problems))
    return built[0], built[1]


def resumed_sampler(node: Any, drawn: int) -> Any:
    """The sampler ``node`` builds, for a study that has drawn ``drawn`` trials: seeded
    ``seed + drawn``, so a resumed sweep continues its draws instead of repeating the first
    run's (same seed, same sequence); None when the sampler has no seed (nothing repeats)."""
    if node.get("seed") is None:
        return None
    return _build(node, "optuna.samplers.BaseSampler", seed=int(node.seed) + drawn)


def result_blind(sampler: Any) -> bool:
    """Whether ``sampler``'s draws ignore finished trials (a sweep can draw them all at once)."""
    import optuna

    return isinstance(sampler, (optuna.samplers.RandomSampler, optuna.samplers.QMCSampler))


def create_study(sampler: Any, space: Mapping[str, Any], **study_args: Any):
    """An Optuna study sampling ``space`` with ``sampler``.

    An existing study of the same name in ``study_args["storage"]`` is loaded, not
    replaced. A :class:`~runner.tune.grid.GridSampler` study gets every grid point
    enqueued, in an order shuffled by the sampler's seed.
    """
    import itertools
    import random

    import optuna

    from runner.tune.grid import GridSampler

    study = optuna.create_study(sampler=sampler, load_if_exists=True, **study_args)
    if isinstance(sampler, GridSampler) and not study.trials:
        grid = grid_values(space)
        points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        random.Random(sampler.seed).shuffle(points)
        for point in points:
            study.enqueue_trial(point)
    return study


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
                f"search.params.{key}: search/sampler=grid needs choice() or range(), "
                "not an interval; use search/sampler=tpe or random"
            )
    return grid


def grid_size(space: Mapping[str, Any]) -> int:
    size = 1
    for values in grid_values(space).values():
        size *= len(values)
    return size


def _build(node: Any, base: str, **overrides: Any) -> Any:
    from hydra.utils import get_class, instantiate

    built = instantiate(node, **overrides)
    if not isinstance(built, get_class(base)):
        raise TypeError(f"not an {base.rsplit('.', 1)[1]}")
    return built


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
        choices: list[Any] = list(sweep.list)
        if not choices or any(isinstance(c, (list, dict)) for c in choices):
            raise ValueError("choice() needs one or more plain values")
        return CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        start, stop, step = sweep.start, sweep.stop, sweep.step or 1
        if start is None or stop is None:
            raise ValueError("range() needs a start and a stop")
        if isinstance(start, int) and isinstance(stop, int) and isinstance(step, int):
            high = start + ((stop - 1 - start) // step) * step
            if high < start:
                raise ValueError("range() is empty")
            return IntDistribution(start, high, step=step, log=log)
        return FloatDistribution(start, stop - step, step=step)
    if isinstance(sweep, IntervalSweep):
        if sweep.start is None or sweep.end is None:
            raise ValueError("interval() needs a low and a high")
        if "int" in tags:
            return IntDistribution(int(sweep.start), int(sweep.end), log=log)
        return FloatDistribution(sweep.start, sweep.end, log=log)
    raise ValueError("not a sweep expression")
