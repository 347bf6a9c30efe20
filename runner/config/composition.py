"""Composition as the CLI does it, and Hydra's composition errors as one ``error:`` line.

:func:`check` composes what a command line asks for before Hydra runs it, so an unknown option,
an unknown key, a wrong type or bad override syntax is one line naming the key and the fix
(exit 2) instead of Hydra's text; ``HYDRA_FULL_ERROR=1`` leaves Hydra's own report.
:func:`unknown_keys` refuses what the schemas do not have (``+search.foo=1``), and
:func:`command_line_wins` takes a key set on the command line out of the search space.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from runner.errors import RunnerError, first_line

COMPOSITION_ERRORS = (HydraException, OmegaConfBaseException)  # anything else is a bug
CONFIG_MODULE = "pkg://runner.conf"
CONFIG_NAME = "config"


@contextmanager
def app(config_dir: str | None = None) -> Iterator[Any]:
    """Hydra's app object over the bundled configs (and ``config_dir`` first, as
    ``--config-dir`` adds it), the global Hydra state cleared on exit."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    from runner.config.store import register_configs

    register_configs()
    search_path = create_automatic_config_search_path(None, None, CONFIG_MODULE)
    if config_dir is not None:
        path = os.path.abspath(config_dir)
        if not os.path.isdir(path):
            raise RunnerError(
                f"--config-dir {config_dir}: no such directory; "
                "give the directory that holds your experiment/, model/, ..."
            )
        search_path.prepend("command-line", f"file://{path}", SearchPathQuery(provider="schema"))
    GlobalHydra.instance().clear()
    try:
        yield Hydra.create_main_hydra2(task_name="runner", config_search_path=search_path)
    finally:
        GlobalHydra.instance().clear()


