# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Shared rules of the dataset build scripts (raw public files -> Parquet + dataset card).

Every builder in this folder follows the same rules, implemented here:

* **Canonical SMILES.** ``smiles`` is RDKit's isomeric canonical SMILES (`canonical_smiles`); the string as
  read is kept in ``source_smiles``; ``inchikey`` is the standard InChIKey (null when InChI cannot represent
  the molecule, e.g. ``*`` atoms; such molecules are keyed by their canonical SMILES for deduplication).
* **Counted drops.** A row whose SMILES is missing or does not parse, or whose text is empty, is dropped and
  counted per reason; the report (printed and written into the card) lists the first few offending rows.
  Row numbers count data rows from 1, the header excluded, unless a builder says otherwise.
* **Deduplication.**
  - *Across splits*, by molecule (InChIKey): a molecule present in an evaluation split must not appear in a
    split of lower priority. Priority ``test > validation > train``: the molecule stays in the highest-priority
    split that has it and its rows in the other splits are dropped (evaluation splits win, so test metrics are
    never inflated by training on the same molecule).
  - *Within a split*, for molecule–text pairs: the same molecule (InChIKey) with the same text (after
    stripping surrounding whitespace) is a duplicate; the first row is kept.
* **Parquet** written with pyarrow, one file per split (``train.parquet``, ``validation.parquet``,
  ``test.parquet``), listed in the card's ``configs`` so ``datasets.load_dataset(output_dir)`` works.
* **A missing input file** raises `FileNotFoundError` naming the file and saying where to get it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

_REPO_ROOT = Path(__file__).resolve().parents[1]
try:
    from modeling_finemoltex.chemistry_finemoltex import (  # noqa: F401  (re-exported for the builders)
        MoleculeParseError,
        canonical_smiles,
        inchikey,
        murcko_scaffold,
        random_split,
        scaffold_split,
    )
except ModuleNotFoundError as err:  # run as `python datasets_scripts/build_x.py` from a source checkout
    if err.name != "modeling_finemoltex":
        raise
    sys.path.insert(0, str(_REPO_ROOT))
    from modeling_finemoltex.chemistry_finemoltex import (  # noqa: F401
        MoleculeParseError,
        canonical_smiles,
        inchikey,
        murcko_scaffold,
        random_split,
        scaffold_split,
    )

csv.field_size_limit(2**31 - 1)  # long descriptions / SDF-derived fields

#: Split names in priority order for cross-split deduplication (first wins).
SPLIT_PRIORITY = ("test", "validation", "train")
#: Split names in the order files are written and listed.
SPLIT_ORDER = ("train", "validation", "test")

DEDUP_ACROSS_RULE = (
    "Across splits, by molecule (InChIKey; canonical SMILES when there is no InChIKey): priority "
    "test > validation > train, a molecule is kept only in the highest-priority split that contains it and its "
    "rows elsewhere are dropped (evaluation splits win, so no test molecule is trained on). Standard InChIKeys "
    "identify tautomers and protonation states that differ only in mobile hydrogens (e.g. a zwitterion and its "
    "neutral form) as one molecule, the conservative choice against leakage."
)
DEDUP_WITHIN_RULE = "Within a split, a row with the same molecule and the same text as an earlier row is dropped."
DEDUP_RULE = f"Deduplication: (1) {DEDUP_ACROSS_RULE} (2) {DEDUP_WITHIN_RULE}"

# Drop reasons (keys of BuildReport.drops), with the wording used in reports.
REASONS = {
    "malformed_row": "row has the wrong number of fields",
    "missing_smiles": "SMILES missing or empty",
    "unparsable_smiles": "SMILES does not parse/sanitise with RDKit",
    "empty_text": "text missing or empty",
    "no_structure_for_cid": "CID has text but no structure (SMILES/SDF)",
    "sdf_record_without_cid": "SDF record without a PUBCHEM_COMPOUND_CID property",
    "unknown_split_value": "value of the split column is not train/validation/test",
    "duplicate_pair_in_split": "same molecule and same text as an earlier row of the same split",
    "molecule_in_higher_priority_split": "molecule also in a higher-priority split (test > validation > train)",
}


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


