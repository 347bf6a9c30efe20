"""ConfigStore registration and composition outside a Hydra app.

A component group (``data``, ``deploy``, ``task``) is a package with one public module per
option base: ``runner/data/sources/file.py`` holds ``FileDataConfig`` and ``FileSource`` and
is stored as ``base_file`` in group ``data``. Adding a module there adds a schema; nothing
else lists them.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore

from runner.cluster.targets import DeployConfig
from runner.config.data import DataConfig
from runner.config.experiment import RunnerConfig
from runner.config import model
from runner.config.search import SearchConfig
from runner.observe.trackers import TrackingConfig
from runner.tasks import TaskConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # conf/, installed as runner.conf

# group -> (the package of its components, the schema they extend)
COMPONENTS: dict[str, tuple[str, type]] = {
    "data": ("runner.data.sources", DataConfig),
    "deploy": ("runner.cluster.targets", DeployConfig),
    "task": ("runner.tasks", TaskConfig),
    "tracking": ("runner.observe.trackers", TrackingConfig),
}


def register_configs() -> None:
    """Store every schema; safe to call more than once."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=RunnerConfig)
    for name, schema in model_schemas().items():
        cs.store(group="model", name=f"base_{name}", node=schema)
    cs.store(group="search", name="base_search", node=SearchConfig)
    for group, (package, base) in COMPONENTS.items():
        for name, schema in component_schemas(package, base).items():
            cs.store(group=group, name=f"base_{name}", node=schema)


def model_schemas() -> dict[str, type]:
    """The bundled models' schemas by their module in ``models/`` (``models.mlp.MLP`` ->
    ``mlp``). They live in ``runner.config.model``, not beside the networks, so composing a
    config never imports torch."""
    return {
        v._target_.split(".")[-2]: v
        for v in vars(model).values()
        if isinstance(v, type)
        and issubclass(v, model.ModelConfig)
        and v is not model.ModelConfig
        and dataclasses.is_dataclass(v)
    }


def component_schemas(package: str, base: type) -> dict[str, type]:
    """Module name -> the one dataclass extending ``base`` that each public module defines."""
    found = {}
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        schemas = [
            v
            for v in vars(module).values()
            if isinstance(v, type)
            and issubclass(v, base)
            and dataclasses.is_dataclass(v)
            and v.__module__ == module.__name__
        ]
        if len(schemas) != 1:
            raise TypeError(
                f"{module.__name__} must define one {base.__name__} subclass, found {len(schemas)}"
            )
        found[info.name] = schemas[0]
    return found


def compose(overrides: list[str] | None = None) -> Any:
    """The config ``python -m runner <overrides>`` runs, composed outside a Hydra app."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return hydra_compose(config_name="config", overrides=overrides or [])


def as_plain(node: Any) -> Any:
    """A resolved, plain-Python copy of a config node (for shipping to executors)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)
