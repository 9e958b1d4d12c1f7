#!/usr/bin/env python
# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""MoleculeNet property-prediction benchmark: BBBP, BACE, ClinTox; scaffold split (Hu et al. 2020); 3 seeds.

Rows (all with the same GIN, the `small` preset's 5 x 300, unless --gnn_hidden_size says otherwise):

- ``scratch``: GIN from random weights;
- ``attrmask``: GIN initialised by attribute masking (examples/pretrain_graph.py on the ZINC subset; --graph_model, or
  --graph_pretrain_minutes of it here);
- ``full`` / ``full_cls``: FineMolTex pre-trained from that GIN (examples/pretrain.py --graph_model_name_or_path on the
  ChEBI-20 pairs; --pretrained, or --pretrain_minutes of it here), full fine-tuning on the mean of the GIN atom
  states (``atom_mean``, MoleculeSTM's protocol) or on the motif-stream [CLS] (``graph_cls``, the authors');
- ``lora``: the same checkpoint, LoRA adapters (peft) + head;
- ``rf``: ECFP4 (2048 bits) + random forest (scikit-learn, 500 trees, class_weight balanced, per task).

Prints one table: test ROC-AUC (%) at the best-validation epoch, mean ± std over seeds (the split is fixed; seeds change
the initialisation / forest), the trainable-parameter share, time per seed and peak memory per row.

    python benchmarks/bench_property.py                                     # everything, CPU budget (see --help)
    python benchmarks/bench_property.py --graph_model runs/gin --pretrained runs/fmt --epochs 100   # given checkpoints

scikit-learn is only needed for the ``rf`` row (``pip install scikit-learn``, or the ``bench`` extra); without it the
row is skipped with a message. Each neural row runs ``examples/finetune_property.py`` in its own process, so the peak
resident memory is that run's (on a GPU: the peak allocated GPU memory). The CPU budget (minutes of graph and
molecule-text pre-training, 10 epochs instead of the paper's 100) measures the pipeline more than the method: the
authors start from GraphMVP's GIN and pre-train on 300K PubChemSTM pairs. No assertions: this prints numbers.
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
ROWS = {
    "scratch": "(a) GIN from scratch",
    "attrmask": "(b) attribute-masking GIN",
    "full": "(c) FineMolTex from (b), full FT, atom_mean",
    "full_cls": "(c) FineMolTex from (b), full FT, graph_cls",
    "lora": "(d) FineMolTex from (b), LoRA, atom_mean",
    "rf": "ECFP4 + random forest",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=str(DATA / "moleculenet"))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--preset", default="small", help="FineMolTexConfig preset of every neural row.")
    p.add_argument("--gnn_hidden_size", type=int, default=None, help="GIN width of every row (default: the preset's).")
    p.add_argument("--graph_model", default=None, help="A GIN pre-trained by attribute masking (row attrmask, and the "
                   "start of --pretrain_minutes): an examples/pretrain_graph.py output folder.")
    p.add_argument("--graph_pretrain_minutes", type=float, default=12.0,
                   help="Without --graph_model: minutes of examples/pretrain_graph.py on the ZINC subset.")
    p.add_argument("--pretrained", default=None, help="A FineMolTex folder for rows full, full_cls, lora.")
    p.add_argument("--pretrain_minutes", type=float, default=10.0,
                   help="Without --pretrained: minutes of examples/pretrain.py on the ChEBI-20 pairs, from the GIN.")
    p.add_argument("--motif_stream_learning_rate", type=float, default=None,
                   help="Row full_cls: a learning rate of its own for the motif stream (default --learning_rate).")
    p.add_argument("--lora_r", type=int, default=8)
    p.add_argument("--lora_learning_rate", type=float, default=3e-3)
    p.add_argument("--rf_trees", type=int, default=500)
    p.add_argument("--output_dir", default="runs/bench_property")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
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


# ------------------------------------------------------------------------------------------------ pre-training
def run_example(script: str, arguments: list[str], log: Path) -> dict:
    """examples/<script> in its own process (its output in ``log``) -> {"wall_s", "peak_rss_mb"}; raises on failure."""
    import resource

    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, str(REPO / "examples" / script), *arguments], stdout=handle,
                              stderr=subprocess.STDOUT, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {done.returncode}); see {log}")
    return {"wall_s": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def graph_pretraining(out: Path, minutes: float, args) -> dict:
    """Attribute masking on the shipped ZINC subset for ``minutes`` (examples/pretrain_graph.py's bare data).
    ``--max_steps`` is given: without it the bare run stops at its own 100 steps (about two minutes here)."""
    arguments = ["--output_dir", str(out), "--model_preset", args.preset, "--max_train_minutes", str(minutes),
                 "--max_steps", str(10**9), "--disable_tqdm", "true", "--logging_steps", "50"]
    if args.gnn_hidden_size:
        arguments += ["--config_overrides", json.dumps({"gnn_hidden_size": args.gnn_hidden_size})]
    return {**run_example("pretrain_graph.py", arguments, out.with_suffix(".log")),
            **json.loads((out / "graph_pretraining.json").read_text())}


def text_pretraining(out: Path, graph_model: str, minutes: float, args) -> dict:
    """FineMolTex pre-training on the ChEBI-20 validation pairs (10% held out) from ``graph_model``'s GIN, for
    ``minutes``: the epoch count is only an upper bound, and the time budget paces the warm-up and decay."""
    arguments = ["--train_file", str(DATA / "chebi20" / "validation.txt"), "--output_dir", str(out),
                 "--model_preset", args.preset, "--graph_model_name_or_path", graph_model, "--max_train_minutes",
                 str(minutes), "--num_train_epochs", "1000", "--per_device_train_batch_size", "32",
                 "--disable_tqdm", "true", "--logging_steps", "50"]
    if args.gnn_hidden_size:
        arguments += ["--config_overrides", json.dumps({"gnn_hidden_size": args.gnn_hidden_size})]
    return run_example("pretrain.py", arguments, out.with_suffix(".log"))


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
    graph_model, pretrained = args.graph_model, args.pretrained
    if {"attrmask", "full", "full_cls", "lora"} & set(args.rows) and not graph_model and not (
            pretrained and "attrmask" not in args.rows):
        graph_model = str(out / "graph_pretrained")
        print(f"Graph pre-training by attribute masking, {args.graph_pretrain_minutes:g} minutes -> {graph_model}", flush=True)
        report["graph_pretraining"] = graph_pretraining(Path(graph_model), args.graph_pretrain_minutes, args)
    if {"full", "full_cls", "lora"} & set(args.rows) and not pretrained:
        pretrained = str(out / "pretrained")
        print(f"FineMolTex pre-training from that GIN, {args.pretrain_minutes:g} minutes -> {pretrained}", flush=True)
        report["text_pretraining"] = text_pretraining(Path(pretrained), graph_model, args.pretrain_minutes, args)
    scratch = ["--from_scratch_preset", args.preset, "--learning_rate", str(args.learning_rate)]
    if args.gnn_hidden_size:
        scratch += ["--config_overrides", json.dumps({"gnn_hidden_size": args.gnn_hidden_size})]
    from_checkpoint = ["--model_name_or_path", str(pretrained)]
    rows = {
        "scratch": scratch,
        "attrmask": [*scratch, "--graph_model_name_or_path", str(graph_model)],
        "full": [*from_checkpoint, "--learning_rate", str(args.learning_rate)],
        "full_cls": [*from_checkpoint, "--learning_rate", str(args.learning_rate), "--property_pooling", "graph_cls",
                     *(["--motif_stream_learning_rate", str(args.motif_stream_learning_rate)]
                       if args.motif_stream_learning_rate is not None else [])],
        "lora": [*from_checkpoint, "--lora", "--lora_r", str(args.lora_r), "--learning_rate", str(args.lora_learning_rate)],
    }
    for name in args.datasets:
        data_file = str(Path(args.data_dir) / DATASETS.get(name, name))
        for row in args.rows:
            start = time.perf_counter()
            if row == "rf":
                result = ecfp4_random_forest(data_file, args.seeds, args.rf_trees)
            else:
                result = finetune(data_file, out / name / row, rows[row], args)
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
    labels = ROWS
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
            elif row == "rf":
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
