"""Graph tokenizer: motif rules, SMILES invariance, features, vocabulary, bad input."""

import json
import random
import warnings

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import BRICS

from modeling_finemoltex import FineMolTexGraphTokenizer, MoleculeParseError, MotifVocab, feature_sizes
from modeling_finemoltex import chemistry_finemoltex as chemmod
from modeling_finemoltex import motifs_finemoltex as motifmod
from modeling_finemoltex.tokenization_finemoltex import CLS_ID, MASK_ID, PAD_ID, UNK_ID


@pytest.fixture(scope="module")
def tok():
    return FineMolTexGraphTokenizer()


# ---------------------------------------------------------------------------------------------- rules


def partition(dec):
    return sorted(tuple(atoms) for atoms in dec.motif_atoms)


def motifs_of(tok, smiles):
    return sorted(tok.decompose(smiles).motifs)


@pytest.mark.parametrize(
    "smiles, expected",
    [
        # aspirin: ester O (BRICS), ring-to-chain bonds cut, both carbonyl carbons branch (3 neighbours)
        ("CC(=O)Oc1ccccc1C(=O)O", ["C", "C", "C", "C1=CC=CC=C1", "O", "O", "O", "O"]),
        # isobutane: the branching atom is a motif of its own
        ("CC(C)C", ["C", "C", "C", "C"]),
        # diethyl ether: BRICS cuts C-O bonds on both sides (L3-L4)
        ("CCOCC", ["CC", "CC", "O"]),
        # biphenyl: the ring-ring bond is BRICS (L16-L16); two bonds? no: one cut -> junction tree
        ("c1ccc(-c2ccccc2)cc1", ["C1=CC=CC=C1", "C1=CC=CC=C1", "CC"]),
        # salt: the ions are separate motifs and nothing is lost
        ("[Na+].CC(=O)[O-]", ["C", "C", "O", "[Na+]", "[OH-]"]),
        # toluene: one ring-to-chain cut only -> junction tree (a bond motif and the ring)
        ("Cc1ccccc1", ["C1=CC=CC=C1", "CC"]),
        # naphthalene: no cut -> junction tree rings (Kekulé structure shared by the two rings)
        ("c1ccc2ccccc2c1", ["C1=CC=CC=C1", "C1=CCCC=C1"]),
        # one atom
        ("O", ["O"]),
    ],
)
def test_hand_checked_decompositions(tok, smiles, expected):
    assert motifs_of(tok, smiles) == sorted(expected)


def test_methods(tok):
    assert tok.decompose("C").method == "single_atom"
    assert tok.decompose("CCO").method == "junction_tree"
    assert tok.decompose("CC(=O)Oc1ccccc1C(=O)O").method == "brics"


def test_junction_tree_overlap_and_tree(tok):
    dec = tok.decompose("CCO")  # no BRICS cut: two bond motifs sharing the middle carbon
    assert dec.motifs == ["CC", "CO"] or sorted(dec.motifs) == ["CC", "CO"]
    assert sorted(len(m) for m in dec.atom_motifs) == [1, 1, 2]
    assert dec.edges == [(0, 1)]


def _rules_partition(smiles):
    """The stated FineMolTex rules, written plainly with RDKit's own BRICS (test oracle)."""
    mol = Chem.MolFromSmiles(smiles)
    cut = set()
    for (i, j), _ in BRICS.FindBRICSBonds(mol):
        cut.add(frozenset((i, j)))
    for bond in mol.GetBonds():
        a, b = bond.GetBeginAtom(), bond.GetEndAtom()
        if a.IsInRing() != b.IsInRing():
            cut.add(frozenset((a.GetIdx(), b.GetIdx())))
    for atom in mol.GetAtoms():
        if not atom.IsInRing() and atom.GetDegree() > 2:
            for nbr in atom.GetNeighbors():
                cut.add(frozenset((atom.GetIdx(), nbr.GetIdx())))
    if len(cut) <= 1:
        return None
    ids = [mol.GetBondBetweenAtoms(*tuple(pair)).GetIdx() for pair in cut]
    pieces = Chem.GetMolFrags(Chem.FragmentOnBonds(mol, ids, addDummies=False))
    return sorted(tuple(sorted(p)) for p in pieces)


