# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Build a MoleculeNet property-prediction CSV (BBBP, BACE, ClinTox, Tox21, ToxCast, SIDER, MUV, HIV, ...) as Parquet.

Input: a CSV (or ``.csv.gz``) with a SMILES column and one or more task columns, empty cells = missing labels,
e.g. the chemprop copies (``bbbp.csv``: ``smiles,p_np``; ``bace.csv``: ``mol,Class``; ``clintox.csv``:
``smiles,FDA_APPROVED,CT_TOX``) or DeepChem's originals (``BBBP.csv``: ``num,name,p_np,smiles``). Get them from
MoleculeNet / DeepChem (https://moleculenet.org, deepchemdata S3) or chemprop's repository.

    python datasets_scripts/build_moleculenet.py --input_file ../shared/data/moleculenet/bbbp.csv \\
        --output_dir data/bbbp [--split_method scaffold|random] [--seed 42]

* SMILES column: ``--smiles_column``, else the column named ``smiles`` or ``mol`` (any case).
* Tasks: ``--task_columns`` (space-separated; names may contain commas), else every other column whose
  non-empty cells are all numbers, except ``--id_column`` and index-like columns (``num``, ``index``, ``id``, ...).
* Labels are float64, NaN for missing (empty, ``nan``, ``NA``); a non-numeric label raises an error naming the row.
* Unparsable SMILES (some MoleculeNet SMILES no longer parse with current RDKit) are dropped and counted *before*
  splitting, as the Hu et al. loaders do.
* Split: deterministic Bemis–Murcko scaffold split 80/10/10 (Hu et al. 2020, the MoleculeSTM / FineMolTex
  protocol; `scaffold_split`), or ``--split_method random`` with ``--seed`` (Hu et al.'s ``random_split``).
  On bbbp/bace/clintox it gives 1,631/204/204, 1,210/151/152 and 1,182/148/148 rows.
* Deduplication: none by default, so the standard benchmark split is reproduced exactly; molecules that occur in
  several splits (same InChIKey, differently written SMILES) are reported. ``--dedup_across_splits`` drops their
  rows from lower-priority splits (test > validation > train).

Output columns: ``id``, ``smiles``, ``split``, ``inchikey``, ``source_smiles``, ``source_row`` (0-based data
row, the index Hu et al.'s splitter refers to), ``labels`` (list of float64 in task order) and one float64
column per task (the CSV's names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pyarrow as pa

try:
    from . import common
except ImportError:  # run as a script
    import common

WHERE_TO_GET = ("MoleculeNet CSVs: https://moleculenet.org (DeepChem datasets, e.g. "
                "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/BBBP.csv) or chemprop's data/ folder "
                "(github.com/chemprop/chemprop, commit 3f2b733).")
INDEX_LIKE = {"num", "index", "idx", "id", "mol_id", "cid", "unnamed: 0", ""}

CITATION = """@article{wu2018moleculenet,
  title={MoleculeNet: a benchmark for molecular machine learning},
  author={Wu, Zhenqin and Ramsundar, Bharath and Feinberg, Evan N and Gomes, Joseph and Geniesse, Caleb and
          Pappu, Aneesh S and Leswing, Karl and Pande, Vijay},
  journal={Chemical Science},
  volume={9},
  number={2},
  pages={513--530},
  year={2018}
}
@inproceedings{hu2020strategies,
  title={Strategies for Pre-training Graph Neural Networks},
  author={Hu, Weihua and Liu, Bowen and Gomes, Joseph and Zitnik, Marinka and Liang, Percy and Pande, Vijay and
          Leskovec, Jure},
  booktitle={ICLR},
  year={2020}
}"""


@dataclass
class BuildMoleculeNetArguments:
    input_file: str = field(metadata={"help": "MoleculeNet CSV (optionally .gz)."})
    output_dir: str = field(metadata={"help": "Where to write the Parquet files and README.md."})
    smiles_column: Optional[str] = field(default=None, metadata={"help": "SMILES column (default: smiles or mol)."})
    task_columns: Optional[list[str]] = field(default=None, metadata={
        "help": "Task columns (default: numeric columns)."})
    id_column: Optional[str] = field(default=None, metadata={"help": "Id column (default: the 0-based data row)."})
    split_method: str = field(default="scaffold", metadata={
        "help": "scaffold or random.", "choices": ["scaffold", "random"]})
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1], metadata={
        "help": "train validation test fractions."})
    seed: int = field(default=42, metadata={"help": "Seed of the random split."})
    dedup_across_splits: bool = field(default=False, metadata={
        "help": "Drop a molecule's rows from lower-priority splits (test > validation > train); changes the "
                "benchmark split sizes, so off by default."})
    delimiter: Optional[str] = field(default=None, metadata={"help": "Field delimiter (default: by extension)."})
    name: Optional[str] = field(default=None, metadata={"help": "Dataset name (default: the file name stem)."})
    license: str = field(default="mit", metadata={"help": "License id for the card (mit for chemprop's copies)."})
    num_proc: Optional[int] = field(default=None, metadata={"help": "Worker processes for RDKit canonicalisation."})


def _float(value: str, where: str, column: str, path: Path) -> float:
    if common.is_missing(value):
        return math.nan
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{path} {where}: label {value!r} in task column {column!r} is not a number") from None


def _is_numeric_column(rows, col) -> bool:
    seen = False
    for row in rows:
        if col >= len(row) or common.is_missing(row[col]):
            continue
        try:
            float(row[col])
        except ValueError:
            return False
        seen = True
    return seen


def main(args=None) -> common.BuildReport:
    args = common.parse_args(BuildMoleculeNetArguments, args)
    path = common.require_file(args.input_file, WHERE_TO_GET)
    name = args.name or path.name.split(".")[0]
    report = common.BuildReport(name)
    report.add_input(path)
    header, rows = common.read_table(path, args.delimiter)

    if args.smiles_column:
        smiles_col = common.column_index(header, args.smiles_column, path, "SMILES column (--smiles_column)")
    else:
        candidates = [i for i, h in enumerate(header) if h.lower() in ("smiles", "mol")]
        if not candidates:
            raise ValueError(f"{path}: no SMILES column found (looked for 'smiles' or 'mol'); columns found: "
                             f"{header}; pass --smiles_column")
        smiles_col = candidates[0]
    id_col = common.column_index(header, args.id_column, path, "id column (--id_column)") if args.id_column else None
    if args.task_columns:
        task_cols = [common.column_index(header, t, path, "task column (--task_columns)") for t in args.task_columns]
    else:
        task_cols = [i for i, h in enumerate(header)
                     if i not in (smiles_col, id_col) and h.strip().lower() not in INDEX_LIKE
                     and _is_numeric_column(rows, i)]
        if not task_cols:
            raise ValueError(f"{path}: no numeric task columns found; columns found: {header}; pass --task_columns")
    tasks = [header[i] for i in task_cols]

    records = []
    for i, row in enumerate(rows):
        report.rows_read += 1
        where = f"row {i} (0-based)"
        if len(row) != len(header):
            report.drop("malformed_row", where, row)
            continue
        labels = [_float(row[c], where, header[c], path) for c in task_cols]
        records.append({"id": row[id_col].strip() if id_col is not None else str(i), "smiles": row[smiles_col],
                        "source_row": i, "where": where, "labels": labels,
                        **{header[c]: v for c, v in zip(task_cols, labels)}})
    records = common.canonicalise(records, report, require_text=False, num_proc=args.num_proc)

    fractions = common.parse_fractions(args.split_fractions)
    if len(fractions) != 3:
        raise ValueError(f"--split_fractions needs three values (train validation test), got {fractions}")
    if args.split_method == "scaffold":
        parts = common.scaffold_split([r["source_smiles"] for r in records], *fractions)
        report.note(f"Bemis–Murcko scaffold split (Hu et al. 2020) {fractions} over the {len(records):,} parsed rows")
    else:
        parts = common.random_split(len(records), fractions, args.seed)
        report.note(f"random split {fractions}, seed {args.seed}, over the {len(records):,} parsed rows")
    for split, part in zip(common.SPLIT_ORDER, parts):
        for i in part:
            records[i]["split"] = split

    splits_of: dict[str, set] = {}
    for record in records:
        splits_of.setdefault(common.dedup_key(record), set()).add(record["split"])
    straddling = sum(len(s) > 1 for s in splits_of.values())
    if args.dedup_across_splits:
        records = common.dedup_across_splits(records, report)
    else:
        report.note(f"not deduplicated (standard benchmark split kept); molecules (InChIKey) in more than one split: "
                    f"{straddling:,}; rows repeating a molecule: {len(records) - len(splits_of):,}")
    missing = sum(math.isnan(v) for r in records for v in r["labels"])
    report.note(f"tasks ({len(tasks)}): {', '.join(tasks)}; "
                f"missing labels: {missing:,} of {len(records) * len(tasks):,}")

    schema = pa.schema([("id", pa.string()), ("smiles", pa.string()), ("split", pa.string()),
                        ("inchikey", pa.string()), ("source_smiles", pa.string()), ("source_row", pa.int64()),
                        ("labels", pa.list_(pa.float64()))] + [(t, pa.float64()) for t in tasks])
    common.write_parquet_splits(records, args.output_dir, schema, report)
    columns = {
        "id": (f"value of column {args.id_column!r}" if args.id_column
               else "0-based data row in the source CSV (string)"),
        "smiles": "RDKit isomeric canonical SMILES",
        "split": f"train / validation / test ({args.split_method} split)",
        "inchikey": "standard InChIKey (null if InChI cannot represent the molecule)",
        "source_smiles": f"column {header[smiles_col]!r} as read",
        "source_row": "0-based data row in the source CSV (the index used by Hu et al.'s splitters)",
        "labels": f"float64 labels in task order [{', '.join(tasks)}]; NaN = missing",
        **{t: "task label (float64, NaN = missing)" for t in tasks},
    }
    common.write_card(
        args.output_dir, report=report, pretty_name=f"MoleculeNet {name} ({args.split_method} split)",
        license=args.license, task_categories=["graph-ml", "tabular-classification"],
        source=f"MoleculeNet (Wu et al. 2018) `{name}` from `{path.name}`. {WHERE_TO_GET}", citation=CITATION,
        columns=columns, command=common.command_line(__file__, args),
        tags=["chemistry", "molecules", "smiles", "moleculenet", name.lower()],
        extra_sections="\nSplit sizes follow Hu et al. 2020's scaffold split exactly when rows are not deduplicated "
                       "(the default). Row references here are 0-based data rows.\n",
        dedup_rule=("Deduplication: " + common.DEDUP_ACROSS_RULE if args.dedup_across_splits else
                    "No deduplication: the standard benchmark split is kept as is (see the notes for molecules "
                    "in more than one split)."),
    )
    report.print()
    return report


if __name__ == "__main__":
    main()
