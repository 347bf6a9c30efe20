"""The model contract: ``_target_(input_shape, **task.model_kwargs, **its own keys)``, and
an optional ``check_input(input_shape) -> list[str]`` classmethod run before Spark starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def build_model(model_cfg: Mapping[str, Any], input_shape: Sequence[int],
                task_kwargs: Mapping[str, Any]):
    """Instantiate the configured ``nn.Module`` for this data's shape and task."""
    from hydra.utils import instantiate

    return instantiate(model_cfg, input_shape=list(input_shape), **task_kwargs)


def input_problems(model_cfg: Mapping[str, Any], input_shape: Sequence[int | None]) -> list[str]:
    """What the model's ``check_input`` finds wrong with ``input_shape`` (None: a size known
    only after preprocessing); nothing for a model without the hook."""
    target = model_cfg["_target_"]
    try:
        model_class = _locate(target)
    except Exception as err:
        return [f"model._target_: cannot import {target!r} ({_reason(err)}); {IMPORT_FIX}"]
    check = getattr(model_class, "check_input", None)
    return list(check(tuple(input_shape))) if check else []


IMPORT_FIX = ("name an nn.Module class (e.g. models.mlp.MLP); for your own package put its "
              "directory on PYTHONPATH (executors inherit it on local targets) or install it "
              "where deploy.python runs on the executors")


def build_problems(model_cfg: Mapping[str, Any], input_shape: Sequence[int],
                   task_kwargs: Mapping[str, Any]) -> list[str]:
    """The model built on PyTorch's meta device (no memory, no init compute) for this data's
    shape and task: what fails, as one line naming ``model._target_`` and the fix."""
    import torch

    problems = input_problems(model_cfg, input_shape)
    if problems:
        return problems
    target = model_cfg["_target_"]
    try:
        with torch.device("meta"):
            model = build_model(model_cfg, input_shape, task_kwargs)
            if not isinstance(model, torch.nn.Module):
                return [f"model._target_: {target!r} built a {type(model).__name__}, not an "
                        "nn.Module"]
            model(torch.zeros(2, *input_shape))
    except Exception as err:
        keys = ", ".join(k for k in model_cfg if k != "_target_") or "none"
        return [f"model._target_: {target!r} does not build for input_shape {list(input_shape)} "
                f"and {dict(task_kwargs)} with its keys ({keys}): {_reason(err)}; its "
                "constructor takes input_shape, num_classes and the model's own keys"]
    return []


def _locate(target: str) -> Any:
    """The object a dotted ``_target_`` names (as Hydra finds it, without its log lines)."""
    import importlib

    parts = str(target).split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as err:
            if err.name and not ".".join(parts[:cut]).startswith(err.name):
                raise  # the module exists but one it imports does not
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(f"No module named {parts[0]!r}", name=parts[0])


def _reason(err: BaseException) -> str:
    """The innermost cause of ``err`` (Hydra wraps the real one), as one line."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


def weights_of(model: Any) -> bytes:
    """The model's ``state_dict`` on the CPU, as ``torch.save`` bytes."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()
