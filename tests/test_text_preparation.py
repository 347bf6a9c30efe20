"""Text: a tokenizer trained on the train split, saved with the prepared data, reused for new
texts; sequences padded/truncated to max_length as token ids."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from runner.config import compose
from runner.data import preprocess
from runner.data.preparations.text import train_tokenizer


def _cfg(tmp_path, *overrides):
    cfg = compose(["data=reviews", "data.rows=300", f"data.cache_dir={tmp_path / 'cache'}",
                   "data.tokenizer.vocab_size=300", "data.tokenizer.max_length=24",
                   *overrides])
    OmegaConf.set_readonly(cfg, False)
    return cfg


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_tokenizer_pads_with_zero_and_knows_no_unseen_words(kind):
    tokenizer = train_tokenizer(iter(["good kettle", "bad kettle"] * 20), kind, 100, True)
    assert tokenizer.token_to_id("[PAD]") == 0 and tokenizer.token_to_id("[UNK]") == 1
    assert tokenizer.token_to_id("kettle") is not None and tokenizer.token_to_id("zebra") is None


def test_reviews_are_tokenized_to_max_length_ids(spark, tmp_path):
    prepared = preprocess.run(spark, _cfg(tmp_path).data, tmp_path / "cache")
    assert prepared.input_shape == (24,) and prepared.num_classes == 2
    assert prepared.meta["label"]["classes"] == ["negative", "positive"]
    assert prepared.meta["input"]["kind"] == "tokens"
    x, y = prepared.read("train")
    assert x.dtype == np.int64 and x.shape[1] == 24 and set(np.unique(y)) == {0, 1}
    assert (x < prepared.meta["input"]["vocab_size"]).all() and (x[:, -1] == 0).any()  # padded


def test_the_tokenizer_is_trained_on_train_only(spark, tmp_path):
    from tokenizers import Tokenizer

    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 7)) for _ in range(200)]
    path = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"id": list(range(200)),
                             "text": [f"{w} {w} {w} and more" for w in words],
                             "label": [i % 2 for i in range(200)]}), path)
    cfg = compose(["data=text", f"data.path={path}", f"data.cache_dir={tmp_path / 'cache'}",
                   "data.tokenizer.vocab_size=5000"])
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    vocab = Tokenizer.from_str(prepared.read_file("transform/tokenizer.json").decode()).get_vocab()
    train = set(prepared.table(["train"], ["id"]).column("id").to_pylist())
    learnt = [words[i] in vocab for i in range(200) if i in train]
    unseen = [words[i] in vocab for i in range(200) if i not in train]
    assert sum(learnt) > 0.9 * len(learnt) and not any(unseen)


def test_new_texts_use_the_saved_tokenizer(spark, tmp_path):
    cfg = _cfg(tmp_path)
    prepared = preprocess.run(spark, cfg.data, tmp_path / "cache")
    path = tmp_path / "new.parquet"
    pq.write_table(pa.table({"text": ["really great kettle", "awful . so bad"]}), path)
    df = spark.read.parquet(str(path))  # no label, no id
    rows = preprocess.apply_transform(spark, prepared, df).orderBy("id").collect()
    assert len(rows) == 2 and all(len(r["features"]) == 24 for r in rows)
    assert all(r["label"] is None for r in rows)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(prepared.read_file("transform/tokenizer.json").decode())
    assert rows[0]["features"][0] in (tokenizer.encode("really great kettle").ids[0],
                                      tokenizer.encode("awful . so bad").ids[0])


def test_bad_tokenizer_settings_are_named(tmp_path):
    problems = " ".join(preprocess.validate(_cfg(
        tmp_path, "data.tokenizer.kind=sentencepiece", "data.tokenizer.vocab_size=3").data))
    assert "data.tokenizer.kind" in problems and "data.tokenizer.vocab_size" in problems
