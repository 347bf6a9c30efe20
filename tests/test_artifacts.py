"""Artifacts on disk: written whole or not at all."""

from __future__ import annotations

import pytest

from runner.serve.artifacts import atomic_write


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == [
        "weights.pt"]


def test_a_failed_atomic_write_leaves_no_temp_file(tmp_path):
    path = tmp_path / "weights.pt"
    (path / "in-the-way").mkdir(parents=True)  # a directory where the file should go
    with pytest.raises(OSError):
        atomic_write(path, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "other.pt", "not bytes")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]
