# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Build MoleculeSTM's DrugBank zero-shot retrieval sets (Description, Pharmacodynamics, ATC) as Parquet.

MoleculeSTM's ``DrugBank_data`` folder (Hugging Face dataset ``chao1224/MoleculeSTM``, folder
``data/DrugBank_data/``) holds, for each task, a pairs file under ``raw/`` and a file of fixed negative
candidates under ``index/`` with the same name:

* ``raw/SMILES_description_full.txt``, ``raw/SMILES_description_removed_from_PubChem_full.txt``,
  ``raw/SMILES_pharmacodynamics_removed_from_PubChem_full.txt``, ...: one pair per line, ``SMILES<TAB>text``, no
  header (``--input_format moleculestm``); the ATC files are ``SMILES<TAB>ATC code<TAB>ATC label``
  (``--input_format moleculestm_atc``; the text is MoleculeSTM's prompt ``"This molecule is for {label}."``,
  ``--atc_prompt_template`` to change it);
* ``index/<same name>``: line *i* holds comma-separated 0-based line numbers of the pairs file: the negatives of
  query *i* (MoleculeSTM evaluates T = 4, 10, 20 candidates with the first T-1 negatives).

Also accepted: a CSV/TSV with a header (``--input_format table``, ``--smiles_column``, ``--text_column``) and a
``.npy`` integer array of shape (num_queries, T-1) as the negatives file.

    python datasets_scripts/build_drugbank_retrieval.py --drugbank_dir MoleculeSTM/data/DrugBank_data \\
        --file_name SMILES_description_removed_from_PubChem_full.txt --output_dir data/drugbank_description
    python datasets_scripts/build_drugbank_retrieval.py --pairs_file pairs.tsv --negatives_file neg.npy \\
        --input_format table --output_dir data/my_retrieval

Validation: the negatives file must have one row per pair and every index must be an integer in
[0, number of pairs) and (unless ``--allow_self_negatives``) differ from its own row; otherwise a ValueError
names the file and the row. Rows are not deduplicated (the negative indices address rows by position);
duplicate molecules are reported. A row whose SMILES does not parse or whose text is empty is dropped and
counted; the kept rows are renumbered and the negative indices remapped; a query whose negatives include a
dropped row keeps its row (it is still a candidate for others) but gets no negatives (``negative_indices`` null)
and is counted. Output: ``test.parquet`` with ``id``, ``smiles``, ``text``, ``split`` (``test``), ``inchikey``,
``source_smiles``, ``source_row`` (0-based line of the pairs file), ``negative_indices`` (list of row positions
in this table) and, for ATC, ``atc_code`` and ``atc_label``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

try:
    from . import common
except ImportError:  # run as a script
    import common

WHERE_TO_GET = ("The DrugBank retrieval sets are in the Hugging Face dataset chao1224/MoleculeSTM, folder "
                "data/DrugBank_data/ (raw/ = pairs, index/ = negatives; huggingface-cli download chao1224/MoleculeSTM "
                "--repo-type dataset --include 'data/DrugBank_data/*').")

