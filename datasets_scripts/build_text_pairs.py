# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Build a molecule–text pair dataset from any SMILES–text CSV/TSV (your own data, PubChem324k exports, ...).

    python datasets_scripts/build_text_pairs.py --input_file pairs.csv.gz --output_dir data/my_pairs \\
        --smiles_column "SMILES" --text_column "description, cleaned" [--id_column cid] \\
        [--split 0.8 0.1 0.1 --seed 42 | --split_column fold]

* Delimiter by extension (``.csv`` comma; ``.tsv``/``.txt``/``.tab`` tab; ``.gz`` allowed, gzip detected by
  content), or ``--delimiter``. Standard CSV quoting, so column names may contain commas and spaces (quote
  them on the command line). A column that is not there raises an error naming the file and the columns found.
* Splits: all ``train`` by default; ``--split`` fractions assign whole molecules (grouped by InChIKey) at random
  with ``--seed``, so one molecule's texts never straddle splits; or ``--split_column`` takes the split from a
  column (train/training, validation/valid/val/dev, test/testing; other values are dropped and counted).
* Rows: canonical SMILES; missing/unparsable SMILES and empty texts dropped and counted; deduplicated across
  splits (by InChIKey, test > validation > train) and within a split (same molecule + same text).

Output columns: ``id`` (``--id_column`` value, else the data-row number), ``smiles``, ``text``, ``split``,
``inchikey``, ``source_smiles``, ``source_row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


try:
    from . import common
except ImportError:  # run as a script
    import common

SCHEMA = common.pair_schema()


@dataclass
class BuildTextPairsArguments:
    input_file: str = field(metadata={"help": "CSV/TSV (optionally .gz) with a header line."})
    output_dir: str = field(metadata={"help": "Where to write the Parquet files and README.md."})
    smiles_column: str = field(default="smiles", metadata={"help": "Name of the SMILES column."})
    text_column: str = field(default="text", metadata={"help": "Name of the text column."})
    id_column: Optional[str] = field(default=None, metadata={"help": "Optional id column (default: row number)."})
    delimiter: Optional[str] = field(default=None, metadata={"help": "Field delimiter (default: by extension)."})
    split: Optional[list[float]] = field(default=None, metadata={
        "help": "Random split fractions (train [validation [test]]) over molecules, e.g. 0.8 0.1 0.1."})
    split_column: Optional[str] = field(default=None, metadata={"help": "Column holding each row's split."})
    seed: int = field(default=42, metadata={"help": "Seed of the random split."})
    dedup: bool = field(default=True, metadata={"help": "Deduplicate across splits (by InChIKey) and within splits."})
    num_proc: Optional[int] = field(default=None, metadata={"help": "Worker processes for RDKit canonicalisation."})
    pretty_name: Optional[str] = field(default=None, metadata={"help": "Dataset name for the card."})
    license: str = field(default="other", metadata={"help": "License id for the card (that of your source data)."})
    license_name: Optional[str] = field(default=None, metadata={"help": "With --license other: its name."})
    license_link: Optional[str] = field(default=None, metadata={"help": "With --license other: a link to it."})
    source: str = field(default="User-provided SMILES–text file.", metadata={"help": "Source paragraph for the card."})
    citation: str = field(default="", metadata={"help": "BibTeX for the card."})


def main(args=None) -> common.BuildReport:
    args = common.parse_args(BuildTextPairsArguments, args)
    if args.split and args.split_column:
        raise ValueError("Give either --split (random fractions) or --split_column, not both.")
    path = common.require_file(args.input_file, "Check the path given to --input_file.")
    report = common.BuildReport(path.name)
    report.add_input(path)
    header, rows = common.read_table(path, args.delimiter)
    smiles_col = common.column_index(header, args.smiles_column, path, "SMILES column (--smiles_column)")
    text_col = common.column_index(header, args.text_column, path, "text column (--text_column)")
    id_col = common.column_index(header, args.id_column, path, "id column (--id_column)") if args.id_column else None
    split_col = (common.column_index(header, args.split_column, path, "split column (--split_column)")
                 if args.split_column else None)

    records = []
    for number, row in enumerate(rows, start=1):
        report.rows_read += 1
        where = f"{path.name} row {number}"
        if len(row) != len(header):
            report.drop("malformed_row", where, row)
            continue
        split = "train"
        if split_col is not None:
            split = common.normalise_split_name(row[split_col])
            if split is None:
                report.drop("unknown_split_value", where, row[split_col])
                continue
        records.append({"id": row[id_col].strip() if id_col is not None else str(number), "smiles": row[smiles_col],
                        "text": row[text_col], "split": split, "source_row": number, "where": where})

    records = common.canonicalise(records, report, require_text=True, num_proc=args.num_proc)
    fractions = common.parse_fractions(args.split)
    if fractions:
        molecules = list(dict.fromkeys(common.dedup_key(r) for r in records))
        parts = common.random_split(len(molecules), fractions, args.seed)
        assign = {molecules[i]: common.SPLIT_ORDER[k] for k, part in enumerate(parts) for i in part}
        for record in records:
            record["split"] = assign[common.dedup_key(record)]
        report.note(f"random split by molecule: fractions {fractions}, seed {args.seed}, {len(molecules):,} molecules")
    elif split_col is not None:
        report.note(f"splits from column {args.split_column!r}")
    else:
        report.note("no split requested: all rows in train")
    if args.dedup:
        records = common.dedup_across_splits(records, report)
        records = common.dedup_pairs(records, report)
    else:
        report.note("deduplication disabled (--no_dedup)")

    common.write_parquet_splits(records, args.output_dir, SCHEMA, report)
    columns = {
        "id": f"value of column {args.id_column!r}" if args.id_column else "data-row number in the source file",
        "smiles": "RDKit isomeric canonical SMILES",
        "text": f"column {args.text_column!r}, surrounding whitespace stripped",
        "split": "train / validation / test",
        "inchikey": "standard InChIKey (null if InChI cannot represent the molecule)",
        "source_smiles": f"column {args.smiles_column!r} as read",
        "source_row": "data row in the source file (1 = first row after the header)",
    }
    common.write_card(
        args.output_dir, report=report, pretty_name=args.pretty_name or f"{path.name} (molecule–text pairs)",
        license=args.license, license_name=args.license_name, license_link=args.license_link,
        task_categories=["text-retrieval", "graph-ml"], source=args.source,
        citation=args.citation or "% no citation given", columns=columns, command=common.command_line(__file__, args),
        dedup_rule=common.DEDUP_RULE if args.dedup else "No deduplication (--no_dedup).",
    )
    report.print()
    return report


if __name__ == "__main__":
    main()
