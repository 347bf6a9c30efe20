"""Which stages an experiment runs: ``stages`` picks them, ``train.enabled`` switches train.

Rules for ``stages`` (a subset of ``preprocess, sweep, train, infer``):

- stages run in that fixed order, so the list must be written in it, without repeats;
- ``preprocess`` is always listed: every other stage reads the prepared data (a second
  run reuses the cached copy);
- ``train`` runs only when ``train.enabled`` is also true; after ``sweep`` it retrains the
  best trial's configuration, without ``sweep`` the config's own ``model``/``optimizer``;
- ``infer`` deploys the trained model when ``train`` ran, else the best trial's, so it
  needs ``sweep`` or an enabled ``train``;
- ``[infer]`` alone runs the model a finished run saved (``model_path``) on new data,
  through that run's fitted preprocessing: nothing is prepared, swept or trained.

The report is always written.
"""

from __future__ import annotations

from typing import Any

ORDER = ("preprocess", "sweep", "train", "infer")


def validate(cfg: Any) -> list[str]:
    """Problems with ``stages``, each naming the key and the fix."""
    stages = list(cfg.stages)
    unknown = [s for s in stages if s not in ORDER]
    if unknown:
        return [
            f"stages: unknown stage {', '.join(map(repr, unknown))}; choose from {', '.join(ORDER)}"
        ]
    if len(set(stages)) != len(stages) or stages != sorted(stages, key=ORDER.index):
        return [f"stages: {stages} must list each stage once, in the order {', '.join(ORDER)}"]
    if saved_model(cfg):
        return []
    problems = []
    if cfg.model_path:
        problems.append(
            "model_path: only used with stages=[infer] (a saved model on new data); "
            "drop model_path or set stages=[infer]"
        )
    if "preprocess" not in stages:
        problems.append(
            "stages: preprocess must be listed; every other stage reads its data "
            "(a saved model on new data: stages=[infer] model_path=RUN_DIR)"
        )
    if "train" in stages and "sweep" not in stages and not cfg.train.enabled:
        problems.append(
            "stages: train is listed without sweep but train.enabled=false; set train.enabled=true"
        )
    elif "infer" in stages and "sweep" not in stages and "train" not in stages:
        problems.append("stages: infer needs a model; add sweep or train (with train.enabled=true)")
    return problems


def selected(cfg: Any) -> tuple[str, ...]:
    """The stages that will run, in order."""
    return tuple(s for s in ORDER if s in cfg.stages and (s != "train" or cfg.train.enabled))


def saved_model(cfg: Any) -> bool:
    """``stages=[infer]``: run the saved model of the run at ``model_path``."""
    return list(cfg.stages) == ["infer"]
