"""The sweep: trials on executors, failure isolation, pruning, timeouts and resume."""

from __future__ import annotations

import json
import os

import optuna
import pytest
from omegaconf import open_dict

from runner.data import preprocess
from runner.tune import journal, jsonl, search_space
from runner.tune import sweep
from runner.errors import RunIncomplete, RunnerError
from runner.observe.events import RunEvents
from tests.conftest import use
from tests.crash_model import crash_tickets


@pytest.fixture
def prepared(spark, cfg, tmp_path):
    return preprocess.run(spark, cfg.data, tmp_path / "cache")


class Heard(RunEvents):
    """The sweep's events, as the console and trackers are told them."""

    def __init__(self):
        self.finished, self.lost, self.notes = [], [], []

    def trial_finished(self, outcome, params):
        self.finished.append(outcome.number)

    def trial_lost(self, number, reasked_as):
        self.lost.append((number, reasked_as))

    def note(self, message):
        self.notes.append(message)


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]


def test_trials_run_in_executor_processes(spark, cfg, prepared, tmp_path):
    cfg.search.n_trials = 4
    heard = Heard()
    result = sweep.run(spark, prepared, cfg, tmp_path, events=heard)
    assert sorted(heard.finished) == [0, 1, 2, 3]
    assert [t.number for t in result.trials] == [0, 1, 2, 3]
    assert all(t.state == "COMPLETE" for t in result.trials)
    assert all(t.pid != os.getpid() for t in result.trials)
    assert result.best.metrics["val_accuracy"] == max(
        t.metrics["val_accuracy"] for t in result.trials
    )
    assert result.best.weights == (tmp_path / "best_trial.pt").read_bytes()
    assert result.parallelism == 2
    for params in result.params.values():
        assert set(params) == {"optimizer.lr", "model.hidden", "train.batch_size"}
    assert len(_records(tmp_path)) == 4 and (tmp_path / "study.journal").exists()


def test_params_are_applied_to_the_trial_config(cfg):
    sections = sweep.trial_config(cfg, {"model.hidden": 7, "optimizer.lr": 0.5})
    assert sections["model"]["hidden"] == 7 and sections["optimizer"]["lr"] == 0.5
    assert cfg.model.hidden != 7


def test_a_failing_trial_does_not_stop_the_sweep(spark, cfg, prepared, tmp_path):
    use(cfg, "search/sampler", "grid")
    cfg.search.params = {"optimizer.lr": "choice(0.01, -1.0)"}
    result = sweep.run(spark, prepared, cfg, tmp_path)
    states = {json.dumps(result.params[t.number]): t.state for t in result.trials}
    assert states == {'{"optimizer.lr": 0.01}': "COMPLETE", '{"optimizer.lr": -1.0}': "FAIL"}
    failed = next(t for t in result.trials if t.state == "FAIL")
    assert "Invalid learning rate" in failed.error


def test_sweep_fails_only_when_every_trial_fails(spark, cfg, prepared, tmp_path):
    cfg.search.params = {"optimizer.lr": "choice(-1.0, -2.0)"}
    with pytest.raises(RunnerError, match="all 2 trials failed"):
        sweep.run(spark, prepared, cfg, tmp_path)


def test_trial_timeout_fails_the_slow_trial(spark, cfg, prepared, tmp_path):
    use(cfg, "search/sampler", "grid")
    cfg.search.params = {"train.epochs": "choice(1, 100000)"}
    cfg.search.trial_timeout = 8.0
    result = sweep.run(spark, prepared, cfg, tmp_path)
    by_epochs = {result.params[t.number]["train.epochs"]: t for t in result.trials}
    assert by_epochs[1].state == "COMPLETE"
    slow = by_epochs[100000]
    assert slow.state == "FAIL" and "trial_timeout" in slow.error
    assert slow.duration_s < 40


def test_pruner_stops_bad_trials_early(spark, cfg, prepared, tmp_path):
    """Good learning rates first; then hopeless ones are stopped after the warm-up epochs."""
    use(cfg, "search/sampler", "grid")
    use(cfg, "search/pruner", "median")
    cfg.search.parallelism = 1
    cfg.search.n_trials = 5
    cfg.train.epochs = 6
    cfg.search.params = {"optimizer.lr": "choice(0.003, 0.01, 1e-7, 2e-7, 3e-7)"}
    # grid order is a seeded shuffle: enqueue explicitly to put the good trials first
    cfg.search.seed = 0
    result = sweep.run(spark, prepared, cfg, tmp_path)
    states = {result.params[t.number]["optimizer.lr"]: t.state for t in result.trials}
    tiny = [states[lr] for lr in (1e-7, 2e-7, 3e-7)]
    assert tiny.count("PRUNED") >= 2, states
    assert result.epochs_saved > 0
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert all(len(t.history) < 6 for t in pruned)
    assert {states[0.003], states[0.01]} == {"COMPLETE"}


def test_rerun_in_the_same_dir_runs_only_the_missing_trials(spark, cfg, prepared, tmp_path):
    cfg.search.n_trials = 2
    first = sweep.run(spark, prepared, cfg, tmp_path)
    first_pids = {t.number: t.pid for t in first.trials}
    # simulate a crash: a trial asked but never finished
    study = optuna.load_study(
        study_name="sweep",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.journal"))
        ),
    )
    interrupted = study.ask(search_space.parse(cfg.search.params))
    cfg.search.n_trials = 4
    again = sweep.run(spark, prepared, cfg, tmp_path)
    assert again.resumed == 2
    assert len(again.trials) == 4 and again.counts == {"COMPLETE": 4}
    assert {t.number: t.pid for t in again.trials if t.number in first_pids} == first_pids
    assert len(_records(tmp_path)) == 4
    rerun = [p for n, p in again.params.items() if n not in first_pids]
    assert any(p["optimizer.lr"] == interrupted.params["optimizer.lr"] for p in rerun)


