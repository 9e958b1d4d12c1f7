# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Held-out evaluation of a pre-trained model: cross-modal dependence of the masked heads, bootstrap intervals.

**Cross-modal dependence** (`cross_modal_dependence`). The masked-motif head reads the fused pass, where the motif
stream attends over the paired text; the masked-word head reads the text stream, which attends over the motifs.
If the fine objectives taught the model to use the other modality, masked-motif accuracy should be higher with
the molecule's own text than with another molecule's text, and masked-word accuracy higher with the text's own
molecule than with another. Each held-out batch is run twice with the *same* masks and the same masked inputs:
once paired, once with the molecules permuted by a fixed derangement (`fixed_derangement`: no pair keeps its
partner), so the only difference is the partner. That one shuffled pass gives both conditions: molecule
``pi[j]`` with text ``j`` is "a molecule with a shuffled text" for the motif head and "a text with a shuffled
molecule" for the word head. The gaps (paired - shuffled) come with paired bootstrap intervals over examples.

**Bootstrap** (`paired_bootstrap_difference`): resample examples with replacement (fixed seed), recompute the
difference of two per-example statistics on the same resample, percentile interval.

RDKit is not imported here (the processor's graph tokenizer does the chemistry).
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import numpy as np
import torch

from .retrieval_finemoltex import _inference, _resolve_device, _to_device
from .tokenization_finemoltex import GRAPH_COLUMNS


# ================================================================================================ bootstrap
def paired_bootstrap_difference(
    values_a,
    values_b,
    weights=None,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Difference of two paired per-example statistics with a percentile bootstrap interval.

    Args:
        values_a / values_b: (N,) per-example values of the two conditions on the same N examples (e.g.
            reciprocal ranks, or counts of correct predictions).
        weights: optional (N,) per-example denominators (e.g. counts of masked positions): the statistic is then
            the ratio ``sum(values) / sum(weights)`` (micro accuracy), else the mean.
        num_resamples: bootstrap resamples R (each draws N examples with replacement, the same draw for both
            conditions); seed: the resampling RNG's seed (fixed: the same interval every call).

    Returns ``{"a", "b", "difference", "low", "high", "confidence", "num_examples", "num_resamples"}``: the
    statistic of each condition, their difference (a - b) and its interval. NaN where there are no examples
    (or the weights sum to 0).
    """
    a = np.asarray(values_a, dtype=np.float64).reshape(-1)
    b = np.asarray(values_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != a.shape:
        raise ValueError(f"weights must have one value per example ({a.size}), got {w.size}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = a.size
    out = {"confidence": confidence, "num_examples": int(n), "num_resamples": int(num_resamples)}

    def ratio(num, den):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    stat_a, stat_b = float(ratio(a.sum(), w.sum())), float(ratio(b.sum(), w.sum()))
    out.update(a=stat_a, b=stat_b, difference=stat_a - stat_b)
    if n == 0 or num_resamples < 1:
        out.update(low=math.nan, high=math.nan)
        return out
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(num_resamples, n))  # (R, N)
    den = w[index].sum(axis=1)
    diffs = ratio(a[index].sum(axis=1), den) - ratio(b[index].sum(axis=1), den)
    diffs = diffs[np.isfinite(diffs)]
    tail = (1 - confidence) / 2
    low, high = (np.quantile(diffs, [tail, 1 - tail]) if diffs.size else (math.nan, math.nan))
    out.update(low=float(low), high=float(high))
    return out


# ================================================================================================ shuffling
def fixed_derangement(num_items: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation ``pi`` Long (num_items,) with ``pi[i] != i`` for every i (num_items >= 2): one cycle
    through a random order ``s`` (``pi[s[k]] = s[k + 1]``), drawn from ``generator`` (seeded: the same every time)."""
    if num_items < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {num_items}")
    order = torch.randperm(num_items, generator=generator)
    pi = torch.empty(num_items, dtype=torch.long)
    pi[order] = order.roll(-1)
    return pi


def _chunks(num_items: int, batch_size: int) -> list[np.ndarray]:
    """Consecutive index chunks of at most ``batch_size`` and at least 2 items (near-equal sizes), so every chunk
    can be deranged."""
    if num_items < 2:
        raise ValueError(f"cross-modal dependence needs at least 2 pairs, got {num_items}")
    count = max(1, math.ceil(num_items / max(2, batch_size)))
    return np.array_split(np.arange(num_items), count)


# ================================================================================================ per-example counts
def _per_row_hits(mask: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask Bool (B, S), logits (num masked, C) and labels (num masked,) in row-major order of `mask` ->
    (correct Float (B,), masked Float (B,)): per row, how many masked positions were predicted right, and how many."""
    rows = mask.nonzero()[:, 0]
    size = mask.size(0)
    correct = (logits.argmax(dim=-1) == labels).float()
    return (
        torch.zeros(size, device=mask.device).index_add_(0, rows, correct),
        torch.zeros(size, device=mask.device).index_add_(0, rows, torch.ones_like(correct)),
    )


@contextlib.contextmanager
def _fine_branch_on(model):
    """A contrastive-only config (both masked weights 0) skips the fused pass; switch the weights on for the call
    (the heads are then untrained) and restore them after."""
    config = model.config
    saved = (config.masked_motif_weight, config.masked_lm_weight)
    if saved == (0, 0):
        config.masked_motif_weight = config.masked_lm_weight = 1.0
    try:
        yield saved != (0, 0)
    finally:
        config.masked_motif_weight, config.masked_lm_weight = saved


# ================================================================================================ cross-modal dependence
def cross_modal_dependence(
    model,
    processor,
    smiles: Sequence[str],
    texts: Sequence[str],
    batch_size: int = 32,
    mask_seed: int = 0,
    shuffle_seed: int = 0,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    bootstrap_seed: int = 0,
    device: str | torch.device | None = None,
    return_per_example: bool = False,
) -> dict:
    """Held-out masked-motif and masked-word accuracy with the paired partner vs a shuffled one.

    Args:
        model: a `FineMolTexForPreTraining` (eval mode for the call; a contrastive-only model runs its untrained
            fused pass, flagged by ``heads_trained`` False).
        processor: its `FineMolTexProcessor`; smiles / texts: the N held-out pairs (unparsable SMILES are dropped,
            listed in ``dropped_indices``).
        batch_size: pairs per forward pass; pairs are cut into consecutive chunks of at most this size (and at least
            2). Within each chunk the molecules are permuted by `fixed_derangement` (from ``shuffle_seed``).
        mask_seed: chunk c draws its masks with ``mask_seed + c`` in the paired pass; both conditions then run with
            those masks given, and the same seed for the masked words' random replacements.
        num_resamples / confidence / bootstrap_seed: the paired bootstrap over pairs (`paired_bootstrap_difference`).
        return_per_example: also return the per-pair counts (lists over the kept pairs).

    Returns a flat dict: ``masked_motif_accuracy/{paired,shuffled_text,gap,gap_low,gap_high}`` (per molecule: its
    own text vs another's), ``masked_word_accuracy/{paired,shuffled_molecule,gap,gap_low,gap_high}`` (per text: its
    own molecule vs another), ``num_pairs``, ``num_masked_motifs``, ``num_masked_words``, ``heads_trained``,
    ``dropped_indices``, ``confidence``, ``num_resamples``; with ``return_per_example`` also ``per_example``:
    ``motif_correct_paired``, ``motif_correct_shuffled``, ``motif_masked``, ``word_correct_paired``,
    ``word_correct_shuffled``, ``word_masked``, and ``shuffled_partner`` (index, among the kept pairs, of the
    molecule each text met in the shuffled pass; never its own).
    """
    smiles, texts = list(smiles), list(texts)
    if len(smiles) != len(texts):
        raise ValueError(f"Got {len(smiles)} SMILES but {len(texts)} texts; they must pair up.")
    columns = processor.preprocess({"smiles": smiles, "text": texts}, "smiles", "text", ignore_errors=True)
    kept = columns.pop("row_index")
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    text_keys = [k for k in columns if k not in GRAPH_COLUMNS]
    collate = processor.data_collator()
    device = _resolve_device(model, device)
    model.to(device)
    generator = torch.Generator().manual_seed(int(shuffle_seed))
    n = len(rows)
    counts = {name: torch.zeros(n) for name in (
        "motif_correct_paired", "motif_correct_shuffled", "motif_masked",
        "word_correct_paired", "word_correct_shuffled", "word_masked")}
    partner = torch.empty(n, dtype=torch.long)
    with _fine_branch_on(model) as heads_trained, _inference(model, device, bf16=False):
        for c, chunk in enumerate(_chunks(n, batch_size)):
            index = torch.as_tensor(chunk, dtype=torch.long)
            pi = fixed_derangement(len(chunk), generator)  # row r of the shuffled pass: molecule pi[r], text r
            paired_rows = [rows[i] for i in chunk]
            shuffled_rows = [
                {**paired_rows[int(p)], **{k: paired_rows[r][k] for k in text_keys}} for r, p in enumerate(pi)
            ]
            paired = _to_device(collate(paired_rows), device)
            shuffled = _to_device(collate(shuffled_rows), device)
            seed = int(mask_seed) + c
            drawn = model(**paired, mask_seed=seed, return_loss=False, return_dict=True)
            motif_mask, word_mask = drawn.motif_mask, drawn.word_mask
            same = model(**paired, motif_mask=motif_mask, word_mask=word_mask, mask_seed=seed, return_loss=False,
                         return_dict=True)
            other = model(**shuffled, motif_mask=motif_mask[pi.to(device)], word_mask=word_mask, mask_seed=seed,
                          return_loss=False, return_dict=True)
            motif_same, motif_count = _per_row_hits(motif_mask, same.masked_motif_logits, same.masked_motif_labels)
            motif_other, _ = _per_row_hits(other.motif_mask, other.masked_motif_logits, other.masked_motif_labels)
            word_same, word_count = _per_row_hits(word_mask, same.mlm_logits, same.mlm_labels)
            word_other, _ = _per_row_hits(word_mask, other.mlm_logits, other.mlm_labels)
            counts["motif_correct_paired"][index] = motif_same.cpu()
            counts["motif_masked"][index] = motif_count.cpu()
            counts["motif_correct_shuffled"][index[pi]] = motif_other.cpu()  # shuffled row r holds molecule pi[r]
            counts["word_correct_paired"][index] = word_same.cpu()
            counts["word_correct_shuffled"][index] = word_other.cpu()
            counts["word_masked"][index] = word_count.cpu()
            partner[index] = index[pi]

    motif = paired_bootstrap_difference(counts["motif_correct_paired"], counts["motif_correct_shuffled"],
                                        counts["motif_masked"], num_resamples, confidence, bootstrap_seed)
    word = paired_bootstrap_difference(counts["word_correct_paired"], counts["word_correct_shuffled"],
                                       counts["word_masked"], num_resamples, confidence, bootstrap_seed)
    result = {
        "masked_motif_accuracy/paired": motif["a"],
        "masked_motif_accuracy/shuffled_text": motif["b"],
        "masked_motif_accuracy/gap": motif["difference"],
        "masked_motif_accuracy/gap_low": motif["low"],
        "masked_motif_accuracy/gap_high": motif["high"],
        "masked_word_accuracy/paired": word["a"],
        "masked_word_accuracy/shuffled_molecule": word["b"],
        "masked_word_accuracy/gap": word["difference"],
        "masked_word_accuracy/gap_low": word["low"],
        "masked_word_accuracy/gap_high": word["high"],
        "num_pairs": n,
        "num_masked_motifs": int(counts["motif_masked"].sum()),
        "num_masked_words": int(counts["word_masked"].sum()),
        "heads_trained": bool(heads_trained),
        "dropped_indices": sorted(set(range(len(smiles))) - set(kept)),
        "confidence": confidence,
        "num_resamples": num_resamples,
    }
    if return_per_example:
        result["per_example"] = {k: v.tolist() for k, v in counts.items()} | {"shuffled_partner": partner.tolist()}
    return result


__all__ = ["cross_modal_dependence", "fixed_derangement", "paired_bootstrap_difference"]
