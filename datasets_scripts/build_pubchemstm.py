# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Build PubChemSTM (MoleculeSTM's PubChem molecule–description pairs, FineMolTex's pre-training set) as Parquet.

Inputs, in ``--input_dir`` (MoleculeSTM's ``data/PubChemSTM_data/raw/`` folder):

* ``CID2text.json`` — ``{"CID": ["description", ...], ...}``;
* ``CID2SMILES.csv`` (columns ``CID,SMILES``; MoleculeSTM writes it with an extra unnamed index column, which is
  ignored) **or** ``molecules.sdf`` (PubChem SDF; the CID is the ``PUBCHEM_COMPOUND_CID`` property).

Where to get them: download the Hugging Face dataset ``chao1224/MoleculeSTM``, folder
``data/PubChemSTM_data/raw/`` (e.g. ``huggingface-cli download chao1224/MoleculeSTM --repo-type dataset
--include "data/PubChemSTM_data/raw/*" --local-dir MoleculeSTM``). MoleculeSTM's authors note that only the
structure files can be redistributed; if ``CID2text.json`` is not there, produce it with MoleculeSTM's
``preprocessing/PubChemSTM/step_01_description_extraction.py`` (github.com/chao1224/MoleculeSTM), which
downloads the descriptions from PubChem.

    python datasets_scripts/build_pubchemstm.py --input_dir MoleculeSTM/data/PubChemSTM_data/raw \\
        --output_dir data/pubchemstm [--split_by_cid 0.98 0.02] [--num_proc 8]

One row per (CID, description); all rows go to ``train`` unless ``--split_by_cid`` is given. SMILES come from
``CID2SMILES.csv`` when present (``--structure_source csv|sdf`` to choose); from the SDF, the isomeric SMILES
property is used (``PUBCHEM_SMILES`` / ``PUBCHEM_OPENEYE_ISO_SMILES`` / ``PUBCHEM_ISOMERIC_SMILES``), else the
connection table is read with RDKit. Output columns: ``id`` (CID), ``smiles``, ``text``, ``split``,
``inchikey``, ``source_smiles``, ``description_index``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional


try:
    from . import common
except ImportError:  # run as a script
    import common

WHERE_TO_GET = ("Download it from the Hugging Face dataset chao1224/MoleculeSTM, folder data/PubChemSTM_data/raw/ "
                "(huggingface-cli download chao1224/MoleculeSTM --repo-type dataset --include "
                "'data/PubChemSTM_data/raw/*'); CID2text.json, if absent there, is made by MoleculeSTM's "
                "preprocessing/PubChemSTM/step_01_description_extraction.py (github.com/chao1224/MoleculeSTM).")

SDF_SMILES_PROPERTIES = ("PUBCHEM_SMILES", "PUBCHEM_OPENEYE_ISO_SMILES", "PUBCHEM_ISOMERIC_SMILES")

SCHEMA = common.pair_schema("description_index")

COLUMNS = {
    "id": "PubChem CID (string)",
    "smiles": "RDKit isomeric canonical SMILES",
    "text": "PubChem description (MoleculeSTM's CID2text.json: the compound name replaced by 'This molecule')",
    "split": "train (or train/validation/test with --split_by_cid)",
    "inchikey": "standard InChIKey (null if InChI cannot represent the molecule)",
    "source_smiles": "SMILES as read (CID2SMILES.csv or the SDF)",
    "description_index": "position of the description in the CID's list in CID2text.json (0-based)",
}

CITATION = """@article{liu2023moleculestm,
  title={Multi-modal molecule structure--text model for text-based retrieval and editing},
  author={Liu, Shengchao and Nie, Weili and Wang, Chengpeng and Lu, Jiarui and Qiao, Zhuoran and Liu, Ling and
          Tang, Jian and Xiao, Chaowei and Anandkumar, Animashree},
  journal={Nature Machine Intelligence},
  volume={5},
  pages={1447--1457},
  year={2023}
}
@inproceedings{li2025finemoltex,
  title={Advancing Molecular Graph-Text Pre-training via Fine-grained Alignment},
  author={Li, Yibo and Fang, Yuan and Zhang, Mengmei and Shi, Chuan},
  booktitle={KDD},
  year={2025}
}"""

SOURCE = """PubChemSTM (Liu et al. 2023, MoleculeSTM): PubChem compounds with their PubChem "Record Description"
annotations; the pre-training set of MoleculeSTM and FineMolTex. Structures from the Hugging Face dataset
`chao1224/MoleculeSTM` (`data/PubChemSTM_data/raw/`); descriptions collected from PubChem with MoleculeSTM's
preprocessing scripts. PubChem data are free to use; individual descriptions carry the terms of their
depositors (see each PubChem record), and MoleculeSTM's files are under the NVIDIA Source Code License for
MoleculeSTM (research/evaluation use)."""


@dataclass
class BuildPubChemSTMArguments:
    output_dir: str = field(metadata={"help": "Where to write the Parquet files and README.md."})
    input_dir: Optional[str] = field(default=None, metadata={
        "help": "MoleculeSTM's data/PubChemSTM_data/raw/ folder (CID2text.json + CID2SMILES.csv or molecules.sdf)."})
    text_file: Optional[str] = field(default=None, metadata={"help": "CID2text.json (default: in --input_dir)."})
    smiles_file: Optional[str] = field(default=None, metadata={"help": "CID2SMILES.csv (default: in --input_dir)."})
    sdf_file: Optional[str] = field(default=None, metadata={"help": "molecules.sdf (default: in --input_dir)."})
    structure_source: str = field(default="auto", metadata={
        "help": "Where SMILES come from: auto (CID2SMILES.csv if present, else molecules.sdf), csv or sdf.",
        "choices": ["auto", "csv", "sdf"]})
    split_by_cid: Optional[list[float]] = field(default=None, metadata={
        "help": "Fractions (train [validation [test]]) to split by a SHA-256 hash of the CID; default: all train."})
    dedup: bool = field(default=True, metadata={"help": "Deduplicate across splits (by InChIKey) and within splits."})
    num_proc: Optional[int] = field(default=None, metadata={"help": "Worker processes for RDKit canonicalisation."})
    license: str = field(default="other", metadata={"help": "License id for the card."})


def _normalise_cid(value) -> str:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def read_cid2smiles_csv(path: Path) -> dict[str, str]:
    header, rows = common.read_table(path, delimiter=",")
    cid_col = common.column_index(header, "CID", path)
    smiles_col = common.column_index(header, "SMILES", path)
    out: dict[str, str] = {}
    for row in rows:
        if len(row) > max(cid_col, smiles_col):
            out.setdefault(_normalise_cid(row[cid_col]), row[smiles_col])
    return out


def iter_sdf_records(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(molblock, properties) per SDF record, streamed (no RDKit)."""
    block: list[str] = []
    props: dict[str, str] = {}
    name = None
    in_props = False
    with common.open_text(path) as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if line == "$$$$":
                yield "\n".join(block), props
                block, props, name, in_props = [], {}, None, False
                continue
            if line.startswith(">") and "<" in line and ">" in line[1:]:
                in_props = True
                name = line[line.index("<") + 1: line.index(">", line.index("<"))]
                props[name] = ""
                continue
            if in_props:
                if name is not None and line != "":
                    props[name] = line if not props[name] else props[name] + "\n" + line
                elif line == "":
                    name = None
                continue
            block.append(line)
    if block and any(s.strip() for s in block):
        yield "\n".join(block), props


def read_sdf(path: Path, report: common.BuildReport) -> dict[str, str]:
    """CID -> SMILES from a PubChem SDF (isomeric SMILES property, else the connection table via RDKit)."""
    out: dict[str, str] = {}
    from_molblock = 0
    for number, (molblock, props) in enumerate(iter_sdf_records(path), start=1):
        cid = props.get("PUBCHEM_COMPOUND_CID")
        if cid is None:
            report.drop("sdf_record_without_cid", f"{path.name} record {number}", molblock.split("\n", 1)[0])
            continue
        smiles = next((props[p] for p in SDF_SMILES_PROPERTIES if props.get(p)), None)
        if smiles is None:
            from rdkit import Chem, RDLogger  # only for SDFs without a SMILES property

            RDLogger.DisableLog("rdApp.*")
            mol = Chem.MolFromMolBlock(molblock)
            smiles = Chem.MolToSmiles(mol) if mol is not None else ""
            from_molblock += 1
        out.setdefault(_normalise_cid(cid), smiles)
    if from_molblock:
        report.note(f"{from_molblock:,} SDF records had no SMILES property: SMILES written from the connection table")
    return out


def main(args=None) -> common.BuildReport:
    args = common.parse_args(BuildPubChemSTMArguments, args)
    input_dir = Path(args.input_dir) if args.input_dir else None
    if input_dir is None and not (args.text_file and (args.smiles_file or args.sdf_file)):
        raise ValueError("Pass --input_dir (MoleculeSTM's data/PubChemSTM_data/raw/) or --text_file with "
                         "--smiles_file/--sdf_file.")

    def default(path, name):
        return Path(path) if path else input_dir / name

    report = common.BuildReport("pubchemstm")
    text_path = common.require_file(default(args.text_file, "CID2text.json"), WHERE_TO_GET)
    smiles_path = default(args.smiles_file, "CID2SMILES.csv") if (args.smiles_file or input_dir) else None
    sdf_path = default(args.sdf_file, "molecules.sdf") if (args.sdf_file or input_dir) else None
    source = args.structure_source
    if source == "auto":
        if smiles_path is not None and smiles_path.is_file():
            source = "csv"
        elif sdf_path is not None and sdf_path.is_file():
            source = "sdf"
        else:
            raise FileNotFoundError(f"Input files not found: neither {smiles_path} nor {sdf_path} (the structures). "
                                    + WHERE_TO_GET)
    if source == "csv":
        smiles_path = common.require_file(smiles_path, WHERE_TO_GET)
        report.add_input(smiles_path)
        cid2smiles = read_cid2smiles_csv(smiles_path)
        report.note(f"structures from {smiles_path.name}: {len(cid2smiles):,} CIDs")
    else:
        sdf_path = common.require_file(sdf_path, WHERE_TO_GET)
        report.add_input(sdf_path)
        cid2smiles = read_sdf(sdf_path, report)
        report.note(f"structures from {sdf_path.name}: {len(cid2smiles):,} CIDs")

    report.add_input(text_path)
    with common.open_text(text_path) as handle:
        cid2text = json.load(handle)
    if not isinstance(cid2text, dict):
        raise ValueError(f"{text_path}: expected a JSON object CID -> list of descriptions, "
                         f"got {type(cid2text).__name__}")

    fractions = common.parse_fractions(args.split_by_cid)
    records = []
    for cid, descriptions in cid2text.items():
        cid = _normalise_cid(cid)
        if isinstance(descriptions, str) or descriptions is None:
            descriptions = [descriptions]
        smiles = cid2smiles.get(cid)
        for k, text in enumerate(descriptions):
            report.rows_read += 1
            where = f"CID {cid} description {k}"
            if smiles is None:
                report.drop("no_structure_for_cid", where, text)
                continue
            records.append({"id": cid, "smiles": smiles, "text": text, "description_index": k, "where": where,
                            "split": common.hash_split(cid, fractions) if fractions else "train"})
    report.note(f"{len(cid2text):,} CIDs with text; {len(set(cid2smiles) - {_normalise_cid(c) for c in cid2text}):,} "
                "CIDs with a structure but no text (not rows)")

    records = common.canonicalise(records, report, require_text=True, num_proc=args.num_proc)
    if args.dedup:
        records = common.dedup_across_splits(records, report)
        records = common.dedup_pairs(records, report)
    else:
        report.note("deduplication disabled (--no_dedup)")

    common.write_parquet_splits(records, args.output_dir, SCHEMA, report)
    common.write_card(
        args.output_dir, report=report, pretty_name="PubChemSTM (molecule–text pairs)", license=args.license,
        license_name="nvidia-source-code-license-moleculestm" if args.license == "other" else None,
        license_link="https://github.com/chao1224/MoleculeSTM/blob/main/LICENSE" if args.license == "other" else None,
        task_categories=["feature-extraction", "text-retrieval", "graph-ml"], source=SOURCE, citation=CITATION,
        columns=COLUMNS, command=common.command_line(__file__, args),
        dedup_rule=common.DEDUP_RULE if args.dedup else "No deduplication (--no_dedup).",
        tags=["chemistry", "molecules", "smiles", "pubchem", "pubchemstm"],
    )
    report.print()
    return report


if __name__ == "__main__":
    main()