def test_partition_follows_the_stated_rules(tok, chebi_pairs, zinc_smiles):
    smiles = [s for _, s, _ in chebi_pairs[:600]] + zinc_smiles[:600]
    checked = 0
    for s in smiles:
        expected = _rules_partition(s)
        dec = tok.decompose(s)
        if expected is None:
            assert dec.method in ("junction_tree", "single_atom"), s
            continue
        assert dec.method == "brics", s
        assert partition(dec) == expected, s
        checked += 1
    assert checked > 1000


def test_motif_tree_edges_are_the_cut_bonds(tok):
    smiles = "CC(=O)Oc1ccccc1C(=O)O"
    mol = Chem.MolFromSmiles(smiles)
    dec = tok.decompose(smiles)
    motif_of = {a: ms[0] for a, ms in enumerate(dec.atom_motifs)}
    crossing = set()
    for bond in mol.GetBonds():
        a, b = motif_of[bond.GetBeginAtomIdx()], motif_of[bond.GetEndAtomIdx()]
        if a != b:
            crossing.add((min(a, b), max(a, b)))
    assert set(dec.edges) == crossing
    assert len(dec.edges) == len(dec.motifs) - 1  # a tree


def test_positions_are_breadth_first_from_first_canonical_atom(tok):
    smiles = "CC(=O)Oc1ccccc1C(=O)O"
    mol = Chem.MolFromSmiles(smiles)
    dec = tok.decompose(smiles)
    ranks = list(Chem.CanonicalRankAtoms(mol))
    first_atom = ranks.index(0)
    assert dec.positions == list(range(len(dec.motifs)))
    assert 0 in dec.atom_motifs[first_atom]
    # BFS: each motif's parent (its tree neighbour nearest the root) comes before it, depths never decrease
    depth = {0: 0}
    frontier = [0]
    neighbours = {m: set() for m in range(len(dec.motifs))}
    for a, b in dec.edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    while frontier:
        nxt = []
        for m in frontier:
            for n in neighbours[m]:
                if n not in depth:
                    depth[n] = depth[m] + 1
                    nxt.append(n)
        frontier = nxt
    depths = [depth[m] for m in range(len(dec.motifs))]
    assert depths == sorted(depths)


# ------------------------------------------------------------------------------------------ invariance


def test_decomposition_does_not_depend_on_how_smiles_is_written(tok, chebi_pairs, zinc_smiles):
    rng = random.Random(0)
    smiles = [s for _, s, _ in chebi_pairs[:500]] + zinc_smiles[:300]
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        reference = tok.decompose(s)
        for _ in range(2):
            Chem.rdBase.SeedRandomNumberGenerator(rng.randrange(1 << 30))
            other = Chem.MolToSmiles(mol, doRandom=True, canonical=False)
            dec = tok.decompose(other)
            assert dec.motifs == reference.motifs, (s, other)
            assert dec.edges == reference.edges, (s, other)
            assert dec.positions == reference.positions
            assert dec.method == reference.method


def test_atom_motifs_follow_the_atoms(tok):
    # the same molecule written two ways: each atom keeps the motif it had
    first, second = "OCC(=O)NCc1ccccc1", "c1ccc(CNC(=O)CO)cc1"
    match = Chem.MolFromSmiles(second).GetSubstructMatch(Chem.MolFromSmiles(first))
    a, b = tok.decompose(first), tok.decompose(second)
    for i, j in enumerate(match):
        assert [a.motifs[m] for m in a.atom_motifs[i]] == [b.motifs[m] for m in b.atom_motifs[j]]


