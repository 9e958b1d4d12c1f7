#!/usr/bin/env python
"""Tokenise the shipped ChEBI-20 sample and print a summary (motifs, vocabulary, speed).

    python examples/tokenize_sample.py [--input examples/data/chebi20_sample.tsv] [--output_vocab motif_vocab.json]
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


from modeling_finemoltex import FineMolTexGraphTokenizer, MotifVocab
from modeling_finemoltex.arguments_finemoltex import parse_script_arguments

HERE = Path(__file__).resolve().parent


@dataclass
class TokenizeArguments:
    input: str = field(default=str(HERE / "data" / "chebi20_sample.tsv"), metadata={"help": "ChEBI-20-style TSV."})
    output_vocab: str | None = field(default=None, metadata={"help": "Write the motif vocabulary JSON here."})
    target_min_frequency: int = field(default=10, metadata={"help": "Motifs seen this often become prediction targets."})


def main(args=None) -> dict:
    (opts,) = parse_script_arguments(TokenizeArguments, args, description=__doc__)
    with open(opts.input, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    smiles = [r["SMILES"] for r in rows]
    tokenizer = FineMolTexGraphTokenizer()
    start = time.perf_counter()
    decompositions = [tokenizer.decompose(s) for s in smiles]
    elapsed = time.perf_counter() - start
    counts = Counter(m for d in decompositions for m in d.motifs)
    methods = Counter(d.method for d in decompositions)
    vocab = MotifVocab.from_counts(counts, target_min_frequency=opts.target_min_frequency, build={"source": opts.input})
    if opts.output_vocab:
        vocab.save(opts.output_vocab)
    atoms = sum(len(d.atom_motifs) for d in decompositions)
    summary = {
        "molecules": len(smiles),
        "atoms_per_molecule": atoms / len(smiles),
        "motifs_per_molecule": sum(counts.values()) / len(smiles),
        "distinct_motifs": len(counts),
        "prediction_targets": vocab.num_targets,
        "methods": dict(methods),
        "molecules_per_second": len(smiles) / elapsed,
    }
    print(f"{summary['molecules']} molecules from {opts.input}")
    print(f"  {summary['atoms_per_molecule']:.1f} heavy atoms and {summary['motifs_per_molecule']:.2f} motifs per molecule")
    print(f"  decomposition: {', '.join(f'{k} {v}' for k, v in methods.most_common())}")
    print(f"  {len(counts)} distinct motifs; {vocab.num_targets} seen >= {opts.target_min_frequency} times (prediction targets)")
    print("  most frequent: " + ", ".join(f"{m} ({c})" for m, c in counts.most_common(8)))
    print(f"  {summary['molecules_per_second']:.0f} molecules/s (decomposition, one process)")
    example = rows[0]
    d = decompositions[0]
    print(f"\nCID {example['CID']}: {example['SMILES']}\n  motifs (BFS order): {d.motifs}\n  tree edges: {d.edges}")
    if opts.output_vocab:
        print(f"\nwrote {opts.output_vocab} ({len(vocab)} tokens, sha256 {vocab.checksum[:12]}…)")
    return summary


if __name__ == "__main__":
    main()
