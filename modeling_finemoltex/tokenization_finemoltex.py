# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""The graph tokenizer of FineMolTex: `MotifVocab` (motif SMILES <-> ids, prediction targets),
`FineMolTexGraphTokenizer` (SMILES -> atom/bond graph arrays + motif ids, Arrow-friendly) and `collate_graphs`
(encoded molecules -> one flat batch of arrays).

The chemistry lives elsewhere: parsing in `chemistry_finemoltex`, atom/bond features in `features_finemoltex`,
the motif decomposition in `motifs_finemoltex`. Their public names stay importable from here.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import warnings
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
from transformers import PreTrainedTokenizer
from transformers.tokenization_utils_base import BatchEncoding

from .chemistry_finemoltex import (  # noqa: F401  (re-exported: the public names of the tokenizer module before the split)
    DEFAULT_MAX_ATOMS,
    EDIT_DESCRIPTORS,
    MoleculeParseError,
    MoleculeTooLargeError,
    _atom_chunks,
    _parse_many,
    canonical_smiles,
    count_atoms,
    count_fragments,
    count_substructure,
    inchikey,
    is_valid_smiles,
    molecule_bonds,
    molecule_descriptors,
    morgan_fingerprint,
    murcko_scaffold,
    parse_smiles,
    random_split,
    scaffold_split,
    tanimoto_similarity,
)
from .features_finemoltex import FEATURE_SETS, feature_sizes
from .motifs_finemoltex import (  # noqa: F401  (re-exported, as above)
    ATTACHMENT_RULES,
    MotifDecomposition,
    _encode_mols,
    _Encoded,
    _Failure,
    apply_motif_edits,
    attachment_atoms,
    is_brics_bond,
)

logger = logging.getLogger(__name__)



@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector: a batch allocates many small lists (no cycles), and
    collections triggered by them would scan every row built so far (~15% of the encoding time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --------------------------------------------------------------------------------------------------
# Motif vocabulary
# --------------------------------------------------------------------------------------------------

PAD_TOKEN, UNK_TOKEN, MASK_TOKEN, CLS_TOKEN = "[PAD]", "[UNK]", "[MASK]", "[CLS]"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, MASK_TOKEN, CLS_TOKEN)
NUM_SPECIAL_TOKENS = len(SPECIAL_TOKENS)
PAD_ID, UNK_ID, MASK_ID, CLS_ID = range(NUM_SPECIAL_TOKENS)
VOCAB_FORMAT = "finemoltex-motif-vocab"
DECOMPOSITION_VERSION = 1


