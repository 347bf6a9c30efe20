"""``data.steps`` -> one fitted ``pyspark.ml`` PipelineModel, and applying it to rows.

Each step becomes ``pyspark.ml`` stages fitted on the train split, in order: Spark SQL
``filter``/``select``/``dropna`` as ``SQLTransformer``, ``impute`` as ``Imputer``,
``onehot`` as ``StringIndexer`` + ``OneHotEncoder``. Then the task's label stages (e.g. a
string label indexed by ``StringIndexer``; see ``runner.tasks``), the feature columns are assembled (``VectorAssembler``) and
scaled (``StandardScaler``/``MinMaxScaler``). The same model, saved with the prepared
data, turns new rows into exactly the same features (``to_input`` -> model -> ``to_output``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from runner.errors import RunnerError, first_line

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel, Transformer
    from pyspark.sql import DataFrame

FEATURES = "_features"  # the assembled (and scaled) features vector
SQL_OPS = ("filter", "select", "dropna")
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "vector")


@dataclass(frozen=True)
class Fitted:
    """The fitted preprocessing and what it learnt about the label."""

    model: "PipelineModel"
    label: str  # the label column of the source
    label_type: str  # its Spark SQL type, e.g. "string" or "bigint"
    task: dict[str, Any]  # the task config with what it learnt from the label (runner.tasks)
    features: list[str]  # the columns assembled into the features vector


def validate(steps: Any) -> list[str]:
    """Problems with ``data.steps`` found without Spark."""
    problems = []
    for i, step in enumerate(steps):
        key = f"data.steps[{i}]"
        if step.op not in _BUILDERS:
            problems.append(f"{key}.op: {step.op!r} is not one of {', '.join(_BUILDERS)}")
        elif step.op == "filter" and not step.expr:
            problems.append(f"{key}: filter needs expr, a Spark SQL condition")
        elif step.op == "select" and not step.exprs:
            problems.append(f"{key}: select needs exprs, a list of Spark SQL expressions")
        elif step.op == "onehot" and not step.columns:
            problems.append(f"{key}: onehot needs columns, the string columns to encode")
        elif step.op == "impute" and step.strategy not in ("mean", "median", "mode"):
            problems.append(f"{key}.strategy: {step.strategy!r} is not mean, median or mode")
    return problems


def fit(
    steps: Any,
    scaling: str,
    train: "DataFrame",
    label: str,
    features: Optional[list[str]],
    task: dict[str, Any],
) -> Fitted:
    """Fit every step on ``train`` (source rows of the train split), in order, then the
    label's stages of ``task`` (a task config) and the features' assembly and scaling."""
    from pyspark.ml import PipelineModel

    from runner.tasks import task_for

    train = to_input(train)
    stages: list["Transformer"] = []
    for i, step in enumerate(steps):
        where = f"data.steps[{i}] ({step.op})"
        try:
            new = _BUILDERS[step.op](step, train, where, label)
            for stage in new:
                train = stage.transform(train)
            if step.op in ("filter", "dropna") and train.isEmpty():
                raise RunnerError(f"{where}: leaves no rows in the train split; loosen it")
        except RunnerError:
            raise
        except Exception as err:
            raise spark_error(err, f"{where}: {first_line(err)}; columns: {_columns(train)}")
        stages += new

    types = dict(train.dtypes)
    if label not in types:
        raise RunnerError(
            f"data.label: no column {label!r} after data.steps; available: {_columns(train)}"
        )
    names = features if features is not None else [
        c for c, t in train.dtypes if c not in (label, "id") and _numeric(t)
    ]
    _check_features(names, types, label, train)

    label_stages, learnt = task_for(task).fit_label(train, label, types[label])
    model = PipelineModel(stages=stages + label_stages + _feature_stages(names, scaling, train))
    return Fitted(model, label, types[label], {**task, **learnt}, names)


def to_input(df: "DataFrame") -> "DataFrame":
    """Rows as the model reads them: numeric array columns become ``ml`` vectors."""
    from pyspark.ml.functions import array_to_vector

    for name, kind in df.dtypes:
        if kind.startswith("array<") and _numeric(kind[6:-1]):
            df = df.withColumn(name, array_to_vector(name))
    return df


def to_output(df: "DataFrame", task: dict[str, Any], label: str) -> "DataFrame":
    """The prepared layout: ``id`` long, ``label`` as the fitted ``task`` makes it (long
    classes, float values or multi-hot floats; null: unknown), ``features`` floats."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from runner.tasks import task_for

    return df.select(
        F.col("id").cast("long").alias("id"),
        task_for(task).label_column(df, label).alias("label"),
        vector_to_array(FEATURES, dtype="float32").alias("features"),
    )


def spark_error(err: Exception, fallback: str) -> RunnerError:
    """A Spark failure caused by the data, as one line naming the fix."""
    text = str(err)
    if "Encountered null while assembling" in text or "Encountered NaN while assembling" in text:
        return RunnerError(
            "data.features: some rows have null or NaN features; add {op: dropna} or "
            "{op: impute} to data.steps"
        )
    return RunnerError(fallback)


