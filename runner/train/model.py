"""The model contract: ``_target_(input_shape, **task.model_kwargs, **its own keys)``, and
an optional ``check_input(input_shape) -> list[str]`` classmethod run before Spark starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import first_line


def build_model(model_cfg: Mapping[str, Any], input_shape: Sequence[int],
                task_kwargs: Mapping[str, Any]):
    """Instantiate the configured ``nn.Module`` for this data's shape and task."""
    from hydra.utils import instantiate

    return instantiate(model_cfg, input_shape=list(input_shape), **task_kwargs)


def input_problems(model_cfg: Mapping[str, Any], input_shape: Sequence[int | None]) -> list[str]:
    """What the model's ``check_input`` finds wrong with ``input_shape`` (None: a size known
    only after preprocessing); nothing for a model without the hook."""
    from hydra.utils import get_class

    target = model_cfg["_target_"]
    try:
        model_class = get_class(target)
    except Exception as err:
        return [f"model._target_: cannot import {target!r} ({first_line(err)}); name an "
                "nn.Module class, e.g. models.mlp.MLP"]
    check = getattr(model_class, "check_input", None)
    return list(check(tuple(input_shape))) if check else []


def weights_of(model: Any) -> bytes:
    """The model's ``state_dict`` on the CPU, as ``torch.save`` bytes."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()
