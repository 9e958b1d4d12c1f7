# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""`FineMolTexProcessor`: the graph tokenizer and a text tokenizer behind one call, plus the data collator.

Two ways in, one batch format out:

* ``processor(smiles=[...], text=[...], return_tensors="pt")`` for a handful of molecules;
* ``dataset.map(processor.preprocess, batched=True, num_proc=N, ...)`` once, to keep token ids and
  graph arrays in Arrow, then `FineMolTexDataCollator` to pad rows into batches at training time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from transformers import PreTrainedTokenizerBase
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .text_states_finemoltex import OFFSET_COLUMN
from .tokenization_finemoltex import GRAPH_COLUMNS, FineMolTexGraphTokenizer, MoleculeParseError, collate_graphs

# how `preprocess` (and the graph tokenizer under it) name a row of its batch in error messages
_BATCH_POSITION = re.compile(r"\bat (?:index|row) (\d+)\b")

TEXT_COLUMNS = ("input_ids",)


@dataclass
class FineMolTexDataCollator:
    """Rows of `FineMolTexProcessor.preprocess` (or `encode`) -> one flat batch of tensors.

    Graph arrays are concatenated with per-molecule offsets (see `collate_graphs`); text ids are
    padded to the longest row of the batch (rounded up to ``pad_to_multiple_of``). Masking is left to
    the model, so every epoch sees new masks. Other numeric columns (``labels``…) are stacked as they are.

    Output keys: ``graph_*`` and ``motif_*`` (see `collate_graphs`), ``input_ids`` and
    ``attention_mask`` (B, L) when rows have text, ``text_encoder_states`` float32 (B, L, H) when
    ``text_states`` (a `FineMolTexTextStateCache`) is given and rows carry ``text_state_offset``
    (locked-text pre-training), and any extra numeric columns.
    """

    num_atom_features: int
    num_bond_features: int
    text_pad_token_id: int = 0
    pad_to_multiple_of: int | None = 8
    return_tensors: str = "pt"
    text_states: Any = None

    @classmethod
    def from_processor(cls, processor: "FineMolTexProcessor", **kwargs) -> "FineMolTexDataCollator":
        graph = processor.graph_tokenizer
        pad = getattr(processor.tokenizer, "pad_token_id", None) if processor.tokenizer is not None else None
        return cls(len(graph.atom_feature_sizes), len(graph.bond_feature_sizes), pad or 0, **kwargs)

    def pad_text(self, rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
        """The text side of a batch: ``input_ids`` and ``attention_mask`` Int64 (B, L) padded to the longest row
        (rounded up to ``pad_to_multiple_of``), and ``text_encoder_states`` float32 (B, L, H) from the cache when the
        collator has one."""
        ids = [np.asarray(r["input_ids"], dtype=np.int64).reshape(-1) for r in rows]
        width = max((len(x) for x in ids), default=0)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(ids), width), self.text_pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for b, x in enumerate(ids):
            input_ids[b, : len(x)] = x
            attention_mask[b, : len(x)] = 1
        out = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.text_states is not None:
            if any(OFFSET_COLUMN not in r for r in rows):
                raise KeyError(
                    f"The collator has cached text states but a row has no {OFFSET_COLUMN!r} column "
                    "(see text_states_finemoltex.attach_text_states)."
                )
            out["text_encoder_states"] = self.text_states.gather([r[OFFSET_COLUMN] for r in rows], [len(x) for x in ids], width)
        return out

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict:
        batch = collate_graphs(rows, self.num_atom_features, self.num_bond_features, return_tensors=None)
        if rows and "input_ids" in rows[0]:
            batch.update(self.pad_text(rows))
        skip = set(GRAPH_COLUMNS) | {"input_ids", "attention_mask", "length", OFFSET_COLUMN}
        for key in rows[0].keys() if rows else ():
            if key in skip or key in batch:
                continue
            values = [r[key] for r in rows]
            if all(isinstance(v, (int, float, bool, np.number)) or v is None for v in values) or all(
                isinstance(v, (list, tuple, np.ndarray)) for v in values
            ):
                try:
                    batch[key] = np.asarray([np.nan if v is None else v for v in values])
                except ValueError:  # ragged lists: not a batchable column
                    continue
        if self.return_tensors == "pt":
            import torch

            batch = {k: torch.as_tensor(v) for k, v in batch.items()}
        return batch


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters for an error message."""
    text = repr(value[: limit + 1] if isinstance(value, str) else value)
    return text if len(text) <= limit else text[: limit - 20] + "…"


# text-tokenizer arguments `FineMolTexProcessor.__call__` forwards (the call arguments of transformers' tokenizers
# that keep one row per text; padding_side is fixed: the model reads [CLS] at position 0)
TEXT_KWARGS = (
    "padding",
    "truncation",
    "max_length",
    "pad_to_multiple_of",
    "return_attention_mask",
    "return_token_type_ids",
    "add_special_tokens",
    "return_special_tokens_mask",
    "return_offsets_mapping",
    "return_length",
    "verbose",
)


def _check_texts(texts: Sequence, rows: Sequence[int]) -> None:
    """Raise `ValueError` naming the row of an empty, missing or not-Unicode text (what the text tokenizer would
    otherwise fail the whole batch on, or encode as nothing)."""
    for i, t in zip(rows, texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"Empty or missing text at row {i}: {_shown(t)}")
        if not _utf8_ok(t):  # a lone surrogate: the fast tokenizer would fail the batch with a TypeError
            raise ValueError(f"Text at row {i} is not valid Unicode (a lone surrogate): {_shown(t)}")


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _broken_json_files(folder: str) -> list[str]:
    """JSON files of a local folder that are empty or do not parse."""
    broken = []
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".json") and os.path.isfile(path):
                try:
                    with open(path, encoding="utf-8") as f:
                        json.load(f)
                except (ValueError, UnicodeDecodeError):
                    broken.append(path)
    return broken


@contextlib.contextmanager
def remote_code_registration():
    """Register the processor and the graph tokenizer for their auto classes while saving (transformers then copies
    their code and writes ``auto_map``), and restore the previous state after, so that a plain
    ``FineMolTexGraphTokenizer.save_pretrained`` elsewhere in the process is unaffected."""
    classes = {FineMolTexProcessor: "AutoProcessor", FineMolTexGraphTokenizer: "AutoTokenizer"}
    previous = {cls: cls.__dict__.get("_auto_class") for cls in classes}
    for cls, auto_class in classes.items():
        cls.register_for_auto_class(auto_class)
    try:
        yield
    finally:
        for cls, value in previous.items():
            cls._auto_class = value


def _point_graph_tokenizer_at_processor_module(folder: str) -> None:
    """Make ``graph_tokenizer/`` load its class from ``processing_finemoltex`` (which imports it). transformers loads
    each entry module of a local folder into its own module copy: with ``tokenization_finemoltex`` as the entry,
    the processor (loaded through ``processing_finemoltex``) would see a different FineMolTexGraphTokenizer class
    and refuse it. One entry module, one class."""
    config_file = os.path.join(folder, "graph_tokenizer", "tokenizer_config.json")
    if not os.path.isfile(config_file):
        return
    with open(config_file, encoding="utf-8") as f:
        data = json.load(f)
    data.setdefault("auto_map", {})["AutoTokenizer"] = ["processing_finemoltex.FineMolTexGraphTokenizer", None]
    with open(config_file, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    for name in os.listdir(os.path.join(folder, "graph_tokenizer")):  # the code lives at the folder's root
        if name.endswith("_finemoltex.py"):
            os.remove(os.path.join(folder, "graph_tokenizer", name))


def _load_error(what: str, path, folder: str, err: Exception) -> Exception:
    """An error of the same family as ``err`` naming the folder, a broken JSON file if there is one, and the cause."""
    where = os.path.join(str(path), folder) if folder else str(path)
    broken = _broken_json_files(where)
    reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else 'no message'}"
    message = f"Could not load the {what} from {where}"
    if broken:
        message += f": {', '.join(broken)} {'is' if len(broken) == 1 else 'are'} empty or not valid JSON (a half-written save?)"
    message += f" ({reason})"
    return OSError(message) if isinstance(err, OSError) else ValueError(message)


class FineMolTexProcessor(ProcessorMixin):
    """Bundles `FineMolTexGraphTokenizer` (molecules) with any Hugging Face text tokenizer.

    Args:
        graph_tokenizer: the molecule tokenizer (saved in the ``graph_tokenizer/`` subfolder).
        tokenizer: the text tokenizer (saved at the top level, so ``AutoTokenizer`` on the folder gives
            the text tokenizer, as users expect).
        max_text_length: text is truncated to this many tokens (ChEBI-20 descriptions: p99 ≈ 200
            SciBERT tokens).
    """

    def __init__(self, graph_tokenizer=None, tokenizer=None, max_text_length: int = 256, **kwargs):
        if graph_tokenizer is None:
            graph_tokenizer = FineMolTexGraphTokenizer()
        if not isinstance(graph_tokenizer, FineMolTexGraphTokenizer):
            # AutoTokenizer falls back to the *text* tokenizer when it cannot resolve the graph
            # tokenizer's class (only a warning): refuse instead of silently tokenising SMILES as text.
            raise TypeError(
                "graph_tokenizer must be a FineMolTexGraphTokenizer, got "
                f"{type(graph_tokenizer).__name__}; was the graph_tokenizer/ folder missing or unregistered?"
            )
        if tokenizer is not None and not isinstance(tokenizer, PreTrainedTokenizerBase):
            raise TypeError(f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}")
        self.max_text_length = int(max_text_length)
        super().__init__(graph_tokenizer, tokenizer, **kwargs)

    # ------------------------------------------------------------------ loading
    @classmethod
    def _load_tokenizer_from_pretrained(cls, sub_processor_type, pretrained_model_name_or_path, subfolder="", **kwargs):
        """Load one sub-tokenizer. transformers retries a failed sub-folder tokenizer from the root folder, so a
        broken graph_tokenizer/ (bad vocabulary checksum, bad JSON, unknown feature_set) would come back as the TEXT
        tokenizer and fail later with a misleading type error: load graph_tokenizer/ without that fallback and
        raise its real cause, naming the folder (and an empty or invalid JSON file, e.g. from a half-written save)."""
        if sub_processor_type != "graph_tokenizer":
            try:
                return super()._load_tokenizer_from_pretrained(
                    sub_processor_type, pretrained_model_name_or_path, subfolder=subfolder, **kwargs
                )
            except Exception as err:
                raise _load_error("text tokenizer", pretrained_model_name_or_path, subfolder, err) from err
        from transformers import AutoTokenizer

        folder = os.path.join(subfolder, "graph_tokenizer") if subfolder else "graph_tokenizer"
        try:
            return AutoTokenizer.from_pretrained(pretrained_model_name_or_path, subfolder=folder, **kwargs)
        except Exception as err:
            raise _load_error("graph tokenizer", pretrained_model_name_or_path, folder, err) from err

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory, **kwargs):
        """`ProcessorMixin.save_pretrained`, self-contained: the processing and tokenization code is copied next to
        the files and ``auto_map`` names it (in ``processor_config.json`` and ``graph_tokenizer/``), so
        ``AutoProcessor.from_pretrained(folder, trust_remote_code=True)`` works where the package is not installed."""
        with remote_code_registration():
            saved = super().save_pretrained(save_directory, **kwargs)
        _point_graph_tokenizer_at_processor_module(os.fspath(save_directory))
        return saved

    # ------------------------------------------------------------------ direct use
    def __call__(
        self,
        smiles: str | Sequence[str] | None = None,
        text: str | Sequence[str] | None = None,
        return_tensors: str | None = "pt",
        ignore_errors: bool = False,
        **text_kwargs,
    ) -> BatchFeature:
        """Encode molecules and/or texts into one flat batch.

        Args:
            smiles: one SMILES or a list.
            text: one text or a list (same length as ``smiles`` when both are given).
            ignore_errors: skip unparsable SMILES (and their texts) instead of raising; the kept
                positions are in ``batch["kept_indices"]``.
            text_kwargs: passed to the text tokenizer, as `CLIPProcessor` and friends do: ``padding`` (default
                True: to the longest text; ``"max_length"``), ``truncation`` (default True), ``max_length``
                (default ``max_text_length``), ``pad_to_multiple_of``, ``return_attention_mask``,
                ``return_token_type_ids`` (default False), ``add_special_tokens``, ``return_special_tokens_mask``,
                ``return_offsets_mapping``, ``return_length``, ``verbose``. Text is always padded on the right
                (the model reads [CLS] at position 0). Anything else raises a `TypeError`.

        Returns:
            `BatchFeature` with ``graph_*``/``motif_*`` tensors (molecules), ``input_ids`` and
            ``attention_mask`` (texts; and what ``text_kwargs`` asked for), and ``kept_indices`` when molecules
            were given.
        """
        unknown = sorted(set(text_kwargs) - set(TEXT_KWARGS))
        if unknown:
            raise TypeError(
                f"Unexpected arguments: {unknown}. FineMolTexProcessor takes smiles, text, return_tensors, "
                f"ignore_errors and the text tokenizer's {', '.join(TEXT_KWARGS)}."
            )
        if smiles is None and text is None:
            raise ValueError("Give `smiles`, `text` or both.")
        smiles = [smiles] if isinstance(smiles, str) else smiles
        text = [text] if isinstance(text, str) else text
        if smiles is not None and text is not None and len(smiles) != len(text):
            raise ValueError(f"Got {len(smiles)} SMILES but {len(text)} texts; they must pair up.")
        batch: dict = {}
        kept = list(range(len(text))) if text is not None else []
        if smiles is not None:
            rows_columns = self.preprocess({"smiles": list(smiles)}, smiles_column="smiles", text_column=None,
                                           ignore_errors=ignore_errors)
            kept = rows_columns.pop("row_index")
            rows = [dict(zip(rows_columns, values)) for values in zip(*rows_columns.values())]
            batch.update(collate_graphs(rows, *self._num_features, return_tensors=None))
        if text is not None:
            batch.update(self._encode_texts([text[i] for i in kept], kept, text_kwargs))
        out = BatchFeature(batch, tensor_type=return_tensors)
        if smiles is not None:
            out["kept_indices"] = kept
        return out

    def _encode_texts(self, texts: list, rows: list[int], text_kwargs: dict) -> dict:
        """The text tokenizer on checked ``texts`` (``rows``: their positions, for errors) -> padded columns."""
        if self.tokenizer is None:
            raise ValueError("This processor has no text tokenizer.")
        _check_texts(texts, rows)
        options = {"padding": True, "truncation": True, "max_length": self.max_text_length,
                   "return_token_type_ids": False, **text_kwargs, "padding_side": "right"}
        if not texts:  # (fast tokenizers fail on an empty list: every row was dropped)
            empty = np.zeros((0, 0), dtype=np.int64)
            return {"input_ids": empty, "attention_mask": empty} if options.get("return_attention_mask", True) else {
                "input_ids": empty}
        return dict(self.tokenizer(texts, return_tensors=None, **options))

    @property
    def _num_features(self):
        return len(self.graph_tokenizer.atom_feature_sizes), len(self.graph_tokenizer.bond_feature_sizes)

    # ------------------------------------------------------------------ datasets
    def preprocess(
        self,
        examples: dict[str, list],
        smiles_column: str | None = "smiles",
        text_column: str | None = "text",
        ignore_errors: bool = False,
        keep_columns: Sequence[str] = (),
    ) -> dict[str, list]:
        """Batched tokenisation for ``datasets.map(batched=True)``: graph arrays + text ids per row.

        Use with ``remove_columns=dataset.column_names`` (rows may be dropped). Returns the columns of
        `FineMolTexGraphTokenizer.encode_molecule`, ``input_ids`` and ``length`` (text tokens) when
        ``text_column`` is set, ``row_index`` (the row's position in ``examples``) and ``keep_columns``
        copied for the kept rows.

        An unparsable SMILES raises `ValueError` naming its row and string; with ``ignore_errors`` it is
        dropped (``row_index`` tells which rows survived). Empty or missing text raises likewise.
        """
        n = len(next(iter(examples.values()))) if examples else 0
        out: dict[str, list] = {}
        kept = list(range(n))
        if smiles_column is not None:
            if smiles_column not in examples:
                raise KeyError(f"SMILES column {smiles_column!r} not found; columns are {sorted(examples)}")
            columns, kept = self.graph_tokenizer.encode_batch(examples[smiles_column], ignore_errors=ignore_errors)
            out.update(columns)
        if text_column is not None:
            if self.tokenizer is None:
                raise ValueError("This processor has no text tokenizer.")
            if text_column not in examples:
                raise KeyError(f"Text column {text_column!r} not found; columns are {sorted(examples)}")
            texts = [examples[text_column][i] for i in kept]
            _check_texts(texts, kept)
            # (fast tokenizers fail on an empty list: a batch whose rows were all dropped)
            encoded = self.tokenizer(texts, truncation=True, max_length=self.max_text_length) if texts else None
            out["input_ids"] = [list(x) for x in encoded["input_ids"]] if texts else []
            out["length"] = [len(x) for x in out["input_ids"]]
        for name in keep_columns:
            out[name] = [examples[name][i] for i in kept]
        out["row_index"] = kept
        return out

    def tokenize_dataset(
        self,
        dataset,
        smiles_column: str = "smiles",
        text_column: str | None = "text",
        keep_columns: Sequence[str] = (),
        num_proc: int | None = None,
        batch_size: int = 256,
        ignore_errors: bool = True,
        desc: str = "Tokenising molecules",
        **map_kwargs,
    ):
        """``dataset.map`` with `preprocess`, cached in Arrow by ``datasets``; returns (dataset, dropped rows).

        ``num_proc=None`` tokenises in this process (``num_proc=1`` would still start a worker pool).
        ``map_kwargs`` go to ``datasets.Dataset.map`` (``cache_file_name``, ``load_from_cache_file``…).
        Rows whose SMILES do not parse are dropped when ``ignore_errors`` and counted in the returned
        list of their indices. An error (a bad SMILES without ``ignore_errors``, an empty text) names the
        row of ``dataset``, not its position in a ``map`` batch.
        """
        total = len(dataset)
        # remember each row's position so dropped rows can be reported (map renumbers the survivors)
        with_rows = dataset.add_column("__row__", list(range(total)))
        mapped = with_rows.map(
            self._preprocess_naming_rows,
            batched=True,
            batch_size=batch_size,
            num_proc=num_proc,
            remove_columns=with_rows.column_names,
            fn_kwargs={
                "smiles_column": smiles_column,
                "text_column": text_column,
                "ignore_errors": ignore_errors,
                "keep_columns": (*keep_columns, "__row__"),
            },
            desc=desc,
            **map_kwargs,
        )
        kept_rows = np.zeros(total, dtype=bool)
        kept_rows[np.asarray(mapped["__row__"], dtype=np.int64)] = True
        dropped = np.flatnonzero(~kept_rows).tolist()
        return mapped.remove_columns(["__row__", "row_index"]), dropped

    def _preprocess_naming_rows(self, examples: dict[str, list], **kwargs) -> dict[str, list]:
        """`preprocess` for `tokenize_dataset`: an error names the dataset row (``__row__``) instead of the
        position inside the ``map`` batch, and keeps its exception class."""
        try:
            return self.preprocess(examples, **kwargs)
        except ValueError as err:
            message = str(err)
            found = _BATCH_POSITION.search(message)
            rows = examples.get("__row__")
            if found is None or rows is None or int(found.group(1)) >= len(rows):
                raise
            where = f"at dataset row {rows[int(found.group(1))]}"
            try:
                named = type(err)(message[: found.start()] + where + message[found.end():])
            except TypeError:  # an exception class that does not take one message: keep the original
                named = None
            if named is None:
                raise
            raise named from err

    def data_collator(self, **kwargs) -> FineMolTexDataCollator:
        """A `FineMolTexDataCollator` matching this processor's feature set and text padding."""
        return FineMolTexDataCollator.from_processor(self, **kwargs)

    def encode(self, smiles: str, text: str | None = None) -> dict[str, list]:
        """One row (as `preprocess` writes it) for a single molecule and optional text."""
        columns = {"smiles": [smiles]}
        if text is not None:
            columns["text"] = [text]
        out = self.preprocess(columns, "smiles", "text" if text is not None else None)
        out.pop("row_index")
        return {k: v[0] for k, v in out.items()}

    @property
    def model_input_names(self):
        return [
            "graph_atom_features",
            "graph_edge_index",
            "graph_edge_features",
            "graph_batch",
            "motif_input_ids",
            "motif_attention_mask",
            "motif_position_ids",
            "motif_membership",
            "input_ids",
            "attention_mask",
        ]


__all__ = ["FineMolTexDataCollator", "FineMolTexProcessor", "MoleculeParseError"]
