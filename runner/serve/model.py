"""``ScoringModel``: a finished run's model inside the user's own Spark job.

    from runner import load_model
    model = load_model("outputs/DATE/TIME")
    scored = model.transform(df)            # lazy: one mapInArrow over df's partitions

A ``pyspark.ml`` ``Model`` (so a ``Transformer``, usable as a stage of ``pyspark.ml.Pipeline``):
``transform`` runs the run's fitted preprocessing as scoring runs it
(``runner.data.preprocess.scoring_rows``: no label needed, training-only row conditions left
out, the user's columns passed through) and then the network, batch by batch in the
executors' Python workers (``runner.serve.infer.Scorer``, the code the CLI's infer stage
writes with). The torch module stays reachable: ``model.module``, ``model(x)``, and its
methods (``model.eval()``, ``model.state_dict()``...) on the object itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.ml import Model

from runner.data.prepared import PreparedDataset
from runner.errors import RunnerError
from runner.serve import artifacts
from runner.serve.artifacts import ModelArtifact

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from runner.data.preprocess import ScoringRows
    from runner.serve.infer import Scorer

UNSEEN_POLICIES = ("keep", "fail")


class ScoringModel(Model):
    """A saved model and its run's fitted preprocessing, as a ``pyspark.ml`` Model.

    ``keep_columns``: the input columns written beside the predictions (None: every input
    column that is not a feature); ``unseen``: ``keep`` scores a category never seen in
    training as unknown (all-zero one-hot, as training's encoder does), ``fail`` stops the
    job naming the column; ``batch_size``: rows per forward pass.
    """

    def __init__(
        self,
        artifact: ModelArtifact,
        prepared: PreparedDataset | None,
        keep_columns: Sequence[str] | None = None,
        unseen: str = "keep",
        batch_size: int = 1024,
    ):
        super().__init__()
        if unseen not in UNSEEN_POLICIES:
            raise RunnerError(f"unseen: {unseen!r} is not keep or fail")
        if batch_size < 1:
            raise RunnerError(f"batch_size: must be at least 1, got {batch_size}")
        if artifact.classes is None and prepared is not None:  # saved before model.json had them
            classes = (_meta(prepared).get("label") or {}).get("classes")
            if classes is not None:
                import dataclasses

                artifact = dataclasses.replace(artifact, classes=tuple(classes))
        self.artifact = artifact
        self.prepared = prepared
        self.keep_columns = list(keep_columns) if keep_columns is not None else None
        self.unseen = unseen
        self.batch_size = batch_size
        self._module: Any = None

    @classmethod
    def load(cls, run_dir: str | Path, **options: Any) -> ScoringModel:
        """The model of the finished run at ``run_dir`` (its ``model/`` and ``prepared``)."""
        run_dir = Path(run_dir)
        artifact = artifacts.load(run_dir / "model")
        prepared = run_dir / "prepared"
        return cls(
            artifact,
            PreparedDataset(str(prepared.resolve())) if prepared.exists() else None,
            **options,
        )

    @property
    def classes(self) -> list[str] | None:
        """The class names by index (string labels); None for integer labels."""
        return list(self.artifact.classes) if self.artifact.classes is not None else None

    @property
    def module(self) -> Any:
        """The torch module, in eval mode on the CPU (built once)."""
        if self._module is None:
            self._module = self.artifact.build()
        return self._module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # the module's methods, for load_model's old users
        if name.startswith("_") or "artifact" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.module, name)

    def rows(self, df: DataFrame) -> ScoringRows:
        """``df`` through the run's fitted preprocessing, lazily (``scoring_rows``)."""
        from runner.data import preprocess

        if self.prepared is None or self.prepared.problems():
            raise RunnerError(
                "model_path: the run's prepared data (RUN/prepared, its fitted "
                "preprocessing) is gone; rerun its preprocess stage"
            )
        missing = [c for c in self.keep_columns or [] if c not in df.columns]
        if missing:
            raise RunnerError(
                f"inference.keep_columns: no column {', '.join(map(repr, missing))}"
                f" in the input; available: {', '.join(df.columns)}"
            )
        missing = preprocess.missing_features(_meta(self.prepared), df.columns)
        if missing:
            raise RunnerError(
                f"inference.data: no feature column {', '.join(map(repr, missing))}"
                f"; the model reads {', '.join(_meta(self.prepared)['features'])}"
            )
        return preprocess.scoring_rows(self.prepared, df, self.keep_columns)

    def scorer(self, rows: ScoringRows) -> Scorer:
        """How the executors score ``rows``' batches."""
        from runner.serve.infer import scorer_for

        return scorer_for(
            rows, self.artifact, {"batch_size": self.batch_size, "unseen": self.unseen}
        )

    def _transform(self, dataset: DataFrame) -> DataFrame:
        """The kept columns and the task's (``prediction``...): one lazy ``mapInArrow``."""
        from pyspark.sql.pandas.types import from_arrow_schema

        from runner.serve.infer import kept_types

        rows = self.rows(dataset)
        scorer = self.scorer(rows)
        schema = scorer.schema(kept_types(rows))
        return rows.df.mapInArrow(partial(_scored, scorer, schema), from_arrow_schema(schema))


def _scored(scorer: Scorer, schema: pa.Schema, batches: Any) -> Any:
    """One partition's batches scored (in an executor's Python worker)."""
    yield from scorer.score(batches, schema)


def _meta(prepared: PreparedDataset) -> dict[str, Any]:
    return prepared.meta
