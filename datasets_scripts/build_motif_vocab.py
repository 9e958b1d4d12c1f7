#!/usr/bin/env python
"""Build a FineMolTex motif vocabulary (JSON) from a corpus of SMILES, on all cores.

    python datasets_scripts/build_motif_vocab.py --input data.parquet --smiles_column smiles \
        --output motif_vocab.json [--min_frequency 1] [--max_size N] [--target_min_frequency 10]

Inputs: a text file with one SMILES per line (first whitespace-separated field; ``.txt``/``.smi``,
optionally gzipped), a CSV/TSV with a header (``--smiles_column``), or a Parquet file (``--smiles_column``).
Unparsable SMILES are skipped and counted. Motifs are ranked by how often they occur; the ones seen at
least ``--target_min_frequency`` times are the masked-motif prediction targets (the reference: 10).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

from tqdm.auto import tqdm
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_finemoltex.tokenization_finemoltex import (  # noqa: E402
    FineMolTexGraphTokenizer,
    MotifVocab,
)


@dataclass
class BuildVocabArguments:
    input: str = field(metadata={"help": "SMILES file (.txt/.smi[.gz]), CSV/TSV (.csv/.tsv[.gz]) or Parquet."})
    output: str = field(metadata={"help": "Where to write the vocabulary JSON."})
    smiles_column: str = field(default="smiles", metadata={"help": "Column holding SMILES (CSV/TSV/Parquet)."})
    min_frequency: int = field(default=1, metadata={"help": "Keep motifs seen at least this many times."})
    max_size: int | None = field(default=None, metadata={"help": "Keep at most this many motifs."})
    target_min_frequency: int = field(default=10, metadata={"help": "Motifs seen this often are prediction targets."})
    num_proc: int | None = field(default=None, metadata={"help": "Worker processes (default: all cores)."})
    chunk_size: int = field(default=1000, metadata={"help": "Molecules per task (each is tokenised as one batch)."})
    limit: int | None = field(default=None, metadata={"help": "Read only the first N molecules."})


def _open_text(path: Path):
    return io.TextIOWrapper(gzip.open(path), encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_smiles(path: str | os.PathLike, smiles_column: str = "smiles", limit: int | None = None) -> list[str]:
    """SMILES strings of a corpus file (see the module docstring for the formats)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Corpus file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if smiles_column not in names:
            raise KeyError(f"{path}: no column {smiles_column!r}; columns are {names}")
        smiles = pq.read_table(path, columns=[smiles_column]).column(smiles_column).to_pylist()
    elif ".csv" in suffixes or ".tsv" in suffixes:
        with _open_text(path) as f:
            reader = csv.DictReader(f, delimiter="\t" if ".tsv" in suffixes else ",")
            if smiles_column not in (reader.fieldnames or []):
                raise KeyError(f"{path}: no column {smiles_column!r}; columns are {reader.fieldnames}")
            smiles = [row[smiles_column] for row in reader]
    else:
        with _open_text(path) as f:
            smiles = [line.split()[0] for line in f if line.strip()]
    return smiles[:limit] if limit is not None else smiles


_TOKENIZER = None


def _count_chunk(chunk: list[str]) -> tuple[Counter, int]:
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = FineMolTexGraphTokenizer()
    counts: Counter = Counter()
    skipped = 0
    for dec in _TOKENIZER.decompose_batch(chunk, ignore_errors=True):
        if dec is None:
            skipped += 1
        else:
            counts.update(dec.motifs)
    return counts, skipped


def count_motifs(smiles: list[str], num_proc: int | None = None, chunk_size: int = 1000, progress: bool = True):
    """Motif occurrence counts over ``smiles`` using ``num_proc`` processes; returns (counts, skipped)."""
    chunks = [smiles[i : i + chunk_size] for i in range(0, len(smiles), chunk_size)]
    counts: Counter = Counter()
    skipped = 0
    bar = tqdm(total=len(smiles), unit="mol", desc="Decomposing", disable=not progress)
    num_proc = num_proc or os.cpu_count() or 1
    if num_proc == 1:
        results = map(_count_chunk, chunks)
        pool = None
    else:
        pool = Pool(num_proc)
        results = pool.imap(_count_chunk, chunks)
    try:
        for chunk, (c, s) in zip(chunks, results):
            counts.update(c)
            skipped += s
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return counts, skipped


def main(args=None) -> MotifVocab:
    (opts,) = HfArgumentParser(BuildVocabArguments).parse_args_into_dataclasses(args=args)
    start = time.perf_counter()
    smiles = read_smiles(opts.input, opts.smiles_column, opts.limit)
    counts, skipped = count_motifs(smiles, opts.num_proc, opts.chunk_size)
    vocab = MotifVocab.from_counts(
        counts,
        min_frequency=opts.min_frequency,
        max_size=opts.max_size,
        target_min_frequency=opts.target_min_frequency,
        build={"source": os.path.basename(opts.input), "num_molecules": len(smiles), "skipped_molecules": skipped},
    )
    Path(opts.output).parent.mkdir(parents=True, exist_ok=True)
    vocab.save(opts.output)
    elapsed = time.perf_counter() - start
    print(
        f"{len(smiles):,} molecules ({skipped:,} unparsable, skipped) -> {sum(counts.values()):,} motifs, "
        f"{len(counts):,} distinct; kept {len(vocab.motifs):,}, {vocab.num_targets:,} prediction targets; "
        f"wrote {opts.output} (sha256 {vocab.checksum[:12]}…) in {elapsed:.1f}s"
    )
    return vocab


if __name__ == "__main__":
    main()