def test_motif_identities_match_the_authors_vocabulary_format(tok, shared_data, zinc_smiles):
    """Our motif SMILES are in the reference's form (Kekulé, no stereo): nearly all are in its vocabulary."""
    path = shared_data / "finemoltex_motif_vocab" / "frequency2.txt"
    reference = {line.split()[0] for line in path.read_text().splitlines() if line.strip()}
    seen = [m for s in zinc_smiles[:1000] for m in tok.decompose(s).motifs]
    unknown = sum(m not in reference for m in seen) / len(seen)
    assert unknown < 0.05  # the authors' own pipeline: 2.2% of motifs on this file are not in it


# -------------------------------------------------------------------------------------------- features


def test_reference_features(tok):
    enc = tok.encode_molecule("C/C=C/[C@H](N)c1ccccc1")
    atoms = np.array(enc["atom_features"]).reshape(-1, 2)
    bonds = np.array(enc["edge_features"]).reshape(-1, 2)
    assert atoms.shape[0] == enc["num_atoms"][0] == 11
    assert set(atoms[:, 0]) == {6, 7}
    assert (atoms[:, 1] > 0).sum() == 1  # one stereocentre
    assert (bonds[:, 0] == 3).sum() == 6  # aromatic ring bonds
    assert (bonds[:, 0] == 1).sum() == 1  # the double bond
    assert (bonds[:, 1] > 0).sum() == 2  # the two directional single bonds
    atom_sizes, bond_sizes = feature_sizes("reference")
    assert (atoms < np.array(atom_sizes)).all() and (bonds < np.array(bond_sizes)).all()


def test_rich_features_within_their_vocabularies():
    tok = FineMolTexGraphTokenizer(feature_set="rich")
    atom_sizes, bond_sizes = feature_sizes("rich")
    for s in ["C[N+](=O)[O-]", "O=C1NC(=O)c2ccccc21", "[13CH4]", "C#N", "*CC*", "[Fe+3]"]:
        enc = tok.encode_molecule(s)
        atoms = np.array(enc["atom_features"]).reshape(-1, len(atom_sizes))
        bonds = np.array(enc["edge_features"]).reshape(-1, len(bond_sizes))
        assert (atoms >= 0).all() and (atoms < np.array(atom_sizes)).all(), s
        assert (bonds >= 0).all() and (bonds < np.array(bond_sizes)).all(), s
    enc = tok.encode_molecule("C[N+](=O)[O-]")
    atoms = np.array(enc["atom_features"]).reshape(-1, len(atom_sizes))
    assert sorted(atoms[:, 2] - 5) == [-1, 0, 0, 1]  # formal charges


def test_unknown_feature_set_is_rejected():
    with pytest.raises(ValueError, match="feature_set"):
        FineMolTexGraphTokenizer(feature_set="fancy")


def test_encoded_row_is_consistent(tok):
    enc = tok.encode_molecule("CC(=O)Oc1ccccc1C(=O)O")
    n = enc["num_atoms"][0]
    edges = np.array(enc["edge_index"]).reshape(2, -1)
    assert edges.shape[1] == 13 and (edges < n).all() and (edges[0] < edges[1]).all()
    assert enc["motif_ids"][0] == CLS_ID and len(enc["motif_ids"]) == 9
    assert enc["motif_positions"] == list(range(9))
    membership = np.array(enc["motif_membership"]).reshape(2, -1)
    assert sorted(membership[0]) == list(range(n))  # BRICS path: every atom in exactly one motif
    assert set(membership[1]) == set(range(1, 9))


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("bad", ["C1CC", "not a smiles", "", "   ", None, 42, "c1cccc1"])
def test_bad_smiles_raise_naming_index_and_string(tok, bad):
    with pytest.raises(ValueError) as err:
        tok(["CCO", bad])
    assert "index 1" in str(err.value)
    assert repr(bad) in str(err.value)
    assert isinstance(err.value, MoleculeParseError)


def test_unkekulisable_aromatic_message(tok):
    with pytest.raises(MoleculeParseError, match="kekul"):
        tok.decompose("c1cccc1")


