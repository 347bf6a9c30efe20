"""``data=images``: encoded images at any URI Spark reads, labelled by their class folder
(``path/<class>/<file>``, torchvision's ImageFolder convention) or by a manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from omegaconf import MISSING

from runner.config.data import DataConfig
from runner.data.sources import RawData
from runner.errors import RunnerError, first_line

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# binaryFile packs about 32 small files per partition (each costs spark.sql.files.openCostInBytes,
# 4 MB); a Python task costs ~0.1-0.2 s to start here, so tasks take this many partitions each.
PARTITIONS_PER_TASK = 16
EXTENSIONS = ["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"]


@dataclass
class ImageConfig:
    """How every image is decoded (``runner/data/preparations/image.py``)."""

    size: Any = field(default_factory=lambda: [32, 32])  # H, W (or one int: square)
    mode: str = "RGB"  # RGB | L (grey)
    fit: str = "resize"  # resize | center_crop | pad


@dataclass
class ImagesDataConfig(DataConfig):
    """Images at ``path`` in class sub-folders, or listed in a ``manifest`` of path,label."""

    _target_: str = "runner.data.sources.images.ImageFolderSource"
    path: str = MISSING  # a folder (any URI Spark reads; globs too)
    manifest: Optional[str] = None  # CSV (with a header) or Parquet: path, label columns
    label: str = "label"
    extensions: list[str] = field(default_factory=lambda: list(EXTENSIONS))
    image: ImageConfig = field(default_factory=ImageConfig)
    on_bad_record: str = "skip"  # skip (counted in meta.json) | fail
    scaling: str = "standard"  # standard: per-channel mean/std fitted on train | none: /255


class ImageFolderSource:
    """Images listed and read by Spark's ``binaryFile`` source (distributed), decoded by
    the image preparation on the executors.

    The input's identity is every image file with its size and modification time (and the
    manifest's); an image's ``id`` is a hash of its path, so splits are stable.
    """

    preparation = "runner.data.preparations.image.ImagePreparation"

    def input_shape(self, cfg: Any) -> list[int]:
        """C, H, W after decoding."""
        from runner.data.preparations.image import image_shape

        return image_shape(cfg.image)

    def validate(self, cfg: Any) -> list[str]:
        from omegaconf import OmegaConf

        from runner.data.sources.file import missing_local_path

        if OmegaConf.is_missing(cfg, "path"):
            return [
                f"data.path: required for data={cfg.name}; set data.path=URI (a folder "
                "of class sub-folders)"
            ]
        problems = []
        for key in ("path", "manifest"):
            if cfg.get(key) and missing_local_path(cfg[key]):
                wanted = "a folder of images" if key == "path" else "a CSV or Parquet file"
                problems.append(f"data.{key}: {cfg[key]} not found; set data.{key} to {wanted}")
        if not cfg.extensions:
            problems.append("data.extensions: list at least one, e.g. [jpg, png]")
        return problems

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        from pyspark.sql import functions as F

        files = self._files(spark, cfg, cfg.path).select(
            "path", "length", F.unix_millis("modificationTime")
        )
        identity: dict[str, Any] = {
            "files": sorted([str(p), int(n), int(t)] for p, n, t in files.collect())
        }
        if cfg.manifest:
            from runner.data.sources.file import FileSource

            identity["manifest"] = FileSource.listing(spark, cfg.manifest, "data.manifest")
        return identity

    def load(self, spark: "SparkSession", cfg: Any, labelled: bool = True) -> RawData:
        return self.read(spark, cfg, cfg.path, labelled)

    def read(self, spark: "SparkSession", cfg: Any, path: str, labelled: bool = True) -> RawData:
        """The images under ``path`` as the image preparation reads them, labelled by the
        manifest or their folder; ``labelled=False`` (images to score): by the manifest's
        label if it has one, else none."""
        from pyspark.sql import functions as F

        from runner.cluster.spark import is_connect, task_slots

        files = self._files(spark, cfg, path)
        slots = task_slots(spark, default=2)
        partitions = 0 if is_connect(spark) else files.rdd.getNumPartitions()
        if partitions > slots:  # fewer, larger decoding tasks
            files = files.coalesce(max(slots, -(-partitions // PARTITIONS_PER_TASK)))
        if cfg.get("manifest"):
            df = self._with_manifest(spark, cfg, files, labelled)
        elif labelled:  # the class is the parent folder's name
            df = files.withColumn(cfg.label, F.element_at(F.split("path", "/"), -2))
        else:
            df = files
        df = df.withColumn("id", F.xxhash64("path"))
        label = [cfg.label] if cfg.label in df.columns else []
        return RawData(df.select("id", "path", *label, "content"), cfg.label, ["content"])

    def _files(self, spark: "SparkSession", cfg: Any, path: str) -> "DataFrame":
        pattern = (
            "*.{"
            + ",".join(
                sorted({e.lower() for e in cfg.extensions} | {e.upper() for e in cfg.extensions})
            )
            + "}"
        )
        try:
            return (
                spark.read.format("binaryFile")
                .option("recursiveFileLookup", "true")
                .option("pathGlobFilter", pattern)
                .load(path)
            )
        except Exception as err:
            if "PATH_NOT_FOUND" in str(err) or "does not exist" in str(err):
                raise RunnerError(
                    f"data.path: {path} not found; set data.path to a folder of images"
                ) from None
            raise RunnerError(f"data.path: cannot list {path} ({first_line(err)})") from None

    def _with_manifest(
        self, spark: "SparkSession", cfg: Any, files: "DataFrame", labelled: bool = True
    ) -> "DataFrame":
        """Files joined to the manifest's labels by path (relative paths are under
        ``data.path``); files the manifest does not list are left out."""
        from pyspark.sql import functions as F

        fmt = "parquet" if cfg.manifest.endswith(".parquet") else "csv"
        manifest = (
            spark.read.format(fmt)
            .option("header", "true")
            .option("inferSchema", "true")
            .load(cfg.manifest)
        )
        missing = [
            c
            for c in ("path", cfg.label)
            if c not in manifest.columns and (labelled or c == "path")
        ]
        if missing:
            raise RunnerError(
                f"data.manifest: no column {', '.join(missing)} in {cfg.manifest}; "
                "it needs path and label columns"
            )
        base = cfg.path.rstrip("/").removeprefix("file://").removeprefix("file:")
        key = F.regexp_replace(F.col("path"), "^file:(//)?", "")
        listed = manifest.select(
            F.when(F.col("path").startswith("/") | F.col("path").contains("://"), F.col("path"))
            .otherwise(F.concat(F.lit(base + "/"), F.col("path")))
            .alias("_key"),
            *([F.col(cfg.label)] if cfg.label in manifest.columns else []),
        )
        return (
            files.withColumn("_key", key)
            .join(listed.withColumn("_key", F.regexp_replace("_key", "^file:(//)?", "")), "_key")
            .drop("_key")
        )
