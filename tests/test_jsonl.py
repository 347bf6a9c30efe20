"""Crash-safe JSON lines: whole appends, torn last lines cut off (ours and Optuna's journal)."""

from __future__ import annotations

import json

import optuna

from runner.tune import jsonl


def test_appends_are_whole_lines(tmp_path):
    path = tmp_path / "trials.jsonl"
    for number in range(3):
        jsonl.append(path, {"number": number})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"number": 0}, {"number": 1}, {"number": 2}]
    assert jsonl.repair(path) is None and jsonl.repair(tmp_path / "absent") is None


def test_a_torn_last_line_is_cut_off_before_the_next_append(tmp_path):
    path = tmp_path / "trials.jsonl"
    jsonl.append(path, {"number": 0})
    with open(path, "ab") as fh:
        fh.write(b'{"number": 1, "sta')  # the disk filled mid-line
    note = jsonl.repair(path)
    assert note.startswith("note: trials.jsonl: cut off a torn last line (18 bytes")
    jsonl.append(path, {"number": 1})
    assert path.read_text() == '{"number": 0}\n{"number": 1}\n'


def test_a_last_line_of_zeros_is_torn_too(tmp_path):
    """What a crash can leave after the file's size was updated but not its data."""
    path = tmp_path / "trials.jsonl"
    jsonl.append(path, {"number": 0})
    with open(path, "ab") as fh:
        fh.write(b"\0" * 9 + b"\n")
    assert jsonl.repair(path) is not None
    assert path.read_text() == '{"number": 0}\n'


def test_a_repaired_optuna_journal_loads_and_takes_new_trials(tmp_path):
    path = tmp_path / "study.journal"

    def study():
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        return optuna.create_study(study_name="sweep", storage=storage, load_if_exists=True)

    study().enqueue_trial({"x": 1})
    whole = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(b'{"op_code":4,"worker_id":"a')
    assert jsonl.repair(path) is not None and path.read_bytes() == whole
    study().enqueue_trial({"x": 2})
    assert [t.system_attrs["fixed_params"] for t in study().trials] == [{"x": 1}, {"x": 2}]


def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    import errno
    import os

    import pytest

    from runner.errors import storage_error

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a real fsync: no filename

    monkeypatch.setattr(os, "fsync", full)
    path = tmp_path / "trials.jsonl"
    with pytest.raises(OSError) as failed:
        jsonl.append(path, {"number": 0})
    line = str(storage_error(failed.value, tmp_path))
    assert line.startswith(f"{path}: No space left on device (ENOSPC);")
    assert f"hydra.run.dir={tmp_path} to resume" in line
