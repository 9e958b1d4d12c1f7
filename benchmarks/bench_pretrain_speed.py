#!/usr/bin/env python
"""Pre-training speed through the real path (examples/pretrain.py: Arrow cache, collator, length-grouped batches,
Trainer): pairs/s, peak memory and the share of step time spent waiting on the data loader. Prints numbers; no
assertions.

    python benchmarks/bench_pretrain_speed.py                       # CPU: the three text-encoder paths, batch 32
    python benchmarks/bench_pretrain_speed.py --main-job            # ... and the README's main job as a user runs it
    python benchmarks/bench_pretrain_speed.py --preset paper --bf16 --batch-sizes 64 128 256   # on a CUDA device

CPU (default): the `small` preset with the MiniLM weights on the ChEBI-20 sample, `--threads` (2) torch threads, one
run per text-encoder path, each in its own process (so each peak RSS is its own):

- ``trained``: the text encoder trains (two encoder passes per step: clean and masked text);
- ``locked``: the encoder is frozen but still runs every step (``--cache_text_states false``);
- ``cached``: the frozen encoder's token states are computed once (included in "setup s") for the contrastive pass;
  the encoder still runs once per step, without gradient, on the masked text (``hide_masked_words``, the default);
- ``cached-leaky``: the same with ``hide_masked_words=false``: the encoder never runs again (masked words are masked
  at the text-stream input, and leak through their neighbours' cached states).

Paper path: ChEBI-20 validation pairs from ../shared/data/chebi20/validation.txt, the SciBERT-sized `paper` config
with random weights and the SciBERT tokenizer (../shared/data/scibert_scivocab_uncased), the encoder trained (the
paper's setting), one run per batch size; reports pairs/s and torch.cuda.max_memory_allocated.

Timing: wall time between consecutive `on_step_end` events (CUDA synchronised) after the warm-up steps; data wait:
time inside the Trainer's `next(dataloader)` (`FineMolTexTrainer.get_batch_samples`) in the same window.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
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
# extra pretrain.py flags of each text-encoder path
VARIANTS = {
    "trained": ["--freeze_text_model", "false"],
    "locked": ["--freeze_text_model", "true", "--cache_text_states", "false"],
    "cached": ["--freeze_text_model", "true", "--cache_text_states", "true"],
    "cached-leaky": ["--freeze_text_model", "true", "--cache_text_states", "true",
                     "--config_overrides", '{"hide_masked_words": false}'],
}
GPU_COMMAND = ("python benchmarks/bench_pretrain_speed.py --preset paper --bf16 --batch-sizes 64 128 256   "
               "# on a CUDA machine (pre-tokenise here first if it lacks rdkit/datasets)")


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


def peak_rss_gib(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20  # kilobytes on Linux


def child(opts) -> None:
    """One measured run in this process; prints one RESULT line of JSON."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    args = json.loads(opts.child)
    r = run(args["argv"], args["warmup"], args["batch"])
    r["peak_rss_gib"] = peak_rss_gib()
    print("RESULT " + json.dumps(r), flush=True)


def run_in_subprocess(argv: list[str], warmup: int, batch: int, threads: int | None) -> dict:
    payload = json.dumps({"argv": argv, "warmup": warmup, "batch": batch})
    cmd = [sys.executable, __file__, "--child", payload] + (["--threads", str(threads)] if threads else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads or os.cpu_count())}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"benchmark run failed ({done.returncode}):\n{done.stderr[-3000:]}")