@dataclass
class BuildReport:
    """Counts of a build: rows read, rows kept per split, rows dropped per reason (with examples)."""

    dataset: str
    max_examples: int = 5
    rows_read: int = 0
    inputs: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drops: dict[str, dict] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def add_input(self, path: str | Path) -> None:
        path = Path(path)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        self.inputs.append({"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def drop(self, reason: str, where: str, value: Any = None) -> None:
        entry = self.drops.setdefault(reason, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < self.max_examples:
            shown = value if not isinstance(value, str) or len(value) <= 120 else value[:117] + "..."
            entry["examples"].append({"where": where, "value": shown})

    @property
    def rows_dropped(self) -> int:
        return sum(entry["count"] for entry in self.drops.values())

    @property
    def rows_kept(self) -> int:
        return sum(self.kept.values())

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "inputs": self.inputs,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_kept_per_split": dict(self.kept),
            "rows_dropped": self.rows_dropped,
            "rows_dropped_per_reason": {k: v["count"] for k, v in self.drops.items()},
            "drop_examples": {k: v["examples"] for k, v in self.drops.items()},
            "notes": self.notes,
        }

    def markdown(self) -> str:
        lines = ["| | rows |", "|---|---:|", f"| read | {self.rows_read:,} |", f"| kept | {self.rows_kept:,} |"]
        for split in _ordered_splits(self.kept):
            lines.append(f"| kept in `{split}` | {self.kept[split]:,} |")
        lines.append(f"| dropped | {self.rows_dropped:,} |")
        for reason, entry in self.drops.items():
            lines.append(f"| dropped: {REASONS.get(reason, reason)} (`{reason}`) | {entry['count']:,} |")
        if self.drops:
            lines += ["", "First dropped rows per reason:", ""]
            for reason, entry in self.drops.items():
                shown = "; ".join(f"{ex['where']}: `{_md_code(ex['value'])}`" for ex in entry["examples"])
                lines.append(f"- `{reason}`: {shown}")
        if self.inputs:
            lines += ["", "Input files:", "", "| file | bytes | sha256 |", "|---|---:|---|"]
            lines += [f"| `{i['file']}` | {i['bytes']:,} | `{i['sha256']}` |" for i in self.inputs]
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines)

    def print(self, file=None) -> None:
        out = file or sys.stdout
        print(f"[{self.dataset}] rows read: {self.rows_read:,}; kept: {self.rows_kept:,} "
              f"({', '.join(f'{s}={self.kept[s]:,}' for s in _ordered_splits(self.kept))}); "
              f"dropped: {self.rows_dropped:,}", file=out)
        for reason, entry in self.drops.items():
            examples = "; ".join(f"{ex['where']}: {ex['value']!r}" for ex in entry["examples"])
            print(f"  dropped {entry['count']:,} x {reason} ({REASONS.get(reason, reason)}), e.g. {examples}", file=out)
        for note in self.notes:
            print(f"  note: {note}", file=out)
        for split, path in self.outputs.items():
            print(f"  wrote {path}", file=out)


def _md_code(value: Any) -> str:
    return str(value).replace("`", "'").replace("|", "\\|").replace("\n", " ")


def _ordered_splits(splits: Iterable[str]) -> list[str]:
    splits = list(splits)
    return [s for s in SPLIT_ORDER if s in splits] + sorted(s for s in splits if s not in SPLIT_ORDER)


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def pair_schema(position_column: str = "source_row") -> pa.Schema:
    """Parquet schema of molecule–text pair builds; ``position_column`` (int64) locates the row in the source."""
    return pa.schema([
        ("id", pa.string()),
        ("smiles", pa.string()),
        ("text", pa.string()),
        ("split", pa.string()),
        ("inchikey", pa.string()),
        ("source_smiles", pa.string()),
        (position_column, pa.int64()),
    ])


def require_file(path: str | Path, how_to_get: str) -> Path:
    """Return ``path`` if it is a file, else raise `FileNotFoundError` naming it and saying where to get it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Input file not found: {path}. {how_to_get}")
    return path


def open_text(path: str | Path):
    """Open a text file for reading (UTF-8, BOM tolerated), transparently gunzipping ``*.gz`` files."""
    path = Path(path)
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def delimiter_for(path: str | Path, delimiter: str | None = None) -> str:
    """The field delimiter: ``delimiter`` if given (``\\t``/``tab`` accepted), else by extension."""
    if delimiter:
        return "\t" if delimiter in ("\\t", "tab", "TAB", "\t") else delimiter
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt", ".tab")):
        return "\t"
    raise ValueError(f"{path}: cannot tell the delimiter from the extension (.csv, .tsv, .txt, optionally .gz); "
                     "pass --delimiter")


def utf8_error(path: str | Path, err: UnicodeDecodeError) -> ValueError:
    """A ValueError for a file that is not UTF-8, naming the file, the first bad line and its byte offset.

    The decoder's own position is relative to a read buffer, so the file is scanned again (only on this error
    path) line by line; a newline byte never occurs inside a UTF-8 multi-byte sequence."""
    path = Path(path)
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    offset = 0
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")  # a BOM is valid UTF-8 too
            except UnicodeDecodeError as bad:
                uncompressed = " of the uncompressed data" if gzipped else ""
                return ValueError(
                    f"{path}: line {number} (byte offset {offset + bad.start}{uncompressed}) is not valid UTF-8 "
                    f"(byte 0x{line[bad.start]:02x}: {bad.reason}); the file looks Latin-1/Windows-1252 or another "
                    "encoding: re-encode it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                )
            offset += len(line)
    return ValueError(f"{path} is not valid UTF-8 ({err}); re-encode it to UTF-8")


def read_table(path: str | Path, delimiter: str | None = None, quoting: int = csv.QUOTE_MINIMAL):
    """Read a delimited file with a header line. Returns ``(header, rows)``; rows are lists of strings.
    Raises ValueError naming the file for an empty file, a header without data rows or a non-UTF-8 file."""
    try:
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter=delimiter_for(path, delimiter), quoting=quoting)
            try:
                header = next(reader)
            except StopIteration:
                raise ValueError(f"{path} is empty (no header line)") from None
            rows = [row for row in reader if row]  # csv yields [] for blank lines
    except UnicodeDecodeError as err:
        raise utf8_error(path, err) from err
    if not rows:  # a build from it would write empty splits and report success
        raise ValueError(f"{path}: no data rows (only the header line {[h.strip() for h in header]})")
    return [h.strip() for h in header], rows


def column_index(header: Sequence[str], name: str, path: str | Path, what: str = "column") -> int:
    """Index of column ``name`` in ``header``; a clear error naming the file and the columns found."""
    if name in header:
        return list(header).index(name)
    near = [h for h in header if h.lower() == name.lower() or h.strip() == name.strip()]
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ValueError(f"{path}: no {what} named {name!r}{hint}; columns found: {list(header)}")


def parse_fractions(fractions: Sequence[float] | str | None) -> list[float] | None:
    """Split fractions as floats summing to 1 (1 to 3 values: train[, validation[, test]])."""
    if fractions is None:
        return None
    if isinstance(fractions, str):
        fractions = [float(f) for f in fractions.replace(",", " ").split()]
    fractions = [float(f) for f in fractions]
    if not 1 <= len(fractions) <= 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"Split fractions must be 1 to 3 non-negative numbers summing to 1 "
                         f"(train validation test), got {fractions}")
    return fractions


def hash_split(key: str, fractions: Sequence[float]) -> str:
    """Deterministic split of one key (e.g. a CID) by SHA-256: stable across runs, machines and file order."""
    value = int.from_bytes(hashlib.sha256(str(key).strip().encode("utf-8")).digest()[:8], "big") / 2.0**64
    total = 0.0
    for name, frac in zip(SPLIT_ORDER, fractions):
        total += frac
        if value < total:
            return name
    return SPLIT_ORDER[len(fractions) - 1]


def normalise_split_name(value: str) -> str | None:
    """Map common split spellings to train/validation/test; None for anything else."""
    value = str(value).strip().lower()
    aliases = {"train": "train", "training": "train", "valid": "validation", "validation": "validation",
               "val": "validation", "dev": "validation", "test": "test", "testing": "test"}
    return aliases.get(value)


# --------------------------------------------------------------------------------------------------
# Canonicalisation, drops, deduplication
# --------------------------------------------------------------------------------------------------


def _molecule_keys(smiles: str):
    """(canonical SMILES, InChIKey or None, error message or None) for one source SMILES."""
    try:
        canonical = canonical_smiles(smiles)
    except MoleculeParseError as err:
        return None, None, str(err)
    return canonical, inchikey(canonical), None


def molecule_keys(smiles_list: Iterable[str], num_proc: int | None = None) -> dict[str, tuple]:
    """`_molecule_keys` for every distinct SMILES, optionally over ``num_proc`` worker processes."""
    unique = list(dict.fromkeys(s for s in smiles_list if s))
    if num_proc and num_proc > 1 and len(unique) > 2000:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(num_proc) as pool:
            results = list(pool.map(_molecule_keys, unique, chunksize=512))
    else:
        results = [_molecule_keys(s) for s in unique]
    return dict(zip(unique, results))


def dedup_key(record: dict) -> str:
    """Molecule identity for deduplication: the InChIKey, else the canonical SMILES."""
    return record["inchikey"] or f"SMILES:{record['smiles']}"


def canonicalise(records: list[dict], report: BuildReport, require_text: bool = True,
                 num_proc: int | None = None) -> list[dict]:
    """Canonicalise ``records`` in place and drop (and count) rows without a usable SMILES or text.

    Each record needs ``smiles`` (as read), ``where`` (a human row reference) and, when ``require_text``,
    ``text``. Kept records get ``source_smiles``, canonical ``smiles`` and ``inchikey``; text is stripped.
    """
    keys = molecule_keys((r["smiles"].strip() for r in records if isinstance(r["smiles"], str)), num_proc)
    kept = []
    for record in records:
        source = record["smiles"].strip() if isinstance(record["smiles"], str) else ""
        if not source:
            report.drop("missing_smiles", record["where"], record["smiles"])
            continue
        canonical, key, error = keys[source]
        if canonical is None:
            report.drop("unparsable_smiles", record["where"], source)
            continue
        if require_text:
            text = record.get("text")
            text = text.strip() if isinstance(text, str) else ""
            if not text:
                report.drop("empty_text", record["where"], record.get("text"))
                continue
            record["text"] = text
        record["source_smiles"] = source
        record["smiles"] = canonical
        record["inchikey"] = key
        kept.append(record)
    return kept


def dedup_across_splits(records: list[dict], report: BuildReport,
                        priority: Sequence[str] = SPLIT_PRIORITY) -> list[dict]:
    """Keep each molecule only in its highest-priority split (see `SPLIT_PRIORITY`); count the rest."""
    rank = {name: i for i, name in enumerate(priority)}
    best: dict[str, int] = {}
    for record in records:
        key = dedup_key(record)
        r = rank.get(record["split"], len(rank))
        best[key] = min(best.get(key, r), r)
    kept = []
    for record in records:
        if rank.get(record["split"], len(rank)) > best[dedup_key(record)]:
            winner = priority[best[dedup_key(record)]]
            report.drop("molecule_in_higher_priority_split", f"{record['where']} ({record['split']}, kept in {winner})",
                        record["smiles"])
            continue
        kept.append(record)
    return kept


def dedup_pairs(records: list[dict], report: BuildReport) -> list[dict]:
    """Drop rows repeating an earlier row's (split, molecule, text); count them."""
    seen: set = set()
    kept = []
    for record in records:
        key = (record["split"], dedup_key(record), record["text"])
        if key in seen:
            report.drop("duplicate_pair_in_split", record["where"], record["text"])
            continue
        seen.add(key)
        kept.append(record)
    return kept


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


