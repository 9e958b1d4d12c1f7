#!/usr/bin/env python
"""Pre-training speed through the real path (examples/pretrain.py: Arrow cache, collator, length-grouped batches,
Trainer): pairs/s and the share of step time spent waiting on the data loader. Prints numbers; no assertions.

    python benchmarks/bench_pretrain_speed.py                       # the embedded default (small + MiniLM, CPU)
    python benchmarks/bench_pretrain_speed.py --preset paper --bf16 --batch-sizes 64 128 256   # on a CUDA device

CPU (default): the README's main job (ChEBI-20 sample, `small` preset, MiniLM weights), `--warmup` + `--steps`
optimizer steps. Paper path: ChEBI-20 validation pairs from ../shared/data/chebi20/validation.txt, the SciBERT-sized
`paper` config with random weights and the SciBERT tokenizer (../shared/data/scibert_scivocab_uncased), one run per
batch size; reports pairs/s and torch.cuda.max_memory_allocated.

Timing: wall time between consecutive `on_step_end` events (CUDA synchronised) after the warm-up steps; data wait:
time inside the Trainer's `next(dataloader)` (`FineMolTexTrainer.get_batch_samples`) in the same window.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

import pretrain  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


class StepTimer(TrainerCallback):
    def __init__(self, warmup: int):
        self.warmup = warmup
        self.trainer = None
        self.marks = []  # (step, wall time, data-wait seconds so far)

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.marks.append((state.global_step, time.perf_counter(), self.trainer.data_wait_seconds if self.trainer else 0.0))

    def result(self, batch_size: int) -> dict:
        marks = [m for m in self.marks if m[0] >= self.warmup]
        if len(marks) < 2:
            return {}
        steps = marks[-1][0] - marks[0][0]
        seconds = marks[-1][1] - marks[0][1]
        wait = marks[-1][2] - marks[0][2]
        return {"steps": steps, "seconds_per_step": seconds / steps, "pairs_per_second": steps * batch_size / seconds,
                "data_wait_share": wait / seconds}


def run(args_list: list[str], warmup: int, batch_size: int) -> dict:
    timer = StepTimer(warmup)
    original = pretrain.FineMolTexTrainer.__init__

    def init(self, *a, **k):  # capture the trainer for the data-wait counter
        original(self, *a, **k)
        timer.trainer = self

    pretrain.FineMolTexTrainer.__init__ = init
    try:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        summary = pretrain.main(args_list, callbacks=[timer])
        out = timer.result(batch_size)
        out["wall_seconds"] = time.perf_counter() - start
        out["train_pairs"] = summary["train_pairs"]
        if torch.cuda.is_available():
            out["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return out
    finally:
        pretrain.FineMolTexTrainer.__init__ = original


def random_scibert(folder: Path) -> Path:
    """SciBERT's tokenizer + architecture with random weights, as a loadable checkpoint folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    source = SHARED / "scibert_scivocab_uncased"
    if not (source / "vocab.txt").is_file():
        raise FileNotFoundError(f"SciBERT tokenizer not found in {source} (vocab.txt + tokenizer_config.json).")
    tokenizer = AutoTokenizer.from_pretrained(source)
    from modeling_finemoltex.configuration_finemoltex import _SCIBERT_TEXT_CONFIG

    config = BertConfig(**{k: v for k, v in _SCIBERT_TEXT_CONFIG.items() if k != "model_type"})
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", choices=["small", "paper", "tiny"])
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 5 on CUDA, 2 on CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 6 on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    opts = parser.parse_args()
    cuda = torch.cuda.is_available()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    warmup = opts.warmup if opts.warmup is not None else (5 if cuda else 2)
    steps = opts.steps if opts.steps is not None else (20 if cuda else 6)
    batch_sizes = opts.batch_sizes or ([64, 128, 256] if opts.preset == "paper" else [16])
    tmp = Path(tempfile.mkdtemp(prefix="finemoltex_bench_"))
    common = ["--max_steps", str(warmup + steps), "--save_strategy", "no", "--disable_tqdm", "true",
              "--validation_split_percentage", "0", "--logging_steps", "1000", "--cache_dir", str(tmp / "cache"),
              "--model_preset", opts.preset]
    if opts.bf16:
        common += ["--bf16", "true"]
    if not cuda:
        common += ["--use_cpu", "true", "--dataloader_pin_memory", "false"]
    if opts.preset == "paper":
        data = SHARED / "chebi20" / "validation.txt"
        common += ["--train_file", str(data), "--text_model_name_or_path", str(random_scibert(tmp / "scibert_random"))]
    print(f"device: {torch.cuda.get_device_name() if cuda else f'CPU, {torch.get_num_threads()} threads'}; "
          f"preset {opts.preset}; bf16 {opts.bf16}; {warmup} warm-up + {steps} timed steps; torch {torch.__version__}")
    print(f"{'batch':>6} {'s/step':>8} {'pairs/s':>8} {'data wait':>10} {'peak GiB':>9} {'wall s':>7}")
    for batch in batch_sizes:
        args = common + ["--per_device_train_batch_size", str(batch), "--output_dir", str(tmp / f"run{batch}")]
        try:
            r = run(args, warmup, batch)
        except torch.cuda.OutOfMemoryError:
            print(f"{batch:>6} out of memory")
            torch.cuda.empty_cache()
            continue
        if not r:
            print(f"{batch:>6} (not enough steps: the training split holds fewer than {warmup + steps} batches)")
            continue
        mem = f"{r['max_memory_allocated_gib']:.2f}" if "max_memory_allocated_gib" in r else "-"
        print(f"{batch:>6} {r['seconds_per_step']:>8.3f} {r['pairs_per_second']:>8.1f} "
              f"{100 * r['data_wait_share']:>9.1f}% {mem:>9} {r['wall_seconds']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