class MotifVocab:
    """Frequency-ranked motif vocabulary with special tokens and prediction targets.

    Ids: ``[PAD]`` 0, ``[UNK]`` 1, ``[MASK]`` 2, ``[CLS]`` 3, then motifs by decreasing count (ties by
    SMILES). The first ``num_targets`` motifs (those seen at least ``target_min_frequency`` times, as
    the reference's 2,457 PubChemSTM motifs seen at least 10 times) are masked-motif prediction targets;
    target ``t`` is id ``NUM_SPECIAL_TOKENS + t``.
    """

    def __init__(self, motifs: Sequence[tuple[str, int]] = (), num_targets: int | None = None, build: dict | None = None):
        motifs = [(str(s), int(c)) for s, c in motifs]
        seen = set()
        for smiles, _ in motifs:
            if smiles in SPECIAL_TOKENS:
                raise ValueError(f"Motif {smiles!r} collides with a special token")
            if smiles in seen:
                raise ValueError(f"Motif {smiles!r} appears twice in the vocabulary")
            seen.add(smiles)
        self.motifs = motifs
        self.num_targets = len(motifs) if num_targets is None else int(num_targets)
        if not 0 <= self.num_targets <= len(motifs):
            raise ValueError(f"num_targets={num_targets} must lie in [0, {len(motifs)}]")
        self.build_options = dict(build or {})
        self.tokens = list(SPECIAL_TOKENS) + [s for s, _ in motifs]
        self.token_to_id = {t: i for i, t in enumerate(self.tokens)}

    # ----------------------------------------------------------------- building
    @classmethod
    def from_counts(
        cls,
        counts: Counter | dict,
        min_frequency: int = 1,
        max_size: int | None = None,
        target_min_frequency: int = 10,
        build: dict | None = None,
    ) -> "MotifVocab":
        """Vocabulary from motif counts: keep motifs seen ``>= min_frequency`` times, at most ``max_size``."""
        if min_frequency < 1:
            raise ValueError("min_frequency must be >= 1")
        kept = sorted(((s, c) for s, c in counts.items() if c >= min_frequency), key=lambda x: (-x[1], x[0]))
        if max_size is not None:
            kept = kept[: int(max_size)]
        num_targets = sum(1 for _, c in kept if c >= target_min_frequency)
        options = {
            "min_frequency": min_frequency,
            "max_size": max_size,
            "target_min_frequency": target_min_frequency,
            "decomposition_version": DECOMPOSITION_VERSION,
            "total_count": int(sum(counts.values())),
            "distinct_motifs_seen": len(counts),
        }
        options.update(build or {})
        return cls(kept, num_targets=num_targets, build=options)

    @classmethod
    def build(cls, smiles: Iterable[str], tokenizer: "FineMolTexGraphTokenizer | None" = None, **kwargs) -> "MotifVocab":
        """Count motifs over a corpus in this process (see `datasets_scripts/build_motif_vocab.py` for all cores).

        Unparsable SMILES are skipped and counted in ``build_options["skipped_molecules"]``.
        """
        tokenizer = tokenizer or FineMolTexGraphTokenizer()
        counts: Counter = Counter()
        num, skipped = 0, 0
        smiles = list(smiles)
        for start in range(0, len(smiles), 1000):
            for dec in tokenizer.decompose_batch(smiles[start : start + 1000], ignore_errors=True):
                num += 1
                if dec is None:
                    skipped += 1
                else:
                    counts.update(dec.motifs)
        build = dict(kwargs.pop("build", None) or {})
        build.update({"num_molecules": num, "skipped_molecules": skipped})
        return cls.from_counts(counts, build=build, **kwargs)

    # ----------------------------------------------------------------- queries
    def __len__(self):
        return len(self.tokens)

    def __contains__(self, smiles):
        return smiles in self.token_to_id

    def id(self, smiles: str) -> int:
        return self.token_to_id.get(smiles, UNK_ID)

    @property
    def checksum(self) -> str:
        """sha256 over the ordered (motif, count) list and the number of targets."""
        payload = json.dumps([self.motifs, self.num_targets], separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def count(self, smiles: str) -> int:
        i = self.token_to_id.get(smiles)
        return 0 if i is None or i < NUM_SPECIAL_TOKENS else self.motifs[i - NUM_SPECIAL_TOKENS][1]

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {
            "format": VOCAB_FORMAT,
            "version": 1,
            "special_tokens": list(SPECIAL_TOKENS),
            "num_targets": self.num_targets,
            "build": self.build_options,
            "checksum": self.checksum,
            "motifs": [[s, c] for s, c in self.motifs],
        }

    def save(self, path: str | os.PathLike) -> str:
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1, ensure_ascii=False)
            f.write("\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MotifVocab":
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"Motif vocabulary file not found: {path}") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"Motif vocabulary {path} is not valid JSON: {err}") from None
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise ValueError(f"{path} is not a finemoltex motif vocabulary (missing format={VOCAB_FORMAT!r})")
        if list(data.get("special_tokens", [])) != list(SPECIAL_TOKENS):
            raise ValueError(f"{path}: special tokens {data.get('special_tokens')} differ from {list(SPECIAL_TOKENS)}")
        for key in ("motifs", "num_targets"):
            if key not in data:
                raise ValueError(f"{path}: field {key!r} is missing (a truncated or hand-edited vocabulary file?)")
        motifs = data["motifs"]
        if not isinstance(motifs, list) or not all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], int) for x in motifs
        ):
            raise ValueError(f"{path}: `motifs` must be a list of [SMILES, count] pairs")
        if isinstance(data["num_targets"], bool) or not isinstance(data["num_targets"], int):
            raise ValueError(f"{path}: `num_targets` must be an integer, got {data['num_targets']!r}")
        try:
            vocab = cls([tuple(x) for x in motifs], num_targets=data["num_targets"], build=data.get("build"))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        if data.get("checksum") and data["checksum"] != vocab.checksum:
            raise ValueError(f"{path}: checksum mismatch (file edited or corrupted): {data['checksum']} != {vocab.checksum}")
        return vocab


