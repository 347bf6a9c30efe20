"""``data=image_table``: encoded images (JPEG, PNG...) as a binary column of a table at any URI
Spark reads (Parquet, Delta, ...), with a label column."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from omegaconf import MISSING

from runner.config.data import DataConfig
from runner.data.sources import RawData
from runner.data.sources.file import FileSource, missing_local_path
from runner.data.sources.images import ImageConfig
from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class ImageTableDataConfig(DataConfig):
    """A table with a column of encoded image bytes (``content``) and a ``label``."""

    _target_: str = "runner.data.sources.image_table.ImageTableSource"
    format: str = "parquet"  # any spark.read format: parquet, delta, orc, ...
    path: str = MISSING
    options: dict[str, str] = field(default_factory=dict)  # passed to spark.read.options
    content: str = "content"  # the binary column of encoded images
    label: str = "label"
    key: Optional[str] = None  # a column naming each image, kept as ``path``; null: none
    image: ImageConfig = field(default_factory=ImageConfig)
    on_bad_record: str = "skip"  # skip (counted in meta.json) | fail
    scaling: str = "standard"  # standard: per-channel mean/std fitted on train | none: /255


class ImageTableSource:
    """Rows read by Spark; the image preparation decodes ``content`` on the executors."""

    preparation = "runner.data.preparations.image.ImagePreparation"

    def input_shape(self, cfg: Any) -> list[int]:
        from runner.data.preparations.image import image_shape

        return image_shape(cfg.image)

    def validate(self, cfg: Any) -> list[str]:
        from omegaconf import OmegaConf

        if OmegaConf.is_missing(cfg, "path"):
            return [f"data.path: required for data={cfg.name}; set data.path=URI"]
        if missing_local_path(cfg.path):
            return [f"data.path: {cfg.path} not found; set data.path to a table"]
        return []

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        return {"files": FileSource.listing(spark, cfg.path)}

    def load(self, spark: "SparkSession", cfg: Any, labelled: bool = True) -> RawData:
        from pyspark.sql import functions as F

        df = (
            spark.read.format(cfg.format)
            .options(**{str(k): str(v) for k, v in cfg.options.items()})
            .load(cfg.path)
        )
        wanted = {"content": cfg.content, "label": cfg.label, "key": cfg.key}
        for key, column in wanted.items():
            if column is not None and column not in df.columns and (labelled or key != "label"):
                raise RunnerError(
                    f"data.{key}: no column {column!r} in {cfg.path}; "
                    f"available: {', '.join(df.columns)}"
                )
        if dict(df.dtypes)[cfg.content] != "binary":
            raise RunnerError(
                f"data.content: column {cfg.content!r} is "
                f"{dict(df.dtypes)[cfg.content]}, not binary (encoded image bytes)"
            )
        name = F.col(cfg.key).cast("string") if cfg.key else F.lit(None).cast("string")
        label = [cfg.label] if cfg.label in df.columns else []
        rows = df.select(F.col(cfg.content).alias("content"), *label, name.alias("path"))
        rows = rows.withColumn("id", F.xxhash64("path") if cfg.key else F.xxhash64("content"))
        return RawData(rows.select("id", "path", *label, "content"), cfg.label, ["content"])
