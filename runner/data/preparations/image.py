"""Images: encoded bytes decoded with Pillow in ``mapInArrow`` tasks on the executors.

Each image is converted to ``data.image.mode`` (RGB or L), brought to ``data.image.size``
(``fit``: ``resize``, ``center_crop`` or ``pad``) and stored as uint8 bytes, C x H x W
(4x smaller than floats). The per-channel mean and std are fitted on the train split
and kept in ``meta.json`` (``input``), applied when the features are read
(``prepared.model_input``). Undecodable images are counted and skipped
(``data.on_bad_record=skip``) or fail the preparation in one line naming the first
(``fail``); a task never crashes on one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.data import steps
from runner.data.preparations import FittedLabel, LabelledApart, fit_label, load_label
from runner.errors import RunnerError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from runner.data.prepared import PreparedDataset
    from runner.data.sources import RawData

MODES = {"RGB": 3, "L": 1}
FITS = ("resize", "center_crop", "pad")
POLICIES = ("skip", "fail")
_FILE = "transform/image.json"


def image_shape(image: Any) -> list[int]:
    """C, H, W of a ``data.image`` config."""
    height, width = _size(image.size)
    return [MODES.get(image.mode, 3), height, width]


def _size(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def decode(content: bytes, mode: str, size: tuple[int, int], fit: str) -> "np.ndarray":
    """One encoded image -> uint8 C x H x W (``size`` is H, W)."""
    import numpy as np
    from PIL import Image, ImageOps

    height, width = size
    with Image.open(io.BytesIO(content)) as opened:
        opened.draft(mode, (width, height))  # JPEG: decode at a reduced scale when it can
        img: Image.Image = opened.convert(mode)
        if fit == "center_crop":
            img = ImageOps.fit(img, (width, height), Image.Resampling.BILINEAR)
        elif fit == "pad":
            img = ImageOps.pad(img, (width, height), Image.Resampling.BILINEAR)
        elif img.size != (width, height):
            img = img.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array)


def decoder(mode: str, size: tuple[int, int], fit: str, keep: Sequence[str]):
    """The ``mapInArrow`` function: ``content`` -> ``features`` (binary, null if the
    image does not decode), ``error`` (why) and ``moments`` (each channel's sum of values,
    then of squared values: the channel statistics add them up without reading the images
    again), the ``keep`` columns carried over."""

    def decode_batches(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import numpy as np
        import pyarrow as pa

        for batch in batches:
            features: list[bytes | None] = []
            errors: list[str | None] = []
            moments: list[list[float] | None] = []
            for content in batch.column("content").to_pylist():
                try:
                    if content is None:
                        raise ValueError("no content")
                    image = decode(content, mode, size, fit)
                except Exception as err:  # a bad image is a counted row, never a crash
                    features.append(None)
                    errors.append(f"{type(err).__name__}: {err}"[:300])
                    moments.append(None)
                    continue
                features.append(image.tobytes())
                errors.append(None)
                pixels = image.reshape(len(image), -1).astype(np.float64)
                moments.append([*pixels.sum(axis=1), *(pixels * pixels).sum(axis=1)])
            yield pa.RecordBatch.from_arrays(
                [
                    *(batch.column(c) for c in keep),
                    pa.array(features, pa.binary()),
                    pa.array(errors, pa.string()),
                    pa.array(moments, pa.list_(pa.float64())),
                ],
                names=[*keep, "features", "error", "moments"],
            )

    return decode_batches


@dataclass(frozen=True)
class FittedImages(LabelledApart):
    """The label's stages and the per-channel mean/std (of 0..255 values) fitted on train."""

    labels: FittedLabel
    mean: list[float]
    std: list[float]
    shape: list[int]
    bad_records: int = 0
    features: tuple[str, ...] = ("content",)

    def transform(self, df: "DataFrame") -> "DataFrame":
        from pyspark.sql import functions as F

        df, label = self.labels.prepared(df.where(F.col("features").isNotNull()))
        return df.select(
            F.col("id").cast("long").alias("id"),
            label,
            F.col("features"),
            F.col("path"),
            *([steps.KEPT] if steps.KEPT in df.columns else []),
        )

    def scoring(self, df: "DataFrame") -> steps.Scored:
        return steps.Scored(self.transform(df), [], {})

    def save(self, entry: "PreparedDataset") -> None:
        self.labels.save(entry)
        entry.write_file(
            _FILE, json.dumps({"mean": self.mean, "std": self.std, "shape": self.shape}).encode()
        )

    def describe(self) -> dict[str, Any]:
        return {
            "input": {"kind": "image", "mean": self.mean, "std": self.std},
            "input_shape": self.shape,
            "bad_records": self.bad_records,
        }


