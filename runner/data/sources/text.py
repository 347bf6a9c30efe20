"""``data=text``: a string column with a label, in Parquet, CSV or JSON at any URI Spark reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING

from runner.config.data import DataConfig
from runner.data.sources import RawData
from runner.data.sources.file import FileSource
from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class TokenizerConfig:
    """The tokenizer trained on the train split (``runner/data/preparations/text.py``)."""

    kind: str = "bpe"  # bpe | wordpiece
    vocab_size: int = 2000
    max_length: int = 64  # token ids per text: longer texts are cut, shorter padded
    lowercase: bool = True


@dataclass
class TextDataConfig(DataConfig):
    """Texts (``text``: a string column) and labels (``label``) read by Spark."""

    _target_: str = "runner.data.sources.text.TextSource"
    format: str = "parquet"  # parquet | csv | json
    path: str = MISSING
    options: dict[str, str] = field(default_factory=dict)  # passed to spark.read.options
    text: str = "text"
    label: str = "label"
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    scaling: str = "none"  # token ids are not scaled


class TextSource:
    """A table read by Spark; its ``text`` column is tokenized by the text preparation."""

    preparation = "runner.data.preparations.text.TextPreparation"

    def input_shape(self, cfg: Any) -> list[int]:
        return [int(cfg.tokenizer.max_length)]

    def validate(self, cfg: Any) -> list[str]:
        from omegaconf import OmegaConf

        from runner.data.sources.file import missing_local_path

        if OmegaConf.is_missing(cfg, "path"):
            return [f"data.path: required for data={cfg.name}; set data.path=URI"]
        if missing_local_path(cfg.path):
            return [f"data.path: {cfg.path} not found; set data.path to a file or folder"]
        return []

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        return {"files": FileSource.listing(spark, cfg.path)}

    def load(self, spark: "SparkSession", cfg: Any, labelled: bool = True) -> RawData:
        from pyspark.sql import functions as F

        options = {"header": "true", **{str(k): str(v) for k, v in cfg.options.items()}}
        df = spark.read.format(cfg.format).options(**options).load(cfg.path)
        missing = [
            c for c in (cfg.text, cfg.label) if c not in df.columns and (labelled or c == cfg.text)
        ]
        if missing:
            raise RunnerError(
                f"data.{'text' if cfg.text in missing else 'label'}: no column "
                f"{missing[0]!r} in {cfg.path}; available: {', '.join(df.columns)}"
            )
        if "id" not in df.columns:
            df = df.withColumn(
                "id", F.xxhash64(*(c for c in (cfg.text, cfg.label) if c in df.columns))
            )
        if not labelled:  # rows to score keep every row
            return RawData(df, cfg.label, [cfg.text])
        return RawData(df.where(F.col(cfg.label).isNotNull()), cfg.label, [cfg.text])
