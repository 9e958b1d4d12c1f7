# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Chemistry of single molecules with RDKit: SMILES parsing and its errors, the per-molecule atom/bond arrays the
featurisers and the motif decomposition share, data-set helpers (canonical SMILES, InChIKey, Bemis–Murcko
scaffolds, scaffold and random splits), Morgan fingerprints (bits and counts) and Tanimoto similarity, RDKit descriptors and
substructure counts.

RDKit is imported only by the chemistry modules: this one, `features_finemoltex` and `motifs_finemoltex`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdqueries

RDLogger.DisableLog("rdApp.*")



# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


class MoleculeParseError(ValueError):
    """A SMILES that RDKit cannot turn into a molecule."""


class MoleculeTooLargeError(MoleculeParseError):
    """A SMILES with more atoms than the limit (``max_atoms``); raised before RDKit sees it."""


#: Default cap on atoms per molecule (see `count_atoms`): far above drugs (< 100), natural products and
#: ChEBI-20 (largest: 574) and 85-residue peptides (~430), far below where RDKit's recursive SMILES writer
#: overflows the C stack (a 20,000-atom chain) or ring perception and canonical ranking take seconds.
DEFAULT_MAX_ATOMS = 1000
_DISPLAY_CHARS = 80
# one written atom: a bracket atom, a two-letter organic-subset symbol, or a one-letter one (aromatic too)
# (a bracket stops at the next "[" too: "[" * 20000 must not cost a quadratic backtracking scan)
_WRITTEN_ATOM = re.compile(r"\[[^\[\]]*\]|Cl|Br|[BCNOPSFIbcnops*]")
_NOT_SMILES_CHAR = re.compile(r"[^!-~]")  # anything but printable ASCII without space


