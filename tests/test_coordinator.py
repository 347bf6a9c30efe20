"""The coordinator alone (no Spark): hand-out, lost trials asked again, stragglers ignored."""

from __future__ import annotations

import json
import xmlrpc.client

import optuna

from runner.train.trial import TrialOutcome
from runner.tune import search_space
from runner.tune.coordinator import Coordinator


def _coordinator(n_trials: int, finished: list, lost: list) -> Coordinator:
    space = search_space.parse({"optimizer.lr": "interval(0.001, 0.1)"})
    return Coordinator(
        study=optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                  direction="maximize"),
        space=space, n_trials=n_trials, metric="val_accuracy",
        make_spec=lambda number, params: {"number": number, "params": params},
        on_finish=lambda outcome, params: finished.append(outcome.number),
        on_lost=lambda number, again: lost.append((number, again)),
    )


def _finish(coordinator: Coordinator, number: int) -> bool:
    record = TrialOutcome(number=number, state="COMPLETE", metrics={"val_accuracy": 0.5})
    return coordinator.finish(json.dumps(record.as_record()), xmlrpc.client.Binary(b""))


def test_trials_a_dead_job_cut_off_are_asked_again_under_new_numbers():
    finished, lost = [], []
    coordinator = _coordinator(2, finished, lost)
    first = [json.loads(coordinator.next_trial(slot, 0)) for slot in (0, 1)]
    assert coordinator.next_trial(0, 0) == ""  # both trials handed out
    assert _finish(coordinator, 0)

    assert coordinator.lose_unfinished() == [1]
    again = json.loads(coordinator.next_trial(0, 0))
    assert lost == [(1, again["number"])] and again["number"] == 2
    assert again["params"] == first[1]["params"]
    assert not _finish(coordinator, 1)  # a straggler of the dead job: ignored
    assert _finish(coordinator, 2)
    assert finished == [0, 2] and coordinator.next_trial(0, 0) == ""
    states = [t.state for t in coordinator.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                      optuna.trial.TrialState.COMPLETE]


def test_a_retried_slot_task_loses_the_trial_its_first_attempt_held():
    finished, lost = [], []
    coordinator = _coordinator(1, finished, lost)
    held = json.loads(coordinator.next_trial(0, 0))
    again = json.loads(coordinator.next_trial(0, 1))  # Spark's second attempt of slot 0
    assert lost == [(held["number"], again["number"])]
    assert again["params"] == held["params"]
