# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Molecule side of FineMolTex: SMILES -> atom/bond graph + motifs (the only module that imports RDKit).

Motif decomposition follows the rules FineMolTex states (Li et al. 2024, arXiv 2409.14106, after MGSSL,
Zhang et al. 2021): cut BRICS bonds, cut every bond between a ring atom and a non-ring atom, make every
non-ring atom with more than two heavy neighbours a motif of its own, and take the connected pieces
left as motifs. When that cuts at most one bond, fall back to a junction-tree decomposition (Jin et al.
2018): SSSR rings (merged when they share more than two atoms), non-ring bonds and singleton junction
atoms, joined by a maximum spanning tree. Unlike the authors' code, the result depends only on the
molecule, never on how its SMILES was written: every choice is made in canonical atom order.

A motif's identity is the canonical Kekulé SMILES of its fragment without stereo, isotopes or explicit
hydrogens (hydrogens follow from default valences; stereo lives in the atom features), the form the
authors' vocabulary uses.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import re
import warnings
from functools import partial
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import BRICS, rdqueries
from transformers import PreTrainedTokenizer
from transformers.tokenization_utils_base import BatchEncoding

logger = logging.getLogger(__name__)

RDLogger.DisableLog("rdApp.*")

# --------------------------------------------------------------------------------------------------
# Features. Every feature is a categorical index; the last index of each list is "other".
# --------------------------------------------------------------------------------------------------

_CHIRALITY = {
    Chem.ChiralType.CHI_UNSPECIFIED: 0,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW: 2,
}
_BOND_TYPE = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}
_BOND_DIR = {Chem.BondDir.NONE: 0, Chem.BondDir.ENDUPRIGHT: 1, Chem.BondDir.ENDDOWNRIGHT: 2}
_HYBRIDISATION = {
    Chem.HybridizationType.S: 0,
    Chem.HybridizationType.SP: 1,
    Chem.HybridizationType.SP2: 2,
    Chem.HybridizationType.SP3: 3,
    Chem.HybridizationType.SP3D: 4,
    Chem.HybridizationType.SP3D2: 5,
}

#: Names and vocabulary sizes of the atom and bond features of each feature set. Sizes include the
#: trailing "other" bucket; atomic number 0 is RDKit's dummy atom ``*``.
FEATURE_SETS = {
    # MoleculeSTM / FineMolTex: atomic number + chirality tag; bond type + bond direction.
    "reference": {
        "atom": {"atomic_num": 119, "chirality": 4},
        "bond": {"bond_type": 5, "bond_dir": 4},
    },
    "rich": {
        "atom": {
            "atomic_num": 119,
            "chirality": 4,
            "formal_charge": 11,  # -5..+5, clipped
            "is_aromatic": 2,
            "hybridisation": 7,
            "degree": 11,  # 0..9, 10 = more
            "total_num_hs": 9,  # 0..7, 8 = more
            "is_in_ring": 2,
        },
        "bond": {"bond_type": 5, "bond_dir": 4, "is_conjugated": 2, "is_in_ring": 2},
    },
}


