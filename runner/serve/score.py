"""Scoring with a saved model as users load it (``runner.load_model``: a ``ScoringModel``):
the prepared test split, or new rows from ``inference.data``, written to the output."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.data import sources
from runner.data.prepared import PreparedDataset
from runner.errors import RunnerError
from runner.serve import artifacts, infer

if TYPE_CHECKING:
    from runner.serve.model import ScoringModel


def scoring_model(
    cfg: Any, artifact: artifacts.ModelArtifact, prepared: PreparedDataset
) -> "ScoringModel":
    """The model as users load it (``runner.load_model``), with ``inference``'s settings."""
    from runner.serve.model import ScoringModel

    return ScoringModel(
        artifact,
        prepared,
        keep_columns=cfg.keep_columns,
        unseen=cfg.unseen,
        batch_size=cfg.batch_size,
    )


def score(
    spark: Any, cfg: Any, artifact: artifacts.ModelArtifact, prepared: PreparedDataset, out: Path
) -> infer.InferenceResult:
    """The infer stage: the prepared test split, or ``inference.data`` through the model as
    users load it (``runner.load_model``: a ScoringModel), written to ``out``."""
    model = scoring_model(cfg, artifact, prepared)
    if cfg.data is None:
        rows: infer.Rows = infer.PreparedSplit(prepared, "test")
    else:
        try:
            raw = sources.source_for(cfg.data).load(spark, cfg.data, labelled=False)
        except RunnerError as err:
            raise RunnerError(infer.inference_keyed(str(err))) from None
        rows = model.rows(_as_trained(raw, prepared.meta.get("features")))
    return infer.run(spark, rows, model.artifact, cfg, out)


def _as_trained(raw: sources.RawData, trained: list[str] | None) -> Any:
    """New rows with the columns the source names as features (``inference.data.text=body``)
    renamed to those the model was trained on, position by position."""
    if not raw.features or not trained or len(raw.features) != len(trained):
        return raw.df
    return raw.df.withColumnsRenamed(dict(zip(raw.features, trained)))
