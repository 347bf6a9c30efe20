"""How long a trial will take, estimated before it runs, so a sweep can start the longest first.

With trials of unequal length, the last slot still training decides when a sweep ends.
Handing out the longest trials first (LPT scheduling) shrinks that tail; it needs every
trial's params before the first one ends, which samplers that ignore results (random,
grid) allow. A trial's seconds are modelled as ``a * steps + b * flops``: a fixed cost
per optimizer step plus its training FLOPs (6 x parameters x samples; the parameters
counted once per model config on PyTorch's meta device). ``a`` and ``b``
start from a prior for one CPU thread and are refit (non-negative least squares) from
the trials that finished, so the order adapts to the machine: on a GPU the per-step
cost dominates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# Prior rates, fitted to 16 digits-MLP trials on one thread of this 2-core VM: 0.9 ms
# a step and 23 GFLOP/s. Only their ratio matters to the order, until trials finish.
PRIOR_RATES = (9e-4, 4.3e-11)  # seconds per optimizer step, seconds per FLOP
MIN_FIT = 3  # finished trials before the rates are refit

Work = Callable[[dict[str, Any]], tuple[float, float]]  # params -> (steps, training FLOPs)


@dataclass
class TrialCost:
    """Estimated seconds of a trial's params, learning from the trials that finished."""

    work: Work
    rates: tuple[float, float] = PRIOR_RATES
    _seen: list[tuple[float, float, float]] = field(default_factory=list)
    _known: dict[str, tuple[float, float]] = field(default_factory=dict)  # params -> work

    def seconds(self, params: dict[str, Any]) -> float:
        steps, flops = self._work(params)
        return self.rates[0] * steps + self.rates[1] * flops

    def observe(self, params: dict[str, Any], seconds: float) -> None:
        """A finished trial's params and how long it took."""
        import numpy as np
        from scipy.optimize import nnls

        self._seen.append((*self._work(params), seconds))
        if len(self._seen) < MIN_FIT:
            return
        seen = np.array(self._seen)
        scale = np.maximum(seen[:, :2].max(axis=0), 1e-30)  # columns of ~1e3 and ~1e10
        fit, _ = nnls(seen[:, :2] / scale, seen[:, 2])
        if fit.any():
            rates = fit / scale
            self.rates = (float(rates[0]), float(rates[1]))

    def _work(self, params: dict[str, Any]) -> tuple[float, float]:
        key = json.dumps(params, sort_keys=True)
        if key not in self._known:
            self._known[key] = self.work(params)
        return self._known[key]


def training_work(
    model: dict[str, Any],
    input_shape: tuple[int, ...],
    model_kwargs: dict[str, Any],
    epochs: int,
    batch_size: int,
    rows: int,
) -> tuple[float, float]:
    """``(optimizer steps, training FLOPs)`` of ``epochs`` over ``rows`` training rows,
    FLOPs by the 6 x parameters x samples rule (exact for dense layers; a conv net's
    weight reuse is a constant factor within its architecture, which the fit absorbs)."""
    steps = epochs * -(-rows // batch_size)
    weights = parameter_count(
        json.dumps(model, sort_keys=True),
        tuple(input_shape),
        json.dumps(model_kwargs, sort_keys=True),
    )
    return float(steps), 6.0 * weights * epochs * rows


@lru_cache(maxsize=256)
def parameter_count(model_json: str, input_shape: tuple[int, ...], model_kwargs_json: str) -> int:
    """The model's parameters, built on the meta device (no memory, no init compute);
    0 for a config that does not build: its trial fails on an executor, with the error."""
    import torch

    from runner.train.model import build_model

    try:
        with torch.device("meta"):
            model = build_model(json.loads(model_json), input_shape, json.loads(model_kwargs_json))
    except Exception:  # recorded where it matters: as the trial's own failure
        return 0
    return sum(p.numel() for p in model.parameters())
