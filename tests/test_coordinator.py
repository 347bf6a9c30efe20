"""The coordinator alone (no Spark): hand-out, lost trials asked again, stragglers ignored."""

from __future__ import annotations

import errno
import json
import xmlrpc.client

import optuna
import pytest

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


def test_the_trial_endpoint_refuses_calls_without_the_jobs_token():
    coordinator = _coordinator(1, [], [])
    server = coordinator.serve("127.0.0.1")
    try:
        client = xmlrpc.client.ServerProxy(server.url, allow_none=True)
        for call in (lambda: client.next_trial(0, 0), lambda: client.next_trial("guess", 0, 0),
                     lambda: client.finish("", "{}", xmlrpc.client.Binary(b""))):
            with pytest.raises(xmlrpc.client.Fault, match="needs the sweep's token"):
                call()
        assert coordinator.refused == 3 and coordinator.started == 0
        assert json.loads(client.next_trial(server.token, 0, 0))["number"] == 0
    finally:
        server.close()
    again = coordinator.serve("127.0.0.1")
    again.close()
    assert again.token != server.token  # a token per served job


def test_a_record_that_cannot_be_written_stops_the_hand_out_and_is_kept_for_the_sweep():
    def full_disk(outcome, params):
        raise OSError(errno.ENOSPC, "No space left on device", "run/trials.jsonl")

    coordinator = _coordinator(3, [], [])
    coordinator.on_finish = full_disk
    server = coordinator.serve("127.0.0.1")
    try:
        client = xmlrpc.client.ServerProxy(server.url, allow_none=True)
        number = json.loads(client.next_trial(server.token, 0, 0))["number"]
        record = TrialOutcome(number=number, state="COMPLETE", metrics={"val_accuracy": 0.5})
        with pytest.raises(xmlrpc.client.Fault, match="No space left"):
            client.finish(server.token, json.dumps(record.as_record()), xmlrpc.client.Binary(b""))
        assert client.next_trial(server.token, 1, 0) == ""  # no trial after it
    finally:
        server.close()
    err = coordinator.storage_error
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert err.filename == "run/trials.jsonl" and coordinator.started == 1


class _Conf:
    def __init__(self, values):
        self.values = values

    def get(self, key, default=None):
        return self.values.get(key, default)


class _Spark:
    def __init__(self, **conf):
        self.conf = _Conf(conf)


@pytest.mark.parametrize("driver_host, local_ip, bound", [
    ("10.0.0.7", "127.0.0.1", "10.0.0.7"),  # the address Spark gives its executors
    (None, "127.0.0.1", "127.0.0.1"),
    ("0.0.0.0", None, "127.0.0.1"),  # never every interface
    ("0.0.0.0", "0.0.0.0", "127.0.0.1"),
])
def test_the_trial_endpoint_binds_the_driver_address_never_a_wildcard(
        monkeypatch, driver_host, local_ip, bound):
    from runner.tune.sweep import endpoint_host

    if local_ip is None:
        monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    else:
        monkeypatch.setenv("SPARK_LOCAL_IP", local_ip)
    conf = {} if driver_host is None else {"spark.driver.host": driver_host}
    assert endpoint_host(_Spark(**conf)) == bound


def test_a_ctrl_c_py4j_turns_into_its_own_error_still_stops_the_sweep(cfg):
    """py4j closes the interrupted call's connection inside ``except KeyboardInterrupt``; when
    that fails, its error replaces the interrupt. The sweep must stop, not retry the job."""
    import signal
    from types import SimpleNamespace

    from runner.cluster import spark as sessions
    from runner.cluster.targets import target_for
    from runner.tune import sweep

    class InterruptedJob:  # spark.range(n).mapInPandas(...).collect(), Ctrl-C while it runs
        def mapInPandas(self, *args, **kwargs):
            return self

        def collect(self):
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                raise RuntimeError("Error while sending or receiving") from None

    session = SimpleNamespace(range=lambda *a, **k: InterruptedJob(),
                              conf=SimpleNamespace(get=lambda key, default: default))
    coordinator = _coordinator(2, [], lost := [])
    previous = signal.getsignal(signal.SIGINT)
    sessions._plain_interrupt()
    try:
        with pytest.raises(KeyboardInterrupt):
            sweep._run_slots(session, coordinator, 2, target_for(cfg.deploy))
    finally:
        signal.signal(signal.SIGINT, previous)
        sessions._ctrl_c.clear()
    assert lost == [] and coordinator.lose_unfinished() == []
