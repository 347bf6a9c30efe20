"""Images: an ImageFolder of PNG and JPEG (mixed sizes, grey and RGB, one corrupt file) and
a manifest, decoded by Pillow in mapInArrow, stored as uint8, normalized on read."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from runner.config import compose
from runner.data import preprocess
from runner.data.preparations.image import decode
from runner.errors import RunnerError


def _folder(root, per_class=12, corrupt=True):
    """Two classes: bright images (RGB JPEG, 40x30) and dark ones (grey PNG, 20x20)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(per_class):
        (root / "bright").mkdir(parents=True, exist_ok=True)
        (root / "dark").mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(180, 256, (30, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "bright" / f"{i}.jpg")
        Image.fromarray(rng.integers(0, 60, (20, 20), dtype=np.uint8)).save(root / "dark" / f"{i}.png")
    if corrupt:
        (root / "dark" / "broken.png").write_bytes(b"not an image")
    (root / "dark" / "notes.txt").write_text("not listed: not an image extension")
    return root


def _cfg(tmp_path, *overrides):
    cfg = compose(["data=images", f"data.path={tmp_path / 'images'}",
                   f"data.cache_dir={tmp_path / 'cache'}", "data.image.size=[16,16]",
                   "data.split.train=0.5", "data.split.val=0.25", "data.split.test=0.25",
                   *overrides])
    OmegaConf.set_readonly(cfg, False)
    return cfg


def test_decode_resizes_and_converts():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(buffer, format="PNG")
    rgb = decode(buffer.getvalue(), "RGB", (16, 8), "resize")
    assert rgb.shape == (3, 16, 8) and rgb.dtype == np.uint8 and list(rgb[:, 0, 0]) == [10, 20, 30]
    grey = decode(buffer.getvalue(), "L", (8, 8), "center_crop")
    assert grey.shape == (1, 8, 8)
    padded = decode(buffer.getvalue(), "RGB", (40, 40), "pad")
    assert padded.shape == (3, 40, 40) and padded[:, 0, 0].sum() == 0  # the padding is black


def test_folder_is_prepared_as_uint8_with_channel_stats_from_train(spark, tmp_path):
    _folder(tmp_path / "images")
    prepared = preprocess.run(spark, _cfg(tmp_path).data, tmp_path / "cache")
    meta = prepared.meta
    assert prepared.input_shape == (3, 16, 16) and prepared.num_classes == 2
    assert meta["label"]["classes"] == ["bright", "dark"]
    assert meta["bad_records"] == 1 and sum(prepared.rows.values()) == 24
    schema = prepared.schema("train")
    assert str(schema.field("features").type) == "binary" and "path" in schema.names
    x, y = prepared.read("train")
    assert x.shape[1] == 3 * 16 * 16 and x.dtype == np.float32
    per_channel = x.reshape(len(x), 3, -1)
    assert np.allclose(per_channel.mean(axis=(0, 2)), 0, atol=1e-3)
    assert np.allclose(per_channel.std(axis=(0, 2)), 1, atol=1e-2)
    bright = x[y == 0].mean()
    assert bright > 0 > x[y == 1].mean()  # the classes differ as drawn


def test_grey_mode_gives_one_channel(spark, tmp_path):
    _folder(tmp_path / "images", corrupt=False)
    prepared = preprocess.run(spark, _cfg(tmp_path, "data.image.mode=L").data, tmp_path / "cache")
    assert prepared.input_shape == (1, 16, 16) and prepared.meta["bad_records"] == 0


def test_a_corrupt_image_fails_in_one_line_with_on_bad_record_fail(spark, tmp_path):
    _folder(tmp_path / "images")
    with pytest.raises(RunnerError, match=r"data.on_bad_record: 1 images do not decode.*broken.png"):
        preprocess.run(spark, _cfg(tmp_path, "data.on_bad_record=fail").data, tmp_path / "cache")


def test_manifest_labels_the_listed_files(spark, tmp_path):
    root = _folder(tmp_path / "images", corrupt=False)
    lines = ["path,label"] + [f"bright/{i}.jpg,1" for i in range(12)] + \
        [f"{root}/dark/{i}.png,0" for i in range(8)]
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    cfg = _cfg(tmp_path, f"data.manifest={tmp_path / 'manifest.csv'}")
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    assert sum(prepared.rows.values()) == 20
    assert prepared.meta["label"]["classes"] is None and prepared.num_classes == 2


def test_new_images_go_through_the_saved_preparation(spark, tmp_path):
    from runner.data import sources

    _folder(tmp_path / "images", corrupt=False)
    cfg = _cfg(tmp_path)
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    _folder(tmp_path / "new", per_class=3, corrupt=False)
    new = OmegaConf.merge(cfg.data, {"path": str(tmp_path / "new")})
    rows = preprocess.apply_transform(spark, prepared,
                                      sources.source_for(new).load(spark, new).df)
    got = rows.collect()
    assert len(got) == 6 and all(len(r["features"]) == 3 * 16 * 16 for r in got)
    assert sorted({r["label"] for r in got}) == [0, 1] and all(r["path"] for r in got)


def test_bad_image_settings_are_named(tmp_path):
    cfg = _cfg(tmp_path, "data.image.mode=CMYK", "data.image.fit=stretch",
               "data.on_bad_record=ignore")
    problems = " ".join(preprocess.validate(cfg.data))
    for key in ("data.image.mode", "data.image.fit", "data.on_bad_record", "data.path"):
        assert key in problems


def test_image_bytes_in_a_parquet_column(spark, tmp_path):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    encoded, labels = [], []
    for i in range(20):
        buffer = io.BytesIO()
        Image.new("RGB", (12 + i, 10), (200, 10, 10) if i % 2 else (10, 10, 200)).save(
            buffer, format="PNG")
        encoded.append(buffer.getvalue())
        labels.append("red" if i % 2 else "blue")
    encoded[3] = b"broken"
    pq.write_table(pa.table({"bytes": encoded, "kind": labels,
                             "name": [f"img{i}" for i in range(20)]}), tmp_path / "t.parquet")
    cfg = compose(["data=image_table", f"data.path={tmp_path / 't.parquet'}",
                   "data.content=bytes", "data.label=kind", "data.key=name",
                   f"data.cache_dir={tmp_path / 'cache'}", "data.image.size=8",
                   "data.split.train=0.5", "data.split.val=0.25", "data.split.test=0.25"])
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    assert prepared.input_shape == (3, 8, 8) and prepared.meta["bad_records"] == 1
    assert sum(prepared.rows.values()) == 19
    assert set(prepared.table(["train"], ["path"]).column("path").to_pylist()) <= \
        {f"img{i}" for i in range(20)}