def shorten(value, limit: int = _DISPLAY_CHARS) -> str:
    """``repr(value)`` for error messages, cut to about ``limit`` characters (long inputs must not be echoed)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: limit - 20]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit + 20 else text[:limit] + f"… ({len(text):,} characters)"


def count_atoms(smiles: str) -> int:
    """Atoms written in a SMILES string (bracket atoms, organic-subset atoms and ``*``; implicit hydrogens not
    counted), from the text alone: cheap, and equal to RDKit's atom count for a valid SMILES without explicit
    ``[H]`` (those count here; RDKit removes them)."""
    return len(_WRITTEN_ATOM.findall(smiles))


def _check_smiles_text(smiles, where: str, max_atoms: int | None) -> str:
    """The stripped SMILES, or a `MoleculeParseError` for what RDKit would silently misread or choke on."""
    if not isinstance(smiles, str):
        raise MoleculeParseError(f"SMILES{where} must be a string, got {type(smiles).__name__}: {shorten(smiles)}")
    text = smiles.strip()
    if not text:
        raise MoleculeParseError(f"Empty SMILES{where}: {shorten(smiles)}")
    # SMILES is printable ASCII without spaces. RDKit stops at the first space or tab and reads the rest as the
    # molecule's name, so "CC O" would quietly be ethane; non-ASCII text (lone surrogates included) cannot even
    # be handed to RDKit. Refuse them all, naming the first offending character.
    bad = _NOT_SMILES_CHAR.search(text)
    if bad is not None:
        position, char = bad.start(), bad.group()
        raise MoleculeParseError(
            f"Invalid SMILES{where}: {shorten(smiles)} has {char!r} at position {position}; a SMILES is printable "
            "ASCII without spaces (RDKit would read only the part before it)"
        )
    if max_atoms is not None:
        atoms = count_atoms(text)
        if atoms > max_atoms:
            raise MoleculeTooLargeError(
                f"SMILES{where} has {atoms:,} atoms, more than the limit of {max_atoms:,} (max_atoms): "
                f"{shorten(smiles)}"
            )
    return text


def parse_smiles(smiles, index: int | None = None, max_atoms: int | None = DEFAULT_MAX_ATOMS) -> Chem.Mol:
    """Parse and sanitise one SMILES, raising a `MoleculeParseError` that names it (and its index).

    The string is checked before RDKit sees it: printable ASCII without inner whitespace (RDKit would silently
    drop what follows a space), and at most ``max_atoms`` atoms (`count_atoms`; `MoleculeTooLargeError`,
    ``None``: no limit), which bounds the work per molecule.
    """
    where = f" at index {index}" if index is not None else ""
    text = _check_smiles_text(smiles, where, max_atoms)
    # exactly what MolFromSmiles gives (sanitised, explicit [H] removed, stereo cleaned up) ...
    mol = Chem.MolFromSmiles(text)
    if mol is None:
        # ... and, when it fails, parse again step by step only to say why
        mol = Chem.MolFromSmiles(text, sanitize=False)
        if mol is None:
            raise MoleculeParseError(f"Invalid SMILES{where}: {shorten(smiles)} is not valid SMILES syntax")
        try:
            Chem.SanitizeMol(mol)
            reason = "rejected by RDKit"
        except Exception as err:  # several exception types (KekulizeException, AtomValenceException…)
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoleculeParseError(f"Invalid SMILES{where}: {shorten(smiles)} ({reason})")
    if mol.GetNumAtoms() == 0:
        raise MoleculeParseError(f"SMILES{where} has no heavy atoms: {shorten(smiles)}")
    return mol


_PARSE_ATOM_BUDGET = 4096  # atoms parsed and held at once by the batch methods (see `_atom_chunks`)


def _atom_chunks(smiles: Sequence, budget: int = _PARSE_ATOM_BUDGET) -> Iterable[tuple[int, int]]:
    """(start, stop) slices of ``smiles`` holding at most ``budget`` atoms each (`count_atoms`; at least one item).

    RDKit molecules can be large in memory (a parsed 1,000-atom ring holds ~40 MB of ring data), so the batch
    methods parse and encode a slice at a time instead of holding every molecule of a batch at once (a slice of
    ~130 drug-like molecules still feeds the vectorised path well).
    """
    start, atoms = 0, 0
    for i, s in enumerate(smiles):
        n = count_atoms(s) if isinstance(s, str) else 0
        if i > start and atoms + n > budget:
            yield start, i
            start, atoms = i, 0
        atoms += n
    if start < len(smiles):
        yield start, len(smiles)


def _parse_many(
    smiles: Sequence[str],
    ignore_errors: bool,
    errors: dict[int, str] | None = None,
    max_atoms: int | None = DEFAULT_MAX_ATOMS,
    offset: int = 0,
):
    """`parse_smiles` over a batch -> (molecules, stripped strings, kept indices). A failure raises unless
    ``ignore_errors``; then it is skipped, and its message stored in ``errors`` (keyed by index) if given.
    Indices (in messages too) count from ``offset``."""
    mols, texts, kept = [], [], []
    for i, s in enumerate(smiles, start=offset):
        try:
            mols.append(parse_smiles(s, index=i, max_atoms=max_atoms))
        except MoleculeParseError as err:
            if not ignore_errors:
                raise
            if errors is not None:
                errors[i] = str(err)
            continue
        texts.append(s.strip())
        kept.append(i)
    return mols, texts, kept


# --------------------------------------------------------------------------------------------------
# Atom and bond arrays of a parsed molecule
# --------------------------------------------------------------------------------------------------

_DENSE_LIMIT = 1500  # atoms; beyond this, bonds are read one by one instead of as a dense n x n matrix
_CHARGED = Chem.MolFromSmarts("[!+0]")
_HETERO = Chem.MolFromSmarts("[!#6]")
_RING_BOND = Chem.MolFromSmarts("*@*")
_CHIRAL = rdqueries.HasChiralTagQueryAtom()
_ORDER_OF_TYPE = {Chem.BondType.SINGLE: 1.0, Chem.BondType.DOUBLE: 2.0, Chem.BondType.TRIPLE: 3.0, Chem.BondType.AROMATIC: 1.5}


@dataclass
class _Molecule:
    """Per-molecule arrays shared by featurisation and decomposition (bonds as i < j pairs)."""

    mol: Chem.Mol
    smiles: str
    atomic_num: np.ndarray  # (n,)
    charge: np.ndarray  # (n,)
    begin: np.ndarray  # (e,)
    end: np.ndarray  # (e,)
    order: np.ndarray  # (e,) float: 1, 2, 3, aromatic 1.5, other -1
    regular: bool  # bonds came from the dense adjacency matrix (no dative/unusual bonds)
    ranks: np.ndarray  # (n,) canonical atom ranks
    in_ring: np.ndarray  # (n,) bool
    ring_bond: np.ndarray  # (e,) bool
    degree: np.ndarray  # (n,) heavy-atom neighbours
    aromatic: np.ndarray  # (n,) bool: atom has an aromatic bond


def _describe(mol, smiles: str) -> _Molecule:
    n = mol.GetNumAtoms()
    # one substructure search finds the hetero atoms; asking every atom for its element costs ~5x more
    atomic_num = np.full(n, 6, dtype=np.int64)
    for (i,) in mol.GetSubstructMatches(_HETERO, maxMatches=n + 1):
        atomic_num[i] = mol.GetAtomWithIdx(i).GetAtomicNum()
    # one substructure search finds the (few) charged atoms, cheaper than asking every atom; it also
    # catches charges that sanitisation creates (nitro groups) and the SMILES does not show
    charge = np.zeros(n, dtype=np.int64)
    for (i,) in mol.GetSubstructMatches(_CHARGED, maxMatches=n + 1):
        charge[i] = mol.GetAtomWithIdx(i).GetFormalCharge()
    regular = n <= _DENSE_LIMIT and not any(c in smiles for c in "$<>")
    begin = end = order = None
    if regular:
        adj = Chem.GetAdjacencyMatrix(mol, useBO=True, force=True)
        begin, end = np.nonzero(adj)
        upper = begin < end
        begin, end = begin[upper], end[upper]
        regular = len(begin) == mol.GetNumBonds()
        order = adj[begin, end]
    if not regular:
        pairs = []
        for bond in mol.GetBonds():
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            pairs.append((min(i, j), max(i, j), _ORDER_OF_TYPE.get(bond.GetBondType(), -1.0)))
        pairs.sort()
        arr = np.array(pairs, dtype=np.float64).reshape(-1, 3)
        begin, end, order = arr[:, 0], arr[:, 1], arr[:, 2]
    begin = begin.astype(np.int64)
    end = end.astype(np.int64)
    ranks = Chem.CanonicalRankAtoms(mol, breakTies=True)
    ranks = np.fromiter(map(ranks.__getitem__, range(n)), np.int64, n)  # skips RDKit's slow Python iterator
    # ring bonds from one substructure search (RDKit's ring perception), looked up through a sorted code array
    ring_pairs = np.asarray(mol.GetSubstructMatches(_RING_BOND, maxMatches=1 << 30), dtype=np.int64).reshape(-1, 2)
    in_ring = np.zeros(n, dtype=bool)
    if len(ring_pairs):
        in_ring[ring_pairs.reshape(-1)] = True
        if regular:  # a dense ring-bond matrix next to the dense adjacency we already have
            ring_matrix = np.zeros((n, n), dtype=bool)
            ring_matrix[ring_pairs[:, 0], ring_pairs[:, 1]] = True
            ring_bond = ring_matrix[begin, end] | ring_matrix[end, begin]
        else:
            codes = np.sort(ring_pairs.min(1) * n + ring_pairs.max(1))
            bond_codes = begin * n + end
            at = np.minimum(np.searchsorted(codes, bond_codes), len(codes) - 1)
            ring_bond = codes[at] == bond_codes
    else:
        ring_bond = np.zeros(len(begin), dtype=bool)
    degree = np.bincount(begin, minlength=n) + np.bincount(end, minlength=n)
    aromatic = np.zeros(n, dtype=bool)
    is_aromatic_bond = order == 1.5
    aromatic[begin[is_aromatic_bond]] = True
    aromatic[end[is_aromatic_bond]] = True
    return _Molecule(
        mol, smiles, atomic_num, charge, begin, end, order, regular, ranks, in_ring, ring_bond, degree, aromatic
    )


# --------------------------------------------------------------------------------------------------
# Dataset helpers (used by datasets_scripts/: canonical SMILES, InChIKey, Bemis–Murcko scaffold split).
# --------------------------------------------------------------------------------------------------


def _dataset_mol(smiles) -> Chem.Mol:
    """`parse_smiles` + what ``Chem.MolFromSmiles`` does on top of sanitising: explicit ``[H]`` atoms removed and
    stereo perceived (so canonical SMILES, InChIKeys and scaffolds equal those of ``MolFromSmiles``)."""
    mol = parse_smiles(smiles)
    try:
        mol = Chem.RemoveHs(mol)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoleculeParseError(f"Invalid SMILES: {smiles!r} ({reason})") from None
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    return mol


def canonical_smiles(smiles) -> str:
    """RDKit's isomeric canonical SMILES of ``smiles`` (stereo kept; same string as ``MolFromSmiles`` +
    ``MolToSmiles``).

    Raises `MoleculeParseError` (via `parse_smiles`) when the SMILES is empty or does not parse/sanitise.
    """
    return Chem.MolToSmiles(_dataset_mol(smiles), isomericSmiles=True, canonical=True)


def inchikey(smiles) -> str | None:
    """Standard InChIKey of ``smiles``, or ``None`` when InChI cannot represent the molecule (e.g. ``*`` atoms).

    Raises `MoleculeParseError` when the SMILES does not parse.
    """
    mol = _dataset_mol(smiles)
    try:
        key = Chem.MolToInchiKey(mol)
    except Exception:  # InChI raises on a few exotic inputs; treat like "no key"
        key = ""
    return key or None


def murcko_scaffold(smiles, include_chirality: bool = True) -> str:
    """Bemis–Murcko scaffold SMILES of ``smiles`` (``""`` for acyclic molecules), as Hu et al. 2020.

    The scaffold is computed from the parsed molecule (as ``MolFromSmiles`` gives it); ``include_chirality`` keeps stereo in
    the scaffold SMILES, the setting of Hu et al. 2020 / MoleculeSTM / FineMolTex.
    """
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return MurckoScaffold.MurckoScaffoldSmiles(mol=_dataset_mol(smiles), includeChirality=include_chirality)


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    fractions = [float(f) for f in fractions]
    if not fractions or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"Split fractions must be non-negative and sum to 1, got {fractions}")
    return fractions


def scaffold_split(
    smiles_list: Sequence[str], frac_train: float = 0.8, frac_valid: float = 0.1, frac_test: float = 0.1
) -> tuple[list[int], list[int], list[int]]:
    """Deterministic Bemis–Murcko scaffold split (Hu et al. 2020, as used by MoleculeSTM and FineMolTex).

    Molecules are grouped by `murcko_scaffold` (with chirality); groups are sorted by
    ``(size, first index)`` descending exactly as Hu et al.'s ``sorted(..., reverse=True)``: largest first,
    and among groups of equal size the one whose first member comes *later* goes first. (That tie rule
    matters for membership, not sizes; it is the one that reproduces the ECFP4 baselines of
    BENCHMARKS.md.) A whole group goes to train while
    ``len(train) + len(group) <= frac_train * N``, else to valid while
    ``len(train) + len(valid) + len(group) <= (frac_train + frac_valid) * N``, else to test.
    Returns sorted index lists ``(train_idx, valid_idx, test_idx)``. Raises `MoleculeParseError` (naming the
    index) for a SMILES that does not parse: drop those first.
    """
    _check_fractions([frac_train, frac_valid, frac_test])
    groups: dict[str, list[int]] = {}
    for i, smiles in enumerate(smiles_list):
        try:
            scaffold = murcko_scaffold(smiles, include_chirality=True)
        except MoleculeParseError as err:
            raise MoleculeParseError(f"scaffold_split: molecule at index {i}: {err}") from None
        groups.setdefault(scaffold, []).append(i)
    n = len(smiles_list)
    train_cutoff = frac_train * n
    valid_cutoff = (frac_train + frac_valid) * n
    ordered = sorted(groups.values(), key=lambda g: (len(g), g[0]), reverse=True)
    train_idx: list[int] = []
    valid_idx: list[int] = []
    test_idx: list[int] = []
    for group in ordered:
        if len(train_idx) + len(group) <= train_cutoff:
            train_idx.extend(group)
        elif len(train_idx) + len(valid_idx) + len(group) <= valid_cutoff:
            valid_idx.extend(group)
        else:
            test_idx.extend(group)
    return sorted(train_idx), sorted(valid_idx), sorted(test_idx)


def random_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 42) -> tuple[list[int], ...]:
    """Random split of ``range(n)`` into ``len(fractions)`` parts, reproducible from ``seed``.

    Same membership as Hu et al. 2020's ``random_split`` for three fractions (``random.seed(seed)``,
    ``random.shuffle``, cut points ``int(frac * n)`` summed; the last part takes the remainder), without
    touching the global random state. Returns sorted index lists.
    """
    import random

    fractions = _check_fractions(fractions)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    parts, start = [], 0
    for k, frac in enumerate(fractions):
        stop = n if k == len(fractions) - 1 else start + int(frac * n)
        parts.append(sorted(order[start:stop]))
        start = stop
    return tuple(parts)


# --------------------------------------------------------------------------------------------------
# Similarity, descriptors and substructure counts (the MoleculeSTM / FineMolTex editing criteria)
# --------------------------------------------------------------------------------------------------

_EDIT_CACHE_LIMIT = 200_000
_FINGERPRINT_CACHE: dict = {}


def molecule_bonds(smiles: str) -> list[tuple[int, int, float]]:
    """Bonds of ``smiles`` as ``(i, j, order)`` with ``i < j`` (order 1, 1.5, 2, 3), atoms numbered as
    ``Chem.MolFromSmiles`` does. Raises `MoleculeParseError`."""
    mol = parse_smiles(smiles)
    out = []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        out.append((min(i, j), max(i, j), float(bond.GetBondTypeAsDouble())))
    return sorted(out)


def is_valid_smiles(smiles) -> bool:
    """True iff ``smiles`` is a non-empty string RDKit parses and sanitises into a molecule with atoms."""
    try:
        parse_smiles(smiles)
    except MoleculeParseError:
        return False
    return True


_MORGAN_GENERATOR = None


def morgan_fingerprint(smiles: str):
    """Morgan fingerprint, radius 2, 1024 bits (the bits of ``AllChem.GetMorganFingerprintAsBitVect(mol, 2,
    nBits=1024)``, MoleculeSTM's editing similarity), cached by SMILES. Raises `MoleculeParseError`."""
    global _MORGAN_GENERATOR
    fp = _FINGERPRINT_CACHE.get(smiles)
    if fp is None:
        if _MORGAN_GENERATOR is None:
            from rdkit.Chem import rdFingerprintGenerator

            _MORGAN_GENERATOR = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
        fp = _MORGAN_GENERATOR.GetFingerprint(parse_smiles(smiles))
        if len(_FINGERPRINT_CACHE) >= _EDIT_CACHE_LIMIT:
            _FINGERPRINT_CACHE.clear()
        _FINGERPRINT_CACHE[smiles] = fp
    return fp


def morgan_count_fingerprints(
    smiles: Sequence[str], radius: int = 2, size: int = 2048, ignore_errors: bool = False
) -> tuple[np.ndarray, list[int]]:
    """Hashed Morgan *count* fingerprints (ECFP4 counts for radius 2) of a batch -> (counts float32 (N_kept, size),
    kept indices). Unparsable SMILES raise `MoleculeParseError`, or with ``ignore_errors`` are left out of the
    kept indices (row r belongs to ``smiles[kept[r]]``)."""
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=size)
    mols, _, kept = _parse_many(smiles, ignore_errors)
    out = np.zeros((len(mols), size), dtype=np.float32)
    for row, mol in enumerate(mols):
        out[row] = generator.GetCountFingerprintAsNumPy(mol)
    return out, kept


