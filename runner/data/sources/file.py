"""``data=parquet|csv``: Parquet, CSV, JSON or Delta at any URI Spark reads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlparse

from omegaconf import MISSING

from runner.config.data import DataConfig
from runner.data.sources import RawData, table_rows
from runner.errors import RunnerError, spark_cause

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FILE_FORMATS = ("parquet", "csv", "json", "delta")


@dataclass
class FileDataConfig(DataConfig):
    """Parquet, CSV, JSON or Delta at any URI Spark reads (file://, s3a://, hdfs://, ...)."""

    _target_: str = "runner.data.sources.file.FileSource"
    format: str = "parquet"  # parquet | csv | json | delta
    path: str = MISSING
    options: dict[str, str] = field(default_factory=dict)  # passed to spark.read.options
    label: Optional[str] = "label"  # rows to score (inference.data) need none
    features: Optional[list[str]] = None  # null: every numeric column but the label


class FileSource:
    """Parquet, CSV, JSON or Delta read by Spark from any URI it understands.

    The input's identity is every file under ``path`` with its size and modification
    time.
    """

    def validate(self, cfg: Any) -> list[str]:
        from omegaconf import OmegaConf

        if OmegaConf.is_missing(cfg, "path"):
            return [f"data.path: required for data={cfg.name}; set data.path=URI"]
        problems = []
        if cfg.format not in FILE_FORMATS:
            problems.append(f"data.format: {cfg.format!r} is not one of {', '.join(FILE_FORMATS)}")
        elif cfg.format == "delta" and not _importable("delta"):
            problems.append(
                "data.format: delta needs delta-spark; pip install 'spark-dl-runner[delta]'"
            )
        local = _plain_local_path(cfg.path)
        if local is not None:
            problems += _local_problems(cfg.path, local, cfg.format)
        if cfg.label is None:
            problems.append("data.label: required to train; name the label column")
        elif cfg.features is not None and cfg.label in cfg.features:
            problems.append(f"data.features: lists the label column {cfg.label!r}; remove it")
        return problems

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        """Every file under ``path`` (globs too), listed by Spark's ``binaryFile`` source
        without reading the content: a DataFrame query, so it works over Spark Connect and
        for every URI Spark reads. Hidden files (``_*``, ``.*``) are not data and not listed."""
        return {"files": self.listing(spark, cfg.path)}

    @staticmethod
    def listing(spark: "SparkSession", path: str, key: str = "data.path") -> list[list]:
        """Every file under ``path`` as ``[path, size, mtime]``, sorted (``key`` names the
        config key in errors). A local path without globs is listed here: a Spark query's
        first run in a fresh JVM costs ~1.5 s."""
        from pyspark.sql import functions as F

        local = _plain_local_path(path)
        not_found = RunnerError(f"{key}: {path} not found; set {key} to a file or folder")
        listing: list[Any]
        if local is not None:
            if not local.exists():
                raise not_found
            listing = [
                (f"file:{f.resolve()}", (st := f.stat()).st_size, st.st_mtime_ns // 1_000_000)
                for f in _data_files(local)
            ]
        else:
            try:
                listing = (
                    spark.read.format("binaryFile")
                    .option("recursiveFileLookup", "true")
                    .load(path)
                    .select("path", "length", F.unix_millis("modificationTime"))
                    .collect()
                )
            except Exception as err:
                if "PATH_NOT_FOUND" in str(err) or "does not exist" in str(err):
                    raise not_found from None
                raise RunnerError(
                    f"{key}: cannot list {path} ({spark_cause(err)}); check {key}"
                ) from None
        if not listing:
            raise RunnerError(
                f"{key}: {path} holds no data files; put the files there or set {key} to them"
            )
        return sorted([str(p), int(n), int(t)] for p, n, t in listing)

    def columns(self, cfg: Any) -> Optional[list[str]]:
        """The columns of a local CSV (with a header) or Parquet input, read without Spark
        (the first file of a folder); None when only Spark can tell."""
        local = _local_path(cfg.path)
        if local is None or not local.exists() or cfg.format not in ("csv", "parquet"):
            return None
        files = sorted(
            f for f in _data_files(local) if local.is_file() or f.suffix == f".{cfg.format}"
        )
        if not files:
            return None
        options = {str(k).lower(): str(v) for k, v in cfg.options.items()}
        if cfg.format == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(files[0]).names)
        if options.get("header", "false").lower() != "true":
            return None
        import csv

        with open(files[0], newline="", encoding=options.get("encoding", "utf-8")) as fh:
            sep = options.get("sep", options.get("delimiter", ","))
            return next(csv.reader(fh, delimiter=sep), [])

    def load(self, spark: "SparkSession", cfg: Any, labelled: bool = True) -> RawData:
        options = {str(k): str(v) for k, v in cfg.options.items()}
        try:
            df = spark.read.format(cfg.format).options(**options).load(cfg.path)
            df.schema  # noqa: B018 -- schema inference is where an unreadable file fails
        except Exception as err:
            raise RunnerError(
                f"data.path: cannot read {cfg.path} as {cfg.format} ({spark_cause(err)}); "
                "check that data.format names the files' format, and data.options"
            ) from None
        return table_rows(df, cfg, labelled, cfg.path, columnar=cfg.format in ("parquet", "delta"))


def _local_problems(uri: str, local: Path, format: str) -> list[str]:
    """A local ``data.path`` that is missing, unreadable or an empty folder."""
    if not local.exists():
        return [f"data.path: {uri} not found; set data.path to a file or folder"]
    if not os.access(local, os.R_OK) or (local.is_dir() and not os.access(local, os.X_OK)):
        return [
            f"data.path: {uri} is not readable (permission denied); "
            "give read access or copy the data somewhere readable"
        ]
    if local.is_dir() and next(_data_files(local), None) is None:
        return [_empty(uri, format)]
    return []


def _data_files(local: Path) -> Iterator[Path]:
    """The data files of a local file or folder, as Spark lists them: the file, or every
    file under the folder but hidden ones (a ``_*`` or ``.*`` name on the way)."""
    if local.is_file():
        yield local
        return
    for f in local.rglob("*"):
        if f.is_file() and not any(p.startswith(("_", ".")) for p in f.relative_to(local).parts):
            yield f


def _empty(uri: str, format: str) -> str:
    return (
        f"data.path: {uri} holds no data files; put the {format} files there "
        "or set data.path to them"
    )


def missing_local_path(uri: str) -> bool:
    """``uri`` is a local path (no glob) that does not exist."""
    local = _plain_local_path(uri)
    return local is not None and not local.exists()


def _plain_local_path(uri: str) -> Optional[Path]:
    """``uri`` as a local path when it is one and has no glob characters."""
    local = _local_path(uri)
    return None if local is None or any(ch in str(local) for ch in "*?[{") else local


def _local_path(uri: str) -> Optional[Path]:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    return None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