def feature_sizes(feature_set: str = "reference") -> tuple[list[int], list[int]]:
    """Vocabulary sizes of the atom and bond feature columns of ``feature_set``."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"Unknown feature_set {feature_set!r}; choose one of {sorted(FEATURE_SETS)}.")
    spec = FEATURE_SETS[feature_set]
    return list(spec["atom"].values()), list(spec["bond"].values())


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


# --------------------------------------------------------------------------------------------------
# BRICS bonds (Degen et al. 2008) with RDKit's environment definitions (``BRICS.environs``/``reactionDefs``),
# evaluated for all atoms at once from neighbour counts instead of one substructure search per environment.
# --------------------------------------------------------------------------------------------------

# environments in the order L1, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15, L16
_BRICS_ENV_NAMES = ("1", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16")


def _brics_pair_tables() -> dict[str, np.ndarray]:
    index = {name: k for k, name in enumerate(_BRICS_ENV_NAMES)}
    tables = {bond: np.zeros((len(index), len(index)), dtype=np.int64) for bond in "-="}
    for group in BRICS.reactionDefs:
        for a, b, bond in group:
            a, b = index[a.rstrip("ab")], index[b.rstrip("ab")]
            tables[bond][a, b] = tables[bond][b, a] = 1
    return tables


_BRICS_PAIR_TABLES = _brics_pair_tables()


def _brics_env_labels(atomic_num, charge, aromatic, in_ring, degree, begin, end, order, ring_bond) -> np.ndarray:
    """(N, 15) bool: the BRICS environments (RDKit's ``BRICS.environs``) whose head atom each atom matches.

    Each environment SMARTS is written out as neighbour counts over all bonds of the batch at once; the tests
    compare every environment with RDKit's own substructure matches. SMARTS reminders: ``C``/``c`` aliphatic/
    aromatic carbon, ``D`` explicit degree, ``R`` in a ring, ``@`` ring bond, a bond without symbol means
    single or aromatic, and the atoms of one pattern are distinct (hence the ``a + b >= 2`` counts).
    """
    n = len(atomic_num)
    src, dst = np.concatenate([begin, end]), np.concatenate([end, begin])
    bond_order = np.concatenate([order, order])
    ring = np.concatenate([ring_bond, ring_bond])
    z_nb, aromatic_nb = atomic_num[dst], aromatic[dst]
    single, double, aromatic_bond = bond_order == 1.0, bond_order == 2.0, bond_order == 1.5
    single_or_aromatic = single | aromatic_bond

    def count(mask):
        return np.bincount(src[mask], minlength=n)

    z, aliphatic = atomic_num, ~aromatic
    C, N, O, S = ((z == e) & aliphatic for e in (6, 7, 8, 16))
    c = (z == 6) & aromatic
    nb_C = (z_nb == 6) & ~aromatic_nb
    nb_NOS = ((z_nb == 7) | (z_nb == 8) | (z_nb == 16)) & ~aromatic_nb
    nb_c = (z_nb == 6) & aromatic_nb
    nb_nos = ((z_nb == 7) | (z_nb == 8) | (z_nb == 16)) & aromatic_nb
    nb_C_or_dummy = (z_nb == 6) | (z_nb == 0)  # any aromaticity
    nb_CNO_or_dummy = nb_C_or_dummy | (z_nb == 7) | (z_nb == 8)
    double_O = count(double & (z_nb == 8) & ~aromatic_nb)
    has_double = count(double) > 0
    carbonyl_C = C & (double_O > 0)
    acyclic_single = single & ~ring
    labels = np.zeros((n, len(_BRICS_ENV_NAMES)), dtype=bool)
    # L1 [C;D3]([#0,#6,#7,#8])(=O)
    labels[:, 0] = C & (degree == 3) & (count(single_or_aromatic & nb_CNO_or_dummy) > 0) & (double_O > 0)
    # L3 [O;D2]-;!@[#0,#6,#1]
    labels[:, 1] = O & (degree == 2) & (count(acyclic_single & (nb_C_or_dummy | (z_nb == 1))) > 0)
    # L4 [C;!D1;!$(C=*)]-;!@[#6]
    labels[:, 2] = C & (degree != 1) & ~has_double & (count(acyclic_single & (z_nb == 6)) > 0)
    # L5 [N;!D1;!$(N=*);!$(N-[!#6;!#16;!#0;!#1]);!$([N;R]@[C;R]=O)]
    other_single_nb = count(single & ~(nb_C_or_dummy | (z_nb == 1) | (z_nb == 16))) > 0
    ring_carbonyl_nb = count(ring & (carbonyl_C & in_ring)[dst]) > 0
    labels[:, 3] = N & (degree != 1) & ~has_double & ~other_single_nb & ~(in_ring & ring_carbonyl_nb)
    # L6 [C;D3;!R](=O)-;!@[#0,#6,#7,#8]
    labels[:, 4] = (
        C & (degree == 3) & ~in_ring & (double_O > 0) & (count(acyclic_single & nb_CNO_or_dummy) > 0)
    )
    # L7 [C;D2,D3]-[#6]
    labels[:, 5] = C & ((degree == 2) | (degree == 3)) & (count(single & (z_nb == 6)) > 0)
    # L8 [C;!R;!D1;!$(C!-*)]
    labels[:, 6] = C & ~in_ring & (degree != 1) & (count(~single) == 0)
    # L9 [n;+0;$(n(:[c,n,o,s]):[c,n,o,s])]
    labels[:, 7] = (z == 7) & aromatic & (charge == 0) & (count(aromatic_bond & (nb_c | nb_nos)) >= 2)
    # L10 [N;R;$(N(@C(=O))@[C,N,O,S])]: a ring-bonded carbonyl C and a second ring-bonded C/N/O/S
    labels[:, 8] = N & in_ring & (count(ring & carbonyl_C[dst]) >= 1) & (count(ring & (nb_C | nb_NOS)) >= 2)
    # L11 [S;D2](-;!@[#0,#6])
    labels[:, 9] = S & (degree == 2) & (count(acyclic_single & nb_C_or_dummy) > 0)
    # L12 [S;D4]([#6,#0])(=O)(=O)
    labels[:, 10] = S & (degree == 4) & (count(single_or_aromatic & nb_C_or_dummy) > 0) & (double_O >= 2)
    # L13 [C;$(C(-;@[C,N,O,S])-;@[N,O,S])]; L15 [C;$(C(-;@C)-;@C)]
    ring_single_NOS, ring_single_C = count(single & ring & nb_NOS), count(single & ring & nb_C)
    labels[:, 11] = C & (ring_single_NOS >= 1) & (ring_single_NOS + ring_single_C >= 2)
    labels[:, 13] = C & (ring_single_C >= 2)
    # L14 [c;$(c(:[c,n,o,s]):[n,o,s])]; L16 [c;$(c(:c):c)]
    aromatic_nos, aromatic_c = count(aromatic_bond & nb_nos), count(aromatic_bond & nb_c)
    labels[:, 12] = c & (aromatic_nos >= 1) & (aromatic_nos + aromatic_c >= 2)
    labels[:, 14] = c & (aromatic_c >= 2)
    return labels


def _pair_is_brics(labels: np.ndarray, i: np.ndarray, j: np.ndarray, bond: str) -> np.ndarray:
    """For bonds (i, j) of one type, whether some BRICS rule pairs an environment of i with one of j."""
    if not len(i):
        return np.zeros(0, dtype=bool)
    return ((labels[i].astype(np.int64) @ _BRICS_PAIR_TABLES[bond]) * labels[j]).sum(1) > 0


# --------------------------------------------------------------------------------------------------
# Motif identity
# --------------------------------------------------------------------------------------------------

_KEKULE_BOND = {2: Chem.BondType.SINGLE, 4: Chem.BondType.DOUBLE, 6: Chem.BondType.TRIPLE}
_MOTIF_CACHE: dict = {}
_KEKULE_CACHE: dict = {}  # canonical aromatic SMILES -> Kekulé motif SMILES
_MOTIF_CACHE_LIMIT = 200_000
_CHARGE_OFFSET = 32  # atom code = atomic_num * 64 + charge + 32
_AROMATIC_ATOM = Chem.MolFromSmarts("a")


def _motif_smiles_from_graph(atoms: Sequence[tuple[int, int]], bonds: Sequence[tuple[int, int, int]]) -> str:
    """Canonical Kekulé SMILES of a fragment: (atomic number, charge) atoms, (i, j, 2 * Kekulé order) bonds.

    Hydrogens follow from default valences, as when a fragment is cut out and re-sanitised.
    """
    rw = Chem.RWMol()
    for atomic_num, charge in atoms:
        atom = Chem.Atom(int(atomic_num))
        atom.SetFormalCharge(int(charge))
        rw.AddAtom(atom)
    for i, j, order2 in bonds:
        rw.AddBond(int(i), int(j), _KEKULE_BOND.get(int(order2), Chem.BondType.SINGLE))
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
        if not mol.HasSubstructMatch(_AROMATIC_ATOM):
            return Chem.MolToSmiles(mol, isomericSmiles=False, kekuleSmiles=True)
        return _kekule_of_aromatic(Chem.MolToSmiles(mol, isomericSmiles=False))
    except Exception:
        # Fragments RDKit cannot sanitise on their own (unusual valences): canonical SMILES as drawn.
        mol = rw.GetMol()
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)
        return Chem.MolToSmiles(mol, isomericSmiles=False, kekuleSmiles=True)


def _kekule_of_aromatic(aromatic: str) -> str:
    """Kekulé form of a canonical aromatic SMILES: a function of the fragment alone, not of which Kekulé
    structure the parent molecule happened to get."""
    kekule = _KEKULE_CACHE.get(aromatic)
    if kekule is None:
        again = Chem.MolFromSmiles(aromatic)
        if again is None:
            return aromatic
        Chem.Kekulize(again, clearAromaticFlags=True)
        kekule = _KEKULE_CACHE[aromatic] = Chem.MolToSmiles(again, isomericSmiles=False, kekuleSmiles=True)
    return kekule


def _motif_smiles(key) -> str:
    """Motif SMILES for an identity-cache key: an atom code (int) or a fragment tuple (see `_pack_keys`)."""
    smiles = _MOTIF_CACHE.get(key)
    if smiles is None:
        if isinstance(key, int):
            atoms, bonds = [divmod(key, 64)], []
        else:
            n = key[0]
            atoms = [divmod(c, 64) for c in key[1 : 1 + n]]
            rest = key[1 + n :]
            bonds = [rest[k : k + 3] for k in range(0, len(rest), 3)]
        atoms = [(z, c - _CHARGE_OFFSET) for z, c in atoms]
        smiles = _motif_smiles_from_graph(atoms, bonds)
        if len(_MOTIF_CACHE) >= _MOTIF_CACHE_LIMIT:
            _MOTIF_CACHE.clear()
            _KEKULE_CACHE.clear()
        _MOTIF_CACHE[key] = smiles
    return smiles


# --------------------------------------------------------------------------------------------------
# Decomposition
# --------------------------------------------------------------------------------------------------


@dataclass
class MotifDecomposition:
    """Motifs of one molecule.

    Attributes:
        motifs: motif SMILES, in breadth-first order of the motif tree.
        atom_motifs: for each atom (in the input SMILES' atom order), the indices of the motifs that
            hold it (one, or several where junction-tree motifs overlap).
        edges: motif-tree edges ``(i, j)``, ``i < j``, sorted (a forest for disconnected molecules).
        positions: breadth-first position of each motif. Motifs are listed in that order, so
            ``positions[i] == i``; kept explicit for consumers that reorder motifs.
        method: ``"brics"``, ``"junction_tree"`` (at most one bond cut) or ``"single_atom"``.
        motif_atoms: for each motif, its atom indices (ascending).
    """

    motifs: list[str]
    atom_motifs: list[list[int]]
    edges: list[tuple[int, int]]
    positions: list[int]
    method: str
    motif_atoms: list[list[int]] = field(default_factory=list)


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


def _kekule_order2(desc: _Molecule) -> np.ndarray:
    """2 x Kekulé bond order of every bond (integers). Kekulises ``desc.mol`` in place, keeping flags."""
    order2 = np.rint(desc.order * 2).astype(np.int64)
    aromatic = desc.order == 1.5
    if not aromatic.any():
        return order2
    Chem.Kekulize(desc.mol, clearAromaticFlags=False)
    if desc.regular:
        adj = Chem.GetAdjacencyMatrix(desc.mol, useBO=True, force=True)
        order2[aromatic] = np.rint(adj[desc.begin[aromatic], desc.end[aromatic]] * 2).astype(np.int64)
    else:
        for k in np.flatnonzero(aromatic):
            bond = desc.mol.GetBondBetweenAtoms(int(desc.begin[k]), int(desc.end[k]))
            order2[k] = int(round(bond.GetBondTypeAsDouble() * 2))
    return order2


def _components(n: int, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Connected-component label (0..c-1, numbered by lowest atom) of each of n atoms."""
    parent = list(range(n))
    for i, j in zip(begin.tolist(), end.tolist()):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        if i != j:
            if i < j:
                parent[j] = i
            else:
                parent[i] = j
    labels, label_of_root = np.empty(n, dtype=np.int64), {}
    for a in range(n):
        r = a
        while parent[r] != r:
            r = parent[r]
        labels[a] = label_of_root.setdefault(r, len(label_of_root))
    return labels


def _brics_cut(desc: _Molecule) -> np.ndarray | None:
    """Bonds cut by the FineMolTex/MGSSL rules (bool per bond), or None when at most one is cut."""
    begin, end, in_ring = desc.begin, desc.end, desc.in_ring
    branching = (~in_ring) & (desc.degree > 2)
    acyclic = ~desc.ring_bond
    cut = acyclic & ((in_ring[begin] != in_ring[end]) | branching[begin] | branching[end])
    # BRICS bonds are acyclic; ring-to-chain and branching bonds are cut already, so test only the rest
    candidates = acyclic & ~cut
    if candidates.any():
        labels = _brics_env_labels(
            desc.atomic_num, desc.charge, desc.aromatic, in_ring, desc.degree, begin, end, desc.order, desc.ring_bond
        )
        for bond, value in (("-", 1.0), ("=", 2.0)):
            sel = np.flatnonzero(candidates & (desc.order == value))
            cut[sel[_pair_is_brics(labels, begin[sel], end[sel], bond)]] = True
    return cut if cut.sum() > 1 else None


def _bfs_order(num_motifs: int, edges: list[tuple[int, int]], motif_min_rank: list[int]) -> list[int]:
    """Breadth-first order of motifs from the motif holding canonical atom 0; ties by canonical rank."""
    neighbours = [[] for _ in range(num_motifs)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for nbrs in neighbours:
        if len(nbrs) > 1:
            nbrs.sort(key=motif_min_rank.__getitem__)
    seen = [False] * num_motifs
    order = []
    for root in sorted(range(num_motifs), key=motif_min_rank.__getitem__):
        if seen[root]:
            continue
        seen[root] = True
        head = len(order)
        order.append(root)
        while head < len(order):
            for nxt in neighbours[order[head]]:
                if not seen[nxt]:
                    seen[nxt] = True
                    order.append(nxt)
            head += 1
    return order


@dataclass
class _Motifs:
    """Decomposition in array form: memberships sorted by (motif, atom); motifs in BFS order."""

    motifs: list[str]
    member_atom: np.ndarray  # (k,)
    member_motif: np.ndarray  # (k,)
    edges: list[tuple[int, int]]
    method: str


def _pack_keys(desc: _Molecule, order2: np.ndarray, groups, bond_groups) -> list:
    """Identity-cache key of each motif: its atom code (one atom) or its atom codes and Kekulé bonds (a tuple).

    Motifs are small, so plain Python beats numpy's per-call overhead here.
    """
    codes = (desc.atomic_num * 64 + np.minimum(np.maximum(desc.charge, -_CHARGE_OFFSET), 63 - _CHARGE_OFFSET)
             + _CHARGE_OFFSET).tolist()
    begin, end, order2 = desc.begin.tolist(), desc.end.tolist(), order2.tolist()
    keys = []
    for atoms, bonds in zip(groups, bond_groups):
        atoms = atoms.tolist()
        if len(atoms) == 1:
            keys.append(codes[atoms[0]])
            continue
        local = {a: k for k, a in enumerate(atoms)}
        key = [len(atoms)]
        key += [codes[a] for a in atoms]
        for b in bonds.tolist():
            key += (local[begin[b]], local[end[b]], order2[b])
        keys.append(tuple(key))
    return keys


def _order_motifs(desc, num_motifs, member_atom, member_motif, edges):
    """Relabel motifs in BFS order; returns memberships sorted by (motif, atom) and relabelled sorted edges."""
    n = len(desc.ranks)
    motif_min_rank = [n] * num_motifs
    for m, r in zip(member_motif.tolist(), desc.ranks[member_atom].tolist()):
        if r < motif_min_rank[m]:
            motif_min_rank[m] = r
    order = _bfs_order(num_motifs, edges, motif_min_rank)
    new_id = np.empty(num_motifs, dtype=np.int64)
    new_id[order] = np.arange(num_motifs)
    member_motif = new_id[member_motif]
    perm = np.argsort(member_motif * n + member_atom)
    relabel = new_id.tolist()
    new_edges = sorted({(min(relabel[a], relabel[b]), max(relabel[a], relabel[b])) for a, b in edges if a != b})
    return member_atom[perm], member_motif[perm], new_edges


def _split(values: np.ndarray, sorted_labels: np.ndarray, num_groups: int) -> list[np.ndarray]:
    """Split ``values`` into ``num_groups`` runs by their (ascending) labels."""
    ends = np.cumsum(np.bincount(sorted_labels, minlength=num_groups)).tolist()
    starts = [0] + ends[:-1]
    return [values[a:b] for a, b in zip(starts, ends)]


def _decompose_partition(desc: _Molecule, cut: np.ndarray) -> _Motifs:
    n = len(desc.atomic_num)
    keep = ~cut
    atom_motif = _components(n, desc.begin[keep], desc.end[keep])
    num_motifs = int(atom_motif.max()) + 1
    edges = list(zip(atom_motif[desc.begin[cut]].tolist(), atom_motif[desc.end[cut]].tolist()))
    member_atom, member_motif, edges = _order_motifs(desc, num_motifs, np.arange(n), atom_motif, edges)
    atom_motif = np.empty(n, dtype=np.int64)
    atom_motif[member_atom] = member_motif
    groups = _split(member_atom, member_motif, num_motifs)
    # bonds inside a motif are exactly the bonds not cut
    inner = np.flatnonzero(keep)
    inner = inner[np.argsort(atom_motif[desc.begin[inner]], kind="stable")]
    bond_groups = _split(inner, atom_motif[desc.begin[inner]], num_motifs)
    order2 = _kekule_order2(desc)
    motifs = [_motif_smiles(key) for key in _pack_keys(desc, order2, groups, bond_groups)]
    return _Motifs(motifs, member_atom, member_motif, edges, "brics" if n > 1 else "single_atom")


def _find_root(parent: list[int], x: int) -> int:
    """Union-find root of ``x`` in the forest ``parent`` (with path halving)."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def _merge_bridged_rings(rings: list[list[int]], n: int) -> list[set[int]]:
    """Merge rings sharing more than two atoms (bridged systems), repeatedly, until no two groups do.

    Merging only grows groups and "shares > 2 atoms" stays true for supersets, so the final partition does not
    depend on the merge order (it is the finest one without such a pair): union-find can merge every pair found
    in one pass, and a pass repeats only when a merge created a new pair. A pass counts shared atoms through each
    atom's groups: O(sum of ring sizes x rings per atom), not the O(R^2) pair scan restarted after every merge.

    Args:
        rings: atom indices of each ring (R lists). n: atoms in the molecule.
    Returns: the merged groups as atom sets (ordered by their first ring).
    """
    parent = list(range(len(rings)))

    find = partial(_find_root, parent)

    changed = True
    while changed:
        changed = False
        members: dict[int, set[int]] = {}  # group root -> atoms
        for r, ring in enumerate(rings):
            members.setdefault(find(r), set()).update(ring)
        groups_of_atom: list[list[int]] = [[] for _ in range(n)]
        for root, atoms in members.items():
            for a in atoms:
                groups_of_atom[a].append(root)
        for root, atoms in members.items():
            shared: Counter = Counter()
            for a in atoms:
                shared.update(g for g in groups_of_atom[a] if g != root)
            for other, count in shared.items():
                if count > 2:
                    x, y = find(root), find(other)
                    if x != y:
                        parent[max(x, y)] = min(x, y)
                        changed = True
    merged: dict[int, set[int]] = {}
    for r, ring in enumerate(rings):
        merged.setdefault(find(r), set()).update(ring)
    return list(merged.values())


def _junction_tree(mol) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Junction-tree cliques and tree edges of a molecule whose atoms are in canonical order."""
    n = mol.GetNumAtoms()
    cliques: list[list[int]] = []
    covered = [False] * n
    for bond in mol.GetBonds():
        if not bond.IsInRing():
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            cliques.append(sorted((i, j)))
            covered[i] = covered[j] = True
    rings = _merge_bridged_rings([list(r) for r in Chem.GetSymmSSSR(mol)], n)
    for ring in rings:
        cliques.append(sorted(ring))
        for a in ring:
            covered[a] = True
    # isolated atoms (single-atom ions of a salt) are motifs too; the reference drops them
    cliques.extend([a] for a in range(n) if not covered[a])
    cliques.sort(key=lambda c: (c[0], len(c), c))

    holders = [[] for _ in range(n)]
    for c, atoms in enumerate(cliques):
        for a in atoms:
            holders[a].append(c)
    weights: dict[tuple[int, int], int] = {}
    big = 100
    for atom in range(n):
        cnei = holders[atom]
        if len(cnei) <= 1:
            continue
        bonds = [c for c in cnei if len(cliques[c]) == 2]
        rings_here = [c for c in cnei if len(cliques[c]) > 4]
        if len(bonds) > 2 or (len(bonds) == 2 and len(cnei) > 2) or len(rings_here) > 2:
            # a junction of many cliques becomes a singleton motif joined to each of them
            cliques.append([atom])
            s = len(cliques) - 1
            for c in cnei:
                weights[(c, s)] = 1 if len(bonds) >= 2 else big - 1
        else:
            for x in range(len(cnei)):
                for y in range(x + 1, len(cnei)):
                    c1, c2 = cnei[x], cnei[y]
                    shared = len(set(cliques[c1]) & set(cliques[c2]))
                    if weights.get((c1, c2), 0) < shared:
                        weights[(c1, c2)] = shared
    # maximum spanning tree (Kruskal); ties broken by clique index, i.e. canonically
    parent = list(range(len(cliques)))

    find = partial(_find_root, parent)

    edges = []
    for (a, b), _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
            edges.append((a, b))
    return cliques, edges


def _output_order(mol, prop: str) -> np.ndarray:
    """An order the canonical SMILES writer left on `mol` (``_smilesAtomOutputOrder`` / ``_smilesBondOutputOrder``)."""
    return np.array([int(x) for x in mol.GetProp(prop).strip("[],").split(",") if x], dtype=np.int64)


def _canonical_copy(mol: Chem.Mol, ranks: np.ndarray) -> tuple[Chem.Mol, np.ndarray]:
    """-> (`mol` with atoms and bonds in a canonical order, that atom order (new index -> old)).

    The order is the canonical SMILES writer's (atoms and bonds as written), or, for a molecule the writer refuses
    (e.g. more ring closures open at once than SMILES has digits), atoms by canonical rank (`ranks`) and bonds by
    their new atom pair. The copy is built from the molecule itself: nothing is parsed again, so each molecule is
    parsed once. Stereo is dropped (motifs carry none, and a copied chiral tag would refer to another neighbour
    order)."""
    try:
        Chem.MolToSmiles(mol)  # canonical ranks + DFS: sets the output orders
        atom_order = _output_order(mol, "_smilesAtomOutputOrder")
        bond_order = _output_order(mol, "_smilesBondOutputOrder")
    except (RuntimeError, ValueError):  # "Too many rings open at once. SMILES cannot be generated."
        atom_order, bond_order = np.argsort(ranks, kind="stable"), None
    new_index = np.empty(len(atom_order), dtype=np.int64)
    new_index[atom_order] = np.arange(len(atom_order))
    bonds = [mol.GetBondWithIdx(i) for i in bond_order.tolist()] if bond_order is not None else sorted(
        mol.GetBonds(), key=lambda bond: sorted((new_index[bond.GetBeginAtomIdx()], new_index[bond.GetEndAtomIdx()]))
    )
    copy = Chem.RWMol()
    for old in atom_order.tolist():
        atom = Chem.Atom(mol.GetAtomWithIdx(old))
        atom.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
        copy.AddAtom(atom)
    for bond in bonds:
        i, j = int(new_index[bond.GetBeginAtomIdx()]), int(new_index[bond.GetEndAtomIdx()])
        copy.AddBond(i, j, bond.GetBondType())
        copy.GetBondBetweenAtoms(i, j).SetIsAromatic(bond.GetIsAromatic())
    canon = copy.GetMol()
    Chem.SanitizeMol(canon)
    return canon, atom_order


def _decompose_junction_tree(desc: _Molecule) -> _Motifs:
    # Work on the molecule in canonical atom *and* bond order, so that ring perception, the Kekulé
    # structure and spanning-tree ties cannot depend on how the input was written.
    n = len(desc.atomic_num)
    canon, output_order = _canonical_copy(desc.mol, desc.ranks)  # an RDKit error here is this molecule's `_Failure`
    cliques, edges = _junction_tree(canon)
    member_atom = np.concatenate([output_order[c] for c in cliques])
    member_motif = np.repeat(np.arange(len(cliques)), [len(c) for c in cliques])
    member_atom, member_motif, edges = _order_motifs(desc, len(cliques), member_atom, member_motif, edges)
    groups = _split(member_atom, member_motif, len(cliques))
    # Kekulé orders from the canonical molecule, mapped back to the input's bonds
    canon_desc = _describe(canon, desc.smiles)
    canon_order2 = _kekule_order2(canon_desc)
    lookup = dict(zip((output_order[canon_desc.begin] * n + output_order[canon_desc.end]).tolist(), canon_order2.tolist()))
    lookup.update(zip((output_order[canon_desc.end] * n + output_order[canon_desc.begin]).tolist(), canon_order2.tolist()))
    order2 = np.array([lookup[c] for c in (desc.begin * n + desc.end).tolist()], dtype=np.int64)
    # bonds inside each motif: a bond belongs to the motifs holding both its atoms (atoms hold few motifs, so this
    # is linear; a dense per-motif atom mask would cost O(n x motifs) on long chains)
    motifs_of_atom: list[list[int]] = [[] for _ in range(n)]
    for a, m in zip(member_atom.tolist(), member_motif.tolist()):
        motifs_of_atom[a].append(m)
    bond_lists: list[list[int]] = [[] for _ in groups]
    for b, (i, j) in enumerate(zip(desc.begin.tolist(), desc.end.tolist())):
        held = motifs_of_atom[j]
        for m in motifs_of_atom[i]:
            if m in held:
                bond_lists[m].append(b)
    bond_groups = [np.array(bonds, dtype=np.int64) for bonds in bond_lists]
    motifs = [_motif_smiles(key) for key in _pack_keys(desc, order2, groups, bond_groups)]
    return _Motifs(motifs, member_atom, member_motif, edges, "junction_tree")


def _decompose(desc: _Molecule) -> _Motifs:
    n = len(desc.atomic_num)
    if n == 1:
        return _decompose_partition(desc, np.zeros(0, dtype=bool))
    cut = _brics_cut(desc)
    if cut is not None:
        return _decompose_partition(desc, cut)
    return _decompose_junction_tree(desc)


def _public(dec: _Motifs, num_atoms: int) -> MotifDecomposition:
    motif_atoms = [[] for _ in dec.motifs]
    atom_motifs = [[] for _ in range(num_atoms)]
    for a, m in zip(dec.member_atom.tolist(), dec.member_motif.tolist()):
        motif_atoms[m].append(a)
        atom_motifs[a].append(m)
    return MotifDecomposition(
        motifs=list(dec.motifs),
        atom_motifs=atom_motifs,
        edges=list(dec.edges),
        positions=list(range(len(dec.motifs))),
        method=dec.method,
        motif_atoms=motif_atoms,
    )


# --------------------------------------------------------------------------------------------------
# Featurisation
# --------------------------------------------------------------------------------------------------

_TYPE_OF_ORDER2 = np.array([4, 4, 0, 3, 1, 4, 2, 4, 4], dtype=np.int64)  # index 2*order: 1->0, 1.5->3, 2->1, 3->2


def _atom_features(desc: _Molecule, feature_set: str) -> np.ndarray:
    mol, n = desc.mol, len(desc.atomic_num)
    atomic = np.minimum(desc.atomic_num, 118)
    chirality = np.zeros(n, dtype=np.int64)
    if "@" in desc.smiles:  # chiral tags come only from '@' in SMILES; ask only the atoms that have one
        for atom in mol.GetAtomsMatchingQuery(_CHIRAL):
            chirality[atom.GetIdx()] = _CHIRALITY.get(atom.GetChiralTag(), 3)
    if feature_set == "reference":
        out = np.empty((n, 2), dtype=np.int64)
        out[:, 0], out[:, 1] = atomic, chirality
        return out
    atoms = [mol.GetAtomWithIdx(i) for i in range(n)]
    charge = np.clip(desc.charge, -5, 5) + 5
    aromatic = np.fromiter((a.GetIsAromatic() for a in atoms), np.int64, n)
    hybrid = np.fromiter((_HYBRIDISATION.get(a.GetHybridization(), 6) for a in atoms), np.int64, n)
    degree = np.minimum(np.fromiter((a.GetDegree() for a in atoms), np.int64, n), 10)
    hs = np.minimum(np.fromiter((a.GetTotalNumHs() for a in atoms), np.int64, n), 8)
    return np.stack([atomic, chirality, charge, aromatic, hybrid, degree, hs, desc.in_ring.astype(np.int64)], axis=1)


def _bond_features(desc: _Molecule, feature_set: str) -> np.ndarray:
    mol, m = desc.mol, len(desc.begin)
    order2 = np.rint(desc.order * 2).astype(np.int64)
    bond_type = _TYPE_OF_ORDER2[np.minimum(np.maximum(order2, 0), len(_TYPE_OF_ORDER2) - 1)]  # (np.clip is slow)
    smiles = desc.smiles
    if not desc.regular:
        bonds = [mol.GetBondBetweenAtoms(int(i), int(j)) for i, j in zip(desc.begin, desc.end)]
        bond_type = np.fromiter((_BOND_TYPE.get(b.GetBondType(), 4) for b in bonds), np.int64, m)
    if feature_set == "reference" and "/" not in smiles and "\\" not in smiles:  # directions come only from / \
        out = np.zeros((m, 2), dtype=np.int64)
        out[:, 0] = bond_type
        return out
    bonds = [mol.GetBondBetweenAtoms(int(i), int(j)) for i, j in zip(desc.begin, desc.end)]
    direction = np.fromiter((_BOND_DIR.get(b.GetBondDir(), 3) for b in bonds), np.int64, m)
    if feature_set == "reference":
        return np.stack([bond_type, direction], axis=1)
    conjugated = np.fromiter((b.GetIsConjugated() for b in bonds), np.int64, m)
    return np.stack([bond_type, direction, conjugated, desc.ring_bond.astype(np.int64)], axis=1)


# --------------------------------------------------------------------------------------------------
# Batched fast path. Per molecule only a handful of RDKit calls gather raw facts (adjacency, hetero and
# charged atoms, canonical ranks, rings); the rules, BRICS environments, connected pieces, motif keys and
# features are then computed with numpy over the whole batch at once. Molecules it does not cover (junction
# tree, unusual bonds, fragments that need their Kekulé form) go through the per-molecule path above, which
# defines the result; tests check that both paths agree.
# --------------------------------------------------------------------------------------------------

# aromatic atoms whose hydrogen count is not 3 - degree (all but neutral, ordinary aromatic carbons)
_AROMATIC_H_QUERY = Chem.MolFromSmarts("[a&!#6,a&!+0,c&D2&H0,c&D3&!H0]")
_AROMATIC_CODE = 1 << 13  # aromatic atom code = atom code + _AROMATIC_CODE * (1 + hydrogens in the fragment)
_ADJACENCY_BUDGET = 1 << 22  # dense adjacency entries gathered per chunk (32 MB of float64)
_FAST_MIN_BATCH = 2  # a lone molecule takes the per-molecule path (cheaper than the batch machinery)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic): a cheap, well-spread hash."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _fragment_smiles(atoms: list[int], bonds: list[list[int]]) -> str | None:
    """Motif SMILES of a fast-path key: atom codes, bonds (i, j, 2 x order; 3 = aromatic).

    Aromatic atoms carry their hydrogen count; other atoms get hydrogens from default valences, exactly as in
    `_motif_smiles_from_graph` (which handles keys without aromatic atoms). None when RDKit cannot sanitise the
    fragment or it is no longer aromatic: its identity then depends on the parent's Kekulé structure, and the
    molecule takes the per-molecule path.
    """
    if all(code < _AROMATIC_CODE for code in atoms):
        return _motif_smiles_from_graph([(z, q - _CHARGE_OFFSET) for z, q in (divmod(c, 64) for c in atoms)], bonds)
    rw = Chem.RWMol()
    for code in atoms:
        hydrogens, code = divmod(code, _AROMATIC_CODE)
        atomic_num, charge = divmod(code, 64)
        atom = Chem.Atom(atomic_num)
        atom.SetFormalCharge(charge - _CHARGE_OFFSET)
        if hydrogens:
            atom.SetIsAromatic(True)
            atom.SetNoImplicit(True)
            atom.SetNumExplicitHs(hydrogens - 1)
        rw.AddAtom(atom)
    for i, j, order2 in bonds:
        if order2 == 3:
            rw.AddBond(i, j, Chem.BondType.AROMATIC)
            rw.GetBondBetweenAtoms(i, j).SetIsAromatic(True)
        else:
            rw.AddBond(i, j, _KEKULE_BOND.get(order2, Chem.BondType.SINGLE))
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:
        return None
    if not mol.HasSubstructMatch(_AROMATIC_ATOM):
        return None
    return _kekule_of_aromatic(Chem.MolToSmiles(mol, isomericSmiles=False))


def _fast_motif_smiles(key: bytes) -> str | None:
    """Motif SMILES of a fast-path key (int32 bytes: size, atom codes, bond triples), cached; None: see above."""
    smiles = _MOTIF_CACHE.get(key, "")
    if smiles == "":
        values = np.frombuffer(key, dtype=np.int32).tolist()
        n = values[0]
        rest = values[1 + n :]
        smiles = _fragment_smiles(values[1 : 1 + n], [rest[k : k + 3] for k in range(0, len(rest), 3)])
        if len(_MOTIF_CACHE) >= _MOTIF_CACHE_LIMIT:
            _MOTIF_CACHE.clear()
            _KEKULE_CACHE.clear()
        _MOTIF_CACHE[key] = smiles
    return smiles


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


@dataclass
class _Encoded:
    """One molecule's graph arrays and motifs as plain lists (see `FineMolTexGraphTokenizer.encode_molecule`)."""

    num_atoms: int
    atom_features: list[int]  # n * F_a
    edge_index: list[int]  # begin atoms, then end atoms
    edge_features: list[int]  # e * F_b
    motifs: list[str]  # BFS order
    member_atom: list[int]  # sorted by (motif, atom)
    member_motif: list[int]
    edges: list[tuple[int, int]] | None  # motif-tree edges (only when asked for)
    method: str


def _encode_slow(mol, smiles: str, feature_set: str, with_edges: bool) -> _Encoded:
    """The per-molecule path (defines the result): `_describe` + features + `_decompose`."""
    desc = _describe(mol, smiles)
    # features first: decomposition Kekulises the molecule in place
    atom_feats = _atom_features(desc, feature_set)
    bond_feats = _bond_features(desc, feature_set)
    dec = _decompose(desc)
    return _Encoded(
        len(desc.atomic_num),
        atom_feats.reshape(-1).tolist(),
        np.concatenate([desc.begin, desc.end]).tolist(),
        bond_feats.reshape(-1).tolist(),
        list(dec.motifs),
        dec.member_atom.tolist(),
        dec.member_motif.tolist(),
        list(dec.edges) if with_edges else None,
        dec.method,
    )


@dataclass
class _Failure:
    """A parsed molecule that RDKit could not decompose (e.g. "Too many rings open at once" when writing SMILES)."""

    reason: str

    def error(self, smiles, index: int | None) -> MoleculeParseError:
        where = f" at index {index}" if index is not None else ""
        return MoleculeParseError(f"SMILES{where} could not be decomposed: {shorten(smiles)} ({self.reason})")


def _encode_guarded(mol, smiles: str, feature_set: str, with_edges: bool) -> _Encoded | _Failure:
    """`_encode_slow`, with an RDKit error turned into a `_Failure` so that it stays one molecule's problem."""
    try:
        return _encode_slow(mol, smiles, feature_set, with_edges)
    except Exception as err:  # RDKit raises ValueError, RuntimeError and its own types
        text = str(err).strip()
        return _Failure(f"{type(err).__name__}: {text.splitlines()[0] if text else 'no message'}")


def _encode_mols(mols, smiles, feature_set: str, with_edges: bool = False) -> list[_Encoded | _Failure]:
    """`_Encoded` of each parsed molecule (``smiles``: the stripped input strings), fast path where it applies;
    a `_Failure` in place of a molecule RDKit could not decompose."""
    out: list = [None] * len(mols)
    fast, chunk, budget = [], [], 0
    for b, (mol, text) in enumerate(zip(mols, smiles)):
        n = mol.GetNumAtoms()
        if n > _DENSE_LIMIT or "$" in text or "<" in text or ">" in text:
            out[b] = _encode_guarded(mol, text, feature_set, with_edges)
            continue
        if chunk and budget + n * n > _ADJACENCY_BUDGET:
            fast.append(chunk)
            chunk, budget = [], 0
        chunk.append(b)
        budget += n * n
    if chunk:
        fast.append(chunk)
    for chunk in fast:
        if len(chunk) < _FAST_MIN_BATCH:  # the batch machinery's fixed cost outweighs its gain
            for b in chunk:
                out[b] = _encode_guarded(mols[b], smiles[b], feature_set, with_edges)
            continue
        try:
            results = _encode_fast([mols[b] for b in chunk], [smiles[b] for b in chunk], feature_set, with_edges)
        except Exception:  # one odd molecule must not fail its chunk: the per-molecule path says which
            results = [None] * len(chunk)
        for b, result in zip(chunk, results):
            out[b] = result if result is not None else _encode_guarded(mols[b], smiles[b], feature_set, with_edges)
    return out


def _encode_fast(mols, smiles, feature_set: str, with_edges: bool) -> list[_Encoded | None]:
    """Vectorised `_Encoded` of regular molecules; None for those the per-molecule path must take."""
    num_mols = len(mols)
    # ---- raw facts, a few RDKit calls per molecule ----
    sizes, num_bonds, adjacency, ranks = [], [], [], []
    hetero, hetero_z, charged, charged_q, aromatic_h, aromatic_h_count = [], [], [], [], [], []
    ring_atoms, ring_sizes, ring_offsets = [], [], []
    offset = 0
    for mol in mols:
        n = mol.GetNumAtoms()
        sizes.append(n)
        num_bonds.append(mol.GetNumBonds())
        adjacency.append(Chem.GetAdjacencyMatrix(mol, useBO=True, force=True).reshape(-1))
        # ring bonds: consecutive atoms of RDKit's rings (every ring bond lies on one of them)
        for ring in mol.GetRingInfo().AtomRings():
            ring_atoms.extend(ring)
            ring_sizes.append(len(ring))
            ring_offsets.append(offset)
        # substructure searches find the few hetero/charged atoms: asking every atom costs ~5x more
        for (i,) in mol.GetSubstructMatches(_HETERO, maxMatches=n + 1):
            hetero.append(offset + i)
            hetero_z.append(mol.GetAtomWithIdx(i).GetAtomicNum())
        for (i,) in mol.GetSubstructMatches(_CHARGED, maxMatches=n + 1):
            charged.append(offset + i)
            charged_q.append(mol.GetAtomWithIdx(i).GetFormalCharge())
        for (i,) in mol.GetSubstructMatches(_AROMATIC_H_QUERY, maxMatches=n + 1):
            aromatic_h.append(offset + i)
            aromatic_h_count.append(mol.GetAtomWithIdx(i).GetTotalNumHs())
        rank = Chem.CanonicalRankAtoms(mol, breakTies=True)
        ranks.extend(map(rank.__getitem__, range(n)))  # (RDKit's Python iterator is slow)
        offset += n
    total = offset
    sizes = np.array(sizes, dtype=np.int64)
    atom_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(sizes, out=atom_offset[1:])
    atom_mol = np.repeat(np.arange(num_mols), sizes)

    # ---- bonds (i < j, sorted by molecule then atoms) from the dense adjacency matrices ----
    flat = np.concatenate(adjacency)
    square_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(sizes * sizes, out=square_offset[1:])
    entry = np.flatnonzero(flat)
    entry_mol = np.searchsorted(square_offset, entry, side="right") - 1
    row, col = np.divmod(entry - square_offset[entry_mol], sizes[entry_mol])
    upper = row < col
    bond_mol = entry_mol[upper]
    begin = row[upper] + atom_offset[bond_mol]
    end = col[upper] + atom_offset[bond_mol]
    order = flat[entry[upper]]
    bond_count = np.bincount(bond_mol, minlength=num_mols)
    bond_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(bond_count, out=bond_offset[1:])
    # a bond the dense matrix cannot show (order 0, dative...) sends its molecule down the per-molecule path
    slow = bond_count != np.array(num_bonds, dtype=np.int64)

    atomic_num = np.full(total, 6, dtype=np.int64)
    atomic_num[hetero] = hetero_z
    charge = np.zeros(total, dtype=np.int64)
    charge[charged] = charged_q
    ranks = np.array(ranks, dtype=np.int64)
    degree = np.bincount(begin, minlength=total) + np.bincount(end, minlength=total)
    aromatic = np.zeros(total, dtype=bool)
    is_aromatic_bond = order == 1.5
    aromatic[begin[is_aromatic_bond]] = True
    aromatic[end[is_aromatic_bond]] = True
    in_ring = np.zeros(total, dtype=bool)
    ring_bond = np.zeros(len(begin), dtype=bool)
    if ring_atoms:
        ring_sizes = np.array(ring_sizes, dtype=np.int64)
        members = np.array(ring_atoms, dtype=np.int64) + np.repeat(np.array(ring_offsets, dtype=np.int64), ring_sizes)
        starts = np.cumsum(ring_sizes) - ring_sizes
        following = np.arange(1, len(members) + 1)
        following[starts + ring_sizes - 1] = starts
        a, b = members, members[following]
        codes = np.unique(np.minimum(a, b) * total + np.maximum(a, b))
        bond_codes = begin * total + end
        at = np.minimum(np.searchsorted(codes, bond_codes), len(codes) - 1)
        ring_bond = codes[at] == bond_codes
        in_ring[members] = True

    # ---- the cut rules, BRICS included ----
    branching = ~in_ring & (degree > 2)
    acyclic = ~ring_bond
    cut = acyclic & ((in_ring[begin] != in_ring[end]) | branching[begin] | branching[end])
    candidates = acyclic & ~cut
    if candidates.any():
        labels = _brics_env_labels(atomic_num, charge, aromatic, in_ring, degree, begin, end, order, ring_bond)
        for bond, value in (("-", 1.0), ("=", 2.0)):
            sel = np.flatnonzero(candidates & (order == value))
            cut[sel[_pair_is_brics(labels, begin[sel], end[sel], bond)]] = True
    num_cut = np.bincount(bond_mol[cut], minlength=num_mols)
    slow |= (num_cut <= 1) & (sizes > 1)  # junction tree
    # ---- motifs: connected pieces left (min-label propagation with pointer jumping) ----
    keep = ~cut
    kb, ke = begin[keep], end[keep]
    label = np.arange(total)
    while True:
        low = np.minimum(label[kb], label[ke])
        new = label.copy()
        np.minimum.at(new, kb, low)
        np.minimum.at(new, ke, low)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    roots = np.flatnonzero(label == np.arange(total))  # motifs in order of their lowest atom
    motif_of_atom = np.searchsorted(roots, label)
    num_motifs = len(roots)
    motif_mol = atom_mol[roots]
    motif_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(np.bincount(motif_mol, minlength=num_mols), out=motif_offset[1:])
    min_rank = np.full(num_motifs, np.iinfo(np.int64).max)
    np.minimum.at(min_rank, motif_of_atom, ranks)

    # ---- breadth-first order of each molecule's motif tree (small trees: plain Python) ----
    tree_a = (motif_of_atom[begin[cut]] - motif_offset[bond_mol[cut]]).tolist()
    tree_b = (motif_of_atom[end[cut]] - motif_offset[bond_mol[cut]]).tolist()
    cut_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(num_cut, out=cut_offset[1:])
    cut_offset, motif_offset_list, min_rank_list = cut_offset.tolist(), motif_offset.tolist(), min_rank.tolist()
    slow_list = slow.tolist()
    position = [0] * num_motifs  # BFS position of each motif within its molecule
    tree_edges: list = [None] * num_mols
    for m in range(num_mols):
        if slow_list[m]:
            continue
        m0, k = motif_offset_list[m], motif_offset_list[m + 1] - motif_offset_list[m]
        c0, c1 = cut_offset[m], cut_offset[m + 1]
        local_rank = min_rank_list[m0 : m0 + k]
        order_ = _bfs_order(k, list(zip(tree_a[c0:c1], tree_b[c0:c1])), local_rank) if k > 1 else [0]
        for p, motif in enumerate(order_):
            position[m0 + motif] = p
        if with_edges:
            new = [0] * k
            for p, motif in enumerate(order_):
                new[motif] = p
            pairs = zip(tree_a[c0:c1], tree_b[c0:c1])
            tree_edges[m] = sorted({(min(new[a], new[b]), max(new[a], new[b])) for a, b in pairs})
    position = np.array(position, dtype=np.int64)
    final_motif = motif_offset[motif_mol] + position  # global motif id in BFS order
    motif_of_atom = final_motif[motif_of_atom]

    # ---- features (before the Kekulé step below changes bond types) ----
    atom_feats, bond_feats = _fast_features(
        mols, smiles, feature_set, atomic_num, order, atom_offset, bond_offset, begin, end, slow
    )

    # ---- motif keys: atom codes and bonds of each motif, its atoms in input order ----
    # Aromatic atoms carry their hydrogen count in the fragment (parent's + one per cut bond), so no Kekulé
    # structure is needed; a molecule with a cut double bond at an aromatic atom needs one (pyridones): its
    # motif keys take the Kekulé bond orders of the parent, as the per-molecule path does.
    order2 = np.rint(order * 2).astype(np.int64)
    arom_end = aromatic[begin] | aromatic[end]
    needs_kekule = np.bincount(bond_mol[cut & arom_end & (order2 != 2)], minlength=num_mols) > 0
    kekule_mols = np.flatnonzero(needs_kekule & ~slow)
    kekule_atoms = np.zeros(total, dtype=bool)
    for m in kekule_mols.tolist():
        mol = mols[m]
        Chem.Kekulize(mol, clearAromaticFlags=False)  # in place: the last RDKit use of this molecule
        e0, e1 = bond_offset[m], bond_offset[m + 1]
        kek = Chem.GetAdjacencyMatrix(mol, useBO=True, force=True)
        a0 = atom_offset[m]
        order2[e0:e1] = np.rint(kek[begin[e0:e1] - a0, end[e0:e1] - a0] * 2).astype(np.int64)
        kekule_atoms[a0 : atom_offset[m + 1]] = True
    code = atomic_num * 64 + np.minimum(np.maximum(charge, -_CHARGE_OFFSET), 63 - _CHARGE_OFFSET) + _CHARGE_OFFSET
    with_h = aromatic & ~kekule_atoms
    if with_h.any():
        hydrogens = np.where(atomic_num == 6, 3 - degree, 0)
        hydrogens[aromatic_h] = aromatic_h_count
        hydrogens += np.bincount(begin[cut], minlength=total) + np.bincount(end[cut], minlength=total)
        code[with_h] += _AROMATIC_CODE * (1 + hydrogens[with_h])
    # memberships sorted by (motif, atom): the output order
    member = np.argsort(motif_of_atom * total + np.arange(total), kind="stable")
    motif_size = np.bincount(motif_of_atom, minlength=num_motifs)
    motif_start = np.cumsum(motif_size) - motif_size
    # Atom order inside a key: by a colour refined over the motif's own bonds (Weisfeiler-Lehman rounds),
    # ties by input order, so that the same motif reached through another atom order mostly gets the same key.
    # The key describes the fragment exactly in any order; the colours only raise the cache hit rate.
    inner = np.flatnonzero(keep)
    inner_motif = motif_of_atom[begin[inner]]
    ib, ie, io = begin[inner], end[inner], order2[inner].astype(np.uint64)
    colour = code.astype(np.uint64)
    for _ in range(3):
        around = np.zeros(total, dtype=np.uint64)
        np.add.at(around, ib, _mix64(colour[ie] * np.uint64(8) + io))
        np.add.at(around, ie, _mix64(colour[ib] * np.uint64(8) + io))
        colour = _mix64(colour ^ _mix64(around))
    by_key = np.lexsort((np.arange(total), colour, motif_of_atom))
    local_in_key = np.empty(total, dtype=np.int64)
    local_in_key[by_key] = np.arange(total) - motif_start[motif_of_atom[by_key]]
    first, second = local_in_key[ib], local_in_key[ie]
    first, second = np.minimum(first, second), np.maximum(first, second)
    bond_sort = np.lexsort((second, first, inner_motif))
    inner, inner_motif, first, second = inner[bond_sort], inner_motif[bond_sort], first[bond_sort], second[bond_sort]
    inner_count = np.bincount(inner_motif, minlength=num_motifs)
    key_length = 1 + motif_size + 3 * inner_count
    key_start = np.cumsum(key_length) - key_length
    buffer = np.empty(int(key_length.sum()), dtype=np.int32)
    buffer[key_start] = motif_size
    buffer[key_start[motif_of_atom] + 1 + local_in_key] = code
    bond_rank = np.arange(len(inner)) - (np.cumsum(inner_count) - inner_count)[inner_motif]
    slot = key_start[inner_motif] + 1 + motif_size[inner_motif] + 3 * bond_rank
    buffer[slot] = first
    buffer[slot + 1] = second
    buffer[slot + 2] = order2[inner]
    raw = buffer.tobytes()
    starts4, ends4 = (key_start * 4).tolist(), ((key_start + key_length) * 4).tolist()

    num_atom_cols, num_bond_cols = atom_feats.shape[1], bond_feats.shape[1]
    atom_feats, bond_feats = atom_feats.reshape(-1).tolist(), bond_feats.reshape(-1).tolist()
    local_begin = (begin - atom_offset[bond_mol]).tolist()
    local_end = (end - atom_offset[bond_mol]).tolist()
    member_local = (member - atom_offset[atom_mol[member]]).tolist()
    member_motif_local = (motif_of_atom[member] - motif_offset[atom_mol[member]]).tolist()

    out: list = [None] * num_mols
    atom_offset, bond_offset = atom_offset.tolist(), bond_offset.tolist()
    lookup = _MOTIF_CACHE.get
    for m in range(num_mols):
        if slow_list[m]:
            continue
        m0, m1 = motif_offset_list[m], motif_offset_list[m + 1]
        motifs = [lookup(raw[starts4[g] : ends4[g]], "") for g in range(m0, m1)]
        if "" in motifs:  # keys not seen yet
            motifs = [found or _fast_motif_smiles(raw[starts4[g] : ends4[g]]) for g, found in zip(range(m0, m1), motifs)]
        if None in motifs:
            continue
        a0, a1, e0, e1 = atom_offset[m], atom_offset[m + 1], bond_offset[m], bond_offset[m + 1]
        out[m] = _Encoded(
            a1 - a0,
            atom_feats[a0 * num_atom_cols : a1 * num_atom_cols],
            local_begin[e0:e1] + local_end[e0:e1],
            bond_feats[e0 * num_bond_cols : e1 * num_bond_cols],
            motifs,
            member_local[a0:a1],
            member_motif_local[a0:a1],
            tree_edges[m],
            "brics" if a1 - a0 > 1 else "single_atom",
        )
    return out


def _fast_features(mols, smiles, feature_set, atomic_num, order, atom_offset, bond_offset, begin, end, slow):
    """Reference features for the whole batch (chirality and bond directions asked only where the SMILES has
    them); the rich set per molecule through `_atom_features` / `_bond_features`."""
    total, num_bonds = len(atomic_num), len(order)
    order2 = np.rint(order * 2).astype(np.int64)
    if feature_set == "reference":
        atom_feats = np.zeros((total, 2), dtype=np.int64)
        atom_feats[:, 0] = np.minimum(atomic_num, 118)
        bond_feats = np.zeros((num_bonds, 2), dtype=np.int64)
        bond_feats[:, 0] = _TYPE_OF_ORDER2[np.minimum(order2, len(_TYPE_OF_ORDER2) - 1)]
    else:
        atom_feats = np.zeros((total, len(FEATURE_SETS[feature_set]["atom"])), dtype=np.int64)
        bond_feats = np.zeros((num_bonds, len(FEATURE_SETS[feature_set]["bond"])), dtype=np.int64)
    for m, (mol, text) in enumerate(zip(mols, smiles)):
        if slow[m]:
            continue
        a0, a1, e0, e1 = atom_offset[m], atom_offset[m + 1], bond_offset[m], bond_offset[m + 1]
        if feature_set == "reference":
            if "@" in text:
                for atom in mol.GetAtomsMatchingQuery(_CHIRAL):
                    atom_feats[a0 + atom.GetIdx(), 1] = _CHIRALITY.get(atom.GetChiralTag(), 3)
            if "/" in text or "\\" in text:
                for k in range(e0, e1):
                    bond = mol.GetBondBetweenAtoms(int(begin[k] - a0), int(end[k] - a0))
                    bond_feats[k, 1] = _BOND_DIR.get(bond.GetBondDir(), 3)
            continue
        desc = _describe(mol, text)
        atom_feats[a0:a1] = _atom_features(desc, feature_set)
        bond_feats[e0:e1] = _bond_features(desc, feature_set)
    return atom_feats, bond_feats


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


# --------------------------------------------------------------------------------------------------
# Dataset helpers (used by datasets_scripts/: canonical SMILES, InChIKey, Bemis–Murcko scaffold split).
# Kept here because this is the only module allowed to import RDKit.
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


__all__ += ["canonical_smiles", "inchikey", "murcko_scaffold", "random_split", "scaffold_split"]


# --------------------------------------------------------------------------------------------------
# Molecule editing primitives (used by editing_finemoltex.py): applying motif edits, Morgan/Tanimoto
# similarity, the RDKit descriptors and substructure counts of the MoleculeSTM / FineMolTex editing criteria.
# Kept here because this is the only module allowed to import RDKit.
# --------------------------------------------------------------------------------------------------

from functools import lru_cache  # noqa: E402

#: Attachment rules of `apply_motif_edits` (see there).
ATTACHMENT_RULES = ("brics", "valence")

_EDIT_CACHE_LIMIT = 200_000
_FINGERPRINT_CACHE: dict = {}


@lru_cache(maxsize=4096)
def _kekule_template(smiles: str) -> Chem.Mol | None:
    """Sanitised, Kekulised (aromatic flags cleared) copy of ``smiles``, or None when it does not parse.

    Editing works on the Kekulé form so that hydrogens are recomputed from valences when neighbours come and go;
    sanitising the product re-perceives aromaticity.
    """
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception:
        return None
    return mol


def attachment_atoms(smiles: str, unique: bool = True) -> list[int]:
    """Atoms of ``smiles`` that can take a new single bond: neutral, no radical, at least one hydrogen.

    With ``unique``, one atom per symmetry class (RDKit canonical ranks without tie-breaking), so that equivalent
    positions (the six carbons of benzene) are offered once. Atom indices follow ``Chem.MolFromSmiles(smiles)``.
    Raises `MoleculeParseError` for an unparsable SMILES.
    """
    mol = parse_smiles(smiles)
    classes = list(Chem.CanonicalRankAtoms(mol, breakTies=False)) if unique else list(range(mol.GetNumAtoms()))
    seen, atoms = set(), []
    for atom in mol.GetAtoms():
        if atom.GetFormalCharge() or atom.GetNumRadicalElectrons() or atom.GetTotalNumHs() < 1:
            continue
        cls = classes[atom.GetIdx()]
        if cls not in seen:
            seen.add(cls)
            atoms.append(atom.GetIdx())
    return atoms


def is_brics_bond(mol: Chem.Mol, i: int, j: int) -> bool:
    """True iff the single acyclic bond ``i``-``j`` of the sanitised ``mol`` is one that BRICS would cut (an
    environment pair of RDKit's BRICS reaction table matches its two ends)."""
    bond = mol.GetBondBetweenAtoms(int(i), int(j))
    if bond is None or bond.IsInRing() or bond.GetBondType() != Chem.BondType.SINGLE:
        return False
    desc = _describe(mol, "")
    labels = _brics_env_labels(
        desc.atomic_num, desc.charge, desc.aromatic, desc.in_ring, desc.degree, desc.begin, desc.end, desc.order,
        desc.ring_bond,
    )
    return bool(_pair_is_brics(labels, np.array([int(i)]), np.array([int(j)]), "-")[0])


def apply_motif_edits(
    smiles: str,
    edits: Sequence[tuple[Sequence[int], str | None, Sequence[tuple[int, int]]]],
    attachment: str = "brics",
) -> list[str | None]:
    """Apply motif-level edits to one molecule; -> canonical SMILES of each product, or None where it fails.

    Each edit is ``(remove_atoms, fragment_smiles, bonds)``:
        remove_atoms: atom indices of ``smiles`` (as ``Chem.MolFromSmiles`` numbers them) to delete;
        fragment_smiles: a motif to insert (None: nothing inserted);
        bonds: ``(source_atom, fragment_atom)`` pairs joined by new single bonds (source atoms must survive).
    Removing a terminal motif is ``(atoms, None, ())``; attaching is ``((), fragment, ((a, f),))``; replacing a
    motif is its atoms plus a fragment bonded to the atoms the motif was bonded to.

    A product is returned only if it sanitises, is one connected molecule without radicals, and its canonical
    SMILES parses again (the string returned is that re-parsed molecule's canonical SMILES). New bonds must join
    neutral atoms that had a hydrogen to give. ``attachment`` rules which new bonds are allowed:
        ``"brics"``: a fragment of two or more heavy atoms must be joined by bonds that BRICS would cut in the
        product; a single-atom fragment (OH, NH2, Cl, CH3 …: substituents BRICS never cuts) only onto carbon;
        ``"valence"``: any single bond with at least one carbon end.
    Raises `MoleculeParseError` for an unparsable ``smiles`` and `ValueError` for an unknown ``attachment``.
    """
    if attachment not in ATTACHMENT_RULES:
        raise ValueError(f"attachment must be one of {ATTACHMENT_RULES}, got {attachment!r}")
    parse_smiles(smiles)  # the error names the SMILES
    template = _kekule_template(smiles.strip())
    if template is None:
        return [None] * len(edits)
    return [_apply_one(template, remove, fragment, bonds, attachment) for remove, fragment, bonds in edits]


def _apply_one(template: Chem.Mol, remove, fragment, bonds, attachment: str) -> str | None:
    n = template.GetNumAtoms()
    remove = sorted({int(a) for a in remove}, reverse=True)
    if any(not 0 <= a < n for a in remove) or len(remove) >= n:
        return None
    removed = set(remove)
    rw = Chem.RWMol(template)
    new_bonds = []
    if fragment is not None:
        frag = _kekule_template(fragment)
        if frag is None or not bonds:
            return None
        offset = n
        rw.InsertMol(frag)
        for a, f in bonds:
            a, f = int(a), int(f)
            if a in removed or not 0 <= a < n or not 0 <= f < frag.GetNumAtoms():
                return None
            if rw.GetBondBetweenAtoms(a, offset + f) is not None:
                return None
            rw.AddBond(a, offset + f, Chem.BondType.SINGLE)
            new_bonds.append((a, offset + f))
    elif bonds:
        return None
    if len({a for a, _ in new_bonds}) != len(new_bonds) or len({f for _, f in new_bonds}) != len(new_bonds):
        return None  # one new bond per atom: each gives up one hydrogen
    # atoms that lose a neighbour and whose hydrogens are fixed (bracket atoms) get the hydrogens back
    freed: dict[int, int] = {}  # hydrogens an atom gains from losing neighbours
    for a in remove:
        for bond in template.GetAtomWithIdx(a).GetBonds():
            other = bond.GetOtherAtom(template.GetAtomWithIdx(a))
            if other.GetIdx() not in removed:
                order = int(round(bond.GetBondTypeAsDouble()))
                freed[other.GetIdx()] = freed.get(other.GetIdx(), 0) + order
                if other.GetNoImplicit():
                    atom = rw.GetAtomWithIdx(other.GetIdx())
                    atom.SetNumExplicitHs(atom.GetNumExplicitHs() + order)
    # atoms that gain a neighbour give up a hydrogen: they must be neutral, radical-free and have one to give
    # (checked on the input: RDKit would otherwise invent one to reach a higher valence, e.g. on S or P)
    for a, f in new_bonds:
        for idx, before, gained in ((a, template.GetAtomWithIdx(a), freed.get(a, 0)), (f, frag.GetAtomWithIdx(f - n), 0)):
            if before.GetFormalCharge() or before.GetNumRadicalElectrons() or before.GetTotalNumHs() + gained < 1:
                return None
            rw_atom = rw.GetAtomWithIdx(idx)
            if rw_atom.GetNumExplicitHs() > 0:
                rw_atom.SetNumExplicitHs(rw_atom.GetNumExplicitHs() - 1)
    for a in remove:  # descending, so lower indices stay valid
        rw.RemoveAtom(a)
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:
        return None
    if any(atom.GetNumRadicalElectrons() for atom in mol.GetAtoms()):
        return None
    if len(Chem.GetMolFrags(mol)) != 1:
        return None
    shift = lambda i: i - sum(1 for r in remove if r < i)  # noqa: E731  (index after the removals)
    for a, f in new_bonds:
        a, f = shift(a), shift(f)
        ends = (mol.GetAtomWithIdx(a), mol.GetAtomWithIdx(f))
        if not _new_bond_allowed(mol, a, f, ends, fragment, attachment):
            return None
    return _round_trip(mol)


def _new_bond_allowed(mol, a: int, f: int, ends, fragment: str, attachment: str) -> bool:
    carbon = [atom.GetAtomicNum() == 6 for atom in ends]
    if attachment == "valence":
        return any(carbon)
    frag_heavy = _kekule_template(fragment).GetNumAtoms()
    if frag_heavy == 1:
        return carbon[0]  # a single-atom substituent goes onto a carbon of the source
    return is_brics_bond(mol, a, f)


def _round_trip(mol: Chem.Mol) -> str | None:
    """Canonical SMILES of ``mol`` that parses again (and is canonical for the re-parsed molecule), else None."""
    try:
        smiles = Chem.MolToSmiles(mol)
    except Exception:
        return None
    again = Chem.MolFromSmiles(smiles)
    if again is None or again.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(again)


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


__all__ += [
    "ATTACHMENT_RULES",
    "EDIT_DESCRIPTORS",
    "apply_motif_edits",
    "attachment_atoms",
    "count_fragments",
    "count_substructure",
    "is_brics_bond",
    "is_valid_smiles",
    "molecule_bonds",
    "molecule_descriptors",
    "morgan_fingerprint",
    "tanimoto_similarity",
]
