# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Build ChEBI-20 (Text2Mol / MolT5 molecule–description pairs) as Parquet + dataset card.

Input: MolT5's layout, a folder with any of ``train.txt``, ``validation.txt``, ``test.txt``
(github.com/blender-nlp/MolT5, folder ``ChEBI-20_data/``): tab-separated, header ``CID\\tSMILES\\tdescription``,
no quoting (read with ``csv.QUOTE_NONE``: descriptions contain ``"``).

    python datasets_scripts/build_chebi20.py --input_dir ../shared/data/chebi20 --output_dir data/chebi20

With only ``validation.txt`` at hand (this project's situation), split it deterministically by a hash of the
CID into train/validation/test:

    python datasets_scripts/build_chebi20.py --input_dir ../shared/data/chebi20 --output_dir data/chebi20_val \\
        --split_validation_by_cid 0.8 0.1 0.1

Output: ``{train,validation,test}.parquet`` with ``id`` (CID), ``smiles`` (canonical), ``text``, ``split``,
``inchikey``, ``source_smiles``, ``source_row`` + ``README.md`` (card with the build report).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


try:
    from . import common
except ImportError:  # run as a script
    import common

FILES = {"train": "train.txt", "validation": "validation.txt", "test": "test.txt"}
HEADER = ["CID", "SMILES", "description"]
WHERE_TO_GET = ("ChEBI-20 is in MolT5's repository: https://github.com/blender-nlp/MolT5, folder ChEBI-20_data/ "
                "(train.txt, validation.txt, test.txt); put the files in --input_dir.")

SCHEMA = common.pair_schema()

COLUMNS = {
    "id": "PubChem CID (string)",
    "smiles": "RDKit isomeric canonical SMILES",
    "text": "ChEBI description (\"The molecule is ...\"), surrounding whitespace stripped",
    "split": "train / validation / test",
    "inchikey": "standard InChIKey (null if InChI cannot represent the molecule)",
    "source_smiles": "SMILES as given in the source file (PubChem)",
    "source_row": "data row in the source file (1 = first line after the header)",
}

CITATION = """@inproceedings{edwards2021text2mol,
  title={Text2Mol: Cross-Modal Molecule Retrieval with Natural Language Queries},
  author={Edwards, Carl and Zhai, ChengXiang and Ji, Heng},
  booktitle={Proceedings of EMNLP 2021},
  year={2021}
}
@inproceedings{edwards2022molt5,
  title={Translation between Molecules and Natural Language},
  author={Edwards, Carl and Lai, Tuan and Ros, Kevin and Honke, Garrett and Cho, Kyunghyun and Ji, Heng},
  booktitle={Proceedings of EMNLP 2022},
  year={2022}
}"""

SOURCE = """ChEBI-20 (Edwards et al. 2021, 2022): PubChem compounds with ChEBI definitions rewritten as
"The molecule is ...". Files from https://github.com/blender-nlp/MolT5 (`ChEBI-20_data/`, BSD-3-Clause
repository). The descriptions come from ChEBI, available under CC BY 4.0."""


@dataclass
class BuildChEBI20Arguments:
    input_dir: str = field(metadata={"help": "Folder with MolT5's train.txt / validation.txt / test.txt (any subset)."})
    output_dir: str = field(metadata={"help": "Where to write the Parquet files and README.md."})
    split_validation_by_cid: Optional[list[float]] = field(
        default=None,
        metadata={"help": "Read only validation.txt and split it into train/validation/test by a SHA-256 hash of "
                          "the CID with these fractions, e.g. 0.8 0.1 0.1 (deterministic, independent of row order)."},
    )
    dedup: bool = field(default=True, metadata={"help": "Deduplicate across splits (by InChIKey) and within splits."})
    num_proc: Optional[int] = field(default=None, metadata={"help": "Worker processes for RDKit canonicalisation."})
    license: str = field(default="cc-by-4.0", metadata={"help": "License id for the card."})


def read_chebi_file(path: Path, split: str, report: common.BuildReport) -> list[dict]:
    """Rows of one MolT5 TSV as records (``where`` = file and data-row number). A file that is not UTF-8, or has
    the header and no data rows, is refused naming the file (a build from it would write an empty split)."""
    records, rows_seen = [], 0
    try:
        with common.open_text(path) as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != HEADER:
                raise ValueError(f"{path}: expected the header {HEADER} (tab-separated), found {header}")
            for row_number, row in enumerate(reader, start=1):
                if not row:
                    continue
                rows_seen += 1
                where = f"{path.name} row {row_number}"
                if len(row) != len(HEADER):
                    report.drop("malformed_row", where, "\t".join(row))
                    continue
                cid, smiles, text = row
                records.append({"id": cid.strip(), "smiles": smiles, "text": text, "split": split,
                                "source_row": row_number, "where": where})
    except UnicodeDecodeError as err:
        raise common.utf8_error(path, err) from err
    if not rows_seen:
        raise ValueError(f"{path}: no data rows (only the header line {HEADER})")
    report.rows_read += rows_seen
    return records


def main(args=None) -> common.BuildReport:
    args = common.parse_args(BuildChEBI20Arguments, args)
    input_dir = Path(args.input_dir)
    report = common.BuildReport("chebi20")
    fractions = common.parse_fractions(args.split_validation_by_cid)

    if fractions is not None:
        path = common.require_file(input_dir / FILES["validation"], WHERE_TO_GET)
        found = {"validation": path}
        ignored = [name for split, name in FILES.items() if split != "validation" and (input_dir / name).is_file()]
        report.note(f"--split_validation_by_cid {' '.join(map(str, fractions))}: only validation.txt read and split "
                    f"by SHA-256(CID) into {', '.join(common.SPLIT_ORDER[:len(fractions)])}"
                    + (f"; present but ignored: {', '.join(ignored)}" if ignored else ""))
    else:
        found = {split: input_dir / name for split, name in FILES.items() if (input_dir / name).is_file()}
        if not found:
            raise FileNotFoundError(f"Input files not found: none of {', '.join(FILES.values())} in {input_dir}. "
                                    + WHERE_TO_GET)
        missing = [name for split, name in FILES.items() if split not in found]
        report.note(f"files found: {', '.join(p.name for p in found.values())}"
                    + (f"; not found (splits absent): {', '.join(missing)}" if missing else ""))

    records = []
    for split, path in found.items():
        report.add_input(path)
        records += read_chebi_file(path, split, report)
    if fractions is not None:
        for record in records:
            record["split"] = common.hash_split(record["id"], fractions)

    records = common.canonicalise(records, report, require_text=True, num_proc=args.num_proc)
    if args.dedup:
        records = common.dedup_across_splits(records, report)
        records = common.dedup_pairs(records, report)
    else:
        report.note("deduplication disabled (--no_dedup)")

    common.write_parquet_splits(records, args.output_dir, SCHEMA, report)
    common.write_card(
        args.output_dir, report=report, pretty_name="ChEBI-20 (molecule–text pairs)", license=args.license,
        task_categories=["text-retrieval", "text-generation", "graph-ml"], source=SOURCE, citation=CITATION,
        columns=COLUMNS, command=common.command_line(__file__, args),
        dedup_rule=common.DEDUP_RULE if args.dedup else "No deduplication (--no_dedup).",
        tags=["chemistry", "molecules", "smiles", "molecule-captioning", "chebi-20"],
    )
    report.print()
    return report


if __name__ == "__main__":
    main()
