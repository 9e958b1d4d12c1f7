# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Motifs of a molecule: BRICS environments, the decomposition rules, motif identity and the junction tree.

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

The per-molecule path (`_encode_slow`: `_describe`, features, `_decompose`) defines the result; the batched
path (`_encode_fast`) computes the same for regular molecules with numpy over a whole batch, and tests assert
that both agree. The motif-level edit primitives (`apply_motif_edits`, `attachment_atoms`, `is_brics_bond`)
live here too: they cut and join molecules along the same bonds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import BRICS

from .chemistry_finemoltex import (
    _CHARGED,
    _CHIRAL,
    _DENSE_LIMIT,
    _HETERO,
    MoleculeParseError,
    _describe,
    _Molecule,
    parse_smiles,
    shorten,
)
from .features_finemoltex import _BOND_DIR, _CHIRALITY, _TYPE_OF_ORDER2, FEATURE_SETS, _atom_features, _bond_features



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


def _remember_motif(key, smiles: str) -> None:
    """Cache a motif key's SMILES; both caches start again when full (bounded memory over long runs)."""
    if len(_MOTIF_CACHE) >= _MOTIF_CACHE_LIMIT:
        _MOTIF_CACHE.clear()
        _KEKULE_CACHE.clear()
    _MOTIF_CACHE[key] = smiles


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
        _remember_motif(key, smiles)
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


def _cut_bonds(atomic_num, charge, aromatic, in_ring, degree, begin, end, order, ring_bond) -> np.ndarray:
    """Bonds cut by the FineMolTex/MGSSL rules -> bool (num_bonds,): BRICS bonds, ring-to-chain bonds and the bonds
    of branching chain atoms. Atom arrays (num_atoms,), bond arrays (num_bonds,), one molecule or a whole batch
    (atoms numbered across it)."""
    branching = (~in_ring) & (degree > 2)
    acyclic = ~ring_bond
    cut = acyclic & ((in_ring[begin] != in_ring[end]) | branching[begin] | branching[end])
    # BRICS bonds are acyclic; ring-to-chain and branching bonds are cut already, so test only the rest
    candidates = acyclic & ~cut
    if candidates.any():
        labels = _brics_env_labels(atomic_num, charge, aromatic, in_ring, degree, begin, end, order, ring_bond)
        for bond, value in (("-", 1.0), ("=", 2.0)):
            sel = np.flatnonzero(candidates & (order == value))
            cut[sel[_pair_is_brics(labels, begin[sel], end[sel], bond)]] = True
    return cut


def _brics_cut(desc: _Molecule) -> np.ndarray | None:
    """Bonds cut by the FineMolTex/MGSSL rules (bool per bond), or None when at most one is cut."""
    cut = _cut_bonds(desc.atomic_num, desc.charge, desc.aromatic, desc.in_ring, desc.degree, desc.begin, desc.end,
                     desc.order, desc.ring_bond)
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
        _remember_motif(key, smiles)
    return smiles


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


@dataclass
class _RawFacts:
    """What a few RDKit calls per molecule tell about a batch, atoms numbered across the batch (molecule after
    molecule). Everything else of the batched path is computed from these with numpy."""

    sizes: np.ndarray  # (num_mols,) atoms per molecule
    num_bonds: np.ndarray  # (num_mols,) RDKit's bond count per molecule
    adjacency: list  # num_mols flattened (n * n,) dense adjacency matrices with bond orders (aromatic 1.5)
    atomic_num: np.ndarray  # (total,)
    charge: np.ndarray  # (total,)
    ranks: np.ndarray  # (total,) canonical rank of each atom within its molecule
    aromatic_h: list  # global indices of aromatic atoms whose hydrogen count is not 3 - degree
    aromatic_h_count: list  # their total hydrogen counts
    ring_atoms: list  # atoms of RDKit's rings, ring after ring (local indices)
    ring_sizes: list  # atoms per ring
    ring_offsets: list  # first global atom index of each ring's molecule


def _gather_facts(mols) -> _RawFacts:
    """The only RDKit calls of the batched path before the Kekulé step: adjacency, hetero and charged atoms,
    aromatic hydrogens, rings, canonical ranks."""
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
    atomic_num = np.full(total, 6, dtype=np.int64)
    atomic_num[hetero] = hetero_z
    charge = np.zeros(total, dtype=np.int64)
    charge[charged] = charged_q
    return _RawFacts(
        np.array(sizes, dtype=np.int64), np.array(num_bonds, dtype=np.int64), adjacency, atomic_num, charge,
        np.array(ranks, dtype=np.int64), aromatic_h, aromatic_h_count, ring_atoms, ring_sizes, ring_offsets,
    )


