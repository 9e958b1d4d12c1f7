# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Zero-shot molecule <-> text retrieval with a FineMolTex model.

Two protocols, both directions (molecule->text: a molecule queries the texts; text->molecule: the reverse):

* **full ranking** (Text2Mol on ChEBI-20): every query is ranked against the whole pool of candidates (the pairs'
  own texts or molecules); reported as MRR, Recall@1/5/10 (a.k.a. Hits@k), mean and median rank.
  See `rank_retrieval` and `ranking_metrics`.
* **fixed candidates** (MoleculeSTM, FineMolTex): each query i sees T candidates, its own partner and the T-1
  negatives ``negatives[i][:T-1]`` drawn once with a fixed seed (`make_negative_indices`, saved with
  `save_negative_indices`, read back with `load_negative_indices`); accuracy for T = 4, 10, 20.
  See `fixed_candidate_accuracy`.

Similarity is the dot product of the L2-normalised embeddings (`FineMolTexModel.get_graph_features` /
`get_text_features`, without co-attention), i.e. cosine similarity.

**Ties** (equal scores, e.g. duplicate molecules, or a collapsed untrained model). Let s be the number of candidates
scoring strictly above the true one and t the number scoring the same, the true one included (t >= 1). Three rules:

* ``"pessimistic"`` (default): the true candidate comes last among its ties, rank ``s + t``; a fixed-candidate query is
  correct only if the true candidate scores *strictly* highest. A collapsed model gets the worst score, not the best.
* ``"expected"``: the expectation under random tie-breaking. The true rank is uniform on ``s+1 .. s+t``, so
  ``E[1/rank] = (H(s+t) - H(s)) / t`` (H the harmonic numbers) and ``P(rank <= k) = clamp(k - s, 0, t) / t``;
  a fixed-candidate query gets 1/t credit when it shares the top score with t-1 negatives. The returned rank is
  the expected rank ``s + (t+1)/2``; MRR and Recall@k are *not* taken from it (1/E[rank] is not E[1/rank]) but from
  the tie counts, which `rank_retrieval` / `ranks_from_scores` return with ``return_tied=True`` and
  `ranking_metrics` takes as ``tied`` (`evaluate_retrieval` does this). Example: the true candidate tied with 3
  others at the top gives MRR 0.521 and Recall@1 0.25 (averaging the rank first would give 0.400 and 0.0).
  ``"average"`` is a deprecated alias (it is scipy's name for the mid-rank, which is what used to be reported).
* ``"optimistic"``: the true candidate comes first among its ties, rank ``s + 1`` (MoleculeSTM's ``argmax`` with the
  true candidate first is optimistic: a model scoring every candidate the same would get 100%).

`read_pairs` reads evaluation pairs (ChEBI-20-style TSV or Parquet); `evaluate_retrieval` runs everything from
SMILES and texts; the metric arithmetic goes through the local `evaluate` modules ``metrics/retrieval_ranking`` and
``metrics/retrieval_accuracy`` (see `load_metric`).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)

TIES = ("pessimistic", "expected", "optimistic")
DEPRECATED_TIES = {"average": "expected"}
DIRECTIONS = ("molecule_to_text", "text_to_molecule")
DEFAULT_T = (4, 10, 20)
DEFAULT_KS = (1, 5, 10)
METRIC_NAMES = ("retrieval_ranking", "retrieval_accuracy")


