"""``data.steps`` -> one fitted ``pyspark.ml`` PipelineModel, and applying it to rows.

Each step becomes ``pyspark.ml`` stages fitted on the train split, in order: Spark SQL
``filter``/``select``/``dropna`` as ``SQLTransformer``, ``impute`` as ``Imputer``,
``onehot`` as ``StringIndexer`` + ``OneHotEncoder``. Then the task's label stages (e.g. a
string label indexed by ``StringIndexer``; see ``runner.tasks``), the feature columns are
assembled (``VectorAssembler``) and scaled (``StandardScaler``/``MinMaxScaler``). The same
model, saved with the prepared data, turns new rows into exactly the same features
(``to_input`` -> model -> ``to_output``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, cast

from runner.errors import RunnerError, first_line

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel, Transformer
    from pyspark.ml.feature import StringIndexerModel
    from pyspark.sql import DataFrame

FEATURES = "_features"  # the assembled (and scaled) features vector
KEPT = "__kept"  # scoring: the user's columns passed through, one struct
UNSEEN = "__unseen_"  # scoring: + a onehot column, true where its value was not seen in training
_ROW_FILTER = re.compile(r"SELECT \* FROM __THIS__ WHERE (.*)", re.DOTALL)  # filter, dropna
_NOT_NULL = re.compile(r"`([^`]+)` IS NOT NULL")
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
            raise spark_error(
                err, f"{where}: {first_line(err)}; columns: {_columns(train)}") from err
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
    from pyspark.sql import functions as F

    for name, kind in df.dtypes:
        if kind.startswith("array<") and _numeric(kind[6:-1]):
            df = df.withColumn(name, array_to_vector(F.col(name)))
    return df


def to_output(df: "DataFrame", task: dict[str, Any], label: str,
              carried: Sequence[str] = ()) -> "DataFrame":
    """The prepared layout: ``id`` long, ``label`` as the fitted ``task`` makes it (long
    classes, float values or multi-hot floats; null: unknown), ``features`` floats, then
    the ``carried`` columns as they are."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from runner.tasks import task_for

    return df.select(
        F.col("id").cast("long").alias("id"),
        task_for(task).label_column(df, label).alias("label"),
        vector_to_array(F.col(FEATURES), dtype="float32").alias("features"),
        *carried,
    )


@dataclass(frozen=True)
class Scored:
    """New rows through the fitted preprocessing as scoring runs it (``for_scoring``)."""

    df: "DataFrame"  # the last stage's rows, KEPT and the UNSEEN flags carried along
    skipped: list[str]  # the row conditions that ran only in training (they name the label)
    unseen: dict[str, str]  # onehot column -> its UNSEEN flag column


def for_scoring(model: "PipelineModel", df: "DataFrame", label: str) -> Scored:
    """``df`` (with a ``KEPT`` column) through ``model``'s stages as scoring needs them.

    - Row conditions (``filter``, ``dropna``) that name the label clean training rows only:
      a ``dropna`` loses the label from its columns, a ``filter`` that reads the label
      does not run (Spark's analyser decides, on ``df``'s columns without the label).
    - Every other SQL stage (``select``, onehot's rename) also carries ``KEPT`` and the
      ``UNSEEN`` flags, so the user's columns come out unchanged whatever the steps select.
    - After each onehot encoder: per column, a flag for values its indexer never saw
      (they are encoded all-zero, as in training's ``handleInvalid=keep``).
    Everything else (imputer, indexers, encoder, assembler, scaler) runs as fitted.
    """
    from pyspark.ml.feature import OneHotEncoderModel, SQLTransformer, StringIndexerModel

    carried, skipped, unseen = [KEPT], [], {}
    stages = list(model.stages)
    for i, stage in enumerate(stages):
        if not isinstance(stage, SQLTransformer):
            df = stage.transform(df)
            continue
        statement = stage.getStatement()
        rows = _ROW_FILTER.fullmatch(statement)
        if rows:
            condition = _scoring_condition(rows.group(1), df, label)
            if condition is None:
                skipped.append(rows.group(1))
            else:
                df = df.where(condition)
            continue
        extra = [f"`{c}`" for c in carried]
        if (i >= 2 and isinstance(stages[i - 2], StringIndexerModel)
                and isinstance(stages[i - 1], OneHotEncoderModel)):
            indexer = cast("StringIndexerModel", stages[i - 2])
            for column, index, seen in zip(indexer.getInputCols(), indexer.getOutputCols(),
                                           indexer.labelsArray):
                flag = f"{UNSEEN}{column}"
                extra.append(f"(`{column}` IS NOT NULL AND `{index}` >= {len(seen)}) AS `{flag}`")
                carried.append(flag)
                unseen[column] = flag
        df = _sql(statement.replace("SELECT ", f"SELECT {', '.join(extra)}, ", 1)).transform(df)
    return Scored(df, skipped, unseen)


def _scoring_condition(condition: str, df: "DataFrame", label: str) -> Optional[str]:
    """``condition`` without what names ``label`` (None: nothing is left to run)."""
    from pyspark.errors import AnalysisException

    parts = condition.split(" AND ")
    if all(_NOT_NULL.fullmatch(p) for p in parts):  # dropna: one clause per column
        kept = [p for p in parts if _NOT_NULL.fullmatch(p).group(1) != label]  # type: ignore[union-attr]
        return " AND ".join(kept) or None
    from pyspark.sql.types import StructType

    # Rows of df's columns but the label, with no lineage: on df.drop(label), Spark would
    # resolve the label from the plan below the drop.
    without = StructType([f for f in df.schema.fields if f.name != label])
    quiet = logging.getLogger("SQLQueryContextLogger")  # pyspark logs the expected failure
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        df.sparkSession.createDataFrame([], without).where(condition).schema  # noqa: B018
    except AnalysisException:  # it reads the label
        return None
    finally:
        quiet.setLevel(level)
    return condition


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
    default = [c for c, t in df.dtypes if c not in ("id", label) and _scalar(t)]
    columns = _require(step.columns or default, df, where)
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
    scaler: "StandardScaler | MinMaxScaler"
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