# --------------------------------------------------------------------------------------------------
# The graph tokenizer
# --------------------------------------------------------------------------------------------------

#: Columns of one encoded molecule (flat 1-D lists, Arrow-friendly); see `FineMolTexGraphTokenizer.encode_molecule`.
GRAPH_COLUMNS = (
    "num_atoms",
    "atom_features",
    "edge_index",
    "edge_features",
    "motif_ids",
    "motif_positions",
    "motif_membership",
)


class FineMolTexGraphTokenizer(PreTrainedTokenizer):
    """SMILES -> molecular graph, motifs and motif ids.

    A `PreTrainedTokenizer` whose tokens are motifs, so that it saves, loads and registers like any
    tokenizer (`FineMolTexProcessor` bundles it with a text tokenizer). ``tokenize(smiles)`` gives motif
    SMILES; calling the tokenizer gives the graph arrays the model consumes.

    Args:
        vocab_file: motif vocabulary JSON written by `MotifVocab.save` (``None``: special tokens only,
            every motif maps to ``[UNK]`` — enough to decompose molecules or build a vocabulary).
        feature_set: ``"reference"`` (atomic number, chirality; bond type, bond direction: the
            reference's features) or ``"rich"`` (adds charge, aromaticity, hybridisation, degree,
            hydrogen count, ring membership; conjugation and ring membership for bonds).
        max_motifs: cap on motifs per molecule (the model's motif positions); more are dropped, in
            breadth-first order, with a warning. ``None``: no cap.
        max_atoms: cap on atoms per molecule (`count_atoms`, checked on the string before RDKit parses it);
            a larger molecule raises `MoleculeTooLargeError` (a `MoleculeParseError`, so ``ignore_errors``
            skips it). Bounds the work one molecule can cost. ``None``: no cap (RDKit itself crashes on
            chains of ~20,000 atoms).
    """

    vocab_files_names = {"vocab_file": "motif_vocab.json"}
    model_input_names = ["motif_ids"]

    def __init__(
        self,
        vocab_file: str | None = None,
        feature_set: str = "reference",
        max_motifs: int | None = 511,
        max_atoms: int | None = DEFAULT_MAX_ATOMS,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        mask_token=MASK_TOKEN,
        cls_token=CLS_TOKEN,
        **kwargs,
    ):
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"Unknown feature_set {feature_set!r}; choose one of {sorted(FEATURE_SETS)}.")
        self.motif_vocab = MotifVocab.load(vocab_file) if vocab_file else MotifVocab()
        self.feature_set = feature_set
        self.max_motifs = max_motifs
        if max_atoms is not None and (isinstance(max_atoms, bool) or not isinstance(max_atoms, int) or max_atoms < 1):
            raise ValueError(f"max_atoms must be a positive integer or None, got {max_atoms!r}")
        self.max_atoms = max_atoms
        self.unknown_motifs = 0  # motifs seen by encode_molecule that mapped to [UNK]
        self.total_motifs = 0
        kwargs.setdefault("model_max_length", max_motifs + 1 if max_motifs else int(1e30))
        super().__init__(
            pad_token=pad_token,
            unk_token=unk_token,
            mask_token=mask_token,
            cls_token=cls_token,
            # passed on so that they land in init_kwargs and hence tokenizer_config.json
            feature_set=feature_set,
            max_motifs=max_motifs,
            max_atoms=max_atoms,
            **kwargs,
        )
        self.feature_set, self.max_motifs, self.max_atoms = feature_set, max_motifs, max_atoms

    @classmethod
    def from_vocab(cls, vocab: MotifVocab, **kwargs) -> "FineMolTexGraphTokenizer":
        tokenizer = cls(**kwargs)
        tokenizer.set_vocab(vocab)
        return tokenizer

    def set_vocab(self, vocab: MotifVocab) -> None:
        self.motif_vocab = vocab
        self._update_total_vocab_size()

    # ---- PreTrainedTokenizer interface (tokens are motif SMILES) ----
    @property
    def vocab_size(self) -> int:
        return len(self.motif_vocab)

    @property
    def num_motif_targets(self) -> int:
        return self.motif_vocab.num_targets

    def get_vocab(self) -> dict[str, int]:
        return dict(self.motif_vocab.token_to_id)

    def _tokenize(self, text, **kwargs):
        return self.decompose(text).motifs

    def _convert_token_to_id(self, token):
        return self.motif_vocab.id(token)

    def _convert_id_to_token(self, index):
        return self.motif_vocab.tokens[index] if 0 <= index < len(self.motif_vocab.tokens) else UNK_TOKEN

    def convert_tokens_to_string(self, tokens):
        return ".".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        name = (filename_prefix + "-" if filename_prefix else "") + self.vocab_files_names["vocab_file"]
        return (self.motif_vocab.save(os.path.join(save_directory, name)),)

    # ---- molecules ----
    @property
    def atom_feature_sizes(self) -> list[int]:
        return feature_sizes(self.feature_set)[0]

    @property
    def bond_feature_sizes(self) -> list[int]:
        return feature_sizes(self.feature_set)[1]

    def decompose(self, smiles: str, index: int | None = None) -> MotifDecomposition:
        """Motifs, atom→motif map, motif tree and positions of one molecule (see `MotifDecomposition`)."""
        mol = parse_smiles(smiles, index, max_atoms=self.max_atoms)
        enc = _encode_mols([mol], [smiles.strip()], self.feature_set, with_edges=True)[0]
        if isinstance(enc, _Failure):
            raise enc.error(smiles, index)
        return self._decomposition(enc)

    def decompose_batch(
        self, smiles: Sequence[str], ignore_errors: bool = False
    ) -> list[MotifDecomposition | None]:
        """`decompose` of many SMILES at once (vectorised, as `encode_batch`). An unparsable SMILES raises
        `MoleculeParseError` naming its index, or with ``ignore_errors`` gives None in its place."""
        smiles = list(smiles)
        out: list = [None] * len(smiles)
        for start, stop in _atom_chunks(smiles):
            mols, texts, kept = _parse_many(smiles[start:stop], ignore_errors, max_atoms=self.max_atoms, offset=start)
            with _gc_paused():
                for i, enc in zip(kept, _encode_mols(mols, texts, self.feature_set, with_edges=True)):
                    if isinstance(enc, _Failure):
                        if not ignore_errors:
                            raise enc.error(smiles[i], i)
                        continue
                    out[i] = self._decomposition(enc)
            del mols  # (the next slice's molecules replace these)
        return out

    @staticmethod
    def _decomposition(enc: _Encoded) -> MotifDecomposition:
        motif_atoms = [[] for _ in enc.motifs]
        atom_motifs = [[] for _ in range(enc.num_atoms)]
        for a, m in zip(enc.member_atom, enc.member_motif):
            motif_atoms[m].append(a)
            atom_motifs[a].append(m)
        return MotifDecomposition(
            motifs=enc.motifs,
            atom_motifs=atom_motifs,
            edges=enc.edges,
            positions=list(range(len(enc.motifs))),
            method=enc.method,
            motif_atoms=motif_atoms,
        )

    def encode_molecule(self, smiles: str, index: int | None = None) -> dict[str, list[int]]:
        """Graph arrays of one molecule as flat int lists (one Arrow row).

        Returns (n atoms, e bonds, m motifs, k atom-motif memberships; F_a/F_b feature columns):
            num_atoms: [n]; atom_features: n*F_a (row-major); edge_index: 2*e, each bond once
            (begin atoms, then end atoms; the collator adds reverse edges); edge_features: e*F_b;
            motif_ids: m+1 ([CLS] first); motif_positions: m+1 (0 for [CLS], 1 + BFS position);
            motif_membership: 2*k (atom indices, then motif slots 1..m).
        """
        mol = parse_smiles(smiles, index, max_atoms=self.max_atoms)
        enc = _encode_mols([mol], [smiles.strip()], self.feature_set)[0]
        if isinstance(enc, _Failure):
            raise enc.error(smiles, index)
        return self._row(enc, index)

    def _row(self, enc: _Encoded, index: int | None) -> dict[str, list[int]]:
        num_motifs = len(enc.motifs)
        member_atom, member_motif = enc.member_atom, enc.member_motif
        if self.max_motifs is not None and num_motifs > self.max_motifs:
            where = f" at index {index}" if index is not None else ""
            warnings.warn(
                f"Molecule{where} has {num_motifs} motifs; keeping the first {self.max_motifs} in breadth-first "
                f"order (max_motifs). Atoms of the dropped motifs stay in the graph but feed no motif slot.",
                stacklevel=3,
            )
            num_motifs = self.max_motifs
            kept = [k for k, m in enumerate(member_motif) if m < num_motifs]
            member_atom, member_motif = [member_atom[k] for k in kept], [member_motif[k] for k in kept]
        token_to_id = self.motif_vocab.token_to_id
        ids = [token_to_id.get(s, UNK_ID) for s in enc.motifs[:num_motifs]]
        self.total_motifs += num_motifs
        self.unknown_motifs += ids.count(UNK_ID)
        return {
            "num_atoms": [enc.num_atoms],
            "atom_features": enc.atom_features,
            "edge_index": enc.edge_index,
            "edge_features": enc.edge_features,
            "motif_ids": [CLS_ID] + ids,
            "motif_positions": list(range(num_motifs + 1)),
            "motif_membership": member_atom + [m + 1 for m in member_motif],
        }

    def encode_batch(
        self, smiles: Sequence[str], ignore_errors: bool = False, errors: dict[int, str] | None = None
    ) -> tuple[dict[str, list[list[int]]], list[int]]:
        """Encode many molecules; returns (columns, kept indices). Vectorised over the batch.

        An unparsable SMILES raises `ValueError` naming its index and string, unless ``ignore_errors``,
        in which case it is skipped and left out of the kept indices (and its message stored in ``errors``,
        keyed by index, when a dict is given).
        """
        smiles = list(smiles)
        columns: dict[str, list] = {name: [] for name in GRAPH_COLUMNS}
        kept = []
        for start, stop in _atom_chunks(smiles):
            mols, texts, parsed = _parse_many(
                smiles[start:stop], ignore_errors, errors, max_atoms=self.max_atoms, offset=start
            )
            with _gc_paused():
                for i, enc in zip(parsed, _encode_mols(mols, texts, self.feature_set)):
                    if isinstance(enc, _Failure):
                        if not ignore_errors:
                            raise enc.error(smiles[i], i)
                        if errors is not None:
                            errors[i] = str(enc.error(smiles[i], i))
                        continue
                    row = self._row(enc, i)
                    kept.append(i)
                    for name in GRAPH_COLUMNS:
                        columns[name].append(row[name])
            del mols  # (the next slice's molecules replace these)
        return columns, kept

    def __call__(self, smiles, ignore_errors: bool = False, return_tensors: str | None = "pt", **kwargs):
        """Flat graph batch for one SMILES or a list (see `collate_graphs`); ``kept_indices`` says which survived."""
        if isinstance(smiles, str):
            smiles = [smiles]
        if kwargs:
            raise TypeError(f"Unexpected arguments for the graph tokenizer: {sorted(kwargs)}")
        columns, kept = self.encode_batch(smiles, ignore_errors=ignore_errors)
        rows = [{name: columns[name][r] for name in GRAPH_COLUMNS} for r in range(len(kept))]
        batch = collate_graphs(rows, len(self.atom_feature_sizes), len(self.bond_feature_sizes), return_tensors)
        encoding = BatchEncoding(batch, tensor_type=None)
        encoding["kept_indices"] = kept
        return encoding