# ================================================================================================ data
def read_pairs(path: str, smiles_column: str = "smiles", text_column: str = "text") -> tuple[list[str], list[str]]:
    """(SMILES, texts) from a ChEBI-20-style TSV or a Parquet file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Data file not found: {p}")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(p)
        missing = [c for c in (smiles_column, text_column) if c not in table.column_names]
        if missing:
            raise KeyError(f"{p}: columns {missing} not found; columns are {table.column_names}")
        return [str(s) for s in table.column(smiles_column).to_pylist()], [str(t) for t in table.column(text_column).to_pylist()]
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{p} is empty")
        lowered = [h.strip().lower() for h in header]
        try:
            s_col, t_col = lowered.index("smiles"), lowered.index("description")
        except ValueError:
            raise ValueError(f"{p}: expected a TSV header with SMILES and description columns, got {header}") from None
        smiles, texts = [], []
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{p}, line {line_number}: {len(row)} fields, expected {len(header)}")
            smiles.append(row[s_col])
            texts.append(row[t_col].strip())
    return smiles, texts


# ================================================================================================ embedding
def _base_model(model):
    """The module with `get_graph_features` / `get_text_features` (FineMolTexModel, or the one inside
    FineMolTexForPreTraining)."""
    if hasattr(model, "get_graph_features") and hasattr(model, "get_text_features"):
        return model
    inner = getattr(model, "finemoltex", None) or getattr(model, "base_model", None)
    if inner is not None and inner is not model and hasattr(inner, "get_graph_features"):
        return inner
    raise TypeError(f"{type(model).__name__} has no get_graph_features/get_text_features; pass a FineMolTexModel.")


def _resolve_device(model, device) -> torch.device:
    if device is None:
        try:
            return next(model.parameters()).device
        except StopIteration:
            return torch.device("cpu")
    return torch.device(device)


@contextlib.contextmanager
def _inference(model, device: torch.device, bf16: bool):
    """eval mode + inference_mode (+ bf16 autocast on CUDA); the model's training flag is restored after."""
    was_training = model.training
    model.eval()
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if bf16 and device.type == "cuda"
        else contextlib.nullcontext()
    )
    try:
        with torch.inference_mode(), autocast:
            yield
    finally:
        model.train(was_training)


def _progress(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}