def _filter(step: Any, df: "DataFrame", where: str, label: str) -> list["Transformer"]:
    return [_sql(f"SELECT * FROM __THIS__ WHERE {step.expr}")]


def _select(step: Any, df: "DataFrame", where: str, label: str) -> list["Transformer"]:
    statement = f"SELECT {', '.join(step.exprs)} FROM __THIS__"
    if "id" not in _sql(statement).transform(df).columns:
        statement = f"SELECT id, {', '.join(step.exprs)} FROM __THIS__"
    return [_sql(statement)]


def _dropna(step: Any, df: "DataFrame", where: str, label: str) -> list["Transformer"]:
    columns = _require(step.columns or df.columns, df, where)
    condition = " AND ".join(f"`{c}` IS NOT NULL" for c in columns)
    return [_sql(f"SELECT * FROM __THIS__ WHERE {condition}")]


def _impute(step: Any, df: "DataFrame", where: str, label: str) -> list["Transformer"]:
    from pyspark.ml.feature import Imputer

    types = dict(df.dtypes)
    columns = _require(step.columns or [c for c, t in df.dtypes if c not in ("id", label) and _scalar(t)],
                       df, where)
    bad = [c for c in columns if not _scalar(types[c])]
    if bad:
        raise RunnerError(f"{where}: impute needs numeric columns; {', '.join(bad)} are not")
    imputer = Imputer(inputCols=columns, outputCols=columns, strategy=step.strategy)
    return [imputer.fit(df)]


def _onehot(step: Any, df: "DataFrame", where: str, label: str) -> list["Transformer"]:
    from pyspark.ml.feature import OneHotEncoder, StringIndexer

    columns = _require(step.columns, df, where)
    indexed = [f"{c}__index" for c in columns]
    encoded = [f"{c}__onehot" for c in columns]
    indexer = StringIndexer(inputCols=columns, outputCols=indexed, handleInvalid="keep",
                            stringOrderType="alphabetAsc").fit(df)
    df = indexer.transform(df)
    # the indexer's last index holds unseen values; dropLast leaves them all-zero
    encoder = OneHotEncoder(inputCols=indexed, outputCols=encoded, dropLast=True).fit(df)
    keep = [f"`{c}`" if c not in columns else f"`{c}__onehot` AS `{c}`"
            for c in df.columns if c not in indexed]
    return [indexer, encoder, _sql(f"SELECT {', '.join(keep)} FROM __THIS__")]


_BUILDERS: dict[str, Callable[[Any, "DataFrame", str, str], list["Transformer"]]] = {
    "filter": _filter,
    "select": _select,
    "dropna": _dropna,
    "impute": _impute,
    "onehot": _onehot,
}


def _feature_stages(names: list[str], scaling: str, train: "DataFrame") -> list["Transformer"]:
    from pyspark.ml.feature import MinMaxScaler, StandardScaler, VectorAssembler

    assembled = FEATURES if scaling == "none" else "_assembled"
    stages: list["Transformer"] = [VectorAssembler(inputCols=names, outputCol=assembled)]
    if scaling == "standard":
        scaler = StandardScaler(inputCol=assembled, outputCol=FEATURES, withMean=True,
                                withStd=True)
    elif scaling == "minmax":
        scaler = MinMaxScaler(inputCol=assembled, outputCol=FEATURES)
    else:
        return stages
    try:
        stages.append(scaler.fit(stages[0].transform(train)))
    except Exception as err:
        raise spark_error(err, f"data.scaling: {first_line(err)}") from None
    return stages


def _check_features(names: list[str], types: dict[str, str], label: str, df: "DataFrame"):
    missing = [c for c in names if c not in types]
    if missing:
        raise RunnerError(
            f"data.features: no column {', '.join(map(repr, missing))} after data.steps; "
            f"available: {_columns(df)}"
        )
    bad = [f"{c} ({types[c]})" for c in names if not _numeric(types[c])]
    if bad:
        raise RunnerError(
            f"data.features: non-numeric feature {', '.join(bad)}; encode it with "
            "{op: onehot, columns: [...]} in data.steps or leave it out of data.features"
        )
    if not names:
        raise RunnerError(
            f"data.features: no numeric column besides the label {label!r}; "
            f"available: {_columns(df)}"
        )


def _require(columns: Any, df: "DataFrame", where: str) -> list[str]:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise RunnerError(
            f"{where}: no column {', '.join(map(repr, missing))}; available: {_columns(df)}"
        )
    return list(columns)


def _sql(statement: str) -> "Transformer":
    from pyspark.ml.feature import SQLTransformer

    return SQLTransformer(statement=statement)


def _numeric(kind: str) -> bool:
    return kind in _NUMERIC or kind.startswith("decimal")


def _scalar(kind: str) -> bool:
    return kind != "vector" and _numeric(kind)


def _columns(df: "DataFrame") -> str:
    return ", ".join(c for c in df.columns if c != "id")
