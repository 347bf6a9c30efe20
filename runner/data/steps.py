"""``data.steps`` -> one fitted ``pyspark.ml`` PipelineModel, and applying it to rows.

Each step becomes ``pyspark.ml`` stages fitted on the train split, in order: Spark SQL
``filter``/``select``/``dropna`` as ``SQLTransformer``, ``impute`` as one over literals,
``onehot`` and ``categorical`` as a ``SQLTransformer`` over the categories a ``StringIndexer``
found. Then the task's label stages (e.g. a string label indexed by ``StringIndexer``; see
``runner.tasks``), and the features: their statistics from one aggregation, written into one
``SQLTransformer`` as literals, which assembles the scaled ``array<float>`` the trials read
(one ``array()`` of an expression per number, compiled by whole-stage code generation; a
``transform`` per array; no ``ml`` vectors), the ``categorical`` columns' indices unscaled
at its end. The same model, saved with the prepared data, turns new rows into exactly the
same features (``to_input`` -> model -> ``to_output``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from runner.errors import RunnerError, first_line

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel, Transformer
    from pyspark.sql import Column, DataFrame

FEATURES = "_features"  # the assembled (and scaled) features, array<float>
KEPT = "__kept"  # scoring: the user's columns passed through, one struct
UNSEEN = "__unseen_"  # scoring: + a category column, true where its value was not seen in training
_ROW_FILTER = re.compile(r"SELECT \* FROM __THIS__ WHERE (.*)", re.DOTALL)  # filter, dropna
_NOT_NULL = re.compile(r"`([^`]+)` IS NOT NULL")
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")
_OURS = "spark-dl-runner: "  # starts the messages of the stages' raise_error
_INVALID = (
    f"{_OURS}data.features: some rows have null or NaN features; add {{op: dropna}} or "
    "{op: impute} to data.steps"
)
_OUR_MESSAGE = re.compile(re.escape(_OURS) + r"(.*?)(?: SQLSTATE|\n|$)")


@dataclass(frozen=True)
class Fitted:
    """The fitted preprocessing and what it learnt about the label."""

    model: "PipelineModel"
    label: str  # the label column of the source
    label_type: str  # its Spark SQL type, e.g. "string" or "bigint"
    task: dict[str, Any]  # the task config with what it learnt from the label (runner.tasks)
    features: list[str]  # the columns assembled into the features array
    width: int  # the values in it
    categories: list[int]  # per categorical column (the features' last values): its indices


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
        elif step.op in ("onehot", "categorical") and not step.columns:
            problems.append(f"{key}: {step.op} needs columns, the string columns to encode")
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
    indexed: dict[str, int] = {}  # categorical column -> its indices
    for i, step in enumerate(steps):
        where = f"data.steps[{i}] ({step.op})"
        try:
            new, made = _BUILDERS[step.op](step, train, where, label)
            indexed.update(made)
            for stage in new:
                train = stage.transform(train)
            if step.op in ("filter", "dropna") and train.isEmpty():
                raise RunnerError(f"{where}: leaves no rows in the train split; loosen it")
        except RunnerError:
            raise
        except Exception as err:
            raise spark_error(
                err, f"{where}: {first_line(err)}; columns: {_columns(train)}"
            ) from err
        stages += new

    types = dict(train.dtypes)
    if label not in types:
        raise RunnerError(
            f"data.label: no column {label!r} after data.steps; available: {_columns(train)}"
        )
    names = (
        features
        if features is not None
        else [c for c, t in train.dtypes if c not in (label, "id") and _numeric(t)]
    )
    _check_features(names, types, label, train)
    indices = [c for c in names if c in indexed]
    names = [c for c in names if c not in indexed] + indices

    label_stages, learnt = task_for(task).fit_label(train, label, types[label])
    assemble, width = _feature_stage(names, scaling, train, indices)
    model = PipelineModel(stages=[*stages, *label_stages, assemble])
    categories = [indexed[c] for c in indices]
    return Fitted(model, label, types[label], {**task, **learnt}, names, width, categories)


def to_input(df: "DataFrame") -> "DataFrame":
    """Rows as the model reads them: ``ml`` vector columns become ``array<double>``."""
    vectors = [name for name, kind in df.dtypes if kind == "vector"]
    if not vectors:
        return df
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    return df.withColumns({name: vector_to_array(F.col(name)) for name in vectors})


def to_output(
    df: "DataFrame", task: dict[str, Any], label: str, carried: Sequence[str] = ()
) -> "DataFrame":
    """The prepared layout: ``id`` long, ``label`` as the fitted ``task`` makes it (long
    classes, float values or multi-hot floats; null: unknown), ``features`` floats, then
    the ``carried`` columns as they are."""
    from pyspark.sql import functions as F

    from runner.tasks import task_for

    return df.select(
        F.col("id").cast("long").alias("id"),
        task_for(task).label_column(df, label).alias("label"),
        F.col(FEATURES).alias("features"),
        *carried,
    )


@dataclass(frozen=True)
class Scored:
    """Rows through the fitted preprocessing (``run_stages``)."""

    df: "DataFrame"  # the last stage's rows, KEPT and the UNSEEN flags carried along
    skipped: list[str]  # the row conditions that ran only in training (they name the label)
    unseen: dict[str, str]  # onehot or categorical column -> its UNSEEN flag column


def run_stages(
    model: "PipelineModel", df: "DataFrame", label: str, scoring: bool = False
) -> Scored:
    """``df`` through ``model``'s stages, a ``KEPT`` column of ``df`` carried along.

    - Every SQL stage that lists its columns (``select``, ``onehot``, ``categorical``) also
      carries ``KEPT`` and the ``UNSEEN`` flags (each onehot or categorical stage adds one
      per column: a value its categories never held, encoded as in training: all-zero, or
      index 0), so the user's columns come out unchanged whatever the steps select.
    - Scoring: row conditions (``filter``, ``dropna``) that name the label clean training
      rows only: a ``dropna`` loses the label from its columns, a ``filter`` that reads the
      label does not run (Spark's analyser decides, on ``df``'s columns without the label).
    Everything else (imputer, label stages, the features' stage) runs as fitted.
    """
    from pyspark.ml.feature import SQLTransformer

    skipped = []
    for stage in model.stages:
        if not isinstance(stage, SQLTransformer):
            df = stage.transform(df)
            continue
        statement = stage.getStatement()
        rows = _ROW_FILTER.fullmatch(statement) if scoring else None
        if rows:
            condition = _scoring_condition(rows.group(1), df, label)
            if condition is None:
                skipped.append(rows.group(1))
            else:
                df = df.where(condition)
            continue
        extra = [f"`{c}`" for c in df.columns if c == KEPT or c.startswith(UNSEEN)]
        if extra and not statement.startswith("SELECT *"):
            statement = statement.replace("SELECT ", f"SELECT {', '.join(extra)}, ", 1)
        df = _sql(statement).transform(df)
    unseen = {c.removeprefix(UNSEEN): c for c in df.columns if c.startswith(UNSEEN)}
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
    """A Spark failure as one line: the message one of our stages raised (``raise_error``,
    naming the fix), else ``fallback``."""
    ours = _OUR_MESSAGE.search(str(err))
    return RunnerError(ours.group(1) if ours else fallback)


Built = tuple[list["Transformer"], dict[str, int]]  # the stages, categorical column -> indices


def _filter(step: Any, df: "DataFrame", where: str, label: str) -> Built:
    return [_sql(f"SELECT * FROM __THIS__ WHERE {step.expr}")], {}


def _select(step: Any, df: "DataFrame", where: str, label: str) -> Built:
    statement = f"SELECT {', '.join(step.exprs)} FROM __THIS__"
    if "id" not in _sql(statement).transform(df).columns:
        statement = f"SELECT id, {', '.join(step.exprs)} FROM __THIS__"
    return [_sql(statement)], {}


def _dropna(step: Any, df: "DataFrame", where: str, label: str) -> Built:
    columns = _require(step.columns or df.columns, df, where)
    condition = " AND ".join(f"`{c}` IS NOT NULL" for c in columns)
    return [_sql(f"SELECT * FROM __THIS__ WHERE {condition}")], {}


def _impute(step: Any, df: "DataFrame", where: str, label: str) -> Built:
    """Nulls and NaNs of numeric columns replaced by their train ``mean``, ``median`` or
    ``mode`` (as ``pyspark.ml``'s ``Imputer`` does), fitted in one aggregation and written
    as literals into one SQL stage: no saved ``Imputer`` model, whose save ran its fit's
    pass again (3-6 s for 1M rows)."""
    from pyspark.sql import functions as F

    types = dict(df.dtypes)
    default = [c for c, t in df.dtypes if c not in ("id", label) and t in _NUMERIC]
    columns = _require(step.columns or default, df, where)
    bad = [c for c in columns if types[c] not in _NUMERIC]
    if bad:
        raise RunnerError(f"{where}: impute needs numeric columns; {', '.join(bad)} are not")
    present = {c: f"nanvl(CAST(`{c}` AS DOUBLE), NULL)" for c in columns}  # NaN: missing
    measure = {
        "mean": "avg({})",
        "median": "percentile_approx({}, 0.5, 1000)",  # Imputer's relative error 0.001
        "mode": "mode({}, true)",  # ties: the smallest value, as Imputer's
    }[step.strategy]
    row = df.select(*(F.expr(measure.format(present[c])) for c in columns)).first()
    empty = [c for c, value in zip(columns, row or ()) if value is None]
    if row is None or empty:
        raise RunnerError(
            f"{where}: {', '.join(empty or columns)} has no value in the train split to "
            f"impute from; drop it from the step's columns"
        )
    filled = {
        c: f"CAST(coalesce({present[c]}, {_double(float(value))}) AS {types[c].upper()}) AS `{c}`"
        for c, value in zip(columns, row)
    }
    selected = [filled.get(c, f"`{c}`") for c in df.columns]
    return [_sql(f"SELECT {', '.join(selected)} FROM __THIS__")], {}


def _onehot(step: Any, df: "DataFrame", where: str, label: str) -> Built:
    """One 0/1 value per category seen in training (sorted); unseen values and nulls are
    all-zero, flagged in ``UNSEEN<column>`` for scoring to count."""
    categories = _categories(step, df, where)
    onehot = "transform({seen}, v -> IF({value} = v, 1D, 0D))"
    return [_encoded(df, categories, onehot)], {}


def _categorical(step: Any, df: "DataFrame", where: str, label: str) -> Built:
    """The index of each value among the categories seen in training (sorted), from 1; 0
    for unseen values and nulls (flagged in ``UNSEEN<column>`` for scoring to count)."""
    categories = _categories(step, df, where)
    index = "CAST(coalesce(array_position({seen}, {value}), 0) AS INT)"
    return [_encoded(df, categories, index)], {c: len(v) + 1 for c, v in categories.items()}


def _categories(step: Any, df: "DataFrame", where: str) -> dict[str, list[str]]:
    """The sorted categories of each of ``step.columns`` in ``df`` (``StringIndexer``'s)."""
    from pyspark.ml.feature import StringIndexer

    columns = _require(step.columns, df, where)
    indexer = StringIndexer(
        inputCols=columns,
        outputCols=[f"{c}__index" for c in columns],
        stringOrderType="alphabetAsc",
    ).fit(df)
    return dict(zip(columns, map(list, indexer.labelsArray)))


def _encoded(df: "DataFrame", categories: dict[str, list[str]], encode: str) -> "Transformer":
    """One SQL stage replacing each column of ``categories`` by ``encode`` (SQL with
    ``{seen}``, the literal array of its categories, and ``{value}``, its value as a
    string), and adding its ``UNSEEN`` flag."""
    selected = []
    for c in df.columns:
        if c not in categories:
            selected.append(f"`{c}`")
            continue
        seen = f"array({', '.join(map(_string, categories[c]))})"
        value = f"CAST(`{c}` AS STRING)"
        selected += [
            f"{encode.format(seen=seen, value=value)} AS `{c}`",
            f"({value} IS NOT NULL AND NOT array_contains({seen}, {value})) AS `{UNSEEN}{c}`",
        ]
    return _sql(f"SELECT {', '.join(selected)} FROM __THIS__")


_BUILDERS: dict[str, Callable[[Any, "DataFrame", str, str], Built]] = {
    "filter": _filter,
    "select": _select,
    "dropna": _dropna,
    "impute": _impute,
    "onehot": _onehot,
    "categorical": _categorical,
}


_STATISTICS = {"standard": ("mean", "std"), "minmax": ("min", "max")}  # Summarizer's names
_SQL_AGGREGATES = {"mean": "avg", "std": "stddev_samp", "min": "min", "max": "max"}


def _feature_stage(
    names: list[str], scaling: str, train: "DataFrame", indices: Sequence[str] = ()
) -> tuple["Transformer", int]:
    """The features' one stage, and its width: every value of ``names`` (numbers, arrays
    of numbers; the ``indices`` of categorical columns last, as they are) as a double,
    the others scaled by statistics of ``train`` from one aggregation
    (``standard``: minus the mean, over the sample standard deviation; ``minmax``: into
    [0, 1]; a constant value becomes 0, or 0.5 for minmax, as ``pyspark.ml``'s scalers do),
    cast to float, in the order of ``names``. A number is one expression (compiled by
    whole-stage code generation), an array one ``transform`` over literal arrays of its
    statistics (``pyspark.ml``'s ``Summarizer``), whatever its width. A null or NaN number,
    a null array or one of another length fails the row, in training (here) and in scoring
    (the stage's ``raise_error``)."""
    from pyspark.sql import functions as F

    types = dict(train.dtypes)
    scaled = [c for c in names if c not in indices]
    widths = _widths([c for c in scaled if types[c].startswith("array<")], train)
    numbers = [c for c in scaled if c not in widths]
    invalid = " OR ".join(
        f"`{c}` IS NULL" + ("" if c in widths else f" OR isnan(`{c}`)") for c in scaled
    )
    failures = [(invalid, _INVALID)] if scaled else []  # indices are never null
    failures += [
        (
            f"size(`{c}`) != {w}",
            f"{_OURS}data.features: a row's `{c}` holds another "
            f"number of values than the {w} of the training rows",
        )
        for c, w in widths.items()
    ]
    measures = _STATISTICS.get(scaling, ())
    aggregates = [F.count_if(F.expr(test)) for test, _ in failures]
    aggregates += [
        F.expr(f"{_SQL_AGGREGATES[m]}(CAST(`{c}` AS DOUBLE))") for m in measures for c in numbers
    ]
    if widths and measures:
        aggregates.append(_summary(widths, measures))
    try:
        row: Any = train.select(*aggregates).first() if aggregates else ()  # () indices only
    except Exception as err:
        raise spark_error(err, f"data.scaling: {first_line(err)}") from None
    assert row is not None  # an aggregation has a row
    for (_, message), count in zip(failures, row):
        if count:
            raise RunnerError(message.removeprefix(_OURS))
    stats: dict[str, list[list[float]]] = {c: [[], []] for c in scaled}  # per measure, per value
    if measures:
        scalars = list(row)[len(failures) : len(failures) + 2 * len(numbers)]
        for j, c in enumerate(numbers):
            stats[c] = [[scalars[j]], [scalars[len(numbers) + j]]]
        start = 0
        for c, w in widths.items():
            stats[c] = [row[-1][m].toArray()[start : start + w].tolist() for m in measures]
            start += w
    parts: list[str | list[str]] = []  # arrays, and runs of numbers (one array each)
    for c in [*scaled, *indices]:
        if c in widths:
            parts.append(_scaled_array(c, scaling, *stats[c]))
            continue
        number = _scaled_number(c, scaling, *stats[c]) if c in scaled else f"CAST(`{c}` AS FLOAT)"
        if parts and isinstance(parts[-1], list):
            parts[-1].append(number)
        else:
            parts.append([number])
    arrays = [f"array({', '.join(p)})" if isinstance(p, list) else p for p in parts]
    checks = " ".join(
        f"WHEN {test} THEN raise_error({_string(message)})" for test, message in failures
    )
    # one array() of many numbers, not a concat of one-number arrays: -18 % of the write
    features = arrays[0] if len(arrays) == 1 else f"concat({', '.join(arrays)})"
    if checks:
        features = f"CASE {checks} ELSE {features} END"
    return _sql(f"SELECT *, {features} AS `{FEATURES}` FROM __THIS__"), (
        len(numbers) + sum(widths.values()) + len(indices)
    )


def _widths(arrays: list[str], train: "DataFrame") -> dict[str, int]:
    """How many values each array column holds, as its first train row says."""
    if not arrays:
        return {}
    from pyspark.sql import functions as F

    first = train.select(*(F.size(f"`{c}`").alias(c) for c in arrays)).first()
    return {c: max(0, first[c] or 0) if first else 0 for c in arrays}


def _summary(widths: dict[str, int], measures: tuple[str, ...]) -> "Column":
    """``Summarizer``'s ``measures`` of the array columns' values, joined in one vector
    (rows with a null array or one of another width weigh 0: they fail the fit)."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.stat import Summarizer
    from pyspark.sql import functions as F

    fits = " AND ".join(f"`{c}` IS NOT NULL AND size(`{c}`) = {w}" for c, w in widths.items())
    joined = ", ".join(f"CAST(`{c}` AS ARRAY<DOUBLE>)" for c in widths)
    values = F.expr(f"IF({fits}, concat({joined}), array_repeat(0D, {sum(widths.values())}))")
    weight = F.expr(f"IF({fits}, 1D, 0D)")
    return Summarizer.metrics(*measures).summary(array_to_vector(values), weight)


def _affine(scaling: str, first: float | None, second: float | None) -> tuple[float, ...]:
    """(center, factor, offset) of ``(value - center) * factor + offset`` from a value's
    statistics (``standard``: mean, std; ``minmax``: min, max)."""
    if scaling == "standard":
        return (first or 0.0, 1.0 / second if second else 0.0, 0.0)  # std 0: a constant
    if scaling == "minmax" and first is not None and second is not None and second > first:
        return (first, 1.0 / (second - first), 0.0)
    return (0.0, 0.0, 0.5)  # minmax of a constant


def _scaled_number(column: str, scaling: str, first: list[float], second: list[float]) -> str:
    value = f"CAST(`{column}` AS DOUBLE)"
    if not first:  # no scaling
        return f"CAST({value} AS FLOAT)"
    center, factor, offset = map(_double, _affine(scaling, first[0], second[0]))
    return f"CAST(({value} - {center}) * {factor} + {offset} AS FLOAT)"


def _scaled_array(column: str, scaling: str, first: list[float], second: list[float]) -> str:
    values = f"CAST(`{column}` AS ARRAY<DOUBLE>)"
    if not first:  # no scaling
        return f"CAST({values} AS ARRAY<FLOAT>)"
    center, factor, offset = (
        f"array({', '.join(map(_double, literals))})[i]"
        for literals in zip(*(_affine(scaling, a, b) for a, b in zip(first, second)))
    )
    return f"transform({values}, (v, i) -> CAST((v - {center}) * {factor} + {offset} AS FLOAT))"


def _double(x: float) -> str:
    """A Spark SQL double literal that reads back as exactly ``x``."""
    return (
        f"CAST('{x!r}' AS DOUBLE)" if x != x or x in (float("inf"), float("-inf")) else (f"{x!r}D")
    )


def _string(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
            "{op: onehot, columns: [...]} or {op: categorical, columns: [...]} (for "
            "model=tabular) in data.steps, or leave it out of data.features"
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
    """A number, or an array of numbers."""
    element = kind[6:-1] if kind.startswith("array<") else kind
    return element in _NUMERIC or element.startswith("decimal")


def _columns(df: "DataFrame") -> str:
    return ", ".join(c for c in df.columns if c != "id" and not c.startswith(UNSEEN))
