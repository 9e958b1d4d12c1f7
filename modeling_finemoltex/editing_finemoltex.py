# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Text-guided molecule editing at the level of motifs, and the MoleculeSTM / FineMolTex editing evaluation.

FineMolTex (Li et al. 2024, arXiv 2409.14106) edits molecules the way MoleculeSTM (Liu et al. 2023) does: by
latent optimisation inside a pretrained SMILES autoencoder (MegaMolBART), whose weights cannot be installed here.
This module edits where FineMolTex is strong instead: motifs. Three parts, each replaceable on its own:

**Generators** (`FineMolTexEditGenerator`) propose molecules one edit away from a molecule::

    class MyGenerator(FineMolTexEditGenerator):
        name = "my_generator"
        def propose(self, smiles: str, instruction: str | None = None) -> list[FineMolTexEditProposal]:
            ...  # candidate molecules (SMILES) with a short description of the edit

`FineMolTexMotifEditGenerator` is the motif editor: it decomposes the molecule with the graph tokenizer's motif
rules and proposes (1) removing a terminal motif (a leaf of the motif tree), (2) attaching a motif of a motif
library (`FineMolTexMotifLibrary`, by default the most frequent motifs of the model's vocabulary) at an atom that
has a hydrogen to give, (3) replacing a motif bonded to the rest by one or two bonds with a library motif. New
bonds follow BRICS (`apply_motif_edits`, ``attachment="brics"``): a motif of two or more atoms must be joined by a
bond BRICS would cut; single-atom substituents (OH, NH2, Cl, CH3 ...), which BRICS never cuts, go onto carbon.
Every product is sanitised by RDKit. Proposals are drawn from all possible edits by a generator seeded with the
seed *and the molecule*, so they do not depend on call order, and cached by SMILES (they do not depend on the
instruction).

A MoleculeSTM-style latent editor plugs in the same way: its ``propose(smiles, instruction)`` would encode the
molecule with a SMILES autoencoder, optimise the latent towards the instruction's text embedding (for a few L2
weights), and return the decoded SMILES; with ``num_steps=1`` the search below then just scores and picks among
them. Nothing else changes. Whatever a generator returns is re-validated (parsed, sanitised, canonicalised) by the
editor; invalid proposals are dropped and counted, so no invalid SMILES can come out of the editor.

**Scorers** (`FineMolTexEditScorer`) give the text–molecule similarity of candidates to the instruction, in
batches: `FineMolTexModelScorer` (cosine similarity of the model's graph and text embeddings, computed with
`embed_molecules` / `embed_texts`, cached by SMILES and by instruction, on CPU or GPU) and
`FineMolTexRandomScorer` (a seeded pseudo-random number per SMILES that ignores the text: the baseline that shows
what the search alone achieves).

**Search** (`FineMolTexMoleculeEditor`): beam search for ``num_steps`` steps, scoring each candidate ``c`` of source
``s`` as ``text_similarity(c, instruction) + lambda * Tanimoto(c, s)`` (Morgan radius 2, 1024 bits), once for each
``lambda`` in ``lambdas`` (MoleculeSTM likewise tries several weights of its similarity term); with
``text_scores="zscore"`` the text similarity is first standardised per source, so that lambda means the same for
scorers of different scales. All sources and
lambdas advance in lockstep, so each step scores the candidates of all of them in one batched call. For each lambda
the best-scoring molecule found (never the source itself) is the edit; a source with no possible edit gets an
honest empty result (``status="no_edit"``), an unparsable source is reported, skipped and counted
(``status="invalid_source"``).

