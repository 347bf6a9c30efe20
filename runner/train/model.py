"""The model contract: ``_target_(input_shape, **model_kwargs(task, prepared), **its own
keys)``, and an optional ``check_input(input_shape) -> list[str]`` classmethod run before
Spark starts."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.errors import first_line

if TYPE_CHECKING:
    from runner.data.prepared import PreparedDataset

RUNNER_KEYS = ("weights_path", "freeze")  # model keys the runner applies, not the constructor


def model_kwargs(task: Mapping[str, Any], prepared: "PreparedDataset") -> dict[str, Any]:
    """What a model learning ``task`` (a task config) on ``prepared`` data is told besides
    ``input_shape``: the preparation's (``PreparedDataset.model_kwargs``, e.g. ``categories``)
    and the task's (``Task.model_kwargs``, e.g. ``num_classes``)."""
    from runner.tasks import task_for

    return {**prepared.model_kwargs, **task_for(task).model_kwargs(prepared.meta)}


def build_model(
    model_cfg: Mapping[str, Any], input_shape: Sequence[int], task_kwargs: Mapping[str, Any]
):
    """Instantiate the configured ``nn.Module`` for this data's shape and task (its
    architecture: see :func:`pretrained` for ``weights_path`` and ``freeze``)."""
    from hydra.utils import instantiate

    args = {k: v for k, v in model_cfg.items() if k not in RUNNER_KEYS}
    return instantiate(args, input_shape=list(input_shape), **task_kwargs)


def pretrained(model: Any, model_cfg: Mapping[str, Any]) -> Any:
    """``model`` with ``model.weights_path``'s state_dict loaded (``weights_only``) and the
    parameters named by ``model.freeze``'s prefixes frozen, for fine-tuning."""
    import torch

    path = model_cfg.get("weights_path")
    if path:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    prefixes = tuple(model_cfg.get("freeze") or ())
    for name, parameter in model.named_parameters():
        if prefixes and name.startswith(prefixes):
            parameter.requires_grad_(False)
    return model


def compiled(model: Any, train: Mapping[str, Any]) -> Any:
    """``train.compile``: ``torch.compile(model)`` (it shares the model's parameters; the
    first batches pay the compilation), else ``model``."""
    import torch

    return torch.compile(model) if train.get("compile") else model


def pretrained_problems(model: Any, model_cfg: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``model.weights_path`` and ``model.freeze`` for ``model`` (built on
    the meta device: loading checks every key and shape, copies nothing)."""
    import torch

    problems = []
    path = model_cfg.get("weights_path")
    if path:
        try:
            with warnings.catch_warnings():  # "copying ... to a meta parameter is a no-op"
                warnings.simplefilter("ignore", UserWarning)
                model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except FileNotFoundError:
            problems.append(
                f"model.weights_path: {path} not found; give a state_dict file "
                "(torch.save(model.state_dict(), PATH)) on storage the executors read"
            )
        except Exception as err:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            why = lines[1] if len(lines) > 1 else _reason(err)  # the first mismatch
            problems.append(
                f"model.weights_path: {path} does not fit {model_cfg['_target_']} "
                f"({why}); save the state_dict of the same architecture"
            )
    names = [name for name, _ in model.named_parameters()]
    for prefix in model_cfg.get("freeze") or ():
        if not any(name.startswith(prefix) for name in names):
            problems.append(
                f"model.freeze: {prefix!r} names no parameter; parameter names "
                f"start with {', '.join(sorted({n.split('.')[0] for n in names}))}"
            )
    return problems


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


IMPORT_FIX = (
    "name an nn.Module class (e.g. models.mlp.MLP); for your own package put its "
    "directory on PYTHONPATH (executors inherit it on local targets) or install it "
    "where deploy.python runs on the executors"
)


def prefetch() -> None:
    """Import ``torch._dynamo``: the first forward on PyTorch's meta device (in
    :func:`build_problems`) imports it, 1.1 s here."""
    import torch._dynamo  # noqa: F401


def build_problems(
    model_cfg: Mapping[str, Any], input_shape: Sequence[int], task_kwargs: Mapping[str, Any]
) -> list[str]:
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
                return [
                    f"model._target_: {target!r} built a {type(model).__name__}, not an nn.Module"
                ]
            model(torch.zeros(2, *input_shape))
    except Exception as err:
        keys = ", ".join(k for k in model_cfg if k not in ("_target_", *RUNNER_KEYS)) or "none"
        return [
            f"model._target_: {target!r} does not build for input_shape {list(input_shape)} "
            f"and {dict(task_kwargs)} with its keys ({keys}): {_reason(err)}; its "
            f"constructor takes input_shape, {', '.join(task_kwargs)} and the model's own keys"
        ]
    return pretrained_problems(model, model_cfg)


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
    return f"{type(err).__name__}: {first_line(str(err))}"


def weights_of(model: Any) -> bytes:
    """The model's ``state_dict`` on the CPU, as ``torch.save`` bytes."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()
