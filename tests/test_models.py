"""Architectures build from their configs and map inputs to class logits."""

from __future__ import annotations

import pytest
import torch

from runner.train.model import build_model
from tests.conftest import compose_config


@pytest.mark.parametrize(("option", "shape"), [("mlp", (1, 8, 8)), ("mlp", (13,)),
                                               ("cnn", (1, 8, 8)), ("cnn", (1, 28, 28))])
def test_models_produce_logits(option, shape):
    from omegaconf import OmegaConf

    model_cfg = OmegaConf.to_container(compose_config([f"model={option}"]).model)
    model = build_model(model_cfg, shape, {"num_classes": 10})
    assert model(torch.zeros(4, *shape)).shape == (4, 10)


def test_sizes_come_from_config():
    model = build_model({"_target_": "models.mlp.MLP", "hidden": 7, "depth": 3, "dropout": 0.0},
                        (5,), {"num_classes": 2})
    widths = [m.out_features for m in model if isinstance(m, torch.nn.Linear)]
    assert widths == [7, 7, 7, 2]


def test_cnn_refuses_flat_inputs():
    with pytest.raises(Exception, match=r"\(C, H, W\)"):
        build_model({"_target_": "models.cnn.CNN"}, (64,), {"num_classes": 10})