def write_parquet_splits(records: list[dict], output_dir: str | Path, schema: pa.Schema,
                         report: BuildReport) -> dict[str, Path]:
    """Write one ``{split}.parquet`` per split (columns and types from ``schema``); fill ``report.kept``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[dict]] = {}
    for record in records:
        by_split.setdefault(record["split"], []).append(record)
    paths = {}
    for split in _ordered_splits(by_split):
        rows = by_split[split]
        table = pa.Table.from_pydict({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)
        path = output_dir / f"{split}.parquet"
        pq.write_table(table, path)
        paths[split] = path
        report.kept[split] = len(rows)
        report.outputs[split] = str(path)
    for stale in output_dir.glob("*.parquet"):  # a re-run with fewer splits must not leave old files behind
        if stale.stem in SPLIT_ORDER and stale.stem not in by_split:
            stale.unlink()
    return paths


def size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return label
    return "10M<n<100M"


def command_line(script: str, args) -> str:
    """The build command, with path arguments shortened to their file/folder names (no local paths in cards)."""
    parts = [f"python datasets_scripts/{Path(script).name}"]
    for f in fields(args):
        value = getattr(args, f.name)
        if value is None or value == f.default:
            continue
        if isinstance(value, bool):
            parts.append(f"--{f.name}" if value else f"--no_{f.name}")
            continue
        if f.name.endswith(("_dir", "_file", "_path")):
            value = Path(str(value)).name or str(value)
        values = value if isinstance(value, (list, tuple)) else [value]
        parts.append(f"--{f.name} " + " ".join(_shell_quote(str(v)) for v in values))
    return " ".join(parts)


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def write_card(output_dir: str | Path, *, report: BuildReport, pretty_name: str, license: str,
               task_categories: Sequence[str], source: str, citation: str, columns: dict[str, str],
               command: str, tags: Sequence[str] = ("chemistry", "molecules", "smiles"),
               license_name: str | None = None, license_link: str | None = None, extra_yaml: dict | None = None,
               extra_sections: str = "",
               dedup_rule: str = DEDUP_RULE) -> Path:
    """Write ``README.md``: HF dataset-card YAML front matter + source, citation, columns and build report."""
    import yaml

    output_dir = Path(output_dir)
    splits = _ordered_splits(report.kept)
    meta: dict[str, Any] = {"pretty_name": pretty_name, "license": license}
    if license_name:
        meta["license_name"] = license_name
    if license_link:
        meta["license_link"] = license_link
    meta.update({
        "task_categories": list(task_categories),
        "tags": list(tags),
        "size_categories": [size_category(report.rows_kept)],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"{s}.parquet"} for s in splits]}],
    })
    meta.update(extra_yaml or {})
    columns_md = "\n".join(f"| `{name}` | {desc} |" for name, desc in columns.items())
    splits_md = ", ".join(f"`{s}` {report.kept[s]:,}" for s in splits) or "none"
    body = f"""# {pretty_name}

