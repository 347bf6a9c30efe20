"""Hydra sweeper grammar -> Optuna distributions, and the samplers and pruners over them."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from runner.errors import RunnerError
from runner.tune import search_space
from runner.tune.grid import GridSampler
from tests.conftest import compose_config


def test_each_form_maps_to_its_distribution():
    space = search_space.parse(
        {
            "model": {"hidden": "choice(64, 128)"},
            "model.depth": "range(1, 4)",
            "model.dropout": "interval(0.0, 0.5)",
            "optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
            "train.batch_size": "tag(int, interval(16, 64))",
            "optimizer._target_": "choice(torch.optim.Adam, torch.optim.SGD)",
        }
    )
    assert space["model.hidden"] == CategoricalDistribution((64, 128))
    assert space["model.depth"] == IntDistribution(1, 3)
    assert space["model.dropout"] == FloatDistribution(0.0, 0.5)
    assert space["optimizer.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert space["train.batch_size"] == IntDistribution(16, 64)
    assert space["optimizer._target_"].choices == ("torch.optim.Adam", "torch.optim.SGD")


def test_range_with_step_keeps_only_reachable_values():
    assert search_space.parse({"x": "range(2, 11, 4)"})["x"] == IntDistribution(2, 10, step=4)


@pytest.mark.parametrize("bad", ["choice(", "range(5, 1)", "3", "interval(a, b)"])
def test_malformed_expressions_name_the_key(bad):
    with pytest.raises(RunnerError, match=r"search\.params\.model\.hidden: cannot read"):
        search_space.parse({"model.hidden": bad})


def _policies(*overrides: str):
    return search_space.policies(compose_config(list(overrides)).search)


def _sample(name: str, space, n: int) -> list[dict]:
    study = search_space.create_study(_policies(f"search/sampler={name}")[0], space)
    trials = [study.ask(space) for _ in range(n)]
    for t in trials:
        study.tell(t, 0.0)
    return [t.params for t in trials]


def test_grid_visits_every_combination_once():
    space = search_space.parse({"a": "choice(1, 2)", "b": "range(0, 3)"})
    assert search_space.grid_size(space) == 6
    seen = {(p["a"], p["b"]) for p in _sample("grid", space, 6)}
    assert seen == {(a, b) for a in (1, 2) for b in range(3)}


def test_grid_refuses_intervals():
    space = search_space.parse({"lr": "interval(0.1, 0.2)"})
    with pytest.raises(RunnerError, match="search/sampler=grid"):
        search_space.create_study(_policies("search/sampler=grid")[0], space)


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_samplers_stay_inside_the_space_and_are_seeded(name):
    space = search_space.parse({"lr": "tag(log, interval(1e-4, 1e-1))", "h": "choice(8, 16)"})
    first, second = _sample(name, space, 12), _sample(name, space, 12)
    assert first == second
    assert all(1e-4 <= p["lr"] <= 1e-1 and p["h"] in (8, 16) for p in first)


@pytest.mark.parametrize(("option", "cls", "blind"), [
    ("tpe", optuna.samplers.TPESampler, False),
    ("random", optuna.samplers.RandomSampler, True),
    ("grid", GridSampler, True),
])
def test_sampler_options_build_their_optuna_class_seeded_by_search_seed(option, cls, blind):
    cfg = compose_config([f"search/sampler={option}", "search.seed=7"])
    assert cfg.search.sampler.seed == 7
    sampler, pruner = search_space.policies(cfg.search)
    assert type(sampler) is cls and search_space.result_blind(sampler) is blind
    assert type(pruner) is optuna.pruners.NopPruner
    space = search_space.parse({"d": "range(0, 10)", "h": "choice(1, 2, 3)"})
    draws = [[t.params for t in _draw(search_space.policies(compose_config(
        [f"search/sampler={option}", f"search.seed={seed}"]).search)[0], space)]
        for seed in (7, 7, 8)]
    assert draws[0] == draws[1] != draws[2]


def _draw(sampler, space, n: int = 6):
    study = search_space.create_study(sampler, space)
    return [study.ask(space) for _ in range(n)]


@pytest.mark.parametrize(("option", "cls"), [
    ("none", optuna.pruners.NopPruner),
    ("median", optuna.pruners.MedianPruner),
    ("asha", optuna.pruners.SuccessiveHalvingPruner),
])
def test_pruner_options_build_their_optuna_class(option, cls):
    assert type(_policies(f"search/pruner={option}")[1]) is cls


def test_old_sampler_key_form_names_the_group_syntax():
    with pytest.raises(RunnerError, match=r"search\.sampler: 'random' .*search/sampler=random"):
        _policies("search.sampler=random")


def test_a_class_of_the_wrong_role_is_refused():
    with pytest.raises(RunnerError, match=r"search\.pruner: cannot build .*not an BasePruner"):
        _policies("search.pruner._target_=optuna.samplers.RandomSampler")
