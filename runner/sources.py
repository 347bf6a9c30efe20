"""Data sources: config -> Spark DataFrame with ``id``, ``label`` and ``features``.

``features`` is an ``array<double>`` column; ``label`` a 0-based integer class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.errors import RunnerError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SKLEARN_DATASETS = ("digits", "wine", "breast_cancer", "iris")


def load(spark: "SparkSession", cfg: Any) -> "DataFrame":
    """Read the source that ``cfg`` (a ``data`` config) describes."""
    return _load_sklearn(spark, cfg.dataset)


def identity(cfg: Any) -> dict[str, Any]:
    """What identifies the source's content, for the cache fingerprint."""
    import sklearn

    return {"sklearn": sklearn.__version__, "dataset": cfg.dataset}


def _load_sklearn(spark: "SparkSession", name: str) -> "DataFrame":
    import pandas as pd
    from sklearn import datasets

    if name not in SKLEARN_DATASETS:
        raise RunnerError(
            f"data.dataset: unknown scikit-learn data set {name!r}; "
            f"choose one of {', '.join(SKLEARN_DATASETS)}"
        )
    bunch = getattr(datasets, f"load_{name}")()
    frame = pd.DataFrame(
        {
            "id": range(len(bunch.target)),
            "label": bunch.target.astype("int64"),
            "features": list(bunch.data.astype("float64")),
        }
    )
    return spark.createDataFrame(frame, schema="id long, label long, features array<double>")