def _bonds_from_adjacency(sizes: np.ndarray, adjacency: list) -> tuple[np.ndarray, ...]:
    """Bonds of a batch from its flattened dense adjacency matrices -> ``begin, end`` (global atom indices,
    ``begin < end``), ``order`` (float), ``bond_mol`` (molecule of each bond), all (num_bonds,) sorted by molecule
    then atoms, and ``bond_offset`` (num_mols + 1,)."""
    num_mols = len(sizes)
    atom_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(sizes, out=atom_offset[1:])
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
    bond_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(np.bincount(bond_mol, minlength=num_mols), out=bond_offset[1:])
    return begin, end, order, bond_mol, bond_offset


def _ring_membership(total: int, begin, end, ring_atoms, ring_sizes, ring_offsets) -> tuple[np.ndarray, np.ndarray]:
    """``in_ring`` (total,) and ``ring_bond`` (num_bonds,) bool from RDKit's rings: a bond is a ring bond iff its
    two atoms follow each other on a ring (``ring_offsets``: first global atom of each ring's molecule)."""
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
    return in_ring, ring_bond


def _connected_pieces(total: int, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(total,) label of each atom: the lowest atom index of its connected piece over the bonds ``begin``-``end``
    (min-label propagation with pointer jumping)."""
    label = np.arange(total)
    while True:
        low = np.minimum(label[begin], label[end])
        new = label.copy()
        np.minimum.at(new, begin, low)
        np.minimum.at(new, end, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def _tree_positions(skip: list, motif_offset: list, min_rank: list, tree_a: list, tree_b: list, cut_offset: list,
                    with_edges: bool) -> tuple[list[int], list]:
    """Breadth-first position of every motif of the batch within its molecule's motif tree (`_bfs_order`), and
    per molecule its tree edges in those positions (when ``with_edges``; else None). Molecules marked in ``skip``
    are left at 0 / None. ``tree_a``, ``tree_b``: the two motifs (local ids) of each cut bond, molecule after
    molecule (``cut_offset``). Small trees: plain Python."""
    num_mols = len(skip)
    position = [0] * motif_offset[-1]
    tree_edges: list = [None] * num_mols
    for m in range(num_mols):
        if skip[m]:
            continue
        m0, k = motif_offset[m], motif_offset[m + 1] - motif_offset[m]
        c0, c1 = cut_offset[m], cut_offset[m + 1]
        local_rank = min_rank[m0 : m0 + k]
        order_ = _bfs_order(k, list(zip(tree_a[c0:c1], tree_b[c0:c1])), local_rank) if k > 1 else [0]
        for p, motif in enumerate(order_):
            position[m0 + motif] = p
        if with_edges:
            new = [0] * k
            for p, motif in enumerate(order_):
                new[motif] = p
            pairs = zip(tree_a[c0:c1], tree_b[c0:c1])
            tree_edges[m] = sorted({(min(new[a], new[b]), max(new[a], new[b])) for a, b in pairs})
    return position, tree_edges


def _kekule_bond_orders(mols, kekule_mols, order2, begin, end, atom_offset, bond_offset) -> np.ndarray:
    """(total,) bool: atoms of the molecules ``kekule_mols``, whose entries of ``order2`` (2 x bond order, updated
    in place) become their Kekulé bond orders. Kekulises those molecules in place (their last RDKit use)."""
    kekule_atoms = np.zeros(atom_offset[-1], dtype=bool)
    for m in kekule_mols.tolist():
        mol = mols[m]
        Chem.Kekulize(mol, clearAromaticFlags=False)
        e0, e1 = bond_offset[m], bond_offset[m + 1]
        kek = Chem.GetAdjacencyMatrix(mol, useBO=True, force=True)
        a0 = atom_offset[m]
        order2[e0:e1] = np.rint(kek[begin[e0:e1] - a0, end[e0:e1] - a0] * 2).astype(np.int64)
        kekule_atoms[a0 : atom_offset[m + 1]] = True
    return kekule_atoms


def _motif_keys(code, motif_of_atom, num_motifs: int, begin, end, order2, keep) -> tuple[bytes, list, list]:
    """Keys of the motifs of a batch (`_fast_motif_smiles` reads one): per motif its atom count, the codes of its
    atoms (``code``, (total,)) and its bonds as (first, second, 2 x order) in the key's own atom numbering, as
    int32 -> (all keys as one byte string, start and end byte offset of each motif's key).

    Atom order inside a key: by a colour refined over the motif's own bonds (``keep``; Weisfeiler-Lehman rounds),
    ties by input order, so that the same motif reached through another atom order mostly gets the same key.
    The key describes the fragment exactly in any order; the colours only raise the cache hit rate."""
    total = len(code)
    motif_size = np.bincount(motif_of_atom, minlength=num_motifs)
    motif_start = np.cumsum(motif_size) - motif_size
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
    return buffer.tobytes(), (key_start * 4).tolist(), ((key_start + key_length) * 4).tolist()


def _encode_fast(mols, smiles, feature_set: str, with_edges: bool) -> list[_Encoded | None]:
    """Vectorised `_Encoded` of regular molecules; None for those the per-molecule path must take."""
    num_mols = len(mols)
    facts = _gather_facts(mols)
    sizes, atomic_num, charge, ranks = facts.sizes, facts.atomic_num, facts.charge, facts.ranks
    total = int(sizes.sum())
    atom_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(sizes, out=atom_offset[1:])
    atom_mol = np.repeat(np.arange(num_mols), sizes)

    begin, end, order, bond_mol, bond_offset = _bonds_from_adjacency(sizes, facts.adjacency)
    # a bond the dense matrix cannot show (order 0, dative...) sends its molecule down the per-molecule path
    slow = np.diff(bond_offset) != facts.num_bonds
    degree = np.bincount(begin, minlength=total) + np.bincount(end, minlength=total)
    aromatic = np.zeros(total, dtype=bool)
    is_aromatic_bond = order == 1.5
    aromatic[begin[is_aromatic_bond]] = True
    aromatic[end[is_aromatic_bond]] = True
    in_ring, ring_bond = _ring_membership(total, begin, end, facts.ring_atoms, facts.ring_sizes, facts.ring_offsets)

    cut = _cut_bonds(atomic_num, charge, aromatic, in_ring, degree, begin, end, order, ring_bond)
    num_cut = np.bincount(bond_mol[cut], minlength=num_mols)
    slow |= (num_cut <= 1) & (sizes > 1)  # junction tree

    # ---- motifs: the connected pieces left, numbered by their lowest atom, then in BFS order ----
    keep = ~cut
    label = _connected_pieces(total, begin[keep], end[keep])
    roots = np.flatnonzero(label == np.arange(total))
    motif_of_atom = np.searchsorted(roots, label)
    num_motifs = len(roots)
    motif_mol = atom_mol[roots]
    motif_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(np.bincount(motif_mol, minlength=num_mols), out=motif_offset[1:])
    min_rank = np.full(num_motifs, np.iinfo(np.int64).max)
    np.minimum.at(min_rank, motif_of_atom, ranks)
    cut_offset = np.zeros(num_mols + 1, dtype=np.int64)
    np.cumsum(num_cut, out=cut_offset[1:])
    slow_list, motif_offset_list = slow.tolist(), motif_offset.tolist()
    position, tree_edges = _tree_positions(
        slow_list, motif_offset_list, min_rank.tolist(),
        (motif_of_atom[begin[cut]] - motif_offset[bond_mol[cut]]).tolist(),
        (motif_of_atom[end[cut]] - motif_offset[bond_mol[cut]]).tolist(),
        cut_offset.tolist(), with_edges,
    )
    final_motif = motif_offset[motif_mol] + np.array(position, dtype=np.int64)  # global motif id in BFS order
    motif_of_atom = final_motif[motif_of_atom]

    # ---- features (before the Kekulé step below changes bond types) ----
    atom_feats, bond_feats = _fast_features(
        mols, smiles, feature_set, atomic_num, order, atom_offset, bond_offset, begin, end, slow
    )

    # ---- motif keys: atom codes and bonds of each motif ----
    # Aromatic atoms carry their hydrogen count in the fragment (parent's + one per cut bond), so no Kekulé
    # structure is needed; a molecule with a cut double bond at an aromatic atom needs one (pyridones): its
    # motif keys take the Kekulé bond orders of the parent, as the per-molecule path does.
    order2 = np.rint(order * 2).astype(np.int64)
    arom_end = aromatic[begin] | aromatic[end]
    needs_kekule = np.bincount(bond_mol[cut & arom_end & (order2 != 2)], minlength=num_mols) > 0
    kekule_atoms = _kekule_bond_orders(mols, np.flatnonzero(needs_kekule & ~slow), order2, begin, end, atom_offset,
                                       bond_offset)
    code = atomic_num * 64 + np.minimum(np.maximum(charge, -_CHARGE_OFFSET), 63 - _CHARGE_OFFSET) + _CHARGE_OFFSET
    with_h = aromatic & ~kekule_atoms
    if with_h.any():
        hydrogens = np.where(atomic_num == 6, 3 - degree, 0)
        hydrogens[facts.aromatic_h] = facts.aromatic_h_count
        hydrogens += np.bincount(begin[cut], minlength=total) + np.bincount(end[cut], minlength=total)
        code[with_h] += _AROMATIC_CODE * (1 + hydrogens[with_h])
    raw, starts4, ends4 = _motif_keys(code, motif_of_atom, num_motifs, begin, end, order2, keep)

    # ---- one `_Encoded` per molecule, memberships sorted by (motif, atom) ----
    member = np.argsort(motif_of_atom * total + np.arange(total), kind="stable")
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
# Motif-level edit primitives (used by editing_finemoltex.py): attachment atoms, BRICS bonds, applying edits
# --------------------------------------------------------------------------------------------------

#: Attachment rules of `apply_motif_edits` (see there).
ATTACHMENT_RULES = ("brics", "valence")


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


__all__ = ["ATTACHMENT_RULES", "MotifDecomposition", "apply_motif_edits", "attachment_atoms", "is_brics_bond"]