def tanimoto_similarity(reference: str, smiles: Sequence[str]) -> np.ndarray:
    """Tanimoto similarity of Morgan fingerprints (`morgan_fingerprint`) of ``reference`` to each of ``smiles``
    -> float64 (len(smiles),). Raises `MoleculeParseError` naming an unparsable SMILES."""
    from rdkit import DataStructs

    ref = morgan_fingerprint(reference)
    fps = [morgan_fingerprint(s) for s in smiles]
    return np.asarray(DataStructs.BulkTanimotoSimilarity(ref, fps), dtype=np.float64)


#: RDKit descriptors the editing criteria use, by the names MoleculeSTM / ChatDrug give them.
EDIT_DESCRIPTORS = ("MolLogP", "qed", "TPSA", "NumHAcceptors", "NumHDonors")


def molecule_descriptors(smiles: str, names: Sequence[str] = EDIT_DESCRIPTORS) -> dict[str, float]:
    """RDKit descriptors of one molecule (``rdkit.Chem.Descriptors`` functions by name) -> {name: value}.

    Raises `ValueError` for an unknown descriptor name and `MoleculeParseError` for an unparsable SMILES.
    """
    from rdkit.Chem import Descriptors

    mol = parse_smiles(smiles)
    out = {}
    for name in names:
        fn = getattr(Descriptors, name, None)
        if fn is None or not callable(fn):
            raise ValueError(f"Unknown RDKit descriptor {name!r}")
        out[name] = float(fn(mol))
    return out