**Evaluation** (`load_edit_criteria`, `FineMolTexEditCriterion`, `evaluate_edits`): the prompts and success criteria
of ``prompts.json`` (MoleculeSTM ids 101-108, 201-206, 301-307; FineMolTex's motif-level 501-504) with loose
(strict inequality) and strict (ChatDrug's thresholds, where it gives them) variants; a source is a hit if the edit
of any lambda succeeds; for the motif-level prompts sources that already satisfy the instruction are excluded.
Prompts without an offline oracle (109-111, 401-406) and instructions the criteria file does not know are edited
anyway and marked not evaluable.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .chemistry_finemoltex import (
    EDIT_DESCRIPTORS,
    MoleculeParseError,
    canonical_smiles,
    count_fragments,
    count_substructure,
    molecule_bonds,
    molecule_descriptors,
    tanimoto_similarity,
)
from .motifs_finemoltex import apply_motif_edits, attachment_atoms
from .tokenization_finemoltex import FineMolTexGraphTokenizer, MotifVocab

logger = logging.getLogger(__name__)

DEFAULT_LAMBDAS = (0.0, 0.5, 1.0)
OPERATIONS = ("remove", "attach", "replace")
TEXT_SCORES = ("raw", "zscore")
NOT_EVALUABLE_TYPES = ("none_in_public_code", "oracle_classifier")


def _stable_seed(*parts) -> int:
    """A 64-bit seed from strings/ints, independent of PYTHONHASHSEED and of call order."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _check_instruction(instruction, where: str = "") -> str:
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"Empty instruction{where}: {instruction!r}; give the edit as text, e.g. 'This molecule is soluble in water.'")
    return instruction.strip()


# ================================================================================================ proposals
@dataclass(frozen=True)
class FineMolTexEditProposal:
    """One candidate molecule a generator proposes.

    Attributes:
        smiles: the candidate (canonical SMILES when it comes from `FineMolTexMotifEditGenerator`).
        operation: kind of edit (``"remove"``, ``"attach"``, ``"replace"`` for the motif editor).
        detail: what was edited, for people (e.g. ``"attach 'Cl' at atom 3"``).
    """

    smiles: str
    operation: str
    detail: str = ""


class FineMolTexEditGenerator(ABC):
    """Proposes candidate molecules one edit away from a molecule (see the module docstring for the contract)."""

    name: str = "generator"

    @abstractmethod
    def propose(self, smiles: str, instruction: str | None = None) -> list[FineMolTexEditProposal]:
        """Candidates one edit away from ``smiles`` (a canonical SMILES). ``instruction`` is there for generators
        that use the text (latent-space editors); the motif editor ignores it. May return an empty list."""

    def propose_batch(self, smiles: Sequence[str], instruction: str | None = None) -> list[list[FineMolTexEditProposal]]:
        """`propose` for many molecules (override to batch, e.g. on a GPU)."""
        return [self.propose(s, instruction) for s in smiles]


# ================================================================================================ motif library
@dataclass(frozen=True)
class FineMolTexMotifFragment:
    """A motif that can be inserted into molecules.

    Attributes:
        smiles: motif SMILES (as in the motif vocabulary: Kekulé, no stereo).
        attachment_atoms: one atom per symmetry class that has a hydrogen to give (for one new bond).
        all_attachment_atoms: every such atom (two new bonds need two distinct atoms, e.g. ortho/meta/para).
        num_atoms: heavy atoms.
        count: how often the motif was seen (vocabulary count; 0 if unknown).
    """

    smiles: str
    attachment_atoms: tuple[int, ...]
    all_attachment_atoms: tuple[int, ...]
    num_atoms: int
    count: int = 0


class FineMolTexMotifLibrary:
    """The motifs the motif editor may attach or put in place of another motif."""

    def __init__(self, fragments: Sequence[FineMolTexMotifFragment]):
        self.fragments = list(fragments)
        if not self.fragments:
            raise ValueError("The motif library is empty: no usable motif (parsable, with an atom that has a hydrogen).")

    def __len__(self) -> int:
        return len(self.fragments)

    @property
    def smiles(self) -> list[str]:
        return [f.smiles for f in self.fragments]

    @classmethod
    def from_smiles(cls, motifs: Sequence[str], counts: Sequence[int] | None = None, max_atoms: int = 12) -> "FineMolTexMotifLibrary":
        """Library from motif SMILES; motifs that do not parse, contain dummy atoms or several pieces, have no heavy
        atom or more than ``max_atoms``, or no atom with a hydrogen are left out (logged)."""
        fragments, dropped = [], []
        counts = list(counts) if counts is not None else [0] * len(motifs)
        seen = set()
        for smiles, count in zip(motifs, counts):
            if not isinstance(smiles, str) or "*" in smiles or "." in smiles or smiles in seen:
                dropped.append(smiles)
                continue
            try:
                num_atoms = int(molecule_descriptors(smiles, ["HeavyAtomCount"])["HeavyAtomCount"])
                unique = attachment_atoms(smiles, unique=True)
                every = attachment_atoms(smiles, unique=False)
            except MoleculeParseError:
                dropped.append(smiles)
                continue
            if not 1 <= num_atoms <= max_atoms or not unique:  # ([HH], a motif of some vocabularies, has no heavy atom)
                dropped.append(smiles)
                continue
            seen.add(smiles)
            fragments.append(FineMolTexMotifFragment(smiles, tuple(unique), tuple(every), num_atoms, int(count)))
        if dropped:
            logger.info("Motif library: left out %d motifs (unparsable, too large or nowhere to attach).", len(dropped))
        return cls(fragments)

    @classmethod
    def from_vocab(cls, vocab: MotifVocab, max_size: int = 48, max_atoms: int = 12) -> "FineMolTexMotifLibrary":
        """The ``max_size`` most frequent usable motifs of a motif vocabulary (see `from_smiles`)."""
        library = cls.from_smiles([s for s, _ in vocab.motifs], [c for _, c in vocab.motifs], max_atoms=max_atoms)
        return cls(library.fragments[:max_size])


# ================================================================================================ motif editor
class FineMolTexMotifEditGenerator(FineMolTexEditGenerator):
    """Motif-level edits: remove a terminal motif, attach a library motif, replace a motif by a library motif.

    Args:
        library: motifs to attach / put in place (`FineMolTexMotifLibrary`).
        max_candidates: at most this many distinct products per molecule: all terminal-motif removals, the rest
            shared between attachments and replacements (what one leaves unused goes to the other).
        operations: which of ``"remove"``, ``"attach"``, ``"replace"`` to propose.
        attachment: ``"brics"`` or ``"valence"`` (see `apply_motif_edits`).
        max_replace_bonds: replace only motifs joined to the rest by at most this many bonds (1 or 2).
        seed: seed of the draw of edits (combined with the molecule, so results do not depend on call order).
        tokenizer: graph tokenizer whose motif rules decompose the molecules (default: a vocabulary-free one).
        cache_size: molecules whose proposals are kept.
    """

    name = "motif"

    def __init__(
        self,
        library: FineMolTexMotifLibrary,
        max_candidates: int = 48,
        operations: Sequence[str] = OPERATIONS,
        attachment: str = "brics",
        max_replace_bonds: int = 2,
        seed: int = 0,
        tokenizer: FineMolTexGraphTokenizer | None = None,
        cache_size: int = 100_000,
    ):
        unknown = set(operations) - set(OPERATIONS)
        if unknown or not operations:
            raise ValueError(f"operations must be a non-empty subset of {OPERATIONS}, got {list(operations)}")
        if max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
        if max_replace_bonds not in (1, 2):
            raise ValueError(f"max_replace_bonds must be 1 or 2, got {max_replace_bonds}")
        self.library = library
        self.max_candidates = int(max_candidates)
        self.operations = tuple(operations)
        self.attachment = attachment
        self.max_replace_bonds = max_replace_bonds
        self.seed = int(seed)
        self.tokenizer = tokenizer or FineMolTexGraphTokenizer()
        self.cache_size = int(cache_size)
        self._cache: dict[str, list[FineMolTexEditProposal]] = {}
        self.stats = {"molecules": 0, "edits_tried": 0, "edits_failed": 0, "seconds": 0.0}

    # ---- the possible edits of one molecule (cheap tuples; only the drawn ones are applied) ----
    def possible_edits(self, smiles: str) -> dict[str, list[tuple]]:
        """All edits of ``smiles`` by operation: ``(remove_atoms, fragment, bonds, detail)`` tuples."""
        dec = self.tokenizer.decompose(smiles)
        num_atoms = len(dec.atom_motifs)
        degree = [0] * len(dec.motifs)
        for a, b in dec.edges:
            degree[a] += 1
            degree[b] += 1
        neighbours: list[list[tuple[int, float]]] = [[] for _ in range(num_atoms)]
        for i, j, order in molecule_bonds(smiles):
            neighbours[i].append((j, order))
            neighbours[j].append((i, order))
        edits: dict[str, list[tuple]] = {op: [] for op in self.operations}
        fragments = self.library.fragments
        if len(dec.motifs) > 1:
            for m, (motif, atoms) in enumerate(zip(dec.motifs, dec.motif_atoms)):
                own = [a for a in atoms if len(dec.atom_motifs[a]) == 1]  # atoms no other motif holds
                if not own or len(own) >= num_atoms:
                    continue
                own_set = set(own)
                external = sorted({(a, b) for a in own for b, _ in neighbours[a] if b not in own_set})
                if "remove" in edits and degree[m] <= 1:
                    edits["remove"].append((tuple(own), None, (), f"remove motif {m} {motif!r}"))
                if "replace" in edits and 1 <= len(external) <= self.max_replace_bonds:
                    anchors = [b for _, b in external]
                    if len(set(anchors)) != len(anchors):
                        continue
                    for frag in fragments:
                        if frag.smiles == motif:
                            continue
                        detail = f"replace motif {m} {motif!r} with {frag.smiles!r}"
                        if len(anchors) == 1:
                            for f in frag.attachment_atoms:
                                edits["replace"].append((tuple(own), frag.smiles, ((anchors[0], f),), detail))
                        else:
                            every = frag.all_attachment_atoms
                            for f1 in every:
                                for f2 in every:
                                    if f1 != f2:
                                        edits["replace"].append(
                                            (tuple(own), frag.smiles, ((anchors[0], f1), (anchors[1], f2)), detail)
                                        )
        if "attach" in edits:
            for a in attachment_atoms(smiles, unique=True):
                for frag in fragments:
                    for f in frag.attachment_atoms:
                        edits["attach"].append(((), frag.smiles, ((a, f),), f"attach {frag.smiles!r} at atom {a}"))
        return edits

    def propose(self, smiles: str, instruction: str | None = None) -> list[FineMolTexEditProposal]:
        cached = self._cache.get(smiles)
        if cached is not None:
            return cached
        start = time.perf_counter()
        proposals = self._propose(smiles)
        self.stats["seconds"] += time.perf_counter() - start
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[smiles] = proposals
        return proposals

    def _propose(self, smiles: str) -> list[FineMolTexEditProposal]:
        self.stats["molecules"] += 1
        edits = self.possible_edits(smiles)
        rng = np.random.default_rng(_stable_seed(self.seed, smiles))
        seen = {smiles}
        out: list[FineMolTexEditProposal] = []
        budget = self.max_candidates
        # removals first (few), then attachments and replacements share what is left: each gets an equal part,
        # and what attachments leave unused goes to replacements
        order = [op for op in ("remove", "attach", "replace") if edits.get(op)]
        for k, op in enumerate(order):
            options = edits[op]
            left = budget - len(out)
            quota = left if op == "remove" or k == len(order) - 1 else -(-left // (len(order) - k))
            if quota <= 0:
                break
            perm = _interleaved_order(options, rng)
            # apply in chunks (one RDKit parse per chunk) until the quota of new valid molecules is met;
            # at most 4x the quota is tried, which bounds the time on molecules where most edits fail
            tried, added, chunk = 0, 0, max(8, quota)
            while added < quota and tried < len(options) and tried < 4 * quota + 8:
                picked = [options[i] for i in perm[tried : tried + chunk].tolist()]
                tried += len(picked)
                products = apply_motif_edits(smiles, [e[:3] for e in picked], attachment=self.attachment)
                self.stats["edits_tried"] += len(picked)
                for edit, product in zip(picked, products):
                    if product is None:
                        self.stats["edits_failed"] += 1
                        continue
                    if product in seen or added >= quota:
                        continue
                    seen.add(product)
                    out.append(FineMolTexEditProposal(product, op, edit[3]))
                    added += 1
        return out


def _interleaved_order(options: list[tuple], rng: np.random.Generator) -> np.ndarray:
    """A random order of edits that goes round the inserted motifs (the fragment, ``option[1]``) in turn: each motif
    gets the same chance to be tried whatever its number of attachment points, so a single-atom motif (OH, Cl) is
    not crowded out by a ring with six positions."""
    groups: dict = {}
    for k, option in enumerate(options):
        groups.setdefault(option[1], []).append(k)
    keys = list(groups)
    group_rank = dict(zip(keys, rng.permutation(len(keys)).tolist()))
    round_of = np.empty(len(options), dtype=np.int64)
    for key, members in groups.items():
        round_of[members] = rng.permutation(len(members))
    rank = np.array([group_rank[option[1]] for option in options], dtype=np.int64)
    return np.lexsort((rank, round_of))


# ================================================================================================ scorers
class FineMolTexEditScorer(ABC):
    """Text–molecule similarity of candidate molecules to an instruction (higher: closer to the instruction)."""

    name: str = "scorer"

    @abstractmethod
    def text_similarity(self, smiles: Sequence[str], instruction: str) -> np.ndarray:
        """-> float64 (len(smiles),) similarity of each molecule to ``instruction``. SMILES are valid and canonical."""


class FineMolTexRandomScorer(FineMolTexEditScorer):
    """A baseline that ignores the text: a pseudo-random number in [-1, 1) per (seed, SMILES), the same whatever the
    instruction, batch or call order."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def text_similarity(self, smiles: Sequence[str], instruction: str) -> np.ndarray:
        return np.array([_stable_seed(self.seed, s) / 2.0**63 - 1.0 for s in smiles], dtype=np.float64)


class FineMolTexModelScorer(FineMolTexEditScorer):
    """Cosine similarity of a FineMolTex model's graph and text embeddings (no co-attention: the CLIP-style score).

    Molecule embeddings are cached by SMILES (they do not depend on the instruction) and text embeddings by
    instruction, so a benchmark over many prompts and lambdas embeds each molecule once.

    Args:
        model: `FineMolTexModel` or `FineMolTexForPreTraining`.
        processor: its `FineMolTexProcessor`.
        batch_size: molecules per forward pass.
        device: where to run (default: where the model is).
        bf16: bfloat16 autocast on CUDA.
    """

    name = "model"

    def __init__(self, model, processor, batch_size: int = 128, device: str | torch.device | None = None, bf16: bool = False):
        self.model, self.processor = model, processor
        self.batch_size, self.device, self.bf16 = int(batch_size), device, bf16
        self._rows: dict[str, int] = {}
        self._chunks: list[torch.Tensor] = []
        self._matrix: torch.Tensor | None = None
        self._texts: dict[str, torch.Tensor] = {}
        self.num_embedded = 0

    @classmethod
    def from_pretrained(cls, path: str, **kwargs) -> "FineMolTexModelScorer":
        """Load a saved model and processor (e.g. a pre-training checkpoint folder)."""
        from .hub_access_finemoltex import from_pretrained_kwargs, load_error
        from .modeling_finemoltex import FineMolTexModel
        from .processing_finemoltex import FineMolTexProcessor

        try:
            model = FineMolTexModel.from_pretrained(path, **from_pretrained_kwargs(path, model=True))
            processor = FineMolTexProcessor.from_pretrained(path, **from_pretrained_kwargs(path))
        except OSError as err:
            raise load_error("a FineMolTex model and processor", path, err) from None
        return cls(model.eval(), processor, **kwargs)

    def _text(self, instruction: str) -> torch.Tensor:
        emb = self._texts.get(instruction)
        if emb is None:
            from .retrieval_finemoltex import embed_texts

            emb = self._texts[instruction] = embed_texts(
                self.model, self.processor, [instruction], device=self.device, progress=False, bf16=self.bf16
            )[0]
        return emb

    def molecule_embeddings(self, smiles: Sequence[str]) -> torch.Tensor:
        """(N, P) L2-normalised embeddings, computed in batches for the SMILES not cached yet."""
        from .retrieval_finemoltex import embed_molecules

        missing = list(dict.fromkeys(s for s in smiles if s not in self._rows))
        if missing:
            emb, kept = embed_molecules(
                self.model, self.processor, missing, batch_size=self.batch_size, device=self.device,
                progress=False, ignore_errors=True, bf16=self.bf16,
            )
            if len(kept) != len(missing):
                bad = [missing[i] for i in sorted(set(range(len(missing))) - set(kept))]
                raise ValueError(f"The processor could not encode candidate molecules: {bad[:5]}")
            start = sum(c.size(0) for c in self._chunks)
            self._chunks.append(emb)
            self._matrix = None
            for r, s in enumerate(missing):
                self._rows[s] = start + r
            self.num_embedded += len(missing)
        if self._matrix is None:
            self._matrix = torch.cat(self._chunks) if self._chunks else torch.zeros(0, 1)
            self._chunks = [self._matrix]
        index = torch.as_tensor([self._rows[s] for s in smiles], dtype=torch.long)
        return self._matrix[index]

    def text_similarity(self, smiles: Sequence[str], instruction: str) -> np.ndarray:
        if not smiles:
            return np.zeros(0, dtype=np.float64)
        text = self._text(instruction)
        return (self.molecule_embeddings(smiles) @ text).double().numpy()


# ================================================================================================ search
@dataclass
class FineMolTexEditCandidate:
    """The edit found for one source and one lambda.

    Attributes:
        smiles: the edited molecule (canonical, valid).
        score: ``text_similarity + lambda * source_similarity`` (standardised text similarity with
            ``text_scores="zscore"``).
        text_similarity: scorer similarity to the instruction.
        source_similarity: Tanimoto (Morgan r=2, 1024 bits) to the source.
        steps: the edits from the source, in order (``"operation: detail"``).
    """

    smiles: str
    score: float
    text_similarity: float
    source_similarity: float
    steps: list[str] = field(default_factory=list)


@dataclass
class FineMolTexEditResult:
    """Editing one source molecule with one instruction.

    Attributes:
        index: position of the source in the input.
        source: the source as given.
        canonical_source: its canonical SMILES (None when invalid).
        status: ``"edited"``, ``"no_edit"`` (no valid edit exists) or ``"invalid_source"``.
        message: why, for the last two.
        edits: lambda -> best edit (None where nothing was found), in the order of the editor's lambdas.
        num_scored: distinct candidates scored for this source (all lambdas).
    """

    index: int
    source: str
    canonical_source: str | None
    status: str
    message: str | None = None
    edits: dict[float, FineMolTexEditCandidate | None] = field(default_factory=dict)
    num_scored: int = 0


@dataclass
class FineMolTexEditOutput:
    """Results of `FineMolTexMoleculeEditor.edit` for one instruction.

    Attributes:
        instruction: the instruction.
        results: one `FineMolTexEditResult` per source, in input order.
        num_invalid_sources / num_no_edit: counts of the skipped sources and of sources without any edit.
        num_invalid_proposals: generator proposals dropped because they were not valid molecules.
        seconds: wall time of the call.
    """

    instruction: str
    results: list[FineMolTexEditResult]
    num_invalid_sources: int = 0
    num_no_edit: int = 0
    num_invalid_proposals: int = 0
    seconds: float = 0.0


@dataclass
class _BeamState:
    source: str
    lam: float
    beam: list[str]
    seen: set
    parent: dict  # child -> (parent, "operation: detail")
    best: tuple | None = None  # (score, smiles, text_similarity, source_similarity)


class FineMolTexMoleculeEditor:
    """Beam search over a generator's edits, scored by ``text_similarity + lambda * Tanimoto(candidate, source)``.

    Args:
        generator: a `FineMolTexEditGenerator` (e.g. `FineMolTexMotifEditGenerator`).
        scorer: a `FineMolTexEditScorer` (e.g. `FineMolTexModelScorer`, `FineMolTexRandomScorer`).
        lambdas: weights of the similarity to the source; each gives one edit per source.
        beam_width: molecules kept after each step.
        num_steps: edits in a row at most (1: the best single edit).
        text_scores: ``"raw"`` (default): the scorer's similarity as it is; ``"zscore"``: standardised per source
            by the mean and standard deviation over its first-step candidates, so that ``lambda`` weighs the
            Tanimoto term the same whatever the scale of the scorer (a weakly trained model's cosine similarities
            vary by a few hundredths between candidates, a random scorer's by 1) — the fair way to compare scorers.
    """

    def __init__(
        self,
        generator: FineMolTexEditGenerator,
        scorer: FineMolTexEditScorer,
        lambdas: Sequence[float] = DEFAULT_LAMBDAS,
        beam_width: int = 3,
        num_steps: int = 2,
        text_scores: str = "raw",
    ):
        if text_scores not in TEXT_SCORES:
            raise ValueError(f"text_scores must be one of {TEXT_SCORES}, got {text_scores!r}")
        self.text_scores = text_scores
        lambdas = [float(x) for x in lambdas]
        if not lambdas or any(not np.isfinite(x) for x in lambdas):
            raise ValueError(f"lambdas must be a non-empty list of finite numbers, got {lambdas}")
        if beam_width < 1 or num_steps < 1:
            raise ValueError(f"beam_width and num_steps must be >= 1, got {beam_width}, {num_steps}")
        self.generator, self.scorer = generator, scorer
        self.lambdas = list(dict.fromkeys(lambdas))
        self.beam_width, self.num_steps = int(beam_width), int(num_steps)
        self._valid: dict[str, str | None] = {}  # proposal SMILES -> canonical SMILES (None: invalid)

    def _canonical(self, smiles: str) -> str | None:
        if smiles not in self._valid:
            try:
                self._valid[smiles] = canonical_smiles(smiles)
            except MoleculeParseError:
                self._valid[smiles] = None
        return self._valid[smiles]

    def edit(self, sources: Sequence[str], instruction: str) -> FineMolTexEditOutput:
        """Edit every source towards ``instruction``. Raises `ValueError` for an empty instruction; invalid sources
        are reported in their results (``status="invalid_source"``), counted, and skipped."""
        instruction = _check_instruction(instruction)
        start_time = time.perf_counter()
        results: list[FineMolTexEditResult] = []
        states: list[list[_BeamState]] = []
        for i, s in enumerate(sources):
            try:
                canon = canonical_smiles(s)
            except MoleculeParseError as err:
                results.append(FineMolTexEditResult(i, s if isinstance(s, str) else repr(s), None, "invalid_source", str(err)))
                states.append([])
                continue
            results.append(FineMolTexEditResult(i, s, canon, "edited"))
            states.append([_BeamState(canon, lam, [canon], {canon}, {}) for lam in self.lambdas])
        num_invalid_proposals = 0
        scored: list[set] = [set() for _ in results]
        text_scale: dict[int, tuple[float, float]] = {}  # source -> (mean, std) of its first-step text scores
        for _ in range(self.num_steps):
            to_expand = list(dict.fromkeys(m for group in states for st in group for m in st.beam))
            if not to_expand:
                break
            proposals = dict(zip(to_expand, self.generator.propose_batch(to_expand, instruction)))
            children_of: dict[str, list[tuple[str, str]]] = {}
            for parent, props in proposals.items():
                kids = []
                for p in props:
                    canon = self._canonical(p.smiles)
                    if canon is None:
                        num_invalid_proposals += 1
                        continue
                    kids.append((canon, f"{p.operation}: {p.detail}" if p.detail else p.operation))
                children_of[parent] = kids
            # new children of each state, and everything to score in one batch
            new_children: dict[tuple[int, int], list[str]] = {}
            for i, group in enumerate(states):
                for k, st in enumerate(group):
                    kids = []
                    for parent in st.beam:
                        for child, step in children_of.get(parent, ()):
                            if child not in st.seen:
                                st.seen.add(child)
                                st.parent[child] = (parent, step)
                                kids.append(child)
                    new_children[(i, k)] = kids
            batch = list(dict.fromkeys(c for kids in new_children.values() for c in kids))
            if not batch:
                break
            text_sim = dict(zip(batch, self.scorer.text_similarity(batch, instruction).tolist()))
            for i, group in enumerate(states):
                if not group:
                    continue
                kids_i = list(dict.fromkeys(c for k in range(len(group)) for c in new_children[(i, k)]))
                scored[i].update(kids_i)
                source_sim = dict(zip(kids_i, tanimoto_similarity(group[0].source, kids_i).tolist())) if kids_i else {}
                if self.text_scores == "zscore" and i not in text_scale and kids_i:
                    values = np.array([text_sim[c] for c in kids_i])
                    text_scale[i] = (float(values.mean()), float(values.std()) or 1.0)
                mean, std = text_scale.get(i, (0.0, 1.0))
                for k, st in enumerate(group):
                    ranked = sorted(
                        (((text_sim[c] - mean) / std + st.lam * source_sim[c], c) for c in new_children[(i, k)]),
                        key=lambda x: (-x[0], x[1]),
                    )
                    st.beam = [c for _, c in ranked[: self.beam_width]]
                    if ranked:
                        score, c = ranked[0]
                        if st.best is None or (-score, c) < (-st.best[0], st.best[1]):
                            st.best = (score, c, text_sim[c], source_sim[c])
        num_no_edit = 0
        for result, group, seen in zip(results, states, scored):
            if not group:
                continue
            result.num_scored = len(seen)
            for st in group:
                result.edits[st.lam] = None if st.best is None else FineMolTexEditCandidate(
                    st.best[1], float(st.best[0]), float(st.best[2]), float(st.best[3]), self._path(st, st.best[1])
                )
            if all(e is None for e in result.edits.values()):
                result.status = "no_edit"
                result.message = "no valid edit: no removable terminal motif, no atom with a hydrogen to attach at"
                num_no_edit += 1
        num_invalid = sum(r.status == "invalid_source" for r in results)
        if num_invalid:
            logger.warning("Skipped %d invalid source SMILES (indices %s).", num_invalid,
                           [r.index for r in results if r.status == "invalid_source"][:10])
        return FineMolTexEditOutput(
            instruction, results, num_invalid, num_no_edit, num_invalid_proposals, time.perf_counter() - start_time
        )

    @staticmethod
    def _path(state: _BeamState, smiles: str) -> list[str]:
        steps = []
        while smiles in state.parent:
            smiles, step = state.parent[smiles]
            steps.append(step)
        return steps[::-1]


# ================================================================================================ criteria
def _normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).lower()


@dataclass
class FineMolTexEditCriterion:
    """Success criterion of one editing prompt (an entry of ``prompts.json``).

    Attributes:
        prompt_id / text / group / type: from the file.
        evaluable: False for prompts without an offline oracle (109-111, 401-406).
        parts: for property criteria, ``(descriptor, direction, loose, strict)``; ``strict`` None if not given.
        reference_name / reference_smiles: for similarity to a drug (301-307).
        smarts / fragment_counters: for motif presence (501-504).
        reason: why not evaluable.
    """

    prompt_id: int | None
    text: str
    group: str = ""
    type: str = ""
    evaluable: bool = True
    parts: list[tuple[str, str, float, float | None]] = field(default_factory=list)
    reference_name: str | None = None
    reference_smiles: str | None = None
    smarts: str | None = None
    fragment_counters: list[str] = field(default_factory=list)
    reason: str | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)  # SMILES -> properties

    @classmethod
    def from_entry(cls, entry: dict) -> "FineMolTexEditCriterion":
        c = entry.get("criterion") or {}
        kind = c.get("type", "")
        out = cls(prompt_id=entry.get("id"), text=entry["text"], group=entry.get("group", ""), type=kind)
        if kind in NOT_EVALUABLE_TYPES or c.get("available_offline") is False:
            out.evaluable, out.reason = False, c.get("rule", "no offline oracle")
        elif kind in ("property_change", "property_change_all"):
            parts = c["parts"] if kind == "property_change_all" else [c]
            thresholds = c.get("chatdrug_thresholds") or {}
            loose, strict = thresholds.get("loose", 0), thresholds.get("strict")
            loose = loose if isinstance(loose, list) else [loose] * len(parts)
            strict = strict if isinstance(strict, list) else [strict] * len(parts)
            for p, lo, st in zip(parts, loose, strict):
                out.parts.append((p["rdkit_descriptor"], p["direction"], float(lo or 0), None if st is None else float(st)))
        elif kind == "similarity_to_reference":
            out.reference_name, out.reference_smiles = c.get("reference_name"), c["reference_smiles"]
        elif kind == "substructure_present_in_edited":
            out.smarts = c.get("smarts")
            out.fragment_counters = sorted(set(re.findall(r"\bfr_\w+", c.get("rule", "")))) if not out.smarts else []
            if not out.smarts and not out.fragment_counters:
                out.evaluable, out.reason = False, f"cannot read the criterion: {c.get('rule')!r}"
        else:
            out.evaluable, out.reason = False, f"unknown criterion type {kind!r}"
        return out

    @property
    def has_strict(self) -> bool:
        return bool(self.parts) and all(p[3] is not None for p in self.parts)

    @property
    def excludes_satisfied_sources(self) -> bool:
        """Motif-presence prompts: a source that already has the motif is left out of the hit ratio."""
        return self.type == "substructure_present_in_edited"

    def properties(self, smiles: str) -> dict[str, float]:
        """The quantities the instruction is about, for one molecule (cached by SMILES)."""
        props = self._cache.get(smiles)
        if props is None:
            if len(self._cache) >= 100_000:
                self._cache.clear()
            props = self._cache[smiles] = self._properties(smiles)
        return props

    def _properties(self, smiles: str) -> dict[str, float]:
        if self.parts:
            return molecule_descriptors(smiles, list(dict.fromkeys(p[0] for p in self.parts)))
        if self.reference_smiles:
            return {f"tanimoto_to_{self.reference_name or 'reference'}": float(tanimoto_similarity(self.reference_smiles, [smiles])[0])}
        if self.smarts:
            return {f"matches[{self.smarts}]": count_substructure(smiles, self.smarts)}
        if self.fragment_counters:
            return {k: float(v) for k, v in count_fragments(smiles, self.fragment_counters).items()}
        return molecule_descriptors(smiles, EDIT_DESCRIPTORS)

    def satisfied_by(self, smiles: str) -> bool:
        """Motif-presence prompts: does ``smiles`` already have the motif?"""
        if self.smarts:
            return count_substructure(smiles, self.smarts) > 0
        if self.fragment_counters:
            return sum(count_fragments(smiles, self.fragment_counters).values()) > 0
        return False

    def holds(self, source: str, edited: str, threshold: str = "loose") -> bool | None:
        """Did the edit succeed? ``threshold``: ``"loose"`` (strict inequality, MoleculeSTM) or ``"strict"`` (ChatDrug's
        thresholds). None when not evaluable, or ``"strict"`` for a criterion without strict thresholds."""
        if threshold not in ("loose", "strict"):
            raise ValueError(f"threshold must be 'loose' or 'strict', got {threshold!r}")
        if not self.evaluable:
            return None
        if self.parts:
            if threshold == "strict" and not self.has_strict:
                return None
            before, after = self.properties(source), self.properties(edited)
            for name, direction, loose, strict in self.parts:
                margin = loose if threshold == "loose" else strict
                delta = after[name] - before[name]
                if not (delta > margin if direction == "increase" else delta < -margin):
                    return False
            return True
        if threshold == "strict":
            return None
        if self.reference_smiles:
            key = next(iter(self.properties(source)))
            return self.properties(edited)[key] > self.properties(source)[key]
        return self.satisfied_by(edited)