class ImagePreparation:
    """Encoded images (a ``content`` binary column, a ``path``) -> uint8 C x H x W."""

    def validate(self, cfg: Any) -> list[str]:
        problems = []
        image = cfg.image
        if image.mode not in MODES:
            problems.append(f"data.image.mode: {image.mode!r} is not one of {', '.join(MODES)}")
        if image.fit not in FITS:
            problems.append(f"data.image.fit: {image.fit!r} is not one of {', '.join(FITS)}")
        try:
            if min(_size(image.size)) < 1:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"data.image.size: {image.size} is not a size; give H or [H, W]")
        if cfg.on_bad_record not in POLICIES:
            problems.append(f"data.on_bad_record: {cfg.on_bad_record!r} is not skip or fail")
        if cfg.steps:
            problems.append("data.steps: images take no steps; set data.steps=[]")
        if cfg.scaling not in ("standard", "none"):
            problems.append(
                f"data.scaling: {cfg.scaling!r} is not standard (per-channel mean "
                "and std fitted on train) or none (values / 255) for images"
            )
        return problems

    def rows(self, raw: "RawData", cfg: Any) -> "DataFrame":
        from pyspark.sql.types import (
            ArrayType,
            BinaryType,
            DoubleType,
            StringType,
            StructField,
            StructType,
        )

        df = raw.df
        keep = [c for c in ("id", "path", raw.label, steps.KEPT) if c in df.columns]
        types = {f.name: f for f in df.schema.fields}
        schema = StructType(
            [
                *(types[c] for c in keep),
                StructField("features", BinaryType()),
                StructField("error", StringType()),
                StructField("moments", ArrayType(DoubleType())),
            ]
        )
        fn = decoder(cfg.image.mode, _size(cfg.image.size), cfg.image.fit, keep)
        return df.select(*keep, "content").mapInArrow(fn, schema)

    def fit(
        self, spark: "SparkSession", cfg: Any, df: "DataFrame", raw: "RawData", task: dict[str, Any]
    ) -> FittedImages:
        from pyspark.sql import functions as F

        shape = image_shape(cfg.image)
        named = dict(df.dtypes)[raw.label] == "string"
        summary = _summary(df, raw.label, shape, named)
        if summary.bad and cfg.on_bad_record == "fail":
            raise RunnerError(
                f"data.on_bad_record: {summary.bad} images do not decode, e.g. "
                f"{summary.first_bad}; remove them or set data.on_bad_record=skip"
            )
        if named:  # a string label's stages depend on its distinct train values alone:
            # fit them on those, as literals (no pass over the images, no Python worker)
            values = F.array(*(F.lit(v) for v in summary.labels)).cast("array<string>")
            train = spark.range(1).select(F.explode(values).alias(raw.label))
        else:
            train = df.where((F.col("split") == "train") & F.col("features").isNotNull())
        labels = fit_label(train, raw.label, task)
        if cfg.scaling == "standard":
            mean, std = summary.mean, summary.std
        else:
            mean, std = [0.0] * shape[0], [255.0] * shape[0]
        return FittedImages(labels, mean, std, shape, summary.bad)

    def load(self, entry: "PreparedDataset") -> FittedImages:
        saved = json.loads(entry.read_file(_FILE))
        return FittedImages(load_label(entry), saved["mean"], saved["std"], saved["shape"])


@dataclass(frozen=True)
class _Summary:
    """What the fit needs of the decoded rows, from one pass."""

    bad: int  # images that do not decode, in every split
    first_bad: str  # the first of them: its path (why)
    labels: list[Any]  # the train split's distinct label values (string labels only)
    mean: list[float]  # per channel, of the train images' 0..255 values
    std: list[float]


def _summary(df: "DataFrame", label: str, shape: Sequence[int], named: bool) -> _Summary:
    """One aggregation over the decoded rows (no image read again): the bad images, the
    train labels (``named``) and the train images' per-channel mean and std."""
    import numpy as np
    from pyspark.sql import functions as F

    channels, pixels = shape[0], shape[1] * shape[2]
    bad = F.col("features").isNull()
    train = (F.col("split") == "train") & ~bad
    row = df.agg(
        F.count_if(bad).alias("bad"),
        F.first(F.when(bad, F.format_string("%s (%s)", "path", "error")), ignorenulls=True).alias(
            "first"
        ),
        (F.collect_set(F.when(train, F.col(label))) if named else F.lit(None)).alias("labels"),
        F.count_if(train).alias("images"),
        *(F.sum(F.when(train, F.col("moments")[i])).alias(f"m{i}") for i in range(2 * channels)),
    ).first()
    assert row is not None
    moments = np.array([row[f"m{i}"] or 0.0 for i in range(2 * channels)]).reshape(2, channels)
    count = max(int(row["images"]), 1) * pixels
    mean = moments[0] / count
    std = np.sqrt(np.maximum(moments[1] / count - mean**2, 1e-6))
    return _Summary(
        bad=int(row["bad"]),
        first_bad=row["first"] or "?",
        labels=sorted(row["labels"] or []),
        mean=mean.tolist(),
        std=std.tolist(),
    )