def embed_molecules(
    model,
    processor,
    smiles: Sequence[str],
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = True,
    ignore_errors: bool = True,
    bf16: bool = False,
) -> tuple[torch.Tensor, list[int]]:
    """Molecule embeddings, batched: -> (embeddings (N_kept, P) float32 on the CPU, kept_indices).

    Args:
        model: a `FineMolTexModel` (or `FineMolTexForPreTraining`); put in eval mode for the call.
        processor: its `FineMolTexProcessor`.
        smiles: the molecules.
        device: where to compute; the model is moved there (default: where the model already is).
        ignore_errors: unparsable SMILES are skipped (logged with their indices) and left out of
            ``kept_indices``; the caller decides what to do with their partners. If False, the first one
            raises `ValueError` naming its index and string.
        bf16: bfloat16 autocast on CUDA (ignored on the CPU). Embeddings are returned in float32.

    Row ``r`` of the embeddings belongs to ``smiles[kept_indices[r]]``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    smiles = list(smiles)
    base = _base_model(model)
    device = _resolve_device(model, device)
    model.to(device)
    chunks, kept = [], []
    with _inference(model, device, bf16), _progress(len(smiles), "Embedding molecules", "mol", progress) as bar:
        for start in range(0, len(smiles), batch_size):
            part = smiles[start : start + batch_size]
            batch = processor(smiles=part, ignore_errors=True, return_tensors="pt")
            local = [int(i) for i in batch.pop("kept_indices")]
            if len(local) < len(part) and not ignore_errors:
                bad = start + next(i for i in range(len(part)) if i not in set(local))
                # re-encode alone so the tokenizer's message (with RDKit's reason) names the global index
                processor.graph_tokenizer.encode_molecule(smiles[bad], index=bad)
                raise ValueError(f"Could not parse SMILES at index {bad}: {smiles[bad]!r}")
            if local:
                graph = {k: v for k, v in batch.items() if k.startswith(("graph_", "motif_"))}
                chunks.append(base.get_graph_features(**_to_device(graph, device)).float().cpu())
                kept.extend(start + i for i in local)
            bar.update(len(part))
    dropped = len(smiles) - len(kept)
    if dropped:
        missing = sorted(set(range(len(smiles))) - set(kept))
        logger.warning("Skipped %d unparsable SMILES (indices %s%s).", dropped, missing[:10], " ..." if dropped > 10 else "")
    dim = base.config.projection_dim
    return (torch.cat(chunks) if chunks else torch.zeros(0, dim)), kept


def embed_texts(
    model,
    processor,
    texts: Sequence[str],
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = True,
    bf16: bool = False,
) -> torch.Tensor:
    """Text embeddings, batched: -> (N, P) float32 on the CPU, in the order of ``texts``.

    Texts are tokenised once (truncated to ``processor.max_text_length``, or the text encoder's
    ``max_position_embeddings`` if smaller), sorted by token length so each batch
    pads little, and the rows are put back in the input order. Empty texts raise `ValueError` naming the index.
    See `embed_molecules` for the other arguments.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"Empty or missing text at index {i}: {t!r}")
    base = _base_model(model)
    tokenizer = processor.tokenizer
    if tokenizer is None:
        raise ValueError("The processor has no text tokenizer.")
    device = _resolve_device(model, device)
    model.to(device)
    dim = base.config.projection_dim
    if not texts:
        return torch.zeros(0, dim)
    max_length = processor.max_text_length
    positions = getattr(getattr(base.config, "text_config", None), "max_position_embeddings", None)
    if positions:  # never feed the text encoder more positions than it has
        max_length = min(max_length, int(positions))
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = torch.empty(len(texts), dim, dtype=torch.float32)
    with _inference(model, device, bf16), _progress(len(texts), "Embedding texts", "text", progress) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = len(ids[rows[0]])  # longest first
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
            for b, r in enumerate(rows):
                input_ids[b, : len(ids[r])] = torch.as_tensor(ids[r], dtype=torch.long)
                attention_mask[b, : len(ids[r])] = 1
            embeds = base.get_text_features(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
            out[torch.as_tensor(rows)] = embeds.float().cpu()
            bar.update(len(rows))
    return out


# ================================================================================================ full ranking
def _as_tensor(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (num, dim), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _check_ties(ties: str) -> str:
    """The tie rule's canonical name (a deprecated alias warns and maps to its new name); unknown rules raise."""
    if ties in DEPRECATED_TIES:
        warnings.warn(
            f'ties="{ties}" is deprecated; use ties="{DEPRECATED_TIES[ties]}" (the expectation under random '
            "tie-breaking; MRR and Recall@k are now the exact expectations).",
            FutureWarning,
            stacklevel=3,
        )
        return DEPRECATED_TIES[ties]
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    return ties


def _tie_counts(scores: torch.Tensor, positives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(better, tied) of each query from (Q, C) scores and (Q,) true columns: candidates scoring strictly higher
    than the true one, and scoring the same, the true one included (>= 1). -> two int64 (Q,)."""
    true = scores.gather(1, positives.view(-1, 1))  # from the same matrix: exact ties stay exact
    better = (scores > true).sum(1)
    tied = (scores == true).sum(1)
    return better, tied


def _ranks_from_counts(better: torch.Tensor, tied: torch.Tensor, ties: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(rank, spread) from the (Q,) tie counts: float64 rank (pessimistic s+t, optimistic s+1, expected the mean
    s+(t+1)/2) and the int64 number of equally likely ranks centred on it (t for "expected", else 1)."""
    better, tied = better.to(torch.float64), tied.to(torch.int64)
    if ties == "pessimistic":
        return better + tied, torch.ones_like(tied)
    if ties == "optimistic":
        return better + 1.0, torch.ones_like(tied)
    return better + (tied + 1) / 2.0, tied


def ranks_from_scores(scores, positives=None, ties: str = "pessimistic", return_tied: bool = False):
    """1-based rank of each query's true candidate from a (Q, C) score matrix; ``positives[q]`` (default ``q``) is
    the true candidate's column. Ties: see the module docstring. -> float64 (Q,); with ``return_tied`` also the
    int64 (Q,) ``tied`` that `ranking_metrics` needs for exact "expected" MRR / Recall@k."""
    ties = _check_ties(ties)
    scores = _as_tensor(scores, "scores")
    positives = _positives(positives, scores.size(0), scores.size(1))
    ranks, tied = _ranks_from_counts(*_tie_counts(scores, positives), ties)
    return (ranks.numpy(), tied.numpy()) if return_tied else ranks.numpy()


def _positives(positives, num_queries: int, num_candidates: int) -> torch.Tensor:
    if positives is None:
        if num_queries != num_candidates:
            raise ValueError(
                f"{num_queries} queries but {num_candidates} candidates: pass `positives` (the true candidate of each query)."
            )
        return torch.arange(num_queries)
    positives = torch.as_tensor(np.asarray(positives), dtype=torch.long).reshape(-1)
    if positives.numel() != num_queries:
        raise ValueError(f"positives has {positives.numel()} entries for {num_queries} queries")
    if positives.numel() and (positives.min() < 0 or positives.max() >= num_candidates):
        raise ValueError(f"positives must index the {num_candidates} candidates (0 .. {num_candidates - 1})")
    return positives


def rank_retrieval(
    query_embeds,
    candidate_embeds,
    positives=None,
    ties: str = "pessimistic",
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
    return_tied: bool = False,
):
    """Rank of each query's true candidate among all candidates by dot product: -> float64 (Q,), 1-based; with
    ``return_tied``, ``(ranks, tied)`` where ``tied`` (int64 (Q,)) is the number of equally likely ranks centred on
    each rank (for ties="expected" the candidates tied with the true one, itself included; otherwise 1): pass it to
    `ranking_metrics` as ``tied`` so MRR and Recall@k are exact expectations.

    Args:
        query_embeds: (Q, P); candidate_embeds: (C, P) (L2-normalised: the dot product is the cosine).
        positives: (Q,) column of each query's true candidate; default ``arange(Q)`` (aligned pairs, Q == C).
        ties: "pessimistic" (default), "expected" or "optimistic" (module docstring).
        chunk_size: queries scored at a time, so memory stays at chunk_size x C (a 30k x 30k pool never
            materialises).
        device: where to multiply (default: the embeddings' device); results come back to the CPU.

    Both directions of paired embeddings: ``rank_retrieval(mol, text)`` (molecule->text) and
    ``rank_retrieval(text, mol)`` (text->molecule), see `bidirectional_ranks`.
    """
    ties = _check_ties(ties)
    queries = _as_tensor(query_embeds, "query_embeds")
    candidates = _as_tensor(candidate_embeds, "candidate_embeds")
    if queries.size(1) != candidates.size(1):
        raise ValueError(f"Embedding sizes differ: queries {queries.size(1)}, candidates {candidates.size(1)}")
    positives = _positives(positives, queries.size(0), candidates.size(0))
    device = torch.device(device) if device is not None else queries.device
    dtype = torch.promote_types(queries.dtype, candidates.dtype)
    candidates = candidates.to(device, dtype)
    ranks, tied = [torch.zeros(0, dtype=torch.float64)], [torch.zeros(0, dtype=torch.int64)]
    for start in range(0, queries.size(0), max(1, int(chunk_size))):
        q = queries[start : start + chunk_size].to(device, dtype)
        pos = positives[start : start + chunk_size].to(device)
        rank, spread = _ranks_from_counts(*_tie_counts(q @ candidates.T, pos), ties)
        ranks.append(rank.cpu())
        tied.append(spread.cpu())
    ranks, tied = torch.cat(ranks).numpy(), torch.cat(tied).numpy()
    return (ranks, tied) if return_tied else ranks


def bidirectional_ranks(graph_embeds, text_embeds, ties: str = "pessimistic", chunk_size: int = 1024, device=None) -> dict:
    """Ranks of aligned pairs (row i of both is one pair) in both directions:
    -> {"molecule_to_text": (N,), "text_to_molecule": (N,)}."""
    return {
        "molecule_to_text": rank_retrieval(graph_embeds, text_embeds, ties=ties, chunk_size=chunk_size, device=device),
        "text_to_molecule": rank_retrieval(text_embeds, graph_embeds, ties=ties, chunk_size=chunk_size, device=device),
    }


def ranking_metrics(ranks, ks: Sequence[int] = DEFAULT_KS, tied=None) -> dict:
    """MRR, recall@k, mean_rank, median_rank, num_queries from one rank per query. The same maths as the
    ``metrics/retrieval_ranking`` evaluate module (a test checks).

    Args:
        ranks: (Q,) 1-based ranks.
        ks: the Recall@k cut-offs.
        tied: optional (Q,) integers >= 1: query q's rank is uniform on the ``tied[q]`` consecutive ranks centred
            on ``ranks[q]``, i.e. on ``s+1 .. s+t`` with ``s = ranks[q] - (t+1)/2`` (what ``rank_retrieval(...,
            ties="expected", return_tied=True)`` returns). MRR and Recall@k are then expectations:
            ``E[1/rank] = (H(s+t) - H(s)) / t``, ``P(rank <= k) = clamp(k - s, 0, t) / t``; mean_rank is the mean
            of the expected ranks (exact, by linearity) and median_rank their median. Without ``tied`` every rank
            is exact and must be a whole number (a mid-rank such as 2.5 would give a wrong MRR).
    """
    ranks = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if ranks.size == 0:
        raise ValueError("No ranks given.")
    if not np.all(np.isfinite(ranks)) or ranks.min() < 1:
        raise ValueError("Ranks must be finite and >= 1 (1-based).")
    if tied is None:
        tied = np.ones(ranks.shape, dtype=np.int64)
    tied = np.asarray(tied, dtype=np.float64).reshape(-1)
    if tied.shape != ranks.shape:
        raise ValueError(f"tied has {tied.size} entries for {ranks.size} ranks")
    if not np.all(np.isfinite(tied)) or tied.min() < 1 or np.any(tied != np.round(tied)):
        raise ValueError("tied must hold whole numbers >= 1 (candidates tied with the true one, itself included).")
    better = ranks - (tied + 1.0) / 2.0  # s: candidates strictly better
    if np.any(np.abs(better - np.round(better)) > 1e-6) or np.round(better).min() < 0:
        raise ValueError(
            "Each rank must be a whole number, or (with `tied`) the mean s + (t+1)/2 of t tied ranks; fractional "
            "ranks come from averaging ties: pass `tied` (rank_retrieval(..., return_tied=True)) so MRR and "
            "Recall@k are the expectations."
        )
    better, tied = np.round(better).astype(np.int64), tied.astype(np.int64)
    # harmonic numbers H(0..max): E[1/rank] = (H(s+t) - H(s)) / t; exactly 1/rank when t == 1
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, int((better + tied).max()) + 1))])
    reciprocal = np.where(tied == 1, 1.0 / (better + 1), (harmonic[better + tied] - harmonic[better]) / tied)
    out = {"mrr": float(np.mean(reciprocal))}
    for k in ks:
        out[f"recall@{int(k)}"] = float(np.mean(np.clip(int(k) - better, 0, tied) / tied))
    out["mean_rank"] = float(np.mean(ranks))
    out["median_rank"] = float(np.median(ranks))
    out["num_queries"] = int(ranks.size)
    return out