def test_ignore_errors_skips_and_reports(tok):
    batch = tok(["CCO", "C1CC", "c1ccccc1"], ignore_errors=True)
    assert batch["kept_indices"] == [0, 2]
    assert batch["motif_input_ids"].shape[0] == 2
    assert int(batch["graph_batch"].max()) == 1
    errors = {}
    columns, kept = tok.encode_batch(["CCO", "C1CC", None, "c1ccccc1"], ignore_errors=True, errors=errors)
    assert kept == [0, 3] and len(columns["motif_ids"]) == 2
    assert sorted(errors) == [1, 2] and "'C1CC'" in errors[1] and "index 2" in errors[2]


@pytest.mark.parametrize(
    "smiles",
    ["[Na+].[Cl-]", "[13CH4]", "[2H]OC([2H])([2H])[2H]", "*CC*", "[*:1]c1ccccc1", "[NH4+].[O-]C(=O)C", "[Fe]", "[H][H]"],
)
def test_unusual_but_valid_molecules(tok, smiles):
    enc = tok.encode_molecule(smiles)
    n = enc["num_atoms"][0]
    membership = np.array(enc["motif_membership"]).reshape(2, -1)
    assert set(membership[0]) == set(range(n))  # every atom in some motif (salts included)
    assert len(enc["motif_ids"]) >= 2


def test_isotopes_and_charges_keep_motif_identity_simple(tok):
    assert tok.decompose("[13CH4]").motifs == ["C"]
    assert tok.decompose("[NH4+]").motifs == ["[NH4+]"]


def _peptide(n):
    return "N" + "".join("[C@@H](C)C(=O)N" for _ in range(n - 1)) + "CC(=O)O"


@pytest.mark.parametrize(
    "smiles, min_atoms",
    [
        (_peptide(85), 400),  # a long peptide
        ("C1" + "C" * 498 + "1", 499),  # a huge ring
        ("C" * 2000, 2000),  # a polymer fragment beyond the dense-matrix limit
        (
            "C12=C3C4=C5C6=C1C7=C8C9=C1C%10=C%11C(=C29)C3=C2C3=C4C4=C5C5=C9C6=C7C6=C7C8=C1C1=C8C%10=C%10C%11=C2"
            "C2=C3C3=C4C4=C5C5=C%11C%12=C(C6=C95)C7=C1C1=C%12C5=C%11C4=C3C3=C5C(=C81)C%10=C23",
            60,
        ),  # C60 fullerene
    ],
    ids=["peptide", "macrocycle", "polymer", "fullerene"],
)
def test_very_large_molecules(smiles, min_atoms):
    # the polymer is above the default max_atoms (1,000): raising the limit is the documented opt-in
    tok = FineMolTexGraphTokenizer(max_atoms=2500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = tok.encode_molecule(smiles)
    assert enc["num_atoms"][0] >= min_atoms


def test_motif_cap_warns_and_truncates():
    tok = FineMolTexGraphTokenizer(max_motifs=10)
    with pytest.warns(UserWarning, match="max_motifs"):
        enc = tok.encode_molecule(_peptide(20), index=7)
    assert len(enc["motif_ids"]) == 11
    membership = np.array(enc["motif_membership"]).reshape(2, -1)
    assert membership[1].max() == 10
    assert enc["num_atoms"][0] > membership[0].max()  # atoms stay in the graph


# ------------------------------------------------------------------------------------------ vocabulary


def test_vocab_build_counts_targets_and_specials():
    corpus = ["CC(=O)Oc1ccccc1C(=O)O"] * 10 + ["CCOCC"] * 3 + ["C1CC"]
    vocab = MotifVocab.build(corpus, target_min_frequency=10)
    assert vocab.tokens[:4] == ["[PAD]", "[UNK]", "[MASK]", "[CLS]"]
    assert (PAD_ID, UNK_ID, MASK_ID, CLS_ID) == (0, 1, 2, 3)
    counts = dict(vocab.motifs)
    assert counts["O"] == 43 and counts["C"] == 30 and counts["CC"] == 6
    assert vocab.num_targets == 3  # O, C, benzene seen >= 10 times
    assert [c for _, c in vocab.motifs] == sorted((c for _, c in vocab.motifs), reverse=True)
    assert vocab.build_options["skipped_molecules"] == 1 and vocab.build_options["num_molecules"] == 14


def test_vocab_min_frequency_and_max_size():
    counts = {"C": 50, "O": 40, "CC": 5, "N": 1}
    assert [m for m, _ in MotifVocab.from_counts(counts, min_frequency=5).motifs] == ["C", "O", "CC"]
    assert [m for m, _ in MotifVocab.from_counts(counts, max_size=2).motifs] == ["C", "O"]


def test_vocab_save_load_and_checksum(tmp_path):
    vocab = MotifVocab.from_counts({"C": 50, "O": 40, "CC": 5}, target_min_frequency=10)
    path = vocab.save(tmp_path / "v.json")
    again = MotifVocab.load(path)
    assert again.tokens == vocab.tokens and again.num_targets == 2 and again.checksum == vocab.checksum
    data = json.loads((tmp_path / "v.json").read_text())
    data["motifs"][0][1] = 51
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="checksum"):
        MotifVocab.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        MotifVocab.load(tmp_path / "missing.json")


