"""Dataset build scripts (datasets_scripts/): real small data from ../shared/data where present, else synthetic."""

import csv
import gzip
import hashlib
import json
import math
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from datasets_scripts import (
    build_chebi20,
    build_drugbank_retrieval,
    build_moleculenet,
    build_pubchemstm,
    build_text_pairs,
    common,
)
from modeling_finemoltex.tokenization_finemoltex import (
    MoleculeParseError,
    canonical_smiles,
    inchikey,
    murcko_scaffold,
    random_split,
    scaffold_split,
)

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data file not found: {path} (the project's ../shared/data snapshot)")
    return path


def _rows(out: Path, split: str) -> list[dict]:
    return pq.read_table(out / f"{split}.parquet").to_pylist()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# helpers in tokenization_finemoltex
# --------------------------------------------------------------------------------------------------


def test_canonical_smiles_inchikey_scaffold():
    assert canonical_smiles("OCC") == canonical_smiles("C(O)C") == "CCO"
    assert canonical_smiles("C[C@H](N)C(=O)O") != canonical_smiles("C[C@@H](N)C(=O)O")  # stereo kept
    assert canonical_smiles("[H]OC([H])([H])C") == "CCO"  # explicit hydrogens removed, as MolFromSmiles
    assert inchikey("OCC") == inchikey("CCO") == "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"
    assert inchikey("*C(=O)O") is None  # InChI cannot represent dummy atoms
    assert murcko_scaffold("Cc1ccccc1CCC1CCCCC1") == "c1ccc(CCC2CCCCC2)cc1"
    assert murcko_scaffold("CCO") == ""
    for bad in ("C1CC", "not a smiles", "", "C(C)(C)(C)(C)C"):
        with pytest.raises(MoleculeParseError):
            canonical_smiles(bad)


def test_scaffold_split_tie_rule_is_hu_et_al():
    # two scaffold groups of equal size: Hu et al. sort (size, first index) with reverse=True, so the group
    # whose first member comes later goes first (to train)
    smiles = ["Cc1ccccc1", "CCc1ccccc1", "CC1CCCCC1", "CCC1CCCCC1"]
    assert scaffold_split(smiles, 0.5, 0.5, 0.0) == ([2, 3], [0, 1], [])
    with pytest.raises(MoleculeParseError, match="index 1"):
        scaffold_split(["CCO", "C1CC"])
    with pytest.raises(ValueError):
        scaffold_split(["CCO"], 0.8, 0.1, 0.2)


def test_random_split_matches_hu_et_al_and_is_deterministic():
    n, seed = 103, 7
    order = list(range(n))
    random.seed(seed)
    random.shuffle(order)  # Hu et al.'s random_split
    a, b = int(0.8 * n), int(0.1 * n)
    expected = (sorted(order[:a]), sorted(order[a:a + b]), sorted(order[a + b:]))
    state = random.getstate()
    assert random_split(n, (0.8, 0.1, 0.1), seed) == expected == random_split(n, (0.8, 0.1, 0.1), seed)
    assert random.getstate() == state  # global random state untouched
    assert sorted(sum(random_split(n, (0.5, 0.5), 1), [])) == list(range(n))


@pytest.mark.parametrize(
    "name, sizes",
    [("bbbp.csv", (1631, 204, 204)), ("bace.csv", (1210, 151, 152)), ("clintox.csv", (1182, 148, 148))],
)
def test_moleculenet_scaffold_split_sizes_match_benchmarks(tmp_path, name, sizes):
    """BENCHMARKS.md: BBBP 1,631/204/204, BACE 1,210/151/152, ClinTox 1,182/148/148."""
    path = _need(DATA / "moleculenet" / name)
    report = build_moleculenet.main(["--input_file", str(path), "--output_dir", str(tmp_path)])
    assert tuple(report.kept[s] for s in ("train", "validation", "test")) == sizes
    assert report.rows_dropped == 0
    test_rows = _rows(tmp_path, "test")
    assert len(test_rows) == sizes[2] and {r["split"] for r in test_rows} == {"test"}
    assert all(isinstance(v, float) for r in test_rows for v in r["labels"])
    if name == "bbbp.csv":
        # membership pinned too: this is the split with which ECFP4 + logistic regression gives BENCHMARKS.md's
        # 65.8 test ROC-AUC (Hu et al.'s tie rule; the other tie rule gives a different test set)
        digest = hashlib.sha256(",".join(str(r["source_row"]) for r in test_rows).encode()).hexdigest()
        assert digest == BBBP_TEST_ROWS_SHA256


BBBP_TEST_ROWS_SHA256 = "e830e01b4b654729b5ea99c1dab5dbbe4eceb24b230dde7bd09b3327329f3db7"


# --------------------------------------------------------------------------------------------------
# ChEBI-20
# --------------------------------------------------------------------------------------------------


def test_chebi20_real_validation_file(tmp_path):
    _need(DATA / "chebi20" / "validation.txt")
    report = build_chebi20.main(["--input_dir", str(DATA / "chebi20"), "--output_dir", str(tmp_path)])
    assert report.rows_read == 3301 and report.kept == {"validation": 3301} and report.rows_dropped == 0
    assert any("files found: validation.txt" in n and "train.txt" in n for n in report.notes)
    rows = _rows(tmp_path, "validation")
    assert set(rows[0]) == {"id", "smiles", "text", "split", "inchikey", "source_smiles", "source_row"}
    assert rows[0]["id"] == "92470518" and rows[0]["text"].startswith("The molecule is")
    assert all(r["smiles"] == canonical_smiles(r["source_smiles"]) for r in rows[:50])
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n") and "license: cc-by-4.0" in card and "size_categories" in card
    assert "rows_dropped_per_reason" in card and "Text2Mol" in card

    from datasets import load_dataset

    loaded = load_dataset(str(tmp_path))
    assert loaded["validation"].num_rows == 3301


def test_chebi20_split_validation_by_cid(tmp_path):
    path = _need(DATA / "chebi20" / "validation.txt")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:1201]  # header + 1,200 real rows (speed)
    _write(tmp_path / "validation.txt", "".join(lines))
    report = build_chebi20.main(["--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "a"),
                                 "--split_validation_by_cid", "0.8", "0.1", "0.1"])
    assert set(report.kept) == {"train", "validation", "test"}
    assert report.rows_kept + report.rows_dropped == 1200
    assert 880 < report.kept["train"] < 1040 and 80 < report.kept["test"] < 160
    splits = {s: _rows(tmp_path / "a", s) for s in report.kept}
    keys = {s: {r["inchikey"] for r in rows} for s, rows in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    # deterministic: the split depends on the CID only
    for s, rows in splits.items():
        assert all(common.hash_split(r["id"], [0.8, 0.1, 0.1]) == s for r in rows)


CHEBI_HEADER = "CID\tSMILES\tdescription\n"


def test_chebi20_drops_counted_and_dedup_across_splits(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _write(raw / "train.txt", CHEBI_HEADER
           + '1\tCCO\tThe molecule is "ethanol" (quotes kept).\n'  # duplicate of test's molecule -> dropped
           + "2\tC1CC\tThe molecule is broken.\n"  # unparsable
           + "3\tCCN\t   \n"  # empty text
           + "4\tCCN\tThe molecule is ethylamine.\n"
           + "5\tNCC\tThe molecule is ethylamine.\n"  # same molecule + same text in the same split
           + "6\tNCC\tThe molecule is an amine.\n"  # same molecule, other text: a second pair, kept
           + "7\tCCC\n")  # malformed row
    _write(raw / "validation.txt", CHEBI_HEADER + "8\tOCC\tThe molecule is ethanol, again.\n"
           + "9\tc1ccccc1\tThe molecule is benzene.\n")
    _write(raw / "test.txt", CHEBI_HEADER + "10\tC(C)O\tThe molecule is ethanol.\n")
    out = tmp_path / "out"
    report = build_chebi20.main(["--input_dir", str(raw), "--output_dir", str(out)])
    assert report.rows_read == 10
    counts = {k: v["count"] for k, v in report.drops.items()}
    assert counts == {"malformed_row": 1, "unparsable_smiles": 1, "empty_text": 1,
                      "molecule_in_higher_priority_split": 2, "duplicate_pair_in_split": 1}
    assert report.drops["unparsable_smiles"]["examples"][0] == {"where": "train.txt row 2", "value": "C1CC"}
    assert report.kept == {"train": 2, "validation": 1, "test": 1}
    assert [r["text"] for r in _rows(out, "train")] == ["The molecule is ethylamine.", "The molecule is an amine."]
    assert _rows(out, "test")[0]["smiles"] == "CCO"
    card = (out / "README.md").read_text()
    assert "train.txt row 2: `C1CC`" in card and "| dropped | 6 |" in card and "evaluation splits win" in card

    # --no_dedup keeps them
    report = build_chebi20.main(["--input_dir", str(raw), "--output_dir", str(tmp_path / "nodedup"), "--no_dedup"])
    assert report.kept == {"train": 4, "validation": 2, "test": 1}


def test_chebi20_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train\.txt, validation\.txt, test\.txt.*blender-nlp/MolT5"):
        build_chebi20.main(["--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    _write(tmp_path / "train.txt", CHEBI_HEADER + "1\tCCO\tThe molecule is ethanol.\n")
    with pytest.raises(FileNotFoundError, match=r"validation\.txt.*MolT5"):
        build_chebi20.main(["--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"),
                            "--split_validation_by_cid", "0.9", "0.1"])
    _write(tmp_path / "test.txt", "cid,smiles,text\n")
    with pytest.raises(ValueError, match="expected the header"):
        build_chebi20.main(["--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])


def test_chebi20_non_utf8_or_header_only_file_names_the_file(tmp_path):
    # both used to pass unchecked: a bare UnicodeDecodeError, or an empty split written and a success reported
    raw = tmp_path / "raw"
    raw.mkdir()
    _write(raw / "train.txt", CHEBI_HEADER + "1\tCCO\tThe molecule is ethanol.\n")
    (raw / "validation.txt").write_bytes((CHEBI_HEADER + "2\tCO\tThe molecule is m\u00e9thanol.\n").encode("latin-1"))
    with pytest.raises(ValueError, match=r"validation\.txt: line 2 \(byte offset \d+\) is not valid UTF-8"):
        build_chebi20.main(["--input_dir", str(raw), "--output_dir", str(tmp_path / "out")])
    _write(raw / "validation.txt", CHEBI_HEADER + "\n")
    with pytest.raises(ValueError, match=r"validation\.txt: no data rows"):
        build_chebi20.main(["--input_dir", str(raw), "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------
# PubChemSTM
# --------------------------------------------------------------------------------------------------

CID2TEXT = {
    "702": ["This molecule is ethanol.", "This molecule is a primary alcohol.", ""],
    "887": ["This molecule is methanol."],
    "999": ["This molecule has no structure."],
    "1001": ["This molecule is broken."],
    "1002": ["This molecule is ethanol."],  # another CID, same molecule and text as 702's first
}


def _sdf_record(cid, smiles=None, molblock_atoms=("C", "O")):
    atoms = "".join(f"    0.0000    0.0000    0.0000 {a:<3} 0  0  0  0  0  0  0  0  0  0  0  0\n"
                    for a in molblock_atoms)
    bonds = "".join(f"{i + 1:>3}{i + 2:>3}  1  0\n" for i in range(len(molblock_atoms) - 1))
    props = f"> <PUBCHEM_COMPOUND_CID>\n{cid}\n\n"
    if smiles:
        props += f"> <PUBCHEM_OPENEYE_ISO_SMILES>\n{smiles}\n\n"
    return (f"{cid}\n  test\n\n{len(molblock_atoms):>3}{len(molblock_atoms) - 1:>3}  0  0  0  0  0  0  0  0999 V2000\n"
            + atoms + bonds + "M  END\n" + props + "$$$$\n")


def test_pubchemstm_from_csv(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _write(raw / "CID2text.json", json.dumps(CID2TEXT))
    # MoleculeSTM writes CID2SMILES.csv with pandas' index as an unnamed first column
    _write(raw / "CID2SMILES.csv", ",CID,SMILES\n0,702,OCC\n1,887,CO\n2,1001,C1CC\n3,1002,CCO\n4,5,CCCC\n")
    out = tmp_path / "out"
    report = build_pubchemstm.main(["--input_dir", str(raw), "--output_dir", str(out)])
    assert report.rows_read == 7
    assert {k: v["count"] for k, v in report.drops.items()} == {
        "empty_text": 1, "no_structure_for_cid": 1, "unparsable_smiles": 1, "duplicate_pair_in_split": 1}
    rows = _rows(out, "train")
    assert [(r["id"], r["description_index"], r["smiles"]) for r in rows] == [
        ("702", 0, "CCO"), ("702", 1, "CCO"), ("887", 0, "CO")]
    assert "chao1224/MoleculeSTM" in (out / "README.md").read_text()

    report = build_pubchemstm.main(["--input_dir", str(raw), "--output_dir", str(tmp_path / "split"),
                                    "--split_by_cid", "0.5", "0.5"])
    assert report.rows_kept + report.rows_dropped == 7 and set(report.kept) <= {"train", "validation"}
    splits = {s: {r["smiles"] for r in _rows(tmp_path / "split", s)} for s in report.kept}
    assert sum("CCO" in v for v in splits.values()) == 1  # CIDs 702 and 1002 (both ethanol) never straddle


def test_pubchemstm_from_sdf(tmp_path):
    _write(tmp_path / "CID2text.json", json.dumps({"702": ["This molecule is ethanol."],
                                                   "887": ["This molecule is methanol."],
                                                   "5": ["Not in the SDF."]}))
    _write(tmp_path / "molecules.sdf", _sdf_record(702, "CCO", ("C", "C", "O")) + _sdf_record(887, None, ("C", "O")))
    out = tmp_path / "out"
    report = build_pubchemstm.main(["--input_dir", str(tmp_path), "--output_dir", str(out)])
    rows = _rows(out, "train")
    assert [(r["id"], r["smiles"]) for r in rows] == [("702", "CCO"), ("887", "CO")]  # 887 from the molblock
    assert report.drops["no_structure_for_cid"]["count"] == 1
    assert any("connection table" in n for n in report.notes)


def test_pubchemstm_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"CID2text\.json.*chao1224/MoleculeSTM.*PubChemSTM_data/raw"):
        build_pubchemstm.main(["--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    _write(tmp_path / "CID2text.json", "{}")
    with pytest.raises(FileNotFoundError, match=r"CID2SMILES\.csv.*molecules\.sdf.*chao1224/MoleculeSTM"):
        build_pubchemstm.main(["--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])


# --------------------------------------------------------------------------------------------------
# any SMILES–text CSV/TSV
# --------------------------------------------------------------------------------------------------


def _pairs_csv_gz(path: Path) -> Path:
    rows = [["SMILES string", "description, cleaned", "my id"]]
    smiles = ["CCO", "CO", "CCN", "c1ccccc1", "CC(=O)O", "CCCC", "OCC", "C1CC", "CCCl", "CCBr"]
    for i, s in enumerate(smiles):
        rows.append([s, f"Molecule {i}, with a comma and \"quotes\"" if s != "CCCl" else "", f"m{i}"])
    with gzip.open(path, "wt", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_text_pairs_csv_gz_column_with_comma_and_space(tmp_path):
    path = _pairs_csv_gz(tmp_path / "pairs.csv.gz")
    out = tmp_path / "out"
    report = build_text_pairs.main(["--input_file", str(path), "--output_dir", str(out),
                                    "--smiles_column", "SMILES string", "--text_column", "description, cleaned",
                                    "--id_column", "my id", "--split", "0.6", "0.2", "0.2", "--seed", "0"])
    assert report.rows_read == 10
    assert {k: v["count"] for k, v in report.drops.items()} == {"unparsable_smiles": 1, "empty_text": 1}
    rows = [r for s in report.kept for r in _rows(out, s)]
    assert len(rows) == 8 and {r["id"] for r in rows} == {f"m{i}" for i in (0, 1, 2, 3, 4, 5, 6, 9)}
    assert 'with a comma and "quotes"' in rows[0]["text"]
    # split by molecule: CCO (row 1) and OCC (row 7) are one molecule, so they land in the same split
    ethanol = {r["split"] for r in rows if r["smiles"] == "CCO"}
    assert len(ethanol) == 1 and sum(r["smiles"] == "CCO" for r in rows) == 2
    again = build_text_pairs.main(["--input_file", str(path), "--output_dir", str(tmp_path / "again"),
                                   "--smiles_column", "SMILES string", "--text_column", "description, cleaned",
                                   "--id_column", "my id", "--split", "0.6", "0.2", "0.2", "--seed", "0"])
    assert again.kept == report.kept


def test_text_pairs_missing_column_and_file(tmp_path):
    path = _pairs_csv_gz(tmp_path / "pairs.csv.gz")
    with pytest.raises(ValueError, match=r"pairs\.csv\.gz: no text column.*'description'.*columns found.*"
                                         r"'description, cleaned'"):
        build_text_pairs.main(["--input_file", str(path), "--output_dir", str(tmp_path / "o"),
                               "--smiles_column", "SMILES string", "--text_column", "description"])
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        build_text_pairs.main(["--input_file", str(tmp_path / "nope.tsv"), "--output_dir", str(tmp_path / "o")])


def test_text_pairs_tsv_split_column(tmp_path):
    path = _write(tmp_path / "pairs.tsv", "smiles\ttext\tfold\nCCO\tethanol\ttrain\nOCC\tethanol too\tTest\n"
                  "CO\tmethanol\tvalid\nCCN\tethylamine\tholdout\n")
    out = tmp_path / "out"
    report = build_text_pairs.main(["--input_file", str(path), "--output_dir", str(out), "--split_column", "fold"])
    assert report.kept == {"validation": 1, "test": 1}  # ethanol in train dropped: it is in test
    assert {k: v["count"] for k, v in report.drops.items()} == {
        "unknown_split_value": 1, "molecule_in_higher_priority_split": 1}


@pytest.mark.parametrize("name", ["latin1.csv", "latin1.csv.gz"])
def test_text_pairs_non_utf8_file_names_file_and_line(tmp_path, name):
    # a Latin-1 export gave a bare UnicodeDecodeError naming neither the file nor the line
    data = "smiles,text\nCCO,ethanol\nCO,methanol\nCCN,\u00e9thylamine (caf\u00e9)\n".encode("latin-1")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    expected = rf"{name.replace('.', '[.]')}: line 4 \(byte offset 40[^)]*\) is not valid UTF-8.*0xe9.*re-encode"
    with pytest.raises(ValueError, match=expected):
        build_text_pairs.main(["--input_file", str(path), "--output_dir", str(tmp_path / "o")])


def test_text_pairs_header_only_file_fails(tmp_path):
    # a header with no data rows used to write empty splits and exit 0
    path = _write(tmp_path / "header_only.csv", "smiles,text\n\n")
    with pytest.raises(ValueError, match=r"header_only\.csv: no data rows"):
        build_text_pairs.main(["--input_file", str(path), "--output_dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------------
# DrugBank retrieval (MoleculeSTM format)
# --------------------------------------------------------------------------------------------------

DRUGS = ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "C1CC", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"]


def _drugbank(tmp_path: Path, negatives: list[list[int]] | np.ndarray, npy: bool = False):
    root = tmp_path / "DrugBank_data"
    (root / "raw").mkdir(parents=True)
    (root / "index").mkdir()
    name = "SMILES_description_full.txt"
    _write(root / "raw" / name, "".join(f"{s}\tDrug {i} is a drug.\tTab kept.\n" for i, s in enumerate(DRUGS)))
    if npy:
        np.save(root / "index" / "neg.npy", np.asarray(negatives))
        return root, name, root / "index" / "neg.npy"
    _write(root / "index" / name, "".join(",".join(map(str, row)) + "\n" for row in negatives))
    return root, name, None


def test_drugbank_retrieval_moleculestm_layout(tmp_path):
    negatives = [[1, 3], [0, 4], [0, 1], [4, 0], [1, 3]]
    root, name, _ = _drugbank(tmp_path, negatives)
    out = tmp_path / "out"
    report = build_drugbank_retrieval.main(["--drugbank_dir", str(root), "--file_name", name, "--output_dir", str(out)])
    assert report.drops["unparsable_smiles"]["count"] == 1
    assert report.drops["unparsable_smiles"]["examples"][0]["where"].endswith("line 2 (0-based)")
    rows = _rows(out, "test")
    assert [r["source_row"] for r in rows] == [0, 1, 3, 4]
    assert rows[0]["text"] == "Drug 0 is a drug.\tTab kept."  # everything after the first tab, as MoleculeSTM
    # negatives remapped to positions in the table (source row 3 -> position 2, 4 -> 3); none for the query
    # whose negatives include the dropped row 2
    assert [r["negative_indices"] for r in rows] == [[1, 2], [0, 3], [3, 0], [1, 2]]
    assert set(pq.read_schema(out / "test.parquet").names) >= {"id", "smiles", "text", "split", "negative_indices"}


def test_drugbank_retrieval_atc(tmp_path):
    root = tmp_path / "DrugBank_data"
    (root / "raw").mkdir(parents=True)
    (root / "index").mkdir()
    name = "SMILES_ATC_5_full.txt"
    _write(root / "raw" / name, "CCO\tA01AB\tStomatological preparations\nCO\tB02\tAntihemorrhagics\n"
           "CCN\tC03\tDiuretics\n")
    _write(root / "index" / name, "1,2\n2,0\n0,1\n")
    out = tmp_path / "out"
    build_drugbank_retrieval.main(["--drugbank_dir", str(root), "--file_name", name, "--output_dir", str(out)])
    row = _rows(out, "test")[0]
    assert row["text"] == "This molecule is for Stomatological preparations."  # MoleculeSTM's ATC prompt
    assert (row["atc_code"], row["atc_label"]) == ("A01AB", "Stomatological preparations")
    assert row["negative_indices"] == [1, 2]


def test_drugbank_retrieval_npy_and_table(tmp_path):
    pairs = _write(tmp_path / "pairs.csv", "smiles,text\nCCO,ethanol\nCO,methanol\nCCN,ethylamine\n")
    np.save(tmp_path / "neg.npy", np.array([[1, 2], [2, 0], [0, 1]]))
    out = tmp_path / "out"
    build_drugbank_retrieval.main(["--pairs_file", str(pairs), "--negatives_file", str(tmp_path / "neg.npy"),
                                   "--output_dir", str(out)])
    assert [r["negative_indices"] for r in _rows(out, "test")] == [[1, 2], [2, 0], [0, 1]]


@pytest.mark.parametrize(
    "negatives, npy, message",
    [
        ([[1, 3], [0, 4], [0, 1], [4, 5], [1, 3]], False, r"SMILES_description_full\.txt line 3 \(0-based\): index 5 "
                                                          r"out of range \[0, 5\)"),
        ([[1, 3], [0, 4], [0, 1], [4, 0], [1, 4]], False, r"line 4 \(0-based\): the query's own index 4"),
        ([[1, 3], [0, 4]], False, r"has 2 lines but the pairs file .* has 5 pairs"),
        ([[1, 3], [0, 4], [0, -1], [4, 0], [1, 3]], True, r"neg\.npy row 2 \(0-based\): index -1 out of range"),
    ],
)
def test_drugbank_retrieval_bad_negatives(tmp_path, negatives, npy, message):
    root, name, npy_path = _drugbank(tmp_path, negatives, npy=npy)
    argv = ["--drugbank_dir", str(root), "--file_name", name, "--output_dir", str(tmp_path / "out")]
    if npy_path:
        argv += ["--negatives_file", str(npy_path)]
    with pytest.raises(ValueError, match=message):
        build_drugbank_retrieval.main(argv)


def test_drugbank_retrieval_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"raw/SMILES_description_removed_from_PubChem_full\.txt.*"
                                                r"chao1224/MoleculeSTM.*DrugBank_data"):
        build_drugbank_retrieval.main(["--drugbank_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])


# --------------------------------------------------------------------------------------------------
# MoleculeNet
# --------------------------------------------------------------------------------------------------


def test_moleculenet_original_bbbp_drops_unparsable(tmp_path):
    path = _need(DATA / "moleculenet" / "original_format" / "BBBP.csv")
    report = build_moleculenet.main(["--input_file", str(path), "--output_dir", str(tmp_path), "--id_column", "name"])
    assert report.rows_read == 2050 and report.drops["unparsable_smiles"]["count"] == 11
    assert report.kept == {"train": 1631, "validation": 204, "test": 204}
    assert any("tasks (1): p_np" in n for n in report.notes)  # num/name are not tasks
    row = _rows(tmp_path, "train")[0]
    assert set(row) == {"id", "smiles", "split", "inchikey", "source_smiles", "source_row", "labels", "p_np"}


def test_moleculenet_missing_labels_quoted_task_names_random_split(tmp_path):
    path = tmp_path / "sider_like.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["smiles", "Hepatobiliary disorders, general", "Renal disorders"])
        for i in range(40):
            writer.writerow(["C" * (i % 7 + 1) + "O", "" if i % 5 == 0 else i % 2, "1.0" if i % 3 else "0.0"])
        writer.writerow(["C1CC", "1", "0"])
    out = tmp_path / "out"
    report = build_moleculenet.main(["--input_file", str(path), "--output_dir", str(out), "--split_method", "random",
                                     "--seed", "3"])
    assert report.drops["unparsable_smiles"]["count"] == 1 and report.rows_kept == 40
    assert report.kept == {"train": 32, "validation": 4, "test": 4}
    rows = [r for s in report.kept for r in _rows(out, s)]
    first = next(r for r in rows if r["source_row"] == 0)
    assert math.isnan(first["Hepatobiliary disorders, general"]) and first["Renal disorders"] == 0.0
    assert math.isnan(first["labels"][0]) and first["labels"][1] == 0.0
    assert any("missing labels: 8 of 80" in n for n in report.notes)
    # an explicitly named task column containing a comma works too
    report = build_moleculenet.main(["--input_file", str(path), "--output_dir", str(tmp_path / "one"),
                                     "--task_columns", "Hepatobiliary disorders, general"])
    assert any("tasks (1): Hepatobiliary disorders, general" in n for n in report.notes)


def test_moleculenet_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="tox21.csv.*moleculenet"):
        build_moleculenet.main(["--input_file", str(tmp_path / "tox21.csv"), "--output_dir", str(tmp_path / "o")])
    path = _write(tmp_path / "x.csv", "smiles,y\nCCO,1\nCO,maybe\n")
    with pytest.raises(ValueError, match=r"no numeric task columns.*columns found"):
        build_moleculenet.main(["--input_file", str(path), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match=r"x\.csv row 1 \(0-based\): label 'maybe' in task column 'y'"):
        build_moleculenet.main(["--input_file", str(path), "--output_dir", str(tmp_path / "o"), "--task_columns", "y"])
