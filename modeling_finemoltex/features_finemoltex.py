# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Atom and bond features of a molecular graph: the feature sets (names and vocabulary sizes) and the per-molecule
featurisers. Every feature is a categorical index; the last index of each list is "other"."""

from __future__ import annotations

import numpy as np
from rdkit import Chem

from .chemistry_finemoltex import _CHIRAL, _Molecule



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


__all__ = ["FEATURE_SETS", "feature_sizes"]