def test_unknown_motifs_map_to_unk_and_are_counted():
    tok = FineMolTexGraphTokenizer.from_vocab(MotifVocab.from_counts({"C": 10, "O": 10}))
    enc = tok.encode_molecule("CC(=O)Oc1ccccc1C(=O)O")
    assert enc["motif_ids"].count(UNK_ID) == 1  # the benzene ring
    assert tok.unknown_motifs == 1 and tok.total_motifs == 8
    assert tok.convert_tokens_to_ids(["C", "C1=CC=CC=C1"]) == [5, UNK_ID] or tok.convert_tokens_to_ids(["C"]) == [4]


def test_tokenizer_interface(tok):
    assert tok.tokenize("CCOCC") == tok.decompose("CCOCC").motifs
    assert tok.cls_token_id == CLS_ID and tok.pad_token_id == PAD_ID and tok.mask_token_id == MASK_ID


def test_tokenizer_save_load_round_trip(tmp_path):
    from transformers import AutoTokenizer

    vocab = MotifVocab.build(["CC(=O)Oc1ccccc1C(=O)O", "CCOCC"], target_min_frequency=1)
    tok = FineMolTexGraphTokenizer.from_vocab(vocab, feature_set="rich", max_motifs=64)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert type(again) is FineMolTexGraphTokenizer
    assert again.feature_set == "rich" and again.max_motifs == 64
    assert again.get_vocab() == tok.get_vocab()
    assert again.motif_vocab.checksum == vocab.checksum
    assert again.encode_molecule("CCOCC") == tok.encode_molecule("CCOCC")


# ------------------------------------------------------------------------------------- batched fast path

# molecules that exercise the fast path's special cases: salts, dummies, isotopes/explicit H, charged and
# radical aromatic atoms, [nH], exocyclic C=O on aromatic rings (Kekulé keys), stereo, a lone atom
EDGE_CASES = [
    "C", "[Na+].[Cl-]", "CC(=O)[O-].[NH4+]", "*c1ccccc1", "[2H]C([2H])([2H])O", "c1ccc2c(c1)[nH]c1ccccc12",
    "O=c1cc[nH]c(=O)[nH]1", "c1cc[cH-]c1", "[c]1ccccc1", "C[n+]1ccccc1", "O=[N+]([O-])c1ccccc1", "CS(=O)(=O)c1ccccc1",
    "C1CC2CCC1C2", "F/C=C/F", "N[C@@H](C)C(=O)O", "CC1=CC(=O)c2ccccc2C1=O", "CCn1c(=O)c(=O)[nH]c2ccccc21",
    "O=C1C=CC(=O)C=C1", "OCC(O)CO.OCC(O)CO", "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1",
]


def _brics_patterns():
    return {name[1:].rstrip("ab"): Chem.MolFromSmarts(s) for name, s in BRICS.environs.items() if name[0] != "#"}


