#!/usr/bin/env python
# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Predict properties of new molecules with a fine-tuned FineMolTex property model.

    python examples/predict_property.py --model_dir runs/bbbp/seed_0/model --smiles "CCO" "c1ccccc1O" "C1CC("
    python examples/predict_property.py --model_dir runs/bbbp/seed_0/model --input_file new.csv \\
        --smiles_column smiles --output_file predictions.jsonl

`model_dir`: a folder saved by ``examples/finetune_property.py --save_model`` (a full model, or a LoRA adapter with
the property config; the adapter goes onto the base checkpoint it records, or ``--base_model``). Output: one JSON
line per input molecule, in input order: ``index``, ``smiles`` and one probability (classification) or value
(regression, original units) per task, or ``error`` for a SMILES that could not be read — it never fails the batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import modeling_finemoltex  # noqa: F401
from modeling_finemoltex.arguments_finemoltex import HelpFormatter, run_script
from modeling_finemoltex.property_finemoltex import load_graph_tokenizer, load_property_model, predict, read_table


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model_dir", required=True, help="Model folder saved by finetune_property.py --save_model.")
    parser.add_argument("--base_model", default=None, help="Base checkpoint of a LoRA adapter (default: recorded).")
    parser.add_argument("--smiles", nargs="*", default=None, help="SMILES to predict (or --input_file).")
    parser.add_argument("--input_file", default=None, help="CSV/TSV (optionally .gz) or Parquet.")
    parser.add_argument("--smiles_column", default="smiles", help="SMILES column of --input_file.")
    parser.add_argument("--output_file", default=None, help="JSON lines (default: stdout).")
    parser.add_argument("--batch_size", type=int, default=64, help="Molecules per forward pass.")
    args = parser.parse_args(argv)
    if bool(args.smiles) == bool(args.input_file):
        parser.error("give exactly one of --smiles and --input_file")
    smiles = args.smiles
    if args.input_file:
        header, columns = read_table(args.input_file)
        if args.smiles_column not in header:
            raise ValueError(f"{args.input_file}: no SMILES column named {args.smiles_column!r}; columns found: {header}")
        smiles = columns[args.smiles_column]
    model = load_property_model(args.model_dir, args.base_model)
    tokenizer = load_graph_tokenizer(args.model_dir)
    records = predict(model, smiles, tokenizer, batch_size=args.batch_size).to_records(smiles)
    lines = "\n".join(json.dumps(r) for r in records) + "\n"
    if args.output_file:
        Path(args.output_file).write_text(lines)
    else:
        sys.stdout.write(lines)
    invalid = sum("error" in r for r in records)
    print(f"{len(records)} molecules, {invalid} invalid (reported by index)", file=sys.stderr)
    return records


if __name__ == "__main__":
    run_script(main)
