# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Molecule–text pair files for pre-training: reading them into a `datasets.Dataset` (``id``, ``smiles``,
``text``), the train/validation split (a file's ``split`` column, a validation file, or a deterministic share held
out by a hash of the id), and the keys that name cached work (data files, text tokenizers).

    from modeling_finemoltex.pairs_finemoltex import load_pairs, load_splits
    train, validation, info = load_splits("../shared/data/chebi20/validation.txt", validation_split_percentage=10)

Formats: Parquet, CSV (standard quoting) or ChEBI-20-style TSV (no quoting: descriptions hold '"'), UTF-8 with or
without a byte-order mark; columns are found by name, case-insensitively (SMILES: ``smiles``; text: ``text``,
``description`` or ``caption``; id: ``id`` or ``cid``; ``split``). Bad files fail naming the file and the cause.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import datasets

logger = logging.getLogger(__name__)

def require_file(path: str | os.PathLike | None, what: str, hint: str = "") -> Path:
    """`path` as a `Path`, or `FileNotFoundError` naming it (and `what` it should be; `hint`: where to get one)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {path}. {hint}".rstrip())
    return p


def _pick(columns: list[str], names: tuple[str, ...], path: Path, what: str, required: bool = True) -> str | None:
    lower = {c.lower(): c for c in columns}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    if required:
        raise ValueError(f"{path}: no {what} column (looked for {', '.join(names)}); columns are {columns}.")
    return None


def load_pairs(path: Path, cache_dir: str | None = None) -> datasets.Dataset:
    """One file -> Dataset with string columns ``id``, ``smiles``, ``text`` (and ``split`` when the file has one)."""
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith(".parquet"):
        ds = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache_dir)
    else:
        is_csv = suffix.endswith(".csv")
        delimiter = "," if is_csv else "\t"
        # TSV (ChEBI-20): no quoting, descriptions contain '"'. CSV: standard quoting, so a quoted text may hold
        # commas and loses its quotes. utf-8-sig: a byte-order mark is not part of the first column's name.
        quoting = csv.QUOTE_MINIMAL if is_csv else csv.QUOTE_NONE
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
                header = next(reader, [])
                first_row = next(reader, None)
        except UnicodeDecodeError as err:
            raise ValueError(f"{path} is not UTF-8 text ({err}); re-encode it as UTF-8.") from None
        if not header:
            raise ValueError(f"{path} is empty: expected a header line and molecule-text rows.")
        if first_row is None:
            raise ValueError(f"{path} has a header line but no data rows.")
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise ValueError(f"{path}: column(s) {repeated} appear more than once in the header.")
        features = datasets.Features({c: datasets.Value("string") for c in header})
        try:
            ds = datasets.load_dataset(
                "csv",
                data_files=str(path),
                split="train",
                delimiter=delimiter,
                quoting=quoting,
                encoding="utf-8-sig",
                keep_default_na=False,  # keep "NA"-like texts as text
                na_filter=False,
                features=features,
                cache_dir=cache_dir,
            )
        except Exception as err:  # datasets wraps the parser's reason in a generic DatasetGenerationError
            cause = err.__cause__ or err.__context__ or err
            raise ValueError(f"Could not read {path} as {'CSV' if is_csv else 'TSV'} pairs: {cause}") from err
    columns = ds.column_names
    smiles = _pick(columns, ("smiles",), path, "SMILES")
    text = _pick(columns, ("text", "description", "caption"), path, "text")
    ident = _pick(columns, ("id", "cid", "CID"), path, "id", required=False)
    split = _pick(columns, ("split",), path, "split", required=False)
    keep = {smiles: "smiles", text: "text"}
    if ident:
        keep[ident] = "id"
    if split:
        keep[split] = "split"
    ds = ds.select_columns(list(keep)).rename_columns({k: v for k, v in keep.items() if k != v})
    if "id" not in ds.column_names:
        ds = ds.add_column("id", [f"{path.name}:{i}" for i in range(len(ds))])
    if ds.features["id"].dtype != "string":
        ds = ds.cast_column("id", datasets.Value("string"))
    return ds


def held_out(identifier: str, percentage: float) -> bool:
    """Deterministic validation membership by a hash of the id (salted: the shipped sample was itself chosen by
    sha256(CID), so an unsalted hash would not be uniform on it)."""
    digest = hashlib.sha256(f"finemoltex-validation:{identifier}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percentage * 100


def _drop_empty(ds: datasets.Dataset, name: str) -> tuple[datasets.Dataset, int]:
    def ok(batch):
        return [
            isinstance(s, str) and bool(s.strip()) and isinstance(t, str) and bool(t.strip())
            for s, t in zip(batch["smiles"], batch["text"])
        ]

    kept = ds.filter(ok, batched=True, desc=f"Dropping empty {name} rows")
    if len(kept) < len(ds):
        logger.warning("%s: dropped %d of %d rows with an empty SMILES or text.", name, len(ds) - len(kept), len(ds))
    return kept, len(ds) - len(kept)


def load_splits(
    train_file: str | os.PathLike,
    validation_file: str | os.PathLike | None = None,
    validation_split_percentage: float = 10.0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    hint: str = "",
) -> tuple[datasets.Dataset, datasets.Dataset | None, dict]:
    """-> (train, validation or None, description of where each came from and what was dropped).

    Validation: ``validation_file``, else the rows whose ``split`` column says so, else ``validation_split_percentage``
    percent of the rows by a hash of their id (`held_out`; 0: none). Rows with an empty SMILES or text are dropped
    and counted. `hint`: appended to a missing-file error (where to get data)."""
    train_path = require_file(train_file, "Training file", hint)
    train = load_pairs(train_path)
    info = {"train_file": str(train_path)}
    validation = None
    if validation_file:
        validation = load_pairs(require_file(validation_file, "Validation file", hint))
        info["validation"] = str(validation_file)
    if "split" in train.column_names:
        splits = set(train.unique("split"))
        if validation is None and "validation" in splits:
            validation = train.filter(lambda b: [s == "validation" for s in b["split"]], batched=True)
            info["validation"] = f"{train_path} (split == 'validation')"
        if splits - {"train"}:
            train = train.filter(lambda b: [s == "train" for s in b["split"]], batched=True)
            info["train_file"] = f"{train_path} (split == 'train')"
    if validation is None and validation_split_percentage > 0:
        pct = float(validation_split_percentage)
        validation = train.filter(lambda b: [held_out(i, pct) for i in b["id"]], batched=True)
        train = train.filter(lambda b: [not held_out(i, pct) for i in b["id"]], batched=True)
        info["validation"] = f"{pct:g}% of {train_path} by id hash"
    for name in ("split",):
        if name in train.column_names:
            train = train.remove_columns(name)
        if validation is not None and name in validation.column_names:
            validation = validation.remove_columns(name)
    info["empty_dropped"] = {}
    train, info["empty_dropped"]["train"] = _drop_empty(train, "train")
    if max_train_samples is not None:
        train = train.select(range(min(len(train), max_train_samples)))
    if validation is not None:
        validation, info["empty_dropped"]["validation"] = _drop_empty(validation, "validation")
        if max_eval_samples is not None:
            validation = validation.select(range(min(len(validation), max_eval_samples)))
        if len(validation) == 0:
            validation = None
    if len(train) == 0:
        raise ValueError(f"No training pairs left in {train_path}.")
    return train, validation, info


def file_key(path: str | os.PathLike) -> dict:
    """What identifies a data file's content for caching: absolute path, size and modification time."""
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def text_tokenizer_fingerprint(tokenizer) -> str:
    """A short hash of a text tokenizer's class, vocabulary, lower-casing and special tokens (a cache-key part)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    payload = json.dumps(
        [type(tokenizer).__name__, vocab, getattr(tokenizer, "do_lower_case", None), tokenizer.all_special_tokens],
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_key(*parts: Any) -> str:
    """A short hash of JSON-serialisable `parts` (sorted keys): the name of cached work."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