# ================================================================================================ fixed candidates
def make_negative_indices(num_items: int, max_T: int = 20, seed: int = 42) -> np.ndarray:
    """For each item i, ``max_T - 1`` distinct random indices of OTHER items: -> int64 (num_items, max_T - 1).

    Draw once with a fixed seed and save it (`save_negative_indices`) so every model is scored on the same
    candidates, as MoleculeSTM does. Deterministic for a given (num_items, max_T, seed).
    """
    num_items, max_T = int(num_items), int(max_T)
    k = max_T - 1
    if k < 1:
        raise ValueError(f"max_T must be >= 2, got {max_T}")
    if num_items < max_T:
        raise ValueError(f"Need at least max_T={max_T} items to draw {k} distinct negatives per query, got {num_items}")
    rng = np.random.default_rng(seed)
    own = np.arange(num_items)[:, None]
    if num_items <= 2048:  # small pools: an exact permutation per row
        draws = np.stack([rng.permutation(num_items - 1)[:k] for _ in range(num_items)])
    else:  # large pools: draw with replacement, redraw rows with a repeat (rare)
        draws = rng.integers(0, num_items - 1, size=(num_items, k))
        while True:
            s = np.sort(draws, axis=1)
            bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
            if bad.size == 0:
                break
            draws[bad] = rng.integers(0, num_items - 1, size=(bad.size, k))
    # values 0..N-2 skip the query's own index
    return (draws + (draws >= own)).astype(np.int64)