def test_brics_environments_match_rdkit(chebi_pairs, zinc_smiles):
    """Each environment written out as neighbour counts equals RDKit's own SMARTS match, and the bonds the
    environment pairs select equal `BRICS.FindBRICSBonds` (all acyclic bonds, not only the ones the rules test)."""
    patterns = _brics_patterns()
    assert sorted(patterns, key=int) == list(motifmod._BRICS_ENV_NAMES)
    smiles = [s for _, s, _ in chebi_pairs] + zinc_smiles[:700] + EDGE_CASES
    labelled = 0
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        desc = chemmod._describe(mol, s)
        labels = motifmod._brics_env_labels(
            desc.atomic_num, desc.charge, desc.aromatic, desc.in_ring, desc.degree, desc.begin, desc.end,
            desc.order, desc.ring_bond,
        )
        for k, name in enumerate(motifmod._BRICS_ENV_NAMES):
            expected = np.zeros(mol.GetNumAtoms(), dtype=bool)
            for match in mol.GetSubstructMatches(patterns[name], uniquify=False, maxMatches=1 << 30):
                expected[match[0]] = True
            assert (labels[:, k] == expected).all(), (s, f"L{name}")
        found = set()
        for bond, value in (("-", 1.0), ("=", 2.0)):
            sel = np.flatnonzero(~desc.ring_bond & (desc.order == value))
            hit = motifmod._pair_is_brics(labels, desc.begin[sel], desc.end[sel], bond)
            found |= {(int(i), int(j)) for i, j in zip(desc.begin[sel][hit], desc.end[sel][hit])}
        assert found == {tuple(sorted(pair)) for pair, _ in BRICS.FindBRICSBonds(mol)}, s
        labelled += labels.any()
    assert labelled > 3000


def _fresh(smiles):
    return [Chem.MolFromSmiles(s) for s in smiles]


@pytest.mark.parametrize("feature_set", ["reference", "rich"])
def test_batch_path_equals_per_molecule_path(feature_set, chebi_pairs, zinc_smiles):
    """The vectorised batch path gives exactly what the per-molecule path (which defines the result) gives:
    features, bonds, motifs, memberships, motif-tree edges, method — and it does most of the work."""
    smiles = [s for _, s, _ in chebi_pairs] + zinc_smiles[:1500] + EDGE_CASES
    if feature_set == "rich":
        smiles = smiles[::4] + EDGE_CASES
    fast = motifmod._encode_fast(_fresh(smiles), smiles, feature_set, True)
    assert sum(r is None for r in fast) < 0.05 * len(smiles)  # junction tree and the odd fragment only
    batch = motifmod._encode_mols(_fresh(smiles), smiles, feature_set, with_edges=True)
    for s, mol, got in zip(smiles, _fresh(smiles), batch):
        assert vars(got) == vars(motifmod._encode_slow(mol, s, feature_set, True)), s


def test_batch_rows_equal_single_rows_in_any_chunking(monkeypatch, zinc_smiles, chebi_pairs):
    smiles = zinc_smiles[:300] + [s for _, s, _ in chebi_pairs[:300]] + EDGE_CASES
    tok = FineMolTexGraphTokenizer.from_vocab(MotifVocab.build(smiles[::2]))
    columns, kept = tok.encode_batch(smiles)
    assert kept == list(range(len(smiles)))
    rows = [{name: columns[name][i] for name in columns} for i in range(len(smiles))]
    assert rows == [tok.encode_molecule(s) for s in smiles]
    assert sum(UNK_ID not in r["motif_ids"] for r in rows) > 100  # motif ids, not only [UNK], were compared
    monkeypatch.setattr(motifmod, "_ADJACENCY_BUDGET", 1500)  # many small chunks, lone molecules among them
    again, _ = tok.encode_batch(smiles)
    assert again == columns


def test_batch_motif_cap_names_the_molecule():
    tok = FineMolTexGraphTokenizer(max_motifs=10)
    with pytest.warns(UserWarning, match="index 2 has"):
        columns, _ = tok.encode_batch(["CCO", "c1ccccc1CCN", _peptide(20)])
    # [CLS] + junction-tree motifs: CC, CO | ring, CC, CC, CN | (capped)
    assert [len(ids) for ids in columns["motif_ids"]] == [3, 5, 11]