def load_edit_criteria(path: str | os.PathLike) -> dict[str, FineMolTexEditCriterion]:
    """Criteria of a ``prompts.json`` file, keyed by normalised prompt text (lower case, single spaces).

    Raises `FileNotFoundError` / `ValueError` naming the file when it is missing or not a prompts file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Editing criteria file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), list):
        raise ValueError(f"{path} has no 'prompts' list: not an editing prompts file")
    out = {}
    for k, entry in enumerate(data["prompts"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise ValueError(f"{path}: prompt {k} has no text")
        out[_normalise_text(entry["text"])] = FineMolTexEditCriterion.from_entry(entry)
    return out


def find_criterion(instruction: str, criteria: dict[str, FineMolTexEditCriterion] | None) -> FineMolTexEditCriterion | None:
    """The criterion of ``instruction`` (matched by normalised text), or None when the file does not know it."""
    if not criteria:
        return None
    return criteria.get(_normalise_text(instruction))


# ================================================================================================ evaluation
@dataclass
class FineMolTexEditEvaluation:
    """Hit ratio of one prompt (MoleculeSTM protocol: a source is a hit if the edit of any lambda succeeds).

    Attributes:
        evaluable: False when the prompt has no offline criterion (then the ratios are None).
        num_sources: sources counted (valid, and for motif prompts not already satisfying the instruction).
        num_excluded: sources left out because they already satisfy the instruction.
        hits_loose / hits_strict, hit_ratio_loose / hit_ratio_strict: percentages; strict None where undefined.
        per_source: index -> {"loose": bool, "strict": bool | None} for counted sources.
    """

    instruction: str
    prompt_id: int | None
    evaluable: bool
    num_sources: int = 0
    num_excluded: int = 0
    hits_loose: int = 0
    hits_strict: int | None = None
    hit_ratio_loose: float | None = None
    hit_ratio_strict: float | None = None
    reason: str | None = None
    per_source: dict[int, dict] = field(default_factory=dict)


def evaluate_edits(output: FineMolTexEditOutput, criterion: FineMolTexEditCriterion | None) -> FineMolTexEditEvaluation:
    """Hit ratios (loose, strict) of an editing run under a criterion (None: not evaluable)."""
    if criterion is None or not criterion.evaluable:
        reason = "instruction not in the criteria file" if criterion is None else criterion.reason
        return FineMolTexEditEvaluation(output.instruction, getattr(criterion, "prompt_id", None), False, reason=reason)
    ev = FineMolTexEditEvaluation(output.instruction, criterion.prompt_id, True)
    hits_strict = 0
    for r in output.results:
        if r.status == "invalid_source":
            continue
        if criterion.excludes_satisfied_sources and criterion.satisfied_by(r.canonical_source):
            ev.num_excluded += 1
            continue
        ev.num_sources += 1
        edits = [e for e in r.edits.values() if e is not None]
        loose = any(criterion.holds(r.canonical_source, e.smiles, "loose") for e in edits)
        strict = any(criterion.holds(r.canonical_source, e.smiles, "strict") for e in edits) if criterion.has_strict else None
        ev.hits_loose += loose
        hits_strict += bool(strict)
        ev.per_source[r.index] = {"loose": loose, "strict": strict}
    if ev.num_sources:
        ev.hit_ratio_loose = 100.0 * ev.hits_loose / ev.num_sources
        if criterion.has_strict:
            ev.hits_strict = hits_strict
            ev.hit_ratio_strict = 100.0 * hits_strict / ev.num_sources
    return ev


# ================================================================================================ files
def read_smiles_file(path: str | os.PathLike) -> list[str]:
    """One SMILES per line (first whitespace-separated token; blank lines and a ``smiles`` header skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMILES file not found: {path}")
    out = []
    with open(path, encoding="utf-8") as f:
        for k, line in enumerate(f):
            token = line.split()[0] if line.split() else ""
            if not token or (k == 0 and token.lower() == "smiles"):
                continue
            out.append(token)
    return out


def edit_records(
    output: FineMolTexEditOutput, criterion: FineMolTexEditCriterion | None
) -> list[dict]:
    """Flat rows (one per source and lambda; one per invalid or unedited source) with scores and the properties the
    instruction is about, before and after, and whether the edit succeeds (None: not evaluable)."""
    rows = []
    for r in output.results:
        base = {
            "instruction": output.instruction,
            "prompt_id": getattr(criterion, "prompt_id", None),
            "evaluable": bool(criterion is not None and criterion.evaluable),
            "index": r.index,
            "source": r.source,
            "status": r.status,
            "message": r.message,
        }
        if r.status != "edited":
            rows.append({**base, "lambda": None, "edited": None})
            continue
        source_props = (criterion.properties(r.canonical_source) if criterion is not None
                        else molecule_descriptors(r.canonical_source, EDIT_DESCRIPTORS))
        for lam, e in r.edits.items():
            row = {**base, "canonical_source": r.canonical_source, "lambda": lam, "edited": None if e is None else e.smiles}
            if e is not None:
                edited_props = (criterion.properties(e.smiles) if criterion is not None
                                else molecule_descriptors(e.smiles, EDIT_DESCRIPTORS))
                row.update(score=e.score, text_similarity=e.text_similarity, tanimoto_to_source=e.source_similarity,
                           steps=" | ".join(e.steps))
                row.update({f"source_{k}": v for k, v in source_props.items()})
                row.update({f"edited_{k}": v for k, v in edited_props.items()})
                if criterion is not None:
                    row["success_loose"] = criterion.holds(r.canonical_source, e.smiles, "loose")
                    row["success_strict"] = criterion.holds(r.canonical_source, e.smiles, "strict")
            rows.append(row)
    return rows


def edit_molecules(
    smiles: Sequence[str],
    instructions: Sequence[str],
    editor: FineMolTexMoleculeEditor,
    criteria: dict[str, FineMolTexEditCriterion] | None = None,
) -> dict:
    """Edit every molecule towards every instruction -> ``{"rows": [...], "summary": [...]}`` (see `edit_records`).

    Raises `ValueError` naming the index of an empty instruction before any work. Instructions the criteria do not
    know are edited anyway and marked ``evaluable: False``.
    """
    if isinstance(instructions, str):
        instructions = [instructions]
    instructions = [_check_instruction(t, f" at index {k}") for k, t in enumerate(instructions)]
    if not instructions:
        raise ValueError("No instruction given.")
    rows, summary = [], []
    for text in instructions:
        output = editor.edit(smiles, text)
        criterion = find_criterion(text, criteria)
        ev = evaluate_edits(output, criterion)
        rows.extend(edit_records(output, criterion))
        summary.append({
            "instruction": text,
            "prompt_id": ev.prompt_id,
            "evaluable": ev.evaluable,
            "reason": ev.reason,
            "num_sources": len(output.results),
            "num_invalid_sources": output.num_invalid_sources,
            "num_no_edit": output.num_no_edit,
            "num_invalid_proposals": output.num_invalid_proposals,
            "hit_ratio_loose": ev.hit_ratio_loose,
            "hit_ratio_strict": ev.hit_ratio_strict,
            "seconds": output.seconds,
        })
    return {"rows": rows, "summary": summary}


def write_edit_results(result: dict, path: str | os.PathLike, settings: dict | None = None) -> Path:
    """Write `edit_molecules` output: ``.json`` (rows, summary, settings) or ``.csv`` (the rows)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        columns = list(dict.fromkeys(k for row in result["rows"] for k in row))
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(result["rows"])
    elif path.suffix.lower() == ".json":
        payload = {"settings": settings or {}, "summary": result["summary"], "rows": result["rows"]}
        path.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    else:
        raise ValueError(f"Output file must end in .json or .csv, got {path}")
    return path


__all__ = [
    "DEFAULT_LAMBDAS",
    "FineMolTexEditCandidate",
    "FineMolTexEditCriterion",
    "FineMolTexEditEvaluation",
    "FineMolTexEditGenerator",
    "FineMolTexEditOutput",
    "FineMolTexEditProposal",
    "FineMolTexEditResult",
    "FineMolTexEditScorer",
    "FineMolTexModelScorer",
    "FineMolTexMoleculeEditor",
    "FineMolTexMotifEditGenerator",
    "FineMolTexMotifFragment",
    "FineMolTexMotifLibrary",
    "FineMolTexRandomScorer",
    "edit_molecules",
    "edit_records",
    "evaluate_edits",
    "find_criterion",
    "load_edit_criteria",
    "read_smiles_file",
    "write_edit_results",
]
