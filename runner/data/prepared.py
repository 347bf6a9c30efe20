"""Streaming a prepared split from Parquet row groups, for data larger than a trial's memory.

No pyspark: trials run inside Spark's Python workers and read the prepared Parquet
themselves. Only one row group (plus one batch) is in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


class ParquetBatches:
    """Re-iterable ``(features, labels)`` numpy batches over one split's row groups.

    Each pass visits the row groups in an order shuffled by ``seed`` and the pass
    number, and shuffles rows within each group; ``seed=None`` keeps file order.
    Batches never span row groups except to fill up to ``batch_size``.
    """

    def __init__(self, data_path: str, split: str, batch_size: int, seed: int | None = None):
        import pyarrow.parquet as pq

        files = sorted(Path(data_path, f"split={split}").glob("*.parquet"))
        self.groups = [(f, g) for f in files for g in range(pq.ParquetFile(f).num_row_groups)]
        self.batch_size = batch_size
        self.seed = seed
        self.passes = 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import pyarrow.parquet as pq

        rng = np.random.default_rng([self.seed, self.passes]) if self.seed is not None else None
        self.passes += 1
        order = rng.permutation(len(self.groups)) if rng is not None else range(len(self.groups))
        carry_x, carry_y = [], []
        for i in order:
            path, group = self.groups[i]
            table = pq.ParquetFile(path).read_row_group(group, columns=["features", "label"])
            x, y = read_arrays(table)
            if rng is not None:
                perm = rng.permutation(len(y))
                x, y = x[perm], y[perm]
            carry_x.append(x)
            carry_y.append(y)
            x, y = np.concatenate(carry_x), np.concatenate(carry_y)
            full = len(y) - len(y) % self.batch_size
            for start in range(0, full, self.batch_size):
                yield x[start : start + self.batch_size], y[start : start + self.batch_size]
            carry_x, carry_y = [x[full:]], [y[full:]]
        if carry_y and len(carry_y[0]):
            yield carry_x[0], carry_y[0]


def read_arrays(table) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, rows x width) and int64 labels of a pyarrow table."""
    column = table.column("features").combine_chunks()
    labels = table.column("label").to_numpy().astype(np.int64)
    width = len(column[0]) if len(column) else 0
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return values.reshape(len(labels), width), labels