@lru_cache(maxsize=256)
def _smarts(smarts: str) -> Chem.Mol:
    pattern = Chem.MolFromSmarts(smarts)
    if pattern is None:
        raise ValueError(f"Invalid SMARTS pattern {smarts!r}")
    return pattern


def count_substructure(smiles: str, smarts: str) -> int:
    """Number of (unique) matches of the SMARTS ``smarts`` in the molecule ``smiles``."""
    return len(parse_smiles(smiles).GetSubstructMatches(_smarts(smarts), maxMatches=1 << 16))


def count_fragments(smiles: str, names: Sequence[str]) -> dict[str, int]:
    """RDKit functional-group counters (``rdkit.Chem.Fragments.fr_*`` by name) -> {name: count}."""
    from rdkit.Chem import Fragments

    mol = parse_smiles(smiles)
    out = {}
    for name in names:
        fn = getattr(Fragments, name, None)
        if fn is None or not name.startswith("fr_"):
            raise ValueError(f"Unknown RDKit fragment counter {name!r}")
        out[name] = int(fn(mol))
    return out


__all__ = [
    "DEFAULT_MAX_ATOMS",
    "EDIT_DESCRIPTORS",
    "MoleculeParseError",
    "MoleculeTooLargeError",
    "canonical_smiles",
    "count_atoms",
    "count_fragments",
    "count_substructure",
    "inchikey",
    "is_valid_smiles",
    "molecule_bonds",
    "molecule_descriptors",
    "morgan_count_fingerprints",
    "morgan_fingerprint",
    "murcko_scaffold",
    "parse_smiles",
    "random_split",
    "scaffold_split",
    "tanimoto_similarity",
]
