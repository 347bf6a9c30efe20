"""The Python API beside the CLI, for notebooks and scheduled jobs::

import runner
result = runner.run(["model=cnn", "search.n_trials=4"])
model = runner.load_model(result.run_dir)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.errors import RunnerError
from runner.observe.result import RunResult


def run(overrides: Sequence[str] = (), config_dir: str | Path | None = None) -> "RunResult":
    """Run one experiment composed as ``spark-dl-runner [--config-dir DIR] OVERRIDES`` composes
    it, into Hydra's run directory; return its ``RunResult`` (``summary.json``: ``to_json()``).

    Raises:
        RunnerError: bad input (a composition mistake or a failed config check), one line.
    """
    from hydra.types import RunMode

    from runner import project
    from runner.config import composition
    from runner.job import experiment

    project.importable_from_cwd()
    with composition.app(None if config_dir is None else str(config_dir)) as hydra:
        try:
            cfg = hydra.compose_config(
                composition.CONFIG_NAME,
                list(overrides),
                run_mode=RunMode.RUN,
                with_log_configuration=False,
            )
        except composition.COMPOSITION_ERRORS as err:
            raise RunnerError(composition.describe(err)) from None
        composition.output_dir_writable(cfg, "run")
        job = hydra.run(
            config_name=composition.CONFIG_NAME,
            task_function=experiment,
            overrides=list(overrides),
            with_log_configuration=False,
        )
    result: RunResult = job.return_value
    return result


def load_model(
    run_dir: str | Path,
    keep_columns: Sequence[str] | None = None,
    unseen: str = "keep",
    batch_size: int = 1024,
) -> Any:
    """The model a finished run deployed (``RUN_DIR/model/``) with its fitted preprocessing,
    as a ``pyspark.ml`` Model: ``load_model(RUN).transform(df)`` scores a DataFrame lazily
    (``runner.serve.model.ScoringModel``). The torch module (eval mode, CPU) is ``.module``;
    calling the object, or a module method on it, reaches that module as before.

    Raises:
        RunnerError: ``RUN_DIR/model`` incomplete, or a bad ``unseen``/``batch_size``.
    """
    from runner.serve.model import ScoringModel

    return ScoringModel.load(
        run_dir, keep_columns=keep_columns, unseen=unseen, batch_size=batch_size
    )