def validate_negative_indices(negatives, num_items: int, source: str = "negatives") -> np.ndarray:
    """Check a negative-index table: 2-D integers in [0, num_items), one row per item, no row containing its own
    index. Errors name ``source`` (e.g. the file) and the offending row. -> int64 array."""
    arr = np.asarray(negatives)
    if arr.ndim != 2:
        raise ValueError(f"{source}: expected a 2-D table (one row of negative indices per item), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{source}: negative indices must be integers")
        arr = arr.astype(np.int64)
    arr = arr.astype(np.int64, copy=False)
    if arr.shape[0] != num_items:
        raise ValueError(f"{source}: has {arr.shape[0]} rows but there are {num_items} items (one row per item)")
    if arr.size:
        bad_rows = np.flatnonzero(((arr < 0) | (arr >= num_items)).any(axis=1))
        if bad_rows.size:
            row = int(bad_rows[0])
            raise ValueError(
                f"{source}: row {row} has indices out of range [0, {num_items}): {arr[row].tolist()} "
                f"({bad_rows.size} bad rows); was the file made for another data set?"
            )
        self_rows = np.flatnonzero((arr == np.arange(num_items)[:, None]).any(axis=1))
        if self_rows.size:
            row = int(self_rows[0])
            raise ValueError(f"{source}: row {row} lists the query itself ({row}) as a negative ({self_rows.size} such rows)")
    return arr


