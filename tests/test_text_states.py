"""The locked-text-encoder state cache (modeling_finemoltex/text_states_finemoltex.py) and its collator path."""

import logging
import os
import pickle

import datasets
import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from modeling_finemoltex.processing_finemoltex import FineMolTexDataCollator
from modeling_finemoltex.text_states_finemoltex import (
    OFFSET_COLUMN,
    FineMolTexTextStateCache,
    TextStateCacheError,
    attach_text_states,
)

torch.set_num_threads(1)


def _encoder(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=200, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                        num_hidden_layers=2, max_position_embeddings=64)
    return BertModel(config, add_pooling_layer=False).eval()


def _split(n, seed):
    rng = np.random.default_rng(seed)
    ids = [[101, *rng.integers(104, 200, size=int(rng.integers(1, 20))).tolist(), 102] for _ in range(n)]
    return datasets.Dataset.from_dict({"input_ids": ids, "length": [len(x) for x in ids]})


@pytest.fixture()
def splits():
    return {"train": _split(23, 0), "validation": _split(7, 1)}


def _reference(encoder, ids):
    with torch.no_grad():
        return encoder(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()


def test_cached_states_are_the_encoder_states_of_each_row(splits, tmp_path):
    encoder = _encoder()
    cache, out = attach_text_states(encoder, splits, tmp_path, "data-key", dtype="float32", batch_size=4,
                                    show_progress=False)
    assert cache.num_tokens == sum(sum(s["length"]) for s in splits.values()) and cache.hidden_size == 16
    for name, split in out.items():
        assert OFFSET_COLUMN in split.column_names and len(split) == len(splits[name])
        for row in split:
            got = cache.gather([row[OFFSET_COLUMN]], [row["length"]], row["length"] + 3)[0]
            np.testing.assert_allclose(got[: row["length"]], _reference(encoder, row["input_ids"]), rtol=1e-4, atol=1e-5)
            assert not got[row["length"]:].any()  # zero padding
    half, _ = attach_text_states(encoder, splits, tmp_path, "data-key", show_progress=False)  # float16: its own file
    assert half.path != cache.path and half.dtype == "float16" and half.array.dtype == np.float16
    row = out["validation"][3]
    np.testing.assert_allclose(half.gather([row[OFFSET_COLUMN]], [row["length"]], row["length"])[0],
                               _reference(encoder, row["input_ids"]), atol=5e-3)


def test_cache_is_reused_only_for_the_same_data_tokenizers_and_encoder(splits, tmp_path, monkeypatch):
    encoder = _encoder()
    first, _ = attach_text_states(encoder, splits, tmp_path, "data-key", show_progress=False)
    stamp = os.stat(first.path).st_mtime_ns
    calls = []
    encoder.register_forward_hook(lambda *args: calls.append(1))
    again, _ = attach_text_states(encoder, splits, tmp_path, "data-key", show_progress=False)
    assert again.path == first.path and os.stat(first.path).st_mtime_ns == stamp and not calls  # reused, not rerun
    other_data, _ = attach_text_states(encoder, splits, tmp_path, "other-data-key", show_progress=False)
    other_weights, _ = attach_text_states(_encoder(seed=1), splits, tmp_path, "data-key", show_progress=False)
    assert len({first.path, other_data.path, other_weights.path}) == 3  # never the same file
    # a file renamed onto another key is refused by its sidecar, naming the file
    with pytest.raises(TextStateCacheError, match=rf"{first.path.name}.*other data, tokenizers or encoder weights"):
        FineMolTexTextStateCache(first.path, other_data.key)


def test_truncated_or_missing_cache_is_rebuilt_or_named(splits, tmp_path, caplog):
    encoder = _encoder()
    cache, _ = attach_text_states(encoder, splits, tmp_path, "data-key", show_progress=False)
    expected = cache.gather([0], [5], 5)
    with open(cache.path, "r+b") as f:  # a crash mid-copy: the file is cut short
        f.truncate(os.path.getsize(cache.path) // 2)
    with pytest.raises(TextStateCacheError, match=rf"{cache.path.name}.*truncated"):
        FineMolTexTextStateCache(cache.path, cache.key)
    with caplog.at_level(logging.WARNING):
        rebuilt, _ = attach_text_states(encoder, splits, tmp_path, "data-key", show_progress=False)
    assert "Rebuilding" in caplog.text and str(cache.path) in caplog.text
    np.testing.assert_array_equal(rebuilt.gather([0], [5], 5), expected)
    rebuilt.meta_path.unlink()
    with pytest.raises(TextStateCacheError, match=rf"{rebuilt.path.name}.*missing"):
        FineMolTexTextStateCache(rebuilt.path, rebuilt.key)
    with pytest.raises(IndexError, match="outside"):
        rebuilt.gather([rebuilt.num_tokens - 2], [5], 5)


def test_collator_pads_cached_states_and_pickles_without_the_array(splits, tmp_path):
    encoder = _encoder()
    cache, out = attach_text_states(encoder, splits, tmp_path, "data-key", dtype="float32", show_progress=False)
    rows = [dict(out["train"][i]) for i in (0, 5, 9)]
    collator = FineMolTexDataCollator(1, 1, pad_to_multiple_of=8, text_states=cache)
    batch = {k: torch.from_numpy(v) for k, v in collator.pad_text(rows).items()}
    width = batch["input_ids"].shape[1]
    assert width % 8 == 0 and batch["text_encoder_states"].shape == (3, width, 16)
    assert batch["text_encoder_states"].dtype == torch.float32
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        torch.testing.assert_close(batch["text_encoder_states"][b, :n],
                                   torch.from_numpy(_reference(encoder, r["input_ids"])), rtol=1e-4, atol=1e-5)
        assert not batch["text_encoder_states"][b, n:].any()
    _ = cache.array  # mapped in this process ...
    assert len(pickle.dumps(collator)) < 4096  # ... but a DataLoader worker gets the path, not the data
    with pytest.raises(KeyError, match=OFFSET_COLUMN):
        collator.pad_text([{"input_ids": [101, 102]}])