def _crashing(cfg, tickets):
    """Trials whose model kills its Python worker, once per ticket."""
    cfg.model._target_ = "tests.crash_model.CrashingMLP"
    with open_dict(cfg.model):
        cfg.model.tickets = tickets
    cfg.search.params = {"optimizer.lr": "tag(log, interval(1e-3, 3e-2))"}


def test_trials_of_a_failed_spark_job_are_lost_and_asked_again(spark, cfg, prepared, tmp_path):
    cfg.search.n_trials = 4
    _crashing(cfg, crash_tickets(tmp_path / "tickets", 1))
    heard = Heard()
    result = sweep.run(spark, prepared, cfg, tmp_path / "run", events=heard)
    lost = heard.lost
    assert result.counts == {"COMPLETE": 4}
    # a re-ask takes the next free number (under load, before all 4 were first asked)
    assert len(lost) >= 1 and all(again > number for number, again in lost)
    for number, again in lost:
        assert result.params[again] == result.params[number]
    records = _records(tmp_path / "run")
    assert len(records) == 4 and {r["state"] for r in records} == {"COMPLETE"}
    assert not {n for n, _ in lost} & {r["number"] for r in records}
    # the record says which lost trial it asks again (the report shows LOST → re-asked as #N)
    # (a re-ask can be lost in turn: its record lists every lost trial it stands for)
    assert {pair for r in records
            for pair in zip(r["reasks"], [*r["reasks"][1:], r["number"]])} == set(lost)


def test_a_sweep_whose_spark_jobs_keep_failing_says_how_many_trials_never_ran(
        spark, cfg, prepared, tmp_path):
    _crashing(cfg, crash_tickets(tmp_path / "tickets", 100))
    run_dir = tmp_path / "run"
    with pytest.raises(RunIncomplete) as failed:
        sweep.run(spark, prepared, cfg, run_dir)
    message = str(failed.value)
    assert message.startswith("sweep: 2 of 2 trials never ran")
    assert f"{sweep.JOB_RETRIES + 1} Spark jobs failed" in message
    assert "Python worker exited unexpectedly" in message
    assert f"hydra.run.dir={run_dir} to resume" in message
    assert not (run_dir / "trials.jsonl").exists()


def test_a_resumed_tpe_sweep_continues_its_draws(spark, cfg, prepared, tmp_path):
    """Fewer trials than TPE's random start-up ones: the rerun must not draw them again."""
    sweep.run(spark, prepared, cfg, tmp_path)
    cfg.search.n_trials = 4
    again = sweep.run(spark, prepared, cfg, tmp_path)
    drawn = [json.dumps(p, sort_keys=True) for p in again.params.values()]
    assert len(again.trials) == 4 and len(set(drawn)) == 4


def test_torn_last_lines_are_repaired_with_a_note_on_resume(spark, cfg, prepared, tmp_path):
    sweep.run(spark, prepared, cfg, tmp_path)
    for name in ("trials.jsonl", "study.journal"):
        with open(tmp_path / name, "ab") as fh:
            fh.write(b'{"number": 7, "sta')  # a crash or a full disk mid-line
    heard = Heard()
    cfg.search.n_trials = 3
    again = sweep.run(spark, prepared, cfg, tmp_path, events=heard)
    assert [note.split(":")[1].strip() for note in heard.notes] == ["study.journal", "trials.jsonl"]
    assert again.counts == {"COMPLETE": 3} and len(_records(tmp_path)) == 3
    for line in (tmp_path / "study.journal").read_text().splitlines():
        json.loads(line)


def test_a_crash_between_the_record_and_the_journal_is_finished_on_resume(
    spark, cfg, prepared, tmp_path
):
    """Killed after trial 1's line was written (a new best) but before Optuna was told and
    its weights renamed over best_trial.pt: resume closes it from its record, runs no other
    trial and keeps its weights as the best."""
    cfg.search.n_trials = 1
    sweep.run(spark, prepared, cfg, tmp_path)
    (record,) = _records(tmp_path)
    study = optuna.load_study(study_name="sweep", storage=journal.storage(tmp_path / "study.journal"))
    trial = study.ask(search_space.parse(cfg.search.params))  # RUNNING in the journal
    better = record["metrics"]["val_accuracy"] + 0.01
    jsonl.append(tmp_path / "trials.jsonl", {**record, "number": trial.number,
                 "params": trial.params, "metrics": {**record["metrics"], "val_accuracy": better}})
    (tmp_path / f"best_trial.{trial.number}.pt").write_bytes(b"trial 1's weights")
    (tmp_path / "best_trial.7.pt").write_bytes(b"a trial never recorded")
    cfg.search.n_trials = 2
    again = sweep.run(spark, prepared, cfg, tmp_path)
    assert [t.number for t in again.trials] == [0, 1] and again.best.number == 1
    assert again.best.weights == (tmp_path / "best_trial.pt").read_bytes() == b"trial 1's weights"
    assert not list(tmp_path.glob("best_trial.*.pt"))
    closed = optuna.load_study(study_name="sweep", storage=journal.storage(tmp_path / "study.journal"))
    assert [(t.state.name, t.value) for t in closed.trials][1] == ("COMPLETE", better)
