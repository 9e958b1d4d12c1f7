# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Cached token states of a locked (frozen) text encoder.

With the text encoder frozen, its output for a given text never changes, yet running it is most of a CPU
pre-training step. `FineMolTexTextStateCache` runs it once over the tokenised data set and keeps every token's
last hidden state on disk: one ``.npy`` file (T, H) in float16 (or float32), memory-mapped, never all in RAM, in
the order of the tokenised rows' ``input_ids`` (row r owns rows ``offset_r .. offset_r + length_r`` of the file).
A JSON sidecar, written last, records what the states were computed from (a key over the data, both tokenizers and
the encoder's weights) and the shape; a file whose sidecar is missing, whose key differs or whose size is not what
the header promises is never read.

`attach_text_states` adds the ``text_state_offset`` column to each split; the collator
(`FineMolTexDataCollator(text_states=cache)`) then pads ``text_encoder_states`` (B, L, H) float32 next to
``input_ids``, and the model skips its text encoder (`FineMolTexForPreTraining`).

No RDKit here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)

OFFSET_COLUMN = "text_state_offset"
_DTYPES = {"float16": np.float16, "float32": np.float32}


class TextStateCacheError(ValueError):
    """A text-state cache file that cannot be used (missing, truncated, or built from something else)."""


def encoder_fingerprint(module: torch.nn.Module) -> str:
    """sha256 (first 16 hex digits) over the names, shapes, dtypes and values of a module's parameters and buffers:
    a cache built with other encoder weights gets another key."""
    digest = hashlib.sha256()
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    for name, tensor in sorted(tensors, key=lambda kv: kv[0]):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(data.shape)}:{data.dtype}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:16]


def _ids_column(dataset):
    """The ``input_ids`` Arrow list column of a tokenised split, in row order."""
    if getattr(dataset, "_indices", None) is not None:
        dataset = dataset.flatten_indices()
    return dataset.data.column("input_ids").combine_chunks()


def _token_offsets(dataset) -> np.ndarray:
    """Int64 (R + 1,) start of each row's ``input_ids`` in the flattened column."""
    offsets = _ids_column(dataset).offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0]


def _flat_ids(dataset) -> np.ndarray:
    """Int64 (T,) every row's ``input_ids``, concatenated."""
    return _ids_column(dataset).flatten().to_numpy(zero_copy_only=False).astype(np.int64)