Built by `finemoltex`'s `datasets_scripts` from the raw public files; rows: {splits_md}.

## Source

{source.strip()}

## Citation

```bibtex
{citation.strip()}
```

## Columns

| column | description |
|---|---|
{columns_md}

## Build

```
{command}
```

Rules: `smiles` is RDKit's isomeric canonical SMILES; rows with a missing/unparsable SMILES or empty text are
dropped and counted below. {dedup_rule} Row references count data rows from 1, the header excluded, unless
stated otherwise.
{extra_sections}
### Build report

{report.markdown()}

<details><summary>report as JSON</summary>

```json
{json.dumps(report.as_dict(), indent=1, default=str)}
```

</details>
"""
    path = output_dir / "README.md"
    path.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + body,
                    encoding="utf-8")
    report.outputs["card"] = str(path)
    return path


def parse_args(dataclass_type, args=None):
    """Parse ``args`` (a list of strings, a dict, a dataclass instance or None for sys.argv)."""
    from transformers import HfArgumentParser

    if isinstance(args, dataclass_type):
        return args
    parser = HfArgumentParser(dataclass_type)
    if isinstance(args, dict):
        return parser.parse_dict(args)[0]
    return parser.parse_args_into_dataclasses(args=args)[0]


def is_missing(value: Any) -> bool:
    """Empty cell / NA spellings used by MoleculeNet CSVs."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return str(value).strip().lower() in ("", "nan", "na", "n/a", "none", "null")


__all__ = [
    "BuildReport",
    "DEDUP_ACROSS_RULE",
    "DEDUP_RULE",
    "DEDUP_WITHIN_RULE",
    "MoleculeParseError",
    "REASONS",
    "SPLIT_ORDER",
    "SPLIT_PRIORITY",
    "canonical_smiles",
    "canonicalise",
    "column_index",
    "command_line",
    "dedup_across_splits",
    "dedup_key",
    "dedup_pairs",
    "delimiter_for",
    "hash_split",
    "inchikey",
    "is_missing",
    "molecule_keys",
    "murcko_scaffold",
    "normalise_split_name",
    "open_text",
    "parse_args",
    "parse_fractions",
    "random_split",
    "read_table",
    "require_file",
    "scaffold_split",
    "size_category",
    "write_card",
    "write_parquet_splits",
]
