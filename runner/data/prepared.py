"""The prepared data on disk: the one module that knows its layout.

An entry ``<cache_dir>/<fingerprint>/`` (a local path or a URI that pyarrow's filesystems
read, ``file://`` included) holds::

    data/split=<name>/*.parquet   id long, label (the task's: long, float or
                                  list<float>), features: list<float> (tables),
                                  binary (images: uint8 C x H x W) or list<int> (token ids)
    transform/                    the fitted preparation (``preprocess.apply_transform``)
    meta.json                     rows per split, input shape, classes, ``input``...; written last

``meta["input"]`` says how the stored features become the model's input
(:func:`model_input`): absent for float features, ``{"kind": "image", "mean", "std"}``
(per channel, fitted on train) or ``{"kind": "tokens"}`` (int64 ids).

No pyspark: trials, DDP processes and inference tasks read the Parquet themselves with
pyarrow, inside Spark's Python workers.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from runner.errors import RunnerError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

META = "meta.json"
DATA = "data"
TRANSFORM = "transform"
COLUMNS = ["features", "label"]  # what training reads


def _split_dir(split: str) -> str:
    return f"{DATA}/split={split}"


@dataclass(frozen=True, order=True)
class RowGroup:
    """One Parquet row group: the unit that readers share out."""

    path: str  # the file, on the entry's filesystem
    index: int
    rows: int


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared entry, named by its path or URI; picklable and cheap to rebuild from it.

    ``cache_hit``: the preprocess stage found it complete instead of writing it.
    """

    uri: str
    cache_hit: bool = field(default=False, compare=False)

    @classmethod
    def open(
        cls, uri: str, splits: Sequence[str] = (), key: str = "data.cache_dir"
    ) -> "PreparedDataset":
        """The entry at ``uri``, checked to be complete and to hold ``splits``.

        Raises:
            RunnerError: naming ``key``, when ``meta.json`` or a split is missing.
        """
        dataset = cls(str(uri))
        problems = dataset.problems(splits, key)
        if problems:
            raise RunnerError("; ".join(problems))
        return dataset

    def problems(self, splits: Sequence[str] = (), key: str = "data.cache_dir") -> list[str]:
        """What keeps the entry from being read (no ``meta.json``, a split without
        Parquet files), each naming ``key``."""
        import pyarrow.fs as pafs

        fs, meta = self._locate(META)
        if fs.get_file_info(meta).type != pafs.FileType.File:
            return [f"{key}: {self.uri} is not a complete prepared data entry (no {META})"]
        return [
            f"{key}: the prepared data at {self.uri} has no {split} split"
            for split in splits
            if not self.files(split)
        ]

    @cached_property
    def meta(self) -> dict[str, Any]:
        """``meta.json``: ``rows`` per split, ``input_shape``, ``num_classes``, ``label``..."""
        fs, path = self._locate(META)
        with fs.open_input_stream(path) as stream:
            return json.loads(stream.read())

    @property
    def fingerprint(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def rows(self) -> dict[str, int]:
        return dict(self.meta["rows"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.meta["input_shape"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """What the preparation tells the model of the features besides their shape, e.g.
        ``categories`` (each categorical column's indices); the task adds its own
        (``runner.train.model.model_kwargs``)."""
        return dict(self.meta.get("model_kwargs") or {})

    @property
    def task(self) -> dict[str, Any]:
        """The task config the data was prepared for, with what it learnt from the train
        split's labels (``runner.tasks``); entries from before tasks are classification."""
        if "task" in self.meta:
            return dict(self.meta["task"])
        classes = self.meta.get("label", {}).get("classes")
        return {
            "_target_": "runner.tasks.Classification",
            **({"classes": classes} if classes is not None else {}),
        }

    @property
    def transform_uri(self) -> str:
        """The fitted preprocessing (a ``PipelineModel``)."""
        return f"{self.uri.rstrip('/')}/{TRANSFORM}"

    def split_uri(self, split: str) -> str:
        """One split's Parquet directory, for Spark or pyarrow readers."""
        return f"{self.uri.rstrip('/')}/{_split_dir(split)}"

    def local_path(self) -> Path | None:
        """The entry on this machine's disk, or None when it lives elsewhere."""
        import pyarrow.fs as pafs

        fs, root = _filesystem(self.uri)
        return Path(root) if isinstance(fs, pafs.LocalFileSystem) else None

    def files(self, split: str) -> list[str]:
        """The split's Parquet files (paths on the entry's filesystem), sorted."""
        import pyarrow.fs as pafs

        fs, directory = self._locate(_split_dir(split))
        selector = pafs.FileSelector(directory, allow_not_found=True)
        return sorted(
            info.path
            for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.path.endswith(".parquet")
        )

    def row_groups(self, splits: Sequence[str]) -> list[RowGroup]:
        """The non-empty row groups of ``splits``, in file order."""
        groups = []
        for split in splits:
            for path in self.files(split):
                meta = self._parquet(path).metadata
                groups += [
                    RowGroup(path, g, meta.row_group(g).num_rows)
                    for g in range(meta.num_row_groups)
                    if meta.row_group(g).num_rows
                ]
        return groups

    def schema(self, split: str) -> "pa.Schema | None":
        """The Arrow schema of the split's files (None without files)."""
        files = self.files(split)
        return self._parquet(files[0]).schema_arrow if files else None

    def table(self, splits: Sequence[str], columns: Sequence[str] | None = None) -> "pa.Table":
        """``splits`` read whole, in file order."""
        import pyarrow.dataset as ds

        fs, _ = _filesystem(self.uri)
        files = [f for split in splits for f in self.files(split)]
        return ds.dataset(files, filesystem=fs, format="parquet").to_table(
            columns=list(columns) if columns is not None else None
        )

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Features (float32, rows x width) and labels of one split, cached per process:
        a Python worker reused by Spark reads each split once, not once per trial."""
        return _read_split(self.uri, split)

    @property
    def input(self) -> dict[str, Any]:
        """How stored features become model input (see :func:`model_input`)."""
        return dict(self.meta.get("input") or {})

    def read_groups(self, groups: Sequence[RowGroup]) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of (one or more) row groups, in order."""
        import pyarrow as pa

        return read_arrays(
            pa.Table.from_batches(list(self.batches_of(groups, COLUMNS))), self.input
        )

    def shard(self, splits: Sequence[str], rank: int, world: int) -> tuple[np.ndarray, np.ndarray]:
        """Rank ``rank`` of ``world``'s rows of ``splits``: whole row groups dealt by
        :func:`deal`. With fewer row groups than ranks (tiny data) every rank reads all
        and keeps rows ``rank::world``."""
        groups = self.row_groups(splits)
        if len(groups) < world:
            x, y = read_arrays(self.table(splits, COLUMNS), self.input)
            return x[rank::world], y[rank::world]
        return self.read_groups(deal(groups, world)[rank])

    def batches(self, split: str, batch_size: int, seed: int | None = None) -> "ParquetBatches":
        """Re-iterable ``(features, labels)`` batches streamed row group by row group."""
        return ParquetBatches(self, split, batch_size, seed)

    def batches_of(
        self, groups: Sequence[RowGroup], columns: Sequence[str], batch_rows: int = 65_536
    ) -> Iterator["pa.RecordBatch"]:
        """Arrow batches of ``groups`` (in that order), each file's footer read once."""
        opened: dict[str, Any] = {}
        for group in groups:
            if group.path not in opened:
                opened[group.path] = self._parquet(group.path)
            yield from opened[group.path].iter_batches(
                batch_rows, row_groups=[group.index], columns=list(columns)
            )

    def write_file(self, relative: str, data: bytes) -> None:
        """A file of the entry (e.g. ``transform/tokenizer.json``), written whole."""
        fs, path = self._locate(relative)
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(path) as stream:
            stream.write(data)

    def read_file(self, relative: str) -> bytes:
        """A file of the entry written by :meth:`write_file`."""
        fs, path = self._locate(relative)
        with fs.open_input_stream(path) as stream:
            return stream.read()

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        """Write ``meta.json``: the last file of an entry, which marks it complete."""
        fs, path = self._locate(META)
        with fs.open_output_stream(path) as stream:
            stream.write(json.dumps(meta, indent=2).encode())
        self.__dict__.pop("meta", None)

    def _locate(self, relative: str) -> tuple["pafs.FileSystem", str]:
        """The entry's filesystem and the path on it of ``relative`` (a part of the entry)."""
        fs, root = _filesystem(self.uri)
        return fs, f"{root}/{relative}"

    def _parquet(self, path: str):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path, filesystem=_filesystem(self.uri)[0])


def deal(groups: Sequence[RowGroup], tasks: int) -> list[list[RowGroup]]:
    """Row groups dealt into ``tasks`` shares of about equal rows: largest first, each to
    the share holding the fewest rows so far. Deterministic: the same groups in any
    order give the same shares."""
    shares: list[list[RowGroup]] = [[] for _ in range(tasks)]
    loads = [0] * tasks
    for group in sorted(groups, key=lambda g: (-g.rows, g.path, g.index)):
        emptiest = loads.index(min(loads))
        shares[emptiest].append(group)
        loads[emptiest] += group.rows
    return shares


def read_arrays(
    table: "pa.Table", input: Mapping[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Model input (rows x width, see :func:`model_input`) and labels (see :func:`label_array`)
    of a table."""
    labels = label_array(table.column("label"))
    return model_input(table.column("features").combine_chunks(), input), labels


def model_input(features: "pa.Array", input: Mapping[str, Any] | None = None) -> np.ndarray:
    """Stored features (an Arrow array, one value per row) -> the model's input, rows x width.

    ``input`` is ``meta["input"]``: absent, float32 features as stored; ``image``, uint8
    bytes (C x H x W per row) as float32 normalized by the per-channel ``mean`` and ``std``
    (of 0..255 values); ``tokens``, int64 token ids.
    """
    import pyarrow as pa

    spec: Mapping[str, Any] = input or {}
    kind = spec.get("kind")
    if kind == "image":
        if isinstance(features, pa.ChunkedArray):
            features = features.combine_chunks()
        rows = len(features)
        if rows == 0:
            return np.zeros((0, 0), np.float32)
        buffers = features.buffers()
        wide = np.int64 if pa.types.is_large_binary(features.type) else np.int32
        offsets = np.frombuffer(buffers[1], dtype=wide)[
            features.offset : features.offset + rows + 1
        ]
        data = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        mean = np.asarray(spec["mean"], dtype=np.float32)
        scale = 1 / np.asarray(spec["std"], dtype=np.float32)
        values = data.reshape(rows, len(mean), -1).astype(np.float32)
        values -= mean[:, None]  # in place: one float copy of the batch, no more
        values *= scale[:, None]
        return values.reshape(rows, -1)
    width = len(features[0]) if len(features) else 0
    values = features.flatten().to_numpy(zero_copy_only=False)
    dtype = np.int64 if kind == "tokens" else np.float32
    return values.astype(dtype).reshape(len(features), width)


def label_array(column: Any) -> np.ndarray:
    """Labels as the task's loss takes them: integer classes as int64, values as float32,
    multi-hot lists as a (rows x tags) float32 array."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        width = len(column[0]) if len(column) else 0
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        return flat.reshape(len(column), width)
    values = column.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(column.type):
        return values.astype(np.int64)
    return values.astype(np.float32)


def location(path_or_uri: str, base: Path) -> str:
    """``data.cache_dir`` resolved: a URI as it is, a relative path under ``base``."""
    if "://" in path_or_uri:
        return path_or_uri
    path = Path(path_or_uri)
    return str(path if path.is_absolute() else base / path)


def entry_in(cache_root: str, key: str) -> PreparedDataset:
    """The entry ``key`` of a cache directory (path or URI), complete or not."""
    return PreparedDataset(f"{cache_root.rstrip('/')}/{key}")


@contextmanager
def building(cache_root: str, key: str) -> Iterator[PreparedDataset]:
    """A temporary entry to write (``meta.json`` last), moved to ``<cache_root>/<key>``
    when the block succeeds: an older or incomplete entry there is replaced; if another
    job moved a complete one there first, that one stays."""
    import pyarrow.fs as pafs

    tmp = entry_in(cache_root, f".{key}.{uuid.uuid4().hex[:8]}.tmp")
    fs, staged = _filesystem(tmp.uri)
    final = _filesystem(entry_in(cache_root, key).uri)[1]
    fs.create_dir(staged, recursive=True)
    try:
        yield tmp
        if fs.get_file_info(final).type != pafs.FileType.NotFound:  # cache=false, or incomplete
            fs.delete_dir(final)
        try:
            fs.move(staged, final)
        except OSError:  # a concurrent job finished the same entry first
            pass
    finally:
        if fs.get_file_info(staged).type != pafs.FileType.NotFound:
            fs.delete_dir(staged)


def write_entry(
    uri: str,
    splits: Mapping[str, Sequence["pa.Table"]],
    input_shape: Sequence[int],
    num_classes: int,
    row_group_size: int | None = None,
) -> PreparedDataset:
    """An entry written from Arrow tables (one Parquet file each) without Spark, for tests
    and benchmarks; no fitted transform."""
    import pyarrow.parquet as pq

    dataset = PreparedDataset(uri)
    for split, tables in splits.items():
        fs, directory = dataset._locate(_split_dir(split))
        fs.create_dir(directory, recursive=True)
        for i, table in enumerate(tables):
            pq.write_table(
                table,
                f"{directory}/part-{i:05d}.parquet",
                filesystem=fs,
                row_group_size=row_group_size,
            )
    dataset.write_meta(
        {
            "input_shape": list(input_shape),
            "num_classes": num_classes,
            "rows": {split: sum(t.num_rows for t in tables) for split, tables in splits.items()},
        }
    )
    return dataset


ROW_GROUP_BYTES = 64 << 20  # a written row group's size: the unit readers share out


@dataclass
class WrittenRows:
    """What :func:`row_writer`'s tasks counted, summed: rows per split, rows without a
    label, and (``count_labels``) each label value's rows overall and in the train split."""

    rows: dict[str, int] = field(default_factory=dict)
    unlabelled: int = 0
    labels: dict[Any, tuple[int, int]] = field(default_factory=dict)

    def add(self, task: Mapping[str, Any]) -> None:
        """Add one task's counts (the JSON its ``counts`` row holds)."""
        for split, n in task["rows"].items():
            self.rows[split] = self.rows.get(split, 0) + n
        self.unlabelled += task["unlabelled"]
        for value, n, train in task["labels"]:
            was = self.labels.get(value, (0, 0))
            self.labels[value] = (was[0] + n, was[1] + train)


def row_writer(uri: str, count_labels: bool):
    """A ``mapInArrow`` function (output schema ``counts string``) that writes its rows into
    entry ``uri``'s split directories with pyarrow, and returns what it counted as JSON.

    The rows have the layout's columns and ``split``. Each task writes one file per split,
    named by its partition, so a retried task replaces its earlier attempt's; row groups
    of about ``ROW_GROUP_BYTES``; dictionary encoding for a flat label only (the features'
    values rarely repeat). Faster than Spark's Parquet writer for float arrays (1.1 vs 1.6 s
    for 1M rows of 16 features on 2 cores, reading and computing included)."""

    def write(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
        from pyspark import TaskContext

        context = TaskContext.get()
        assert context is not None  # in a Spark task
        dataset = PreparedDataset(uri)
        fs = _filesystem(uri)[0]
        writers: dict[str, Any] = {}
        buffered: dict[str, list[pa.RecordBatch]] = {}
        buffered_bytes: dict[str, int] = {}
        counts: dict[str, Any] = {"rows": {}, "unlabelled": 0}
        labels: dict[Any, list[int]] = {}

        def flush(split: str) -> None:
            table = pa.Table.from_batches(buffered.pop(split))
            buffered_bytes.pop(split)
            if split not in writers:
                _, directory = dataset._locate(_split_dir(split))
                fs.create_dir(directory, recursive=True)
                flat = not pa.types.is_nested(table.schema.field("label").type)
                writers[split] = pq.ParquetWriter(
                    f"{directory}/part-{context.partitionId():05d}.parquet",
                    table.schema,
                    filesystem=fs,
                    use_dictionary=["label"] if flat else False,
                )
            writers[split].write_table(table, row_group_size=table.num_rows)

        for batch in batches:
            split_of = batch.column("split")
            rows = batch.drop_columns(["split"])
            counts["unlabelled"] += rows.column("label").null_count
            for split in ("train", "val", "test"):
                part = rows.filter(pc.equal(split_of, split))
                if not part.num_rows:
                    continue
                counts["rows"][split] = counts["rows"].get(split, 0) + part.num_rows
                if count_labels:
                    for entry in pc.value_counts(part.column("label")).to_pylist():
                        tally = labels.setdefault(entry["values"], [0, 0])
                        tally[0] += entry["counts"]
                        tally[1] += entry["counts"] if split == "train" else 0
                buffered.setdefault(split, []).append(part)
                buffered_bytes[split] = buffered_bytes.get(split, 0) + part.nbytes
                if buffered_bytes[split] >= ROW_GROUP_BYTES:
                    flush(split)
        for split in list(buffered):
            flush(split)
        for writer in writers.values():
            writer.close()
        counts["labels"] = [[v, n, t] for v, (n, t) in labels.items() if v is not None]
        yield pa.RecordBatch.from_pydict({"counts": [json.dumps(counts)]})

    return write


class ParquetBatches:
    """Re-iterable ``(features, labels)`` numpy batches over one split's row groups, for
    data larger than a trial's memory: ``SHUFFLE_GROUPS`` row groups in memory at a time,
    as stored (images stay uint8 until their batch is made).

    Each pass visits the row groups in an order shuffled by ``seed`` and the pass number,
    and shuffles the rows of each window of ``SHUFFLE_GROUPS`` groups together: a row
    group holds one Spark task's rows, which need not be a fair sample (image files are
    packed into tasks by size, so their classes cluster). ``seed=None`` keeps file order.
    """

    def __init__(
        self, dataset: PreparedDataset, split: str, batch_size: int, seed: int | None = None
    ):
        self.dataset = dataset
        self.groups = dataset.row_groups([split])
        self.batch_size = batch_size
        self.seed = seed
        self.passes = 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The pass's batches, read and decoded (``model_input``) by a background thread
        up to ``PREFETCH`` batches ahead, so the model does not wait on the reading."""
        rng = np.random.default_rng([self.seed, self.passes]) if self.seed is not None else None
        self.passes += 1  # here, not in the thread: each pass's order is fixed when it starts
        return _background(self._read_pass(rng), PREFETCH)

    def _read_pass(
        self, rng: "np.random.Generator | None"
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import pyarrow as pa

        order = rng.permutation(len(self.groups)) if rng is not None else range(len(self.groups))
        carry: list[pa.Table] = []  # the rows short of a full batch, for the next window
        for start in range(0, len(order), SHUFFLE_GROUPS):
            window = [self.groups[i] for i in order[start : start + SHUFFLE_GROUPS]]
            table = pa.concat_tables(
                [*carry, pa.Table.from_batches(list(self.dataset.batches_of(window, COLUMNS)))]
            ).combine_chunks()  # one chunk: each batch's take reads only its rows
            rows = np.arange(table.num_rows) if rng is None else rng.permutation(table.num_rows)
            full = len(rows) - len(rows) % self.batch_size
            for first in range(0, full, self.batch_size):
                batch = table.take(rows[first : first + self.batch_size])
                yield read_arrays(batch, self.dataset.input)
            carry = [table.take(rows[full:])]
        if carry and carry[0].num_rows:
            yield read_arrays(carry[0], self.dataset.input)


SHUFFLE_GROUPS = 4  # row groups a shuffled pass mixes at a time
PREFETCH = 4  # batches a streaming reader keeps ready


def _background(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items`` produced by a daemon thread, at most ``depth`` ahead; its exception is
    raised here. pyarrow and numpy release the GIL while they read and convert."""
    import queue
    import threading

    done = object()
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(done)
        except BaseException as err:  # handed to the consumer
            ready.put(err)

    thread = threading.Thread(target=produce, daemon=True, name="parquet-batches")
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the consumer stopped early (or finished): let the thread end
        stop.set()


@lru_cache(maxsize=8)
def _read_split(uri: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    dataset = PreparedDataset(uri)
    return read_arrays(dataset.table([split], COLUMNS), dataset.input)


@lru_cache(maxsize=16)
def _filesystem(uri: str) -> tuple["pafs.FileSystem", str]:
    """The filesystem of a URI and the path on it; a plain path is local (made absolute)."""
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")
