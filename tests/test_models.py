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


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_resnet_produces_logits_and_refuses_flat_rows(shape):
    from omegaconf import OmegaConf

    model_cfg = OmegaConf.to_container(compose_config(["model=resnet"]).model)
    model = build_model(model_cfg, shape, {"num_classes": 3})
    assert model(torch.zeros(4, *shape)).shape == (4, 3)
    with pytest.raises(Exception, match=r"model=resnet needs image data"):
        build_model(model_cfg, (64,), {"num_classes": 3})


def test_weights_path_and_freeze_are_checked_before_spark(tmp_path):
    from runner.train.model import build_problems

    net = {"_target_": "models.resnet.ResNet", "width": 8}
    torch.save(build_model(net, (3, 16, 16), {"num_classes": 3}).state_dict(), tmp_path / "w.pt")
    assert build_problems({**net, "weights_path": str(tmp_path / "w.pt"), "freeze": ["0", "1"]},
                          (3, 16, 16), {"num_classes": 3}) == []
    [missing] = build_problems({**net, "weights_path": str(tmp_path / "no.pt")}, (3, 16, 16),
                               {"num_classes": 3})
    assert missing.startswith("model.weights_path: ") and "not found" in missing
    [wrong] = build_problems({**net, "weights_path": str(tmp_path / "w.pt")}, (3, 16, 16),
                             {"num_classes": 5})
    assert "does not fit" in wrong and "size mismatch for" in wrong
    [freeze] = build_problems({**net, "freeze": ["head"]}, (3, 16, 16), {"num_classes": 3})
    assert freeze.startswith("model.freeze: 'head' names no parameter")


def test_text_transformer_ignores_padding():
    """Logits per row of token ids; padding (id 0) is masked, so the padded tail of a row
    does not change its output."""
    model = build_model({"_target_": "models.text_transformer.TextTransformer",
                         "vocab_size": 50, "layers": 1, "dropout": 0.0}, (12,),
                        {"num_classes": 3}).eval()
    ids = torch.randint(1, 50, (4, 12))
    ids[:, 6:] = 0
    with torch.no_grad():
        out = model(ids)  # the same real tokens as a model fed the unpadded 6 tokens
        short = build_model({"_target_": "models.text_transformer.TextTransformer",
                             "vocab_size": 50, "layers": 1, "dropout": 0.0}, (6,),
                            {"num_classes": 3}).eval()
        short.load_state_dict({k: (v[:, :6] if k == "position" else v)
                               for k, v in model.state_dict().items()})
        assert out.shape == (4, 3)
        assert torch.allclose(out, short(ids[:, :6]), atol=1e-5)
    with pytest.raises(Exception, match=r"model=text_transformer needs token ids"):
        build_model({"_target_": "models.text_transformer.TextTransformer", "vocab_size": 50},
                    (1, 8, 8), {"num_classes": 3})
