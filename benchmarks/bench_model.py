"""Benchmark FineMolTexForPreTraining: forward+backward time per batch and peak memory, plus parameter counts.

Synthetic batches of realistic size (defaults: ~24 atoms, ~13 motifs, ~100 text tokens per pair).

    python benchmarks/bench_model.py                                   # tiny + small on CPU, batch 16 and 32
    python benchmarks/bench_model.py --preset paper --device cuda --bf16 --batch-sizes 32 64

Time: median of `--steps` forward+backward passes after `--warmup` passes (no optimizer step).
Memory: CUDA `max_memory_allocated` (peak during the timed steps); CPU: growth of the process's max RSS
(`resource.getrusage`), a coarse upper bound that includes allocator caching, 0 if an earlier run peaked higher.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from modeling_finemoltex.configuration_finemoltex import FineMolTexConfig  # noqa: E402
from modeling_finemoltex.modeling_finemoltex import FineMolTexForPreTraining  # noqa: E402

REFERENCE_PARAMETERS = 191.5e6  # the authors' model as measured (SciBERT + streams + heads)


def synthetic_batch(config: FineMolTexConfig, batch_size: int, atoms: int, motifs: int, tokens: int, seed: int = 0):
    """Molecules: a chain of ~`atoms` atoms with a ring closure every 6 atoms, cut into ~`motifs` contiguous motifs
    (one junction atom shared between the first two); texts of ~`tokens` random word ids."""
    g = torch.Generator().manual_seed(seed)
    atom_rows, edges, bonds, graph_batch, members = [], [], [], [], []
    slots = motifs + 3
    motif_ids = torch.zeros(batch_size, slots, dtype=torch.long)
    motif_attention = torch.zeros_like(motif_ids)
    motif_positions = torch.zeros_like(motif_ids)
    offset = 0
    for b in range(batch_size):
        n = max(2, atoms + int(torch.randint(-4, 5, (1,), generator=g)))
        k = max(1, min(n, motifs + int(torch.randint(-2, 3, (1,), generator=g))))
        atom_rows.append(torch.stack([torch.randint(0, s, (n,), generator=g) for s in config.atom_feature_sizes], 1))
        pairs = [(i, i + 1) for i in range(n - 1)] + [(i, i - 5) for i in range(5, n, 6)]
        for i, j in pairs:
            feats = torch.stack([torch.randint(0, s, (), generator=g) for s in config.bond_feature_sizes])
            edges += [(offset + i, offset + j), (offset + j, offset + i)]
            bonds += [feats, feats]
        graph_batch.append(torch.full((n,), b))
        cuts = torch.linspace(0, n, k + 1).round().long().tolist()
        motif_ids[b, 0], motif_attention[b, 0] = 3, 1
        for m in range(1, k + 1):
            motif_ids[b, m] = 4 + int(torch.randint(0, config.num_motif_targets, (1,), generator=g))
            motif_attention[b, m], motif_positions[b, m] = 1, m
            members += [(offset + a, b * slots + m) for a in range(cuts[m - 1], cuts[m])]
        if k > 1:
            members.append((offset + cuts[1] - 1, b * slots + 2))
        offset += n
    lengths = [max(3, tokens + int(torch.randint(-20, 21, (1,), generator=g))) for _ in range(batch_size)]
    input_ids = torch.zeros(batch_size, max(lengths), dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    vocab = config.text_config.vocab_size
    for b, length in enumerate(lengths):
        input_ids[b, :length] = torch.randint(1000 % vocab, vocab, (length,), generator=g)
        input_ids[b, 0], input_ids[b, length - 1] = 101, 102
        attention_mask[b, :length] = 1
    return {
        "graph_atom_features": torch.cat(atom_rows),
        "graph_edge_index": torch.tensor(edges).t().contiguous(),
        "graph_edge_features": torch.stack(bonds),
        "graph_batch": torch.cat(graph_batch),
        "motif_input_ids": motif_ids,
        "motif_attention_mask": motif_attention,
        "motif_position_ids": motif_positions,
        "motif_membership": torch.tensor(members).t().contiguous(),
        "input_ids": input_ids,
        "attention_mask": attention_mask,
    }


def parameter_counts(preset: str) -> dict[str, int]:
    """Parameters per part, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = FineMolTexForPreTraining(FineMolTexConfig.from_preset(preset))
    base = model.finemoltex
    parts = {
        "graph (GIN + motif embeddings)": [base.graph_encoder, base.motif_embeddings],
        "text encoder": [base.text_model],
        "text stream": [base.text_input_projection, base.fusion.text_layers],
        "motif stream": [base.fusion.motif_layers],
        "co-attention": [base.fusion.coattention_layers],
        "projections": [base.graph_projection, base.text_projection],
        "heads (motif + MLM)": [model.motif_head, model.mlm_head],
    }
    counts = {name: sum(p.numel() for m in modules for p in m.parameters()) for name, modules in parts.items()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def bench(preset: str, batch_size: int, device: str, bf16: bool, steps: int, warmup: int, args) -> dict:
    torch.manual_seed(0)
    config = FineMolTexConfig.from_preset(preset, check_inputs=args.check_inputs)
    model = FineMolTexForPreTraining(config).to(device).train()
    if args.checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
    batch = {k: v.to(device) for k, v in synthetic_batch(config, batch_size, args.atoms, args.motifs, args.tokens).items()}
    is_cuda = device.startswith("cuda")

    def step():
        with torch.autocast(device_type="cuda" if is_cuda else "cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(**batch)
        out.loss.backward()
        model.zero_grad(set_to_none=True)
        return out

    for _ in range(warmup):
        step()
    if is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = max_rss_bytes()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        out = step()
        if is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated() if is_cuda else max(0, max_rss_bytes() - rss_before)
    return {
        "preset": preset,
        "batch": batch_size,
        "atoms": batch["graph_atom_features"].size(0),
        "tokens": tuple(batch["input_ids"].shape),
        "median_s": statistics.median(times),
        "memory_mib": memory / 2**20,
        "loss": out.loss.detach().item(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", nargs="+", default=["tiny", "small"], choices=FineMolTexConfig.PRESETS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 32])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--checkpointing", action="store_true", help="activation (gradient) checkpointing")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--atoms", type=int, default=24)
    parser.add_argument("--motifs", type=int, default=13)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-check-inputs", dest="check_inputs", action="store_false")
    parser.add_argument("--params-only", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, device {args.device}, bf16 {args.bf16}, threads {torch.get_num_threads()}")
    print(f"\nparameters (reference FineMolTex: {REFERENCE_PARAMETERS / 1e6:.1f}M)")
    for preset in FineMolTexConfig.PRESETS:
        counts = parameter_counts(preset)
        detail = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in counts.items() if k != "total")
        print(f"  {preset:6s} total {counts['total'] / 1e6:8.2f}M  ({detail})")
    if args.params_only:
        return
    print(f"\nforward+backward (median of {args.steps} after {args.warmup} warm-up), {args.atoms} atoms / "
          f"{args.motifs} motifs / {args.tokens} tokens per pair on average")
    print(f"  {'preset':6s} {'batch':>5s} {'atoms':>6s} {'text':>10s} {'s/batch':>9s} {'pairs/s':>8s} {'peak MiB':>9s}")
    for preset in args.preset:
        for batch_size in args.batch_sizes:
            r = bench(preset, batch_size, args.device, args.bf16, args.steps, args.warmup, args)
            print(f"  {r['preset']:6s} {r['batch']:5d} {r['atoms']:6d} {str(r['tokens']):>10s} {r['median_s']:9.3f} "
                  f"{r['batch'] / r['median_s']:8.1f} {r['memory_mib']:9.1f}")


if __name__ == "__main__":
    main()
