"""Rerunning an existing run dir (``hydra.run.dir=RUN``), checked before Hydra rewrites its
``.hydra/`` and before Spark starts; and the line that tells an interrupted run how to.

- A finished run (it has ``summary.json``) is left alone: one line, exit 0.
- A sweep that began there resumes only with the trial settings it began with (those in the
  run dir's ``.hydra/config.yaml``): otherwise its leaderboard would mix trials of two
  experiments, so the rerun is refused with one ``error:`` line naming the changed keys, exit 2.
  ``search.n_trials``, ``search.parallelism`` and the keys of the train stage alone may change.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from runner.errors import RunnerError

TRIAL_SECTIONS = ("data", "model", "optimizer", "train", "search")
FREE_KEYS = frozenset(
    {
        "search.n_trials",
        "search.parallelism",
        "data.cache_dir",
        "train.enabled",
        "train.num_processes",
        "train.use_gpu",
        "train.local_mode",
    }
)


class RerunCheck(Callback):
    """Hydra callback (``hydra.callbacks.rerun`` in ``conf/config.yaml``): the checks above,
    for single runs (a multirun's jobs are not checked)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        try:
            finished = check(run_dir, config)
        except RunnerError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(err.exit_code)
        if finished:
            print(finished, flush=True)
            sys.exit(0)


def check(run_dir: Path, cfg: Any) -> str | None:
    """The line saying ``run_dir`` is finished, or None when the run may go ahead.

    Raises:
        RunnerError: a sweep began in ``run_dir`` with other trial settings than ``cfg``'s.
    """
    if (run_dir / "summary.json").is_file():
        return (
            f"{run_dir} is a finished run: nothing to do (its report: "
            f"{run_dir / 'report.html'}); for a new run, choose another hydra.run.dir"
        )
    saved = run_dir / ".hydra" / "config.yaml"
    if not (run_dir / "study.journal").is_file() or not saved.is_file():
        return None
    changed = changed_keys(OmegaConf.load(saved), cfg)
    if changed:
        raise RunnerError(
            f"hydra.run.dir={run_dir}: its sweep began with other trial settings; changed: "
            f"{', '.join(changed)}; resume with the values it began with, or choose another "
            "hydra.run.dir"
        )
    return None


def interrupted(run_dir: Path, n_trials: int) -> str:
    """The line for a run stopped by Ctrl-C: how far it got and how to resume it."""
    trials = run_dir / "trials.jsonl"
    finished = trials.read_bytes().count(b"\n") if trials.is_file() else 0
    return (
        f"interrupted: {finished} of {n_trials} trials finished; rerun the same command "
        f"with hydra.run.dir={run_dir} to resume"
    )


def changed_keys(saved: Any, cfg: Any) -> list[str]:
    """Dotted keys of the trial sections that differ, each with its saved and new value."""
    before, after = (
        _leaves({s: OmegaConf.to_container(c[s], resolve=True) for s in TRIAL_SECTIONS if s in c})
        for c in (saved, cfg)
    )
    return [
        f"{key} ({_show(before.get(key))} -> {_show(after.get(key))})"
        for key in sorted(before.keys() | after.keys())
        if key not in FREE_KEYS and before.get(key, _ABSENT) != after.get(key, _ABSENT)
    ]


_ABSENT = object()


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, Mapping):
        return {prefix[:-1]: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}{key}."))
    return out


def _show(value: Any) -> str:
    return "unset" if value is None else str(value)