def save_negative_indices(negatives, path: str | os.PathLike) -> Path:
    """Save as ``.npy`` (default) or ``.txt`` (one row per line, space-separated)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(negatives, dtype=np.int64)
    if path.suffix == ".txt":
        np.savetxt(path, arr, fmt="%d")
    else:
        if path.suffix != ".npy":
            path = path.with_suffix(path.suffix + ".npy")
        np.save(path, arr)
    return path


def load_negative_indices(path: str | os.PathLike, num_items: int | None = None, min_T: int | None = None) -> np.ndarray:
    """Read a negative-index table (``.npy``, or text: one row of whitespace-separated indices per line) and
    validate it (`validate_negative_indices`) when ``num_items`` is given; ``min_T`` checks there are at least
    ``min_T - 1`` columns. Errors name the file and the row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Negative-index file not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: could not read a table of integer indices ({err})") from err
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if num_items is not None:
        arr = validate_negative_indices(arr, num_items, source=str(path))
    else:
        arr = validate_negative_indices(arr, arr.shape[0], source=str(path)) if arr.size else arr.astype(np.int64)
    if min_T is not None and arr.shape[1] < min_T - 1:
        raise ValueError(f"{path}: {arr.shape[1]} negatives per row, T={min_T} needs {min_T - 1}")
    return arr


def fixed_candidate_scores(query_embeds, candidate_embeds, negatives, T: int) -> torch.Tensor:
    """(Q, T) scores of each query against [its partner (column 0), negatives[q][:T-1]]; queries and candidates
    are aligned pairs (query q's partner is candidate q)."""
    queries = _as_tensor(query_embeds, "query_embeds")
    candidates = _as_tensor(candidate_embeds, "candidate_embeds")
    negatives = torch.as_tensor(np.asarray(negatives), dtype=torch.long)
    if queries.size(0) != candidates.size(0) or negatives.dim() != 2 or negatives.size(0) != queries.size(0):
        raise ValueError(
            f"Need aligned pairs and one negative row per query: {queries.size(0)} queries, {candidates.size(0)} "
            f"candidates, negatives of shape {tuple(negatives.shape)}"
        )
    if T < 2 or negatives.size(1) < T - 1:
        raise ValueError(f"T={T} needs T >= 2 and {T - 1} negatives per query; the table has {negatives.size(1)}")
    index = torch.cat([torch.arange(queries.size(0)).view(-1, 1), negatives[:, : T - 1]], dim=1)
    if index.numel() and (index.min() < 0 or index.max() >= candidates.size(0)):
        raise ValueError(f"negative indices must lie in [0, {candidates.size(0)})")
    dtype = torch.promote_types(queries.dtype, candidates.dtype)
    return torch.einsum("qp,qtp->qt", queries.to(dtype), candidates.to(dtype)[index])


def correct_from_scores(scores, ties: str = "pessimistic") -> np.ndarray:
    """Per-query correctness in [0, 1] from (Q, T) scores with the true candidate in column 0 (ties: module
    docstring). The same maths as the ``metrics/retrieval_accuracy`` evaluate module."""
    ties = _check_ties(ties)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (num_queries, T >= 2) with the true candidate first, got shape {scores.shape}")
    true, negatives = scores[:, :1], scores[:, 1:]
    greater = (negatives > true).sum(axis=1)
    equal = (negatives == true).sum(axis=1)
    won = greater == 0
    if ties == "pessimistic":
        return (won & (equal == 0)).astype(np.float64)
    if ties == "optimistic":
        return won.astype(np.float64)
    return np.where(won, 1.0 / (1.0 + equal), 0.0)  # clamp(1 - s, 0, t) / t with s = 0 or more, t = 1 + equal