def check(argv: list[str]) -> None:
    """Compose every job ``argv`` asks for (and check a single run's keys against the
    schemas): a mistake raises a ``RunnerError`` before Hydra makes a run directory."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    args, _ = get_args_parser().parse_known_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion or full_error():
        return
    with app(args.config_dir) as hydra:
        try:
            jobs = [args.overrides]
            if args.multirun:
                parsed = OverridesParser.create().parse_overrides(args.overrides)
                jobs = BasicSweeper.split_arguments(parsed, None)[0] or [[]]
            for overrides in jobs:
                cfg = hydra.compose_config(
                    args.config_name or CONFIG_NAME,
                    list(overrides),
                    run_mode=RunMode.RUN,
                    with_log_configuration=False,
                )
        except COMPOSITION_ERRORS as err:
            raise RunnerError(describe(err)) from None
    if not args.multirun:  # a multirun's jobs check theirs: one job fails, the others run
        unknown_keys(cfg)
    output_dir_writable(cfg, "sweep" if args.multirun else "run")


def output_dir_writable(cfg: DictConfig, mode: str) -> None:
    """Raise a ``RunnerError`` when ``hydra.<mode>.dir`` cannot be created (a read-only file
    system, no permission, a file in the way), before Hydra tries and fails with a traceback.
    Only a probe is written, and removed: the directory itself is Hydra's to make."""
    import tempfile

    key = f"hydra.{mode}.dir"
    try:
        path = os.path.abspath(str(OmegaConf.select(cfg, key, throw_on_resolution_failure=True)))
    except Exception:  # an interpolation only Hydra's runtime resolves: Hydra reports it
        return
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    fix = f"set {key} to a directory you can write, e.g. {key}=./outputs/run"
    if not os.path.isdir(existing):
        raise RunnerError(f"{key}={path}: {existing} is a file, not a directory — {fix}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".spark-dl-runner-", dir=existing))
    except OSError as err:
        raise RunnerError(
            f"{key}={path}: cannot create it in {existing} ({err.strerror or err}) — {fix}"
        ) from None


def full_error() -> bool:
    """``HYDRA_FULL_ERROR=1``: Hydra reports errors itself, tracebacks included."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


# What Hydra writes to stderr around a failed multirun job besides its error: the job's
# overrides (already on our error line) and a pointer to HYDRA_FULL_ERROR.
_HYDRA_NOISE = (
    "Error executing job with overrides:",
    "Set the environment variable HYDRA_FULL_ERROR",
)


class QuietHydra(io.TextIOBase):
    """``stderr`` without Hydra's noise lines, so a failed job reads as our ``error:`` lines
    only; everything else passes through unchanged."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if not text.strip().startswith(_HYDRA_NOISE):
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return int(self.stream.fileno())

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(self.stream.encoding)


def describe(err: Exception) -> str:
    """One line for one of Hydra's composition errors: what is wrong, then the fix."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    cause = err.__cause__
    if isinstance(err, MissingConfigException) and err.options is not None:
        group, _, option = (err.missing_cfg_file or "").rpartition("/")
        options = [o for o in err.options if not o.startswith("base_")]  # schemas are no options
        return f"{group}={option}: no such option — use one of {', '.join(options) or '(none)'}"
    if isinstance(err, OverrideParseException):
        detail = first_line(err.message)
        return (
            f"cannot read the override {err.override!r} ({detail}) — write key=value; "
            "quote brackets and commas for the shell: 'key=[a,b]'"
        )
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        if _is_free_dict(cause):
            override = str(err).removeprefix("Could not override '").split("'", 1)[0]
            return (
                f"{override}: a dict given as a whole is merged key by key; add new keys "
                f"with ++: '++{override}={{...}}' (or one key: '++{override}.KEY=VALUE')"
            )
        return _unknown(str(cause.full_key), _keys(getattr(cause, "parent_node", None)))
    if isinstance(cause, ValidationError):
        detail = first_line(str(cause.msg))
        return f"{cause.full_key}: {detail} — give a value of the key's type"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines[:3]) + " — check the override or the config file it names"


def _is_free_dict(cause: Exception) -> bool:
    """The key was refused by a plain dict node (``deploy.spark_conf``, ``search.params``),
    which takes any key, rather than by a schema."""
    parent = getattr(cause, "parent_node", None)
    return isinstance(parent, DictConfig) and OmegaConf.get_type(parent) is dict


def unknown_keys(cfg: DictConfig) -> None:
    """Raise a ``RunnerError`` for every key that no schema declares (``+search.foo=1``)."""
    problems: list[str] = []
    _walk(cfg, "", problems)
    if problems:
        raise RunnerError("; ".join(problems))


def command_line_wins(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """Take each key set on the command line out of ``search.params``; return those keys."""
    from runner.tune.search_space import flatten

    searched = flatten(cfg.search.params)
    taken = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "=" in override and key in searched:
            taken.append(key)
    if taken:
        kept = {k: v for k, v in searched.items() if k not in taken}
        with open_dict(cfg.search):
            cfg.search.params = kept
    return taken


def _walk(node: Any, path: str, problems: list[str]) -> None:
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    fields: set[str] | None = None
    # a node retargeted to another class has that class's keys: its constructor checks them
    if (
        isinstance(schema, type)
        and dataclasses.is_dataclass(schema)
        and not _retargeted(node, schema)
    ):
        fields = {f.name for f in dataclasses.fields(schema)}
    for key in node:
        full = f"{path}{key!s}"
        if full == "hydra":  # Hydra's own node, composed with the config by the CLI's check
            continue
        if fields is not None and key not in fields:
            problems.append(_unknown(full, sorted(fields), added=True))
        _walk(node._get_node(key), f"{full}.", problems)


def _retargeted(node: DictConfig, schema: Any) -> bool:
    """Whether ``node``'s ``_target_`` names another class than its schema's default
    (``model=mlp model._target_=my.Net +model.blocks=3``)."""
    default = getattr(schema, "_target_", None)
    return isinstance(default, str) and node.get("_target_") not in (None, default)


def _keys(node: Any) -> list[str]:
    return [str(k) for k in node] if isinstance(node, DictConfig) else []


def _unknown(full_key: str, siblings: list[str], added: bool = False) -> str:
    parent, _, key = str(full_key).rpartition(".")
    close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.7)
    where = f"{parent} has" if parent else "the config has"
    fix = (
        f"did you mean {parent + '.' if parent else ''}{close[0]}?"
        if close
        else f"use one of {', '.join(siblings)}"
        if siblings and added
        else "spark-dl-runner --help lists the keys; +KEY=VALUE adds keys under search.params"
    )
    return f"{full_key}: {where} no such key — {fix}"