def main_job(threads: int | None) -> None:
    """The README's main job, exactly as a user types it (fresh output and cache folders): wall time and peak RSS."""
    tmp = Path(tempfile.mkdtemp(prefix="finemoltex_mainjob_"))
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp / "datasets_cache")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "examples/accelerate_configs/default.yaml",
              "examples/pretrain.py", "--output_dir", str(tmp / "out")]
    # a fresh wrapper process: its children's peak RSS is the main job's alone (not the runs measured before)
    wrapper = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
               "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *launch], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        print(f"main job failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return
    out = done.stdout.splitlines()
    peak = next(int(line.split()[1]) for line in out if line.startswith("PEAK_RSS_KB")) / 2**20
    lines = [line for line in out if line.strip().startswith(("FineMolTex pre-training", "speed:", "validation:"))]
    print(f"\nREADME main job (`accelerate launch --config_file examples/accelerate_configs/default.yaml "
          f"examples/pretrain.py`, fresh caches): {wall:.0f} s wall, "
          f"peak RSS {peak:.2f} GiB")
    for line in lines:
        print("  " + line.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", choices=["small", "paper", "tiny"])
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default: 32 (CPU), 64 128 256 (paper)")
    parser.add_argument("--variants", nargs="+", default=None, choices=sorted(VARIANTS),
                        help="text-encoder paths (default: all three on a CPU, trained for paper)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 5 on CUDA, 2 on CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 10 on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 2 on a CPU)")
    parser.add_argument("--main-job", action="store_true", help="also run the README's main job and report its peak RSS")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        return child(opts)
    cuda = torch.cuda.is_available()
    threads = opts.threads or (None if cuda else 2)
    warmup = opts.warmup if opts.warmup is not None else (5 if cuda else 2)
    steps = opts.steps if opts.steps is not None else (20 if cuda else 10)
    batch_sizes = opts.batch_sizes or ([64, 128, 256] if opts.preset == "paper" else [32])
    variants = opts.variants or (["trained"] if cuda or opts.preset == "paper" else list(VARIANTS))
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
    print(f"device: {torch.cuda.get_device_name() if cuda else f'CPU, {threads} threads'}; preset {opts.preset}; "
          f"bf16 {opts.bf16}; {warmup} warm-up + {steps} timed steps; torch {torch.__version__}")
    print(f"{'text encoder':>12} {'batch':>6} {'s/step':>8} {'pairs/s':>8} {'data wait':>10} {'peak RSS GiB':>13} "
          f"{'GPU GiB':>8} {'setup s':>8}")
    speeds: dict[tuple[str, int], float] = {}
    for variant in variants:
        for batch in batch_sizes:
            args = common + VARIANTS[variant] + ["--per_device_train_batch_size", str(batch),
                                                 "--output_dir", str(tmp / f"run_{variant}_{batch}")]
            try:
                r = run_in_subprocess(args, warmup, batch, threads)
            except RuntimeError as err:
                print(f"{variant:>12} {batch:>6} failed: {'out of memory' if 'OutOfMemory' in str(err) else err}")
                continue
            if "pairs_per_second" not in r:
                print(f"{variant:>12} {batch:>6} (not enough steps: fewer than {warmup + steps} batches in the data)")
                continue
            speeds[variant, batch] = r["pairs_per_second"]
            mem = f"{r['max_memory_allocated_gib']:.2f}" if "max_memory_allocated_gib" in r else "-"
            setup = r["wall_seconds"] - r["seconds_per_step"] * (warmup + steps)
            print(f"{variant:>12} {batch:>6} {r['seconds_per_step']:>8.3f} {r['pairs_per_second']:>8.1f} "
                  f"{100 * r['data_wait_share']:>9.1f}% {r['peak_rss_gib']:>13.2f} {mem:>8} {setup:>8.0f}", flush=True)
    for batch in batch_sizes:
        if ("cached", batch) in speeds:
            ratios = [f"{speeds['cached', batch] / speeds[v, batch]:.2f}x {v}" for v in ("trained", "locked", "cached-leaky")
                      if (v, batch) in speeds]
            if ratios:
                print(f"cached vs (batch {batch}): " + ", ".join(ratios))
    if opts.main_job:
        main_job(threads)
    if not cuda:
        print(f"\nGPU: {GPU_COMMAND}")


if __name__ == "__main__":
    main()