def collate_graphs(rows: Sequence[dict], num_atom_features: int, num_bond_features: int, return_tensors="pt"):
    """Rows of `FineMolTexGraphTokenizer.encode_molecule` -> one flat batch (numpy or torch).

    Keys and shapes (B molecules, N atoms, E directed edges, M motif slots incl. [CLS], K memberships):
        graph_atom_features (N, F_a); graph_edge_index (2, E) with per-molecule offsets and both
        directions; graph_edge_features (E, F_b); graph_batch (N,) molecule of each atom;
        motif_input_ids, motif_attention_mask, motif_position_ids (B, M), right-padded with 0;
        motif_membership (2, K): global atom index and flat slot index ``b * M + m``.
    """
    asarray = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    num_atoms = np.array([int(np.asarray(r["num_atoms"]).reshape(-1)[0]) for r in rows], dtype=np.int64)
    batch_size = len(rows)
    atom_offsets = np.concatenate([[0], np.cumsum(num_atoms)[:-1]]) if batch_size else np.zeros(0, np.int64)
    atom_features = [asarray(r["atom_features"]).reshape(-1, num_atom_features) for r in rows]
    edges = [asarray(r["edge_index"]).reshape(2, -1) for r in rows]
    edge_features = [asarray(r["edge_features"]).reshape(-1, num_bond_features) for r in rows]
    motif_ids = [asarray(r["motif_ids"]) for r in rows]
    positions = [asarray(r["motif_positions"]) for r in rows]
    membership = [asarray(r["motif_membership"]).reshape(2, -1) for r in rows]

    num_edges = np.array([e.shape[1] for e in edges], dtype=np.int64)
    width = max((len(m) for m in motif_ids), default=1)
    if batch_size:
        edge_index = np.concatenate(edges, axis=1) + np.repeat(atom_offsets, num_edges)
        edge_index = np.concatenate([edge_index, edge_index[::-1]], axis=1)
        edge_feats = np.concatenate(edge_features, axis=0)
        edge_feats = np.concatenate([edge_feats, edge_feats], axis=0)
        atom_feats = np.concatenate(atom_features, axis=0)
        num_members = np.array([m.shape[1] for m in membership], dtype=np.int64)
        members = np.concatenate(membership, axis=1)
        member_atoms = members[0] + np.repeat(atom_offsets, num_members)
        member_slots = members[1] + np.repeat(np.arange(batch_size, dtype=np.int64) * width, num_members)
    else:
        edge_index = np.zeros((2, 0), np.int64)
        edge_feats = np.zeros((0, num_bond_features), np.int64)
        atom_feats = np.zeros((0, num_atom_features), np.int64)
        member_atoms = member_slots = np.zeros(0, np.int64)
    ids = np.zeros((batch_size, width), dtype=np.int64)
    pos = np.zeros((batch_size, width), dtype=np.int64)
    mask = np.zeros((batch_size, width), dtype=np.int64)
    for b, (m, p) in enumerate(zip(motif_ids, positions)):
        ids[b, : len(m)] = m
        pos[b, : len(p)] = p
        mask[b, : len(m)] = 1
    batch = {
        "graph_atom_features": atom_feats,
        "graph_edge_index": edge_index,
        "graph_edge_features": edge_feats,
        "graph_batch": np.repeat(np.arange(batch_size, dtype=np.int64), num_atoms),
        "motif_input_ids": ids,
        "motif_attention_mask": mask,
        "motif_position_ids": pos,
        "motif_membership": np.stack([member_atoms, member_slots]),
    }
    if return_tensors == "pt":
        import torch

        batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}
    elif return_tensors not in (None, "np"):
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
    return batch


__all__ = [
    "FEATURE_SETS",
    "GRAPH_COLUMNS",
    "FineMolTexGraphTokenizer",
    "DEFAULT_MAX_ATOMS",
    "MoleculeParseError",
    "MoleculeTooLargeError",
    "count_atoms",
    "MotifDecomposition",
    "MotifVocab",
    "collate_graphs",
    "feature_sizes",
    "parse_smiles",
]

# Names that lived in this module before the chemistry and motif code moved out; kept importable from here.
__all__ += [
    "ATTACHMENT_RULES",
    "EDIT_DESCRIPTORS",
    "apply_motif_edits",
    "attachment_atoms",
    "canonical_smiles",
    "count_fragments",
    "count_substructure",
    "inchikey",
    "is_brics_bond",
    "is_valid_smiles",
    "molecule_bonds",
    "molecule_descriptors",
    "morgan_fingerprint",
    "murcko_scaffold",
    "random_split",
    "scaffold_split",
    "tanimoto_similarity",
]