class FineMolTexTextStateCache:
    """Token states of a frozen text encoder for every row of one or more tokenised splits, in one memory-mapped
    ``.npy`` file (see the module docstring).

    Args:
        path: the ``.npy`` file (its sidecar is ``path + ".json"``).
        key: what the states were computed from; `open` refuses a file recorded under another key.
    """

    def __init__(self, path: str | os.PathLike, key: str):
        self.path = Path(path)
        self.key = key
        self._array: np.ndarray | None = None
        meta = self._read_meta()
        self.num_tokens, self.hidden_size, self.dtype = meta["num_tokens"], meta["hidden_size"], meta["dtype"]

    # ------------------------------------------------------------------ files
    @property
    def meta_path(self) -> Path:
        return Path(str(self.path) + ".json")

    def _read_meta(self) -> dict:
        if not self.path.is_file() or not self.meta_path.is_file():
            raise TextStateCacheError(f"Text-state cache {self.path} (or its {self.meta_path.name}) is missing.")
        try:
            meta = json.loads(self.meta_path.read_text())
            meta = {k: meta[k] for k in ("key", "num_tokens", "hidden_size", "dtype")}
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise TextStateCacheError(f"Text-state cache sidecar {self.meta_path} is unreadable ({err!r}).") from None
        if meta["key"] != self.key:
            raise TextStateCacheError(
                f"Text-state cache {self.path} was built from other data, tokenizers or encoder weights "
                f"(key {meta['key']}, expected {self.key})."
            )
        if meta["dtype"] not in _DTYPES:
            raise TextStateCacheError(f"Text-state cache {self.path}: unknown dtype {meta['dtype']!r}.")
        try:  # the header's shape/dtype, and the file must hold all of it (a truncated file fails here)
            array = np.load(self.path, mmap_mode="r")
        except (ValueError, OSError, EOFError) as err:
            raise TextStateCacheError(f"Text-state cache {self.path} is unreadable or truncated ({err}).") from None
        expected = (int(meta["num_tokens"]), int(meta["hidden_size"]))
        if array.shape != expected or array.dtype != np.dtype(meta["dtype"]):
            raise TextStateCacheError(
                f"Text-state cache {self.path} holds {array.shape} {array.dtype}, its sidecar says {expected} {meta['dtype']}."
            )
        del array
        return meta

    @property
    def array(self) -> np.ndarray:
        """The (T, H) states, memory-mapped read-only (opened lazily: each DataLoader worker maps its own)."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getstate__(self):  # pickled into DataLoader workers: never copy the mapped array
        state = dict(self.__dict__)
        state["_array"] = None
        return state

    # ------------------------------------------------------------------ reading
    def gather(self, offsets: Sequence[int], lengths: Sequence[int], width: int) -> np.ndarray:
        """Float32 (B, width, H): rows ``offsets[b] .. offsets[b] + lengths[b]`` of the file, zero-padded."""
        out = np.zeros((len(offsets), width, self.hidden_size), dtype=np.float32)
        array = self.array
        for b, (start, length) in enumerate(zip(offsets, lengths)):
            start, length = int(start), int(length)
            if start < 0 or start + length > self.num_tokens:
                raise IndexError(
                    f"Text-state offset {start} + length {length} is outside {self.path} ({self.num_tokens} tokens): "
                    "the data set and the cache do not belong together."
                )
            out[b, :length] = array[start : start + length]
        return out

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        text_model: torch.nn.Module,
        splits: Sequence,
        path: str | os.PathLike,
        key: str,
        batch_size: int = 32,
        dtype: str = "float16",
        pad_token_id: int = 0,
        show_progress: bool = True,
    ) -> "FineMolTexTextStateCache":
        """Run ``text_model`` (eval mode, no gradient) over the ``input_ids`` of each tokenised split, in that order,
        in length-sorted batches, and write the states. The file appears only when complete (temporary name, then
        rename; the sidecar last), so an interrupted build is rebuilt, never half-read."""
        if dtype not in _DTYPES:
            raise ValueError(f"Unknown text-state dtype {dtype!r}; choose one of {sorted(_DTYPES)}.")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = [_flat_ids(split) for split in splits]
        row_offsets = [_token_offsets(split) for split in splits]
        starts = np.cumsum([0] + [len(x) for x in ids])
        total = int(starts[-1])
        hidden = int(text_model.config.hidden_size)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=_DTYPES[dtype], shape=(total, hidden))
        device = next(text_model.parameters()).device
        was_training = text_model.training
        text_model.eval()
        rows = [(s, r) for s in range(len(splits)) for r in range(len(row_offsets[s]) - 1)]
        lengths = np.array([row_offsets[s][r + 1] - row_offsets[s][r] for s, r in rows], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")  # longest first: padding stays small, memory peaks early
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(rows), desc="Caching text-encoder states", unit="text", disable=not show_progress)
            with torch.inference_mode():
                for begin in range(0, len(order), batch_size):
                    chunk = order[begin : begin + batch_size]
                    width = int(lengths[chunk].max())
                    input_ids = np.full((len(chunk), width), pad_token_id, dtype=np.int64)
                    mask = np.zeros((len(chunk), width), dtype=np.int64)
                    for b, i in enumerate(chunk):
                        s, r = rows[i]
                        lo, hi = row_offsets[s][r], row_offsets[s][r + 1]
                        input_ids[b, : hi - lo] = ids[s][lo:hi]
                        mask[b, : hi - lo] = 1
                    states = text_model(
                        input_ids=torch.from_numpy(input_ids).to(device), attention_mask=torch.from_numpy(mask).to(device)
                    ).last_hidden_state.float().cpu().numpy()
                    for b, i in enumerate(chunk):
                        s, r = rows[i]
                        lo, hi = row_offsets[s][r], row_offsets[s][r + 1]
                        values = states[b, : hi - lo].astype(_DTYPES[dtype])
                        if not np.isfinite(values).all():
                            raise TextStateCacheError(
                                f"Non-finite text-encoder state for row {r} of split {s} in {dtype} (overflow?): "
                                "use dtype='float32'."
                            )
                        out[starts[s] + lo : starts[s] + hi] = values
                    bar.update(len(chunk))
            bar.close()
            out.flush()
            del out
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            text_model.train(was_training)
        meta = {"key": key, "num_tokens": total, "hidden_size": hidden, "dtype": dtype,
                "rows": [len(r) - 1 for r in row_offsets]}
        tmp_meta = Path(str(path) + f".json.tmp{os.getpid()}")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, Path(str(path) + ".json"))
        return cls(path, key)

    @staticmethod
    def split_offsets(splits: Sequence) -> list[np.ndarray]:
        """Per split, Int64 (R,) the first file row of each dataset row (the order `build` writes)."""
        result, start = [], 0
        for split in splits:
            offsets = _token_offsets(split)
            result.append(offsets[:-1] + start)
            start += int(offsets[-1])
        return result


def attach_text_states(
    text_model: torch.nn.Module,
    splits: dict,
    cache_dir: str | os.PathLike,
    key: str,
    rebuild: bool = False,
    **build_kwargs,
) -> tuple[FineMolTexTextStateCache, dict]:
    """Open the cache in ``cache_dir`` (or build it when missing, stale, truncated, or ``rebuild``) for the
    tokenised ``splits`` (name -> Dataset, in a fixed order), and return (cache, splits with a
    ``text_state_offset`` column).

    ``key`` should cover the data, both tokenizers and the maximum text length; the encoder's weights and the
    split names are added here (`encoder_fingerprint`), and the file is named after the full key
    (``text_states-<key>.npy``), so caches of other encoders or data live side by side and are never mixed up."""
    names = list(splits)
    full_key = hashlib.sha256(
        json.dumps([key, encoder_fingerprint(text_model), names, build_kwargs.get("dtype", "float16")]).encode()
    ).hexdigest()[:20]
    path = Path(cache_dir) / f"text_states-{full_key}.npy"
    cache = None
    if not rebuild:
        try:
            cache = FineMolTexTextStateCache(path, full_key)
        except TextStateCacheError as err:
            if Path(path).exists():
                logger.warning("Rebuilding the text-state cache: %s", err)
    tokens = sum(int(_token_offsets(splits[n])[-1]) for n in names)
    if cache is not None and cache.num_tokens != tokens:
        logger.warning("Rebuilding the text-state cache %s: it covers %d tokens, the data %d.", path, cache.num_tokens, tokens)
        cache = None
    if cache is None:
        cache = FineMolTexTextStateCache.build(text_model, [splits[n] for n in names], path, full_key, **build_kwargs)
    offsets = FineMolTexTextStateCache.split_offsets([splits[n] for n in names])
    out = {}
    for name, split_offsets in zip(names, offsets):
        ds = splits[name]
        if OFFSET_COLUMN in ds.column_names:
            ds = ds.remove_columns(OFFSET_COLUMN)
        out[name] = ds.add_column(OFFSET_COLUMN, split_offsets.tolist())
    return cache, out


__all__ = ["FineMolTexTextStateCache", "OFFSET_COLUMN", "TextStateCacheError", "attach_text_states", "encoder_fingerprint"]