def test_encode_batch_leaves_the_garbage_collector_as_it_was(tok):
    import gc

    assert gc.isenabled()
    tok.encode_batch(["CCO", "c1ccccc1"])
    assert gc.isenabled()
    gc.disable()
    try:
        tok.encode_batch(["CCO", "c1ccccc1"])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_decompose_batch_equals_decompose(tok, zinc_smiles):
    smiles = zinc_smiles[:200] + EDGE_CASES + ["C1CC"]
    got = tok.decompose_batch(smiles, ignore_errors=True)
    assert got[-1] is None
    assert got[:-1] == [tok.decompose(s) for s in smiles[:-1]]
    with pytest.raises(MoleculeParseError, match="index 2"):
        tok.decompose_batch(["CCO", "CCN", "C1CC"])


# ---- the named steps of the batched path, each against its per-molecule counterpart ----
STEP_MOLECULES = ["CCO", "c1ccccc1CC(=O)N", "C1CC2CCC1C2", "[Na+].[Cl-]", "O=c1cc[nH]c(=O)[nH]1", "C"]


def _step_batch(smiles=STEP_MOLECULES):
    """Raw facts and bonds of a batch, and the per-molecule descriptions with atoms shifted to batch numbering."""
    mols = _fresh(smiles)
    facts = motifmod._gather_facts(mols)
    begin, end, order, bond_mol, bond_offset = motifmod._bonds_from_adjacency(facts.sizes, facts.adjacency)
    descs = [chemmod._describe(mol, s) for mol, s in zip(_fresh(smiles), smiles)]
    offsets = np.concatenate([[0], np.cumsum([len(d.atomic_num) for d in descs])])
    return facts, (begin, end, order, bond_mol, bond_offset), descs, offsets


def test_step_gather_facts_and_bonds_equal_describe():
    facts, (begin, end, order, bond_mol, bond_offset), descs, offsets = _step_batch()
    assert facts.sizes.tolist() == [len(d.atomic_num) for d in descs]
    assert facts.atomic_num.tolist() == np.concatenate([d.atomic_num for d in descs]).tolist()
    assert facts.charge.tolist() == np.concatenate([d.charge for d in descs]).tolist()
    assert facts.ranks.tolist() == np.concatenate([d.ranks for d in descs]).tolist()
    assert begin.tolist() == np.concatenate([d.begin + o for d, o in zip(descs, offsets)]).tolist()
    assert end.tolist() == np.concatenate([d.end + o for d, o in zip(descs, offsets)]).tolist()
    assert order.tolist() == np.concatenate([d.order for d in descs]).tolist()
    assert np.diff(bond_offset).tolist() == [len(d.begin) for d in descs]
    assert bond_mol.tolist() == np.repeat(np.arange(len(descs)), [len(d.begin) for d in descs]).tolist()


def test_step_ring_membership_equals_describe():
    facts, (begin, end, *_), descs, _ = _step_batch()
    in_ring, ring_bond = motifmod._ring_membership(
        int(facts.sizes.sum()), begin, end, facts.ring_atoms, facts.ring_sizes, facts.ring_offsets
    )
    assert in_ring.tolist() == np.concatenate([d.in_ring for d in descs]).tolist()
    assert ring_bond.tolist() == np.concatenate([d.ring_bond for d in descs]).tolist()
    assert ring_bond.any() and not ring_bond.all()


def test_step_cut_bonds_of_a_batch_are_those_of_each_molecule():
    _, _, descs, offsets = _step_batch()

    def cut(d, shift=0):
        return motifmod._cut_bonds(d.atomic_num, d.charge, d.aromatic, d.in_ring, d.degree, d.begin + shift,
                                   d.end + shift, d.order, d.ring_bond)

    joined = [np.concatenate(arrays) for arrays in zip(*[
        (d.atomic_num, d.charge, d.aromatic, d.in_ring, d.degree) for d in descs])]
    bonds = [np.concatenate(arrays) for arrays in zip(*[
        (d.begin + o, d.end + o, d.order, d.ring_bond) for d, o in zip(descs, offsets)])]
    batch = motifmod._cut_bonds(*joined, *bonds)
    assert batch.tolist() == np.concatenate([cut(d) for d in descs]).tolist()
    # CC(=O)N off the ring: the ring-to-chain bond and the bonds of the branching carbonyl carbon
    assert cut(descs[1]).sum() == 4