def fixed_candidate_accuracy(
    query_embeds, candidate_embeds, negatives, T: Sequence[int] = DEFAULT_T, ties: str = "pessimistic"
) -> dict[int, float]:
    """MoleculeSTM/FineMolTex accuracy: for each query i the candidates are [i] + negatives[i][:T-1]; accuracy is
    the share of queries whose true candidate scores highest (ties: module docstring). -> {T: accuracy}.

    One direction; for the other swap the embeddings (the same negative table serves both, as in MoleculeSTM).
    """
    out = {}
    for t in T:
        scores = fixed_candidate_scores(query_embeds, candidate_embeds, negatives, int(t))
        out[int(t)] = float(correct_from_scores(scores, ties).mean())
    return out


# ================================================================================================ evaluate modules
def metric_path(name: str) -> Path:
    """Folder of a local evaluate module (``retrieval_ranking`` or ``retrieval_accuracy``).

    Looked up in ``$FINEMOLTEX_METRICS_DIR``, then ``metrics/`` inside the package folder (an installed package
    shipping them as package data), then ``metrics/`` in the repository root (a source checkout or an editable
    install)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"Unknown metric {name!r}; available: {', '.join(METRIC_NAMES)}")
    here = Path(__file__).resolve().parent
    roots = [Path(os.environ["FINEMOLTEX_METRICS_DIR"])] if os.environ.get("FINEMOLTEX_METRICS_DIR") else []
    roots += [here / "metrics", here.parent / "metrics"]
    for root in roots:
        if (root / name / f"{name}.py").is_file():
            return root / name
    raise FileNotFoundError(
        f"Local evaluate module {name!r} not found in {', '.join(str(r) for r in roots)}; set FINEMOLTEX_METRICS_DIR "
        "to the repository's metrics/ folder."
    )


def load_metric(name: str, **kwargs):
    """``evaluate.load`` of a local retrieval metric (works offline; `metric_path` says where it is looked for).
    ``kwargs`` go to `evaluate.load` (default ``keep_in_memory=True``: no cache files)."""
    import evaluate

    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(metric_path(name)), **kwargs)


# ================================================================================================ end to end
def _remap_negatives(negatives: np.ndarray, kept: list[int], T: int) -> tuple[np.ndarray, np.ndarray]:
    """Negatives over the original rows -> over the kept rows. Queries whose first T-1 negatives hit a dropped
    row are left out: -> (negatives of the usable kept queries (in kept positions), their positions)."""
    position = np.full(negatives.shape[0], -1, dtype=np.int64)
    position[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    rows = negatives[np.asarray(kept, dtype=np.int64), : T - 1]
    mapped = position[rows] if rows.size else rows
    usable = np.flatnonzero((mapped >= 0).all(axis=1)) if mapped.size else np.arange(len(kept))
    return mapped[usable], usable


def evaluate_retrieval(
    model,
    processor,
    smiles: Sequence[str],
    texts: Sequence[str],
    negatives: np.ndarray | str | os.PathLike | None = None,
    T: Sequence[int] = DEFAULT_T,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    ties: str = "pessimistic",
    chunk_size: int = 1024,
    seed: int = 42,
    progress: bool = True,
    bf16: bool = False,
    use_evaluate: bool = True,
    return_ranks: bool = False,
) -> dict:
    """Zero-shot retrieval of paired ``smiles[i]`` <-> ``texts[i]`` in both directions, both protocols.

    Args:
        negatives: (N, >= max(T) - 1) negative indices over the N input pairs, or the path of a saved table
            (`load_negative_indices`); default `make_negative_indices(N, max(T), seed)`. Pass a saved table to
            compare models on the same candidates.
        T: candidate-set sizes of the fixed-candidate protocol; ks: Recall@k cut-offs.
        ties: "pessimistic" (default), "expected" or "optimistic" (module docstring; "average" is a deprecated
            alias of "expected").
        use_evaluate: compute the metrics through the local evaluate modules (`load_metric`); if they cannot be
            found (an installed package without them), the identical library maths are used, with a warning.
        return_ranks: also return ``"{direction}/ranks"``, the full-ranking rank of every kept query (a list in
            kept order, for per-example statistics such as paired bootstrap intervals of MRR differences).

    Unparsable SMILES drop their pair from the pool (listed in ``dropped_indices``); in the fixed-candidate
    protocol a query whose first T-1 negatives include a dropped pair is left out (the count per T is reported).

    Returns a flat, JSON-serialisable dict: ``"{direction}/{metric}"`` for direction in ``molecule_to_text``,
    ``text_to_molecule`` and metric in ``mrr``, ``recall@k``, ``mean_rank``, ``median_rank``, ``accuracy@T{t}``;
    plus ``num_pairs``, ``num_candidates``, ``num_queries@T{t}``, ``dropped_indices``, ``ties``.
    """
    ties = _check_ties(ties)
    smiles, texts = list(smiles), list(texts)
    if len(smiles) != len(texts):
        raise ValueError(f"Got {len(smiles)} SMILES but {len(texts)} texts; they must pair up.")
    T = tuple(sorted({int(t) for t in T}))
    if not T or T[0] < 2:
        raise ValueError(f"T values must be >= 2, got {T}")
    num_items = len(smiles)
    if negatives is None:
        negatives = make_negative_indices(num_items, max(T), seed)
    elif isinstance(negatives, (str, os.PathLike)):
        negatives = load_negative_indices(negatives, num_items=num_items, min_T=max(T))
    else:
        negatives = validate_negative_indices(negatives, num_items)
        if negatives.shape[1] < max(T) - 1:
            raise ValueError(f"negatives have {negatives.shape[1]} columns; T={max(T)} needs {max(T) - 1}")

    graph_embeds, kept = embed_molecules(model, processor, smiles, batch_size, device, progress, True, bf16)
    if len(kept) < 2:
        raise ValueError(f"Only {len(kept)} of {num_items} SMILES could be parsed; retrieval needs at least 2 pairs.")
    text_embeds = embed_texts(model, processor, [texts[i] for i in kept], batch_size, device, progress, bf16)
    compute_device = _resolve_device(model, device)

    ranking = accuracy = None
    if use_evaluate:
        try:
            ranking, accuracy = load_metric("retrieval_ranking"), load_metric("retrieval_accuracy")
        except (FileNotFoundError, ImportError) as err:
            logger.warning("Using the library maths instead of the evaluate modules: %s", err)

    results: dict = {}
    pairs = {"molecule_to_text": (graph_embeds, text_embeds), "text_to_molecule": (text_embeds, graph_embeds)}
    for direction, (queries, candidates) in pairs.items():
        ranks, tied = rank_retrieval(
            queries, candidates, ties=ties, chunk_size=chunk_size, device=compute_device, return_tied=True
        )
        if ranking is not None:
            values = ranking.compute(ranks=ranks.tolist(), ks=list(ks), tied=tied.tolist())
        else:
            values = ranking_metrics(ranks, ks, tied)
        values.pop("num_queries", None)
        results.update({f"{direction}/{k}": v for k, v in values.items()})
        if return_ranks:
            results[f"{direction}/ranks"] = [float(r) for r in ranks.tolist()]
        for t in T:
            neg, usable = _remap_negatives(negatives, kept, t)
            key = f"{direction}/accuracy@T{t}"
            if usable.size == 0:
                results[key] = None
                continue
            scores = _scores_subset(queries, candidates, usable, neg)
            if accuracy is not None:
                results[key] = accuracy.compute(scores=scores.double().tolist(), ties=ties)["accuracy"]
            else:
                results[key] = float(correct_from_scores(scores, ties).mean())
            results[f"num_queries@T{t}"] = int(usable.size)
    results["num_pairs"] = num_items
    results["num_candidates"] = len(kept)
    results["dropped_indices"] = sorted(set(range(num_items)) - set(kept))
    results["ties"] = ties
    return results


def _scores_subset(queries: torch.Tensor, candidates: torch.Tensor, usable: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
    """`fixed_candidate_scores` for a subset of the queries (their partner is candidate ``usable[r]``)."""
    index = torch.cat(
        [torch.as_tensor(usable, dtype=torch.long).view(-1, 1), torch.as_tensor(negatives, dtype=torch.long)], dim=1
    )
    q = queries[torch.as_tensor(usable, dtype=torch.long)]
    return torch.einsum("qp,qtp->qt", q, candidates[index])


__all__ = [
    "DIRECTIONS",
    "TIES",
    "bidirectional_ranks",
    "correct_from_scores",
    "embed_molecules",
    "embed_texts",
    "evaluate_retrieval",
    "fixed_candidate_accuracy",
    "fixed_candidate_scores",
    "load_metric",
    "load_negative_indices",
    "make_negative_indices",
    "metric_path",
    "ranking_metrics",
    "rank_retrieval",
    "ranks_from_scores",
    "read_pairs",
    "save_negative_indices",
    "validate_negative_indices",
]
