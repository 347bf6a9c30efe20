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


def test_tabular_embeds_the_last_values_as_categories_and_checks_on_meta():
    from omegaconf import OmegaConf

    from runner.train.model import build_problems

    model_cfg = OmegaConf.to_container(compose_config(["model=tabular", "model.depth=1"]).model)
    told = {"num_classes": 3, "categories": [4, 101]}  # 2 numbers, then 2 category indices
    model = build_model(model_cfg, (4,), told)
    assert [e.embedding_dim for e in model.embeddings] == [2, 50]
    assert model.head[0].in_features == 2 + 2 + 50
    rows = torch.tensor([[0.5, -1.0, 3.0, 100.0], [0.5, -1.0, 0.0, 100.0]])
    logits = model.eval()(rows)
    assert logits.shape == (2, 3) and not torch.allclose(logits[0], logits[1])
    assert build_problems(model_cfg, (4,), told) == []  # built on the meta device
    [mlp] = build_problems({"_target_": "models.mlp.MLP"}, (4,), told)
    assert "unexpected keyword argument 'categories'" in mlp
    assert "takes input_shape, num_classes, categories and" in mlp


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


def _city_rows(n, cities, seed):
    """Rows whose label depends mostly on ``city`` (north/south strongly, east/west less)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    city = rng.choice(cities, n)
    effect = pd.Series(city).map({"north": 2, "south": -2, "east": 1, "west": -1}).fillna(0)
    a, b = rng.normal(size=n), rng.normal(size=n)
    label = np.where(effect + a + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    return pd.DataFrame({"a": a.round(4), "b": b.round(4), "city": city, "y": label})


def test_tabular_learns_from_a_category_and_scores_unseen_ones_from_the_cli(tmp_path):
    import json

    import numpy as np
    import pandas as pd

    from tests.conftest import run_cli

    seen = ["north", "south", "east", "west", "centre"]
    _city_rows(1200, seen, seed=0).to_csv(tmp_path / "train.csv", index=False)
    _city_rows(300, [*seen, "harbour"], seed=1).to_csv(tmp_path / "new.csv", index=False)
    run = tmp_path / "run"
    proc = run_cli(["data=csv", f"data.path={tmp_path / 'train.csv'}", "data.label=y",
                    "data.steps=[{op: categorical, columns: [city]}]", "model=tabular",
                    "search=none", "optimizer.lr=0.01", "train.epochs=10",
                    "stages=[preprocess,sweep,infer]", "data@inference.data=csv",
                    f"inference.data.path={tmp_path / 'new.csv'}", "inference.keep_columns=[city,y]",
                    f"data.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    told = json.loads((run / "model" / "model.json").read_text())["model_kwargs"]
    assert told == {"categories": [6], "num_classes": 2}  # 5 cities and 0: unseen
    new = pd.read_csv(tmp_path / "new.csv")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["predictions"]["unseen"] == {"city": int((new["city"] == "harbour").sum())}
    out = pd.read_parquet(run / "predictions.parquet")
    assert len(out) == len(new) and out["prediction"].isin(["yes", "no"]).all()
    known = out[out["city"] != "harbour"]
    accuracy = float(np.mean(known["prediction"] == known["y"]))
    assert accuracy >= 0.88, accuracy  # a and b alone: 0.58 (logistic regression)