@pytest.mark.parametrize("edges", [[], [(0, 1)], [(0, 1), (1, 2), (2, 3), (4, 5)], [(0, 3), (1, 3), (2, 3), (3, 4)]])
def test_step_connected_pieces_equal_union_find(edges):
    total = 7
    begin = np.array([a for a, _ in edges], dtype=np.int64)
    end = np.array([b for _, b in edges], dtype=np.int64)
    label = motifmod._connected_pieces(total, begin, end)
    components = motifmod._components(total, begin, end)
    # the same partition; each atom labelled with the lowest atom of its piece
    assert all((label[i] == label[j]) == (components[i] == components[j]) for i in range(total) for j in range(total))
    assert all(label[i] == min(np.flatnonzero(components == components[i])) for i in range(total))


def test_step_tree_positions_follow_bfs_order():
    # two molecules: a path of three motifs rooted at motif 2 (lowest rank), then one skipped molecule
    skip, motif_offset, min_rank = [False, True], [0, 3, 5], [7, 5, 1, 0, 0]
    tree_a, tree_b, cut_offset = [0, 1, 0], [1, 2, 1], [0, 2, 3]
    position, edges = motifmod._tree_positions(skip, motif_offset, min_rank, tree_a, tree_b, cut_offset, True)
    order = motifmod._bfs_order(3, [(0, 1), (1, 2)], [7, 5, 1])
    assert order == [2, 1, 0] and position[:3] == [2, 1, 0]
    assert edges == [[(0, 1), (1, 2)], None] and position[3:] == [0, 0]
    assert motifmod._tree_positions(skip, motif_offset, min_rank, tree_a, tree_b, cut_offset, False)[1] == [None, None]


def test_step_motif_keys_read_back_as_the_motifs():
    smiles = ["c1ccccc1CC(=O)N", "CC(C)Oc1ccncc1", "OCC(O)CO"]
    encoded = motifmod._encode_fast(_fresh(smiles), smiles, "reference", False)
    facts, (begin, end, order, bond_mol, bond_offset), descs, offsets = _step_batch(smiles)
    total = int(facts.sizes.sum())
    in_ring, ring_bond = motifmod._ring_membership(total, begin, end, facts.ring_atoms, facts.ring_sizes,
                                                   facts.ring_offsets)
    aromatic = np.concatenate([d.aromatic for d in descs])
    degree = np.concatenate([d.degree for d in descs])
    cut = motifmod._cut_bonds(facts.atomic_num, facts.charge, aromatic, in_ring, degree, begin, end, order, ring_bond)
    motif_of_atom = np.unique(motifmod._connected_pieces(total, begin[~cut], end[~cut]), return_inverse=True)[1]
    code = facts.atomic_num * 64 + facts.charge + motifmod._CHARGE_OFFSET
    hydrogens = np.where(facts.atomic_num == 6, 3 - degree, 0)
    hydrogens[facts.aromatic_h] = facts.aromatic_h_count
    hydrogens += np.bincount(begin[cut], minlength=total) + np.bincount(end[cut], minlength=total)
    code[aromatic] += motifmod._AROMATIC_CODE * (1 + hydrogens[aromatic])
    order2 = np.rint(order * 2).astype(np.int64)
    raw, starts, ends = motifmod._motif_keys(code, motif_of_atom, int(motif_of_atom.max()) + 1, begin, end, order2, ~cut)
    read = [motifmod._fast_motif_smiles(raw[a:b]) for a, b in zip(starts, ends)]
    assert sorted(read) == sorted(m for row in encoded for m in row.motifs)
    assert "C1=CC=CC=C1" in read and "C1=CC=NC=C1" in read  # Kekulé motif identities
