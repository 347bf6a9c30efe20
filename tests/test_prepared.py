"""The prepared layout: entries written and read back, shards, dealing, streaming, URIs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from runner.config import as_plain
from runner.data import preprocess
from runner.data.prepared import PreparedDataset, RowGroup, deal, write_entry
from runner.errors import RunnerError


def _table(ids: np.ndarray) -> pa.Table:
    """Rows whose features encode their id, so any read can be checked row by row."""
    return pa.table({
        "id": ids,
        "label": ids % 3,
        "features": pa.array([[float(v), -float(v)] for v in ids], type=pa.list_(pa.float32())),
    })


def _entry(root, train=103, val=40, files=2, row_group_size=10) -> PreparedDataset:
    """train in ``files`` files, val in one, row groups of ``row_group_size`` rows."""
    ids = np.arange(train + val)
    splits = {"train": [_table(part) for part in np.array_split(ids[:train], files)],
              "val": [_table(ids[train:])]}
    return write_entry(str(root), splits, (2,), 3, row_group_size=row_group_size)


def _ids(x: np.ndarray) -> list[int]:
    return x[:, 0].astype(int).tolist()


def test_an_entry_round_trips(tmp_path):
    written = _entry(tmp_path / "abc123")
    entry = PreparedDataset.open(str(tmp_path / "abc123"), ["train", "val"])
    assert entry == written and entry.fingerprint == "abc123"
    assert entry.rows == {"train": 103, "val": 40}
    assert entry.input_shape == (2,) and entry.num_classes == 3
    assert [f.rsplit("/", 1)[-1] for f in entry.files("train")] == [
        "part-00000.parquet", "part-00001.parquet"]
    assert [g.rows for g in entry.row_groups(["train"])] == [10] * 5 + [2] + [10] * 5 + [1]
    assert sum(g.rows for g in entry.row_groups(["train", "val"])) == 143
    x, y = entry.read("train")
    assert x.dtype == np.float32 and x.shape == (103, 2) and y.dtype == np.int64
    assert _ids(x) == list(range(103)) and np.array_equal(y, x[:, 0].astype(int) % 3)
    assert entry.schema("val").names == ["id", "label", "features"]
    assert entry.table(["val"], ["id"]).column("id").to_pylist() == list(range(103, 143))


def test_whole_split_reads_are_cached_per_process(tmp_path):
    entry = _entry(tmp_path / "e")
    first = entry.read("val")
    again = PreparedDataset(entry.uri).read("val")  # a trial rebuilds it from its spec
    assert again[0] is first[0] and again[1] is first[1]


@pytest.mark.parametrize("world", [1, 2, 3, 7, 20])
def test_shards_cover_every_row_exactly_once(tmp_path, world):
    entry = _entry(tmp_path / "e")  # 15 row groups over both splits
    shards = [entry.shard(["train", "val"], rank, world) for rank in range(world)]
    ids = [_ids(x) for x, _ in shards]
    assert sorted(i for shard in ids for i in shard) == list(range(143))
    for x, y in shards:
        assert np.array_equal(y, x[:, 0].astype(int) % 3)  # labels stay with their rows
    sizes = [len(shard) for shard in ids]
    assert max(sizes) - min(sizes) <= 10  # balanced to within a row group


def test_dealing_is_balanced_and_deterministic():
    groups = [RowGroup("a", 0, 100), RowGroup("b", 0, 60), RowGroup("b", 1, 40),
              RowGroup("c", 0, 50)]
    shares = deal(groups, 2)
    assert sorted(sum(g.rows for g in share) for share in shares) == [110, 140]
    assert sorted(g for share in shares for g in share) == sorted(groups)
    assert deal(groups[::-1], 2) == shares  # input order does not matter
    assert shares[0][0] == RowGroup("a", 0, 100)  # largest first, to the first share
    assert [len(share) for share in deal(groups, 6)] == [1, 1, 1, 1, 0, 0]


def test_streamed_batches_equal_the_whole_read(tmp_path):
    entry = _entry(tmp_path / "e")
    in_order = list(entry.batches("train", batch_size=16))
    assert [len(y) for _, y in in_order] == [16] * 6 + [7]
    x, y = (np.concatenate(parts) for parts in zip(*in_order))
    whole_x, whole_y = entry.read("train")
    assert np.array_equal(x, whole_x) and np.array_equal(y, whole_y)


def test_shuffled_passes_differ_and_keep_every_row(tmp_path):
    shuffled = _entry(tmp_path / "e").batches("train", batch_size=200, seed=1)
    first, second = (next(iter(shuffled)) for _ in range(2))
    assert sorted(_ids(first[0])) == sorted(_ids(second[0])) == list(range(103))
    assert _ids(first[0]) != _ids(second[0])
    assert np.array_equal(first[1], first[0][:, 0].astype(int) % 3)


def test_a_shuffled_batch_mixes_row_groups(tmp_path):
    """A row group is one task's rows, not a fair sample: batches draw from several."""
    stream = _entry(tmp_path / "e", files=1).batches("train", batch_size=10, seed=3)
    for x, _ in list(stream)[:-1]:
        assert len({i // 10 for i in _ids(x)}) > 1  # ids i // 10: the row group (of 10)


def test_a_file_uri_reads_as_the_path(tmp_path):
    path = _entry(tmp_path / "e")
    uri = PreparedDataset.open(f"file://{tmp_path / 'e'}", ["train"])
    assert uri.rows == path.rows and uri.local_path() == path.local_path() == tmp_path / "e"
    assert ([(g.index, g.rows) for g in uri.row_groups(["train"])]
            == [(g.index, g.rows) for g in path.row_groups(["train"])])
    for a, b in zip(uri.read("train"), path.read("train")):
        assert np.array_equal(a, b)
    assert np.array_equal(uri.shard(["train"], 1, 2)[0], path.shard(["train"], 1, 2)[0])
    assert uri.split_uri("train") == f"file://{tmp_path}/e/data/split=train"


def test_a_missing_meta_or_split_is_one_error_naming_the_key(tmp_path):
    with pytest.raises(RunnerError) as missing:
        PreparedDataset.open(str(tmp_path / "nothing"), key="model_path")
    assert str(missing.value) == (f"model_path: {tmp_path / 'nothing'} is not a complete "
                                  "prepared data entry (no meta.json)")
    entry = _entry(tmp_path / "e")
    with pytest.raises(RunnerError, match=r"^data.cache_dir: the prepared data at .*/e has no "
                                          r"test split$"):
        PreparedDataset.open(entry.uri, ["train", "test"])
    (tmp_path / "e" / "meta.json").unlink()  # an incomplete entry
    assert entry.problems(["train"]) == [
        f"data.cache_dir: {entry.uri} is not a complete prepared data entry (no meta.json)"]


def test_a_file_uri_cache_dir_works_end_to_end(spark, cfg, tmp_path):
    """preprocess writes through the URI, trials and inference tasks read through it."""
    from runner.serve import artifacts, infer
    from runner.tune import sweep

    root = f"file://{tmp_path}/cache"
    prepared = preprocess.run(spark, cfg.data, root)
    assert prepared.uri.startswith(root) and not prepared.cache_hit
    meta = json.loads((tmp_path / "cache" / prepared.fingerprint / "meta.json").read_text())
    assert meta["rows"] == prepared.rows and sum(prepared.rows.values()) == 1797
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [prepared.fingerprint]
    assert preprocess.run(spark, cfg.data, root).cache_hit

    swept = sweep.run(spark, prepared, cfg, tmp_path / "run")
    assert swept.best.metrics["val_accuracy"] > 0.8
    artifact = artifacts.ModelArtifact.trained(
        sweep.trial_config(cfg, swept.params[swept.best.number])["model"], as_plain(cfg.task),
        prepared, swept.best.weights)
    rows = infer.load_rows(spark, None, prepared)
    result = infer.run(spark, rows, artifact, cfg.inference, tmp_path / "predictions")
    assert result.rows == prepared.rows["test"] and result.metrics["test_accuracy"] > 0.8


def test_streamed_batches_come_from_a_background_reader_in_order(tmp_path):
    from runner.data.prepared import _background

    assert list(_background(iter(range(50)), 3)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("bad row group")

    got = _background(failing(), 2)
    assert next(got) == 1
    with pytest.raises(ValueError, match="bad row group"):
        next(got)
    early = _background(iter(range(1000)), 2)
    assert next(early) == 0
    early.close()  # stopping early ends the thread
