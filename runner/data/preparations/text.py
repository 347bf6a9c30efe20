"""Text: a tokenizer trained on the train split with Hugging Face ``tokenizers``, applied
in ``mapInArrow`` tasks on the executors.

``data.tokenizer``: ``kind`` (``bpe`` or ``wordpiece``), ``vocab_size``, ``max_length``,
``lowercase``. The train split's texts stream to the driver (``toLocalIterator``: one
partition in memory at a time) to train it; no download. It is saved with the prepared
data (``transform/tokenizer.json``), so inference encodes new texts with the same one.
Every text becomes ``max_length`` token ids (truncated, padded with ``[PAD]`` = 0).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.data import steps
from runner.data.preparations import FittedLabel, LabelledApart, fit_label, load_label
from runner.errors import RunnerError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from runner.data.prepared import PreparedDataset
    from runner.data.sources import RawData

KINDS = ("bpe", "wordpiece")
PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1
TEXT = "text"  # the column rows() gives
_TOKENIZER = "transform/tokenizer.json"
_SETTINGS = "transform/text.json"


def train_tokenizer(texts: Iterator[str], kind: str, vocab_size: int, lowercase: bool):
    """A ``tokenizers.Tokenizer`` trained on ``texts``: whitespace and punctuation
    pre-tokenization, then BPE or WordPiece; ``[PAD]`` is id 0, ``[UNK]`` id 1."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    trainer: trainers.Trainer
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK])
        tokenizer.decoder = decoders.WordPiece()
    else:
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK])
    steps = [normalizers.NFD(), normalizers.StripAccents()]
    tokenizer.normalizer = normalizers.Sequence(
        [*steps, normalizers.Lowercase()] if lowercase else steps
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def encoder(tokenizer_json: str, max_length: int, keep: list[str]):
    """The ``mapInArrow`` function: ``text`` -> ``features`` (``max_length`` int32 ids)."""

    def encode_batches(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import numpy as np
        import pyarrow as pa
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(tokenizer_json)
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(length=max_length, pad_id=0, pad_token=PAD)
        for batch in batches:
            texts = [t or "" for t in batch.column(TEXT).to_pylist()]
            ids = np.asarray([e.ids for e in tokenizer.encode_batch(texts)], dtype=np.int32)
            ids = ids.reshape(len(texts), max_length)
            offsets = pa.array(np.arange(len(texts) + 1, dtype=np.int32) * max_length)
            yield pa.RecordBatch.from_arrays(
                [
                    *(batch.column(c) for c in keep),
                    pa.ListArray.from_arrays(offsets, pa.array(ids.ravel(), pa.int32())),
                ],
                names=[*keep, "features"],
            )

    return encode_batches


@dataclass(frozen=True)
class FittedText(LabelledApart):
    """The trained tokenizer (as JSON) and the label's stages."""

    labels: FittedLabel
    tokenizer: str  # tokenizers' JSON
    max_length: int
    vocab_size: int
    features: tuple[str, ...] = (TEXT,)

    def transform(self, df: "DataFrame") -> "DataFrame":
        from pyspark.sql import functions as F
        from pyspark.sql.types import ArrayType, IntegerType, StructField, StructType

        carried = [steps.KEPT] if steps.KEPT in df.columns else []
        df, label = self.labels.prepared(df)
        rows = df.select(F.col("id").cast("long").alias("id"), label, TEXT, *carried)
        keep = ["id", "label", *carried]
        schema = StructType(
            [
                *(f for f in rows.schema.fields if f.name in keep),
                StructField("features", ArrayType(IntegerType())),
            ]
        )
        return rows.mapInArrow(encoder(self.tokenizer, self.max_length, keep), schema)

    def scoring(self, df: "DataFrame") -> steps.Scored:
        return steps.Scored(self.transform(df), [], {})

    def save(self, entry: "PreparedDataset") -> None:
        entry.write_file(_TOKENIZER, self.tokenizer.encode())
        self.labels.save(entry)
        entry.write_file(_SETTINGS, json.dumps({"max_length": self.max_length}).encode())

    def describe(self) -> dict[str, Any]:
        return {
            "input": {"kind": "tokens", "vocab_size": self.vocab_size, "pad_id": 0},
            "input_shape": [self.max_length],
        }


class TextPreparation:
    """A string column -> token ids of a tokenizer trained on train."""

    def validate(self, cfg: Any) -> list[str]:
        problems = []
        tok = cfg.tokenizer
        if tok.kind not in KINDS:
            problems.append(f"data.tokenizer.kind: {tok.kind!r} is not one of {', '.join(KINDS)}")
        if tok.vocab_size < 10:
            problems.append(f"data.tokenizer.vocab_size: at least 10, got {tok.vocab_size}")
        if tok.max_length < 1:
            problems.append(f"data.tokenizer.max_length: at least 1, got {tok.max_length}")
        if cfg.steps:
            problems.append("data.steps: text takes no steps; set data.steps=[]")
        return problems

    def rows(self, raw: "RawData", cfg: Any) -> "DataFrame":
        from pyspark.sql import functions as F

        column = raw.features[0] if raw.features else cfg.text
        carried = [steps.KEPT] if steps.KEPT in raw.df.columns else []
        return raw.df.select("id", raw.label, F.col(column).cast("string").alias(TEXT), *carried)

    def fit(
        self, spark: "SparkSession", cfg: Any, df: "DataFrame", raw: "RawData", task: dict[str, Any]
    ) -> FittedText:
        from pyspark.sql import functions as F

        train = df.where(F.col("split") == "train").drop("split")
        labels = fit_label(train, raw.label, task)
        texts = (
            row[0] for row in train.select(TEXT).where(F.col(TEXT).isNotNull()).toLocalIterator()
        )
        tok = cfg.tokenizer
        tokenizer = train_tokenizer(texts, tok.kind, int(tok.vocab_size), bool(tok.lowercase))
        if tokenizer.get_vocab_size() <= 2:
            raise RunnerError("data.text: the train split has no text to train the tokenizer on")
        return FittedText(
            labels, tokenizer.to_str(), int(tok.max_length), tokenizer.get_vocab_size()
        )

    def load(self, entry: "PreparedDataset") -> FittedText:
        from tokenizers import Tokenizer

        saved = json.loads(entry.read_file(_SETTINGS))
        tokenizer = entry.read_file(_TOKENIZER).decode()
        return FittedText(
            load_label(entry),
            tokenizer,
            saved["max_length"],
            Tokenizer.from_str(tokenizer).get_vocab_size(),
        )
