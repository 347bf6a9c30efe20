"""``data=table``: a table of the session's catalog (``spark.read.table``), by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from omegaconf import MISSING

from runner.config.data import DataConfig
from runner.data.sources import RawData, table_rows
from runner.errors import RunnerError, spark_cause

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass
class TableDataConfig(DataConfig):
    """A table the session's catalog knows (Hive metastore, Unity, Glue, a temp view, ...)."""

    _target_: str = "runner.data.sources.table.TableSource"
    table: str = MISSING  # e.g. sales.customers or catalog.db.table
    label: Optional[str] = "label"  # rows to score (inference.data) need none
    features: Optional[list[str]] = None  # null: every numeric column but the label


class TableSource:
    """Rows of a catalog table.

    The input's identity is the table's schema and the files Spark reads for it
    (``DataFrame.inputFiles``): a rewritten table has new part files, so the prepared
    data is rebuilt. A table whose files are rewritten in place under the same names, or a
    view over a source without files, keeps its identity: set ``data.cache=false`` there.
    """

    def validate(self, cfg: Any) -> list[str]:
        from omegaconf import OmegaConf

        if OmegaConf.is_missing(cfg, "table") or not str(cfg.table).strip():
            return [f"data.table: required for data={cfg.name}; set data.table=NAME"]
        if cfg.features is not None and cfg.label in cfg.features:
            return [f"data.features: lists the label column {cfg.label!r}; remove it"]
        return []

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        df = self._read(spark, cfg)
        return {"schema": df.schema.simpleString(), "files": sorted(df.inputFiles())}

    def load(self, spark: "SparkSession", cfg: Any, labelled: bool = True) -> RawData:
        df = self._read(spark, cfg)
        return table_rows(df, cfg, labelled, f"table {cfg.table}")

    def _read(self, spark: "SparkSession", cfg: Any) -> "DataFrame":
        try:
            df = spark.read.table(cfg.table)
            df.schema  # noqa: B018 -- resolving the name is where an unknown table fails
        except Exception as err:
            raise RunnerError(
                f"data.table: cannot read table {cfg.table!r} "
                f"({spark_cause(err)}); check the name and the session's "
                "catalog (deploy.spark_conf)"
            ) from None
        return df
