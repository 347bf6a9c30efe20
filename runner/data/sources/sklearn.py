"""``data=digits|wine|breast_cancer``: a data set bundled with scikit-learn (no download)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Optional

from omegaconf import MISSING

from runner.config.data import DataConfig
from runner.data.sources import RawData

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DATASETS = ("digits", "wine", "breast_cancer", "iris")


@dataclass
class SklearnDataConfig(DataConfig):
    """A data set bundled with scikit-learn (no download)."""

    _target_: str = "runner.data.sources.sklearn.SklearnSource"
    dataset: str = MISSING  # digits | wine | breast_cancer | iris
    image_shape: Optional[list[int]] = None  # e.g. [1, 8, 8] for digits; null: tabular


class SklearnSource:
    """A data set bundled with scikit-learn: small, built on the driver."""

    def validate(self, cfg: Any) -> list[str]:
        if cfg.dataset in DATASETS:
            return []
        return [
            f"data.dataset: unknown scikit-learn data set {cfg.dataset!r}; "
            f"choose one of {', '.join(DATASETS)}"
        ]

    def identity(self, spark: "SparkSession", cfg: Any) -> dict[str, Any]:
        import sklearn

        return {"sklearn": sklearn.__version__}

    def prefetch(self, cfg: Any) -> None:
        """Import scikit-learn and read the data set while the Spark session starts."""
        _bunch(cfg.dataset)

    def load(self, spark: "SparkSession", cfg: Any, labelled: bool = True) -> RawData:
        import pandas as pd

        bunch = _bunch(cfg.dataset)
        frame = pd.DataFrame(
            {
                "id": range(len(bunch.target)),
                "label": bunch.target.astype("int64"),
                "features": list(bunch.data.astype("float64")),
            }
        )
        df = spark.createDataFrame(frame, schema=_schema())
        return RawData(df, "label", None, reread=True)  # rows held in memory already


def _schema() -> Any:
    """``id long, label long, features array<double>``, built in Python (no DDL parse)."""
    from pyspark.sql.types import ArrayType, DoubleType

    from runner.cluster.spark import long_columns

    return long_columns("id", "label").add("features", ArrayType(DoubleType()))


@lru_cache(maxsize=4)
def _bunch(dataset: str) -> Any:
    from sklearn import datasets

    return getattr(datasets, f"load_{dataset}")()
