"""The saved model: ``weights.pt`` (a state_dict) + ``model.json`` (its resolved config,
input shape, task config and what the task told the model).

Loaded with ``torch.load(weights_only=True)``: no pickled code is ever executed. A
``model.json`` written before tasks existed (``num_classes``, no ``task``) loads as a
classification model.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from runner.errors import with_path

if TYPE_CHECKING:
    from runner.data.prepared import PreparedDataset


@dataclass(frozen=True)
class ModelArtifact:
    """Everything needed to rebuild a trained model anywhere."""

    model: dict[str, Any]  # resolved model config, with _target_
    input_shape: tuple[int, ...]
    task: dict[str, Any]  # resolved task config, with _target_
    model_kwargs: dict[str, Any]  # what the task told the model, e.g. num_classes
    weights: bytes  # torch.save of the state_dict
    input: dict[str, Any] = field(default_factory=dict)  # stored features -> model input
    classes: Optional[tuple[str, ...]] = None  # string labels by index; None: integer labels

    @classmethod
    def trained(
        cls,
        model: dict[str, Any],
        task: dict[str, Any],
        prepared: "PreparedDataset",
        weights: bytes,
    ) -> "ModelArtifact":
        """A ``model`` config trained for ``task`` on ``prepared`` data, with its ``weights``
        (``task=auto``: the task the prepared data's label chose)."""
        from runner.tasks import is_auto
        from runner.train.model import model_kwargs

        task = prepared.task if is_auto(task) else task
        classes = (prepared.meta.get("label") or {}).get("classes")
        return cls(
            model=model,
            input_shape=prepared.input_shape,
            task=task,
            model_kwargs=model_kwargs(task, prepared),
            weights=weights,
            input=prepared.input,
            classes=tuple(classes) if classes is not None else None,
        )

    def build(self, device: str = "cpu"):
        """The model in eval mode with its weights loaded."""
        import torch

        from runner.train.model import build_model

        module = build_model(self.model, self.input_shape, self.model_kwargs)
        state = torch.load(io.BytesIO(self.weights), map_location=device, weights_only=True)
        module.load_state_dict(state)
        return module.to(device).eval()


def save(artifact: ModelArtifact, directory: Path) -> None:
    """Write the artifact; files appear under their final names only when complete."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": artifact.model,
        "input_shape": list(artifact.input_shape),
        "task": artifact.task,
        "model_kwargs": artifact.model_kwargs,
        "input": artifact.input,
        "classes": list(artifact.classes) if artifact.classes is not None else None,
    }
    atomic_write(directory / "weights.pt", artifact.weights)
    atomic_write(directory / "model.json", json.dumps(meta, indent=2).encode())


def load(directory: Path) -> ModelArtifact:
    """The artifact saved in ``directory``; a RunnerError naming ``model_path`` if incomplete."""
    from runner.errors import RunnerError

    missing = [n for n in ("model.json", "weights.pt") if not (directory / n).is_file()]
    if missing:
        raise RunnerError(
            f"model_path: {directory} has no {' or '.join(missing)}; point "
            "model_path at a finished run's directory (it holds model/)"
        )
    meta = json.loads((directory / "model.json").read_text())
    if "task" not in meta:  # saved before tasks: a classifier told num_classes
        meta["task"] = {"_target_": "runner.tasks.Classification"}
        meta["model_kwargs"] = {"num_classes": meta["num_classes"]}
    return ModelArtifact(
        model=meta["model"],
        input_shape=tuple(meta["input_shape"]),
        task=meta["task"],
        model_kwargs=meta["model_kwargs"],
        weights=(directory / "weights.pt").read_bytes(),
        input=meta.get("input") or {},
        classes=tuple(meta["classes"]) if meta.get("classes") is not None else None,
    )


def atomic_write(path: Path, data: bytes) -> None:
    """``data`` at ``path`` whole (on disk) or not at all (an ``OSError`` names ``path``)."""
    try:
        with _renamed_into(path) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise with_path(err, path) from err


@contextmanager
def _renamed_into(path: Path) -> Iterator[Path]:
    """A temp path beside ``path``, renamed over it when the block succeeds, removed if not."""
    tmp = path.with_name(f".{path.name}{_TMP}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_temp_files(directory: Path) -> None:
    """Remove the temp files a killed run left under ``directory`` (links not followed)."""
    for tmp in directory.rglob(f".*{_TMP}"):
        tmp.unlink(missing_ok=True)


_TMP = ".tmp"


def export_torchscript(artifact: ModelArtifact, path: Path) -> None:
    """A traced TorchScript copy of the model (``torch.jit.load`` needs no project code)."""
    import warnings

    import torch

    module = artifact.build("cpu")
    dtype = torch.long if artifact.input.get("kind") == "tokens" else torch.float32
    example = torch.zeros(1, *artifact.input_shape, dtype=dtype)
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example)
    with _renamed_into(path) as tmp:
        traced.save(str(tmp))