COLUMNS = {
    "id": "0-based line number of the pair in the source pairs file (string)",
    "smiles": "RDKit isomeric canonical SMILES",
    "text": "DrugBank text (description / pharmacodynamics / ATC label), surrounding whitespace stripped",
    "split": "test (a zero-shot evaluation set)",
    "inchikey": "standard InChIKey (null if InChI cannot represent the molecule)",
    "source_smiles": "SMILES as given in the source file",
    "source_row": "0-based line/row of the pair in the source pairs file (what the negatives file refers to)",
    "negative_indices": "fixed negative candidates of this query: positions of rows of THIS table (0-based, "
                        "remapped from the source file); use the first T-1 for T-way retrieval; null if a negative "
                        "was a dropped row",
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
@article{wishart2018drugbank,
  title={DrugBank 5.0: a major update to the DrugBank database for 2018},
  author={Wishart, David S and others},
  journal={Nucleic Acids Research},
  volume={46},
  number={D1},
  pages={D1074--D1082},
  year={2018}
}"""

SOURCE = """DrugBank zero-shot structure–text retrieval sets of MoleculeSTM (Liu et al. 2023), as used by FineMolTex:
drug SMILES paired with DrugBank descriptions / pharmacodynamics / ATC labels, with fixed negative candidates.
From the Hugging Face dataset `chao1224/MoleculeSTM` (`data/DrugBank_data/`). DrugBank content is licensed
CC BY-NC 4.0 by DrugBank; MoleculeSTM's files are under the NVIDIA Source Code License for MoleculeSTM
(research/evaluation use)."""


@dataclass
class BuildDrugBankRetrievalArguments:
    output_dir: str = field(metadata={"help": "Where to write test.parquet and README.md."})
    drugbank_dir: Optional[str] = field(default=None, metadata={
        "help": "MoleculeSTM's DrugBank_data folder: pairs from raw/<file_name>, negatives from index/<file_name>."})
    file_name: str = field(default="SMILES_description_removed_from_PubChem_full.txt", metadata={
        "help": "Task file name inside raw/ and index/ (with --drugbank_dir)."})
    pairs_file: Optional[str] = field(default=None, metadata={"help": "Pairs file (overrides --drugbank_dir)."})
    negatives_file: Optional[str] = field(default=None, metadata={
        "help": "Negatives: text (comma-separated indices per line) or .npy (num_queries, T-1)."})
    input_format: str = field(default="auto", metadata={
        "help": "auto (.csv/.tsv -> table, else moleculestm; ATC file names -> moleculestm_atc), moleculestm, "
                "moleculestm_atc or table.", "choices": ["auto", "moleculestm", "moleculestm_atc", "table"]})
    smiles_column: str = field(default="smiles", metadata={"help": "SMILES column (table format)."})
    text_column: str = field(default="text", metadata={"help": "Text column (table format)."})
    delimiter: Optional[str] = field(default=None, metadata={"help": "Delimiter of a table (default: by extension)."})
    atc_prompt_template: str = field(default="This molecule is for {}.", metadata={
        "help": "ATC format: text = this template formatted with the ATC label (MoleculeSTM's prompt)."})
    allow_self_negatives: bool = field(default=False, metadata={
        "help": "Accept a query listed among its own negatives."})
    pretty_name: Optional[str] = field(default=None, metadata={"help": "Dataset name for the card."})
    license: str = field(default="cc-by-nc-4.0", metadata={"help": "License id for the card."})
    num_proc: Optional[int] = field(default=None, metadata={"help": "Worker processes for RDKit canonicalisation."})


def _resolve_format(args, pairs_path: Path) -> str:
    if args.input_format != "auto":
        return args.input_format
    name = pairs_path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return "table"
    return "moleculestm_atc" if "atc" in name else "moleculestm"


def read_pairs(path: Path, fmt: str, args, report: common.BuildReport) -> list[dict]:
    """Records with ``source_row`` = 0-based line (MoleculeSTM format) or data row (table) of each pair."""
    records = []
    if fmt == "table":
        header, rows = common.read_table(path, args.delimiter)
        s_col = common.column_index(header, args.smiles_column, path, "SMILES column (--smiles_column)")
        t_col = common.column_index(header, args.text_column, path, "text column (--text_column)")
        for i, row in enumerate(rows):
            report.rows_read += 1
            ok = len(row) == len(header)
            records.append({"source_row": i, "where": f"{path.name} row {i} (0-based)", "valid_row": ok,
                            "smiles": row[s_col] if ok else "", "text": row[t_col] if ok else ""})
        return records
    with common.open_text(path) as handle:
        lines = handle.read().splitlines()
    while lines and not lines[-1].strip():  # trailing blank lines are not pairs
        lines.pop()
    for i, line in enumerate(lines):
        report.rows_read += 1
        where = f"{path.name} line {i} (0-based)"
        if fmt == "moleculestm_atc":
            parts = line.strip("\r\n").split("\t")
            ok = len(parts) >= 3
            label = parts[2].strip() if ok else ""
            records.append({"source_row": i, "where": where, "valid_row": ok, "smiles": parts[0] if ok else "",
                            "atc_code": parts[1].strip() if ok else None, "atc_label": label,
                            "text": args.atc_prompt_template.format(label) if label else ""})
        else:
            parts = line.strip().split("\t", 1)  # as MoleculeSTM: SMILES, then everything after the first tab
            ok = len(parts) == 2
            records.append({"source_row": i, "where": where, "valid_row": ok, "smiles": parts[0] if ok else "",
                            "text": parts[1] if ok else ""})
    return records


def read_negatives(path: Path, num_pairs: int, pairs_path: Path, allow_self: bool) -> list[list[int]]:
    """Validated negative index lists, one per pair (row i = negatives of pair i)."""
    if path.name.endswith(".npy"):
        array = np.load(path, allow_pickle=False)
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{path}: expected a 2-D integer array (num_queries, T-1), got shape {array.shape} "
                             f"dtype {array.dtype}")
        rows = [[int(v) for v in row] for row in array]
        where = "row"
    else:
        rows = []
        where = "line"
        with common.open_text(path) as handle:
            lines = handle.read().splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        for i, line in enumerate(lines):
            try:
                rows.append([int(tok) for tok in line.replace(",", " ").split()])
            except ValueError:
                raise ValueError(f"{path} {where} {i} (0-based): not a list of integer indices: "
                                 f"{line[:200]!r}") from None
    if len(rows) != num_pairs:
        raise ValueError(f"{path} has {len(rows)} {where}s but the pairs file {pairs_path} has {num_pairs} pairs: "
                         "the negatives file must have one row per pair, in the same order")
    for i, row in enumerate(rows):
        if not row:
            raise ValueError(f"{path} {where} {i} (0-based): no negative indices")
        for v in row:
            if not 0 <= v < num_pairs:
                raise ValueError(f"{path} {where} {i} (0-based): index {v} out of range [0, {num_pairs}) "
                                 f"(the pairs file {pairs_path.name} has {num_pairs} pairs)")
            if v == i and not allow_self:
                raise ValueError(f"{path} {where} {i} (0-based): the query's own index {v} is among its negatives "
                                 "(pass --allow_self_negatives to accept)")
    return rows


def main(args=None) -> common.BuildReport:
    args = common.parse_args(BuildDrugBankRetrievalArguments, args)
    if args.pairs_file:
        pairs_path = Path(args.pairs_file)
    elif args.drugbank_dir:
        pairs_path = Path(args.drugbank_dir) / "raw" / args.file_name
    else:
        raise ValueError("Pass --drugbank_dir (MoleculeSTM's DrugBank_data folder) or --pairs_file with "
                         "--negatives_file.")
    if args.negatives_file:
        neg_path = Path(args.negatives_file)
    elif args.drugbank_dir:
        neg_path = Path(args.drugbank_dir) / "index" / args.file_name
    else:
        raise ValueError("Pass --negatives_file (the fixed negative indices) with --pairs_file.")
    common.require_file(pairs_path, WHERE_TO_GET)
    common.require_file(neg_path, WHERE_TO_GET)

    fmt = _resolve_format(args, pairs_path)
    report = common.BuildReport(pairs_path.name)
    report.add_input(pairs_path)
    report.add_input(neg_path)
    records = read_pairs(pairs_path, fmt, args, report)
    negatives = read_negatives(neg_path, len(records), pairs_path, args.allow_self_negatives)
    lengths = sorted({len(r) for r in negatives})
    report.note(f"format {fmt}; {len(records):,} pairs; negatives per query: "
                + (f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]}..{lengths[-1]}")
                + " (T-way retrieval uses the first T-1)")

    valid = []
    for record, neg in zip(records, negatives):
        record["negatives_source"] = neg
        if not record.pop("valid_row"):
            report.drop("malformed_row", record["where"], None)
            continue
        valid.append(record)
    kept = common.canonicalise(valid, report, require_text=True, num_proc=args.num_proc)
    position = {r["source_row"]: k for k, r in enumerate(kept)}
    without = 0
    for k, record in enumerate(kept):
        record["id"] = str(record["source_row"])
        record["split"] = "test"
        if all(v in position for v in record["negatives_source"]):
            record["negative_indices"] = [position[v] for v in record["negatives_source"]]
        else:
            record["negative_indices"] = None
            without += 1
    if without:
        report.note(f"{without:,} kept queries had a dropped row among their negatives: negative_indices is null "
                    "for them (they remain candidates for other queries)")
    dup = len(kept) - len({common.dedup_key(r) for r in kept})
    report.note(f"not deduplicated (negatives address rows by position); rows repeating an earlier molecule: {dup:,}")

    fields = [("id", pa.string()), ("smiles", pa.string()), ("text", pa.string()), ("split", pa.string()),
              ("inchikey", pa.string()), ("source_smiles", pa.string()), ("source_row", pa.int64()),
              ("negative_indices", pa.list_(pa.int64()))]
    columns = dict(COLUMNS)
    if fmt == "moleculestm_atc":
        fields += [("atc_code", pa.string()), ("atc_label", pa.string())]
        columns["text"] = f"the ATC label in MoleculeSTM's prompt {args.atc_prompt_template!r}"
        columns["atc_code"] = "ATC code"
        columns["atc_label"] = "ATC label as in the source file"
    common.write_parquet_splits(kept, args.output_dir, pa.schema(fields), report)
    common.write_card(
        args.output_dir, report=report, pretty_name=args.pretty_name or f"DrugBank retrieval: {pairs_path.name}",
        license=args.license, task_categories=["text-retrieval", "graph-ml"], source=SOURCE, citation=CITATION,
        columns=columns, command=common.command_line(__file__, args),
        tags=["chemistry", "molecules", "smiles", "drugbank", "retrieval"],
        extra_sections="\nRow references of this set are 0-based lines (as the negatives file uses).\n",
        dedup_rule="No deduplication: the negatives address rows by position (repeated molecules are counted in "
                   "the notes).",
    )
    report.print()
    return report


if __name__ == "__main__":
    main()
