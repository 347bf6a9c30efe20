"""Trial length estimates, and the coordinator starting the longest trials first."""

from __future__ import annotations

import json

import optuna
import pytest

from runner.tune import search_space
from runner.tune.coordinator import Coordinator
from runner.train.model import build_model
from runner.train.trial import TrialOutcome
from runner.tune.trial_cost import PRIOR_RATES, TrialCost, parameter_count, training_work

MLP = {"_target_": "models.mlp.MLP", "hidden": 32, "depth": 2, "dropout": 0.0}


def test_work_counts_steps_and_flops_of_the_real_model():
    told = {"num_classes": 10}
    weights = sum(p.numel() for p in build_model(MLP, (64,), told).parameters())
    assert parameter_count(json.dumps(MLP), (64,), json.dumps(told)) == weights
    steps, flops = training_work(MLP, (64,), told, epochs=3, batch_size=64, rows=1000)
    assert steps == 3 * 16  # ceil(1000 / 64) batches an epoch
    assert flops == 6 * weights * 3 * 1000


def test_rates_are_refit_from_finished_trials():
    work = {"many small steps": (1000.0, 1e9), "few big steps": (10.0, 1e11)}
    cost = TrialCost(lambda params: work[params["name"]])
    assert cost.rates == PRIOR_RATES
    # a machine where a step costs 1 ms and FLOPs are nearly free (a GPU, say)
    for i, (steps, flops) in enumerate([(200.0, 5e9), (50.0, 8e10), (400.0, 1e9), (100.0, 3e10)]):
        work[f"seen {i}"] = (steps, flops)
        cost.observe({"name": f"seen {i}"}, 1e-3 * steps + 1e-14 * flops)
    assert cost.rates[0] == pytest.approx(1e-3, rel=1e-3)
    assert cost.rates[1] < 1e-13
    assert cost.seconds({"name": "many small steps"}) > cost.seconds({"name": "few big steps"})


def _coordinator(study, space, n_trials, cost):
    return Coordinator(study=study, space=space, n_trials=n_trials, metric="val_accuracy",
                       make_spec=lambda number, params: {"number": number, "params": params},
                       on_finish=lambda outcome, params: None, cost=cost)


def test_the_longest_trials_are_handed_out_first():
    space = search_space.parse({"train.batch_size": "choice(16, 32, 64, 128)",
                                "optimizer.lr": "interval(0.001, 0.1)"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    cost = TrialCost(lambda params: (1000.0 / params["train.batch_size"], 0.0))
    coordinator = _coordinator(study, space, 12, cost)
    sizes = []
    while spec := coordinator.next_trial(slot=len(sizes) % 2, attempt=0):
        sizes.append(json.loads(spec)["params"]["train.batch_size"])
    assert len(sizes) == 12 and len(set(sizes)) > 1
    assert sizes == sorted(sizes)  # most steps (smallest batches) first
    drawn = {t.number: t.params for t in study.trials}
    assert sorted(coordinator.params) == sorted(drawn) and coordinator.params == drawn


def test_a_lost_trial_is_drawn_again_and_the_rest_keep_their_order():
    space = search_space.parse({"train.batch_size": "choice(16, 32, 64, 128)"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    cost = TrialCost(lambda params: (1000.0 / params["train.batch_size"], 0.0))
    coordinator = _coordinator(study, space, 6, cost)
    first = json.loads(coordinator.next_trial(slot=0, attempt=0))
    second = json.loads(coordinator.next_trial(slot=1, attempt=0))
    coordinator.finish(json.dumps(TrialOutcome(second["number"], "COMPLETE",
                                               metrics={"val_accuracy": 0.5}).as_record()),
                       _no_weights())
    # slot 0's executor was lost: Spark starts its task again as attempt 1
    retried = json.loads(coordinator.next_trial(slot=0, attempt=1))
    assert retried["params"] == first["params"] and retried["number"] != first["number"]
    rest = []
    while spec := coordinator.next_trial(slot=1, attempt=0):
        rest.append(json.loads(spec)["params"]["train.batch_size"])
    assert len(rest) == 4 and rest == sorted(rest)  # 6 in all: the retried one counts
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1  # the lost one, told FAIL


def _no_weights():
    import xmlrpc.client

    return xmlrpc.client.Binary(b"")
