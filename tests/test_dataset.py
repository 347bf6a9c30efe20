"""Streaming batches from Parquet row groups, without Spark."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from runner.data.prepared import ParquetBatches


def _write(tmp_path, rows=103, files=2):
    split = tmp_path / "split=train"
    split.mkdir()
    ids = np.arange(rows)
    for i, part in enumerate(np.array_split(ids, files)):
        table = pa.table({
            "id": part,
            "label": part % 3,
            "features": pa.array([[float(v), -float(v)] for v in part], type=pa.list_(pa.float32())),
        })
        pq.write_table(table, split / f"part-{i}.parquet", row_group_size=10)
    return str(tmp_path)


def test_yields_every_row_once_in_batches(tmp_path):
    batches = ParquetBatches(_write(tmp_path), "train", batch_size=16, seed=0)
    assert len(batches.groups) == 12  # 52 and 51 rows in groups of 10
    seen = list(batches)
    assert [len(y) for _, y in seen] == [16] * 6 + [7]
    x = np.concatenate([x for x, _ in seen])
    y = np.concatenate([y for _, y in seen])
    assert x.dtype == np.float32 and x.shape == (103, 2)
    assert sorted(x[:, 0].astype(int)) == list(range(103))
    assert np.array_equal(y, x[:, 0].astype(int) % 3)  # labels stay with their rows


def test_passes_reshuffle_and_no_seed_keeps_file_order(tmp_path):
    path = _write(tmp_path)
    shuffled = ParquetBatches(path, "train", batch_size=200, seed=1)
    first, second = (next(iter(shuffled))[0][:, 0] for _ in range(2))
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)
    ordered = next(iter(ParquetBatches(path, "train", batch_size=200)))[0][:, 0]
    assert ordered.tolist() == list(range(103))
