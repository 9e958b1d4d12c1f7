"""Pure tensor maths of FineMolTex pre-training: mask sampling, masked-input construction, losses.

No model state lives here; every function is vectorised over the batch (no Python loops over examples) and
tested on its own (tests/test_losses.py). Loss maths runs in fp32 even under bf16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Motif vocabulary layout, repeated here (not imported) so this module stays dependency-free: ids 0..3 are
# [PAD], [UNK], [MASK], [CLS]; real motifs start at 4 in frequency order.
MOTIF_FIRST_REAL_ID = 4
IGNORE_INDEX = -100


# ---------------------------------------------------------------------------------------------- sampling
def _uniform(shape, device, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform(0, 1) draws of `shape` on `device`; drawn on the generator's device when one is given (a seeded
    CPU generator then gives the same masks on any accelerator)."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


class MaskSeeds:
    """Where a model's masks come from: a generator seeded by a per-call ``mask_seed``; else one generator per model
    seeded by ``config.mask_seed`` (new masks every call, the same sequence in every run); else the global RNG
    (None)."""

    def __init__(self):
        self._stream: torch.Generator | None = None

    def __call__(self, mask_seed: int | None, config_seed: int | None) -> torch.Generator | None:
        if mask_seed is not None:
            return torch.Generator().manual_seed(int(mask_seed))
        if config_seed is None:
            return None
        if self._stream is None:
            self._stream = torch.Generator().manual_seed(int(config_seed))
        return self._stream


def sample_mask(
    candidates: torch.Tensor,
    rate: float,
    generator: torch.Generator | None = None,
    scores: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Choose positions to mask, row by row, without replacement.

    Args:
        candidates: Bool (B, S), the maskable positions.
        rate: fraction of each row's candidates to mask; a row with any candidate gets
            `max(1, round(rate * n))` masked positions (0 when `rate == 0`).
        generator: optional seeded generator (reproducible masks).
        scores: optional float (B, S) importance scores. Positions are drawn with probabilities
            `softmax(scores / temperature)` over the row's candidates — the softmax is taken ONCE (a second
            softmax over probabilities in [0, 1] flattens them to nearly uniform). `None` = uniform.
        temperature: softmax temperature for `scores`.

    Returns:
        Bool (B, S), True at masked positions (always a subset of `candidates`).

    Sampling k items without replacement with probabilities p is done in one vectorised step with the
    Gumbel-top-k trick: the k largest `log p + Gumbel` keys are a draw of the sequential scheme.
    """
    candidates = candidates.bool()
    if candidates.numel() == 0 or rate <= 0:
        return torch.zeros_like(candidates)
    n = candidates.sum(dim=1)
    k = torch.where(n > 0, torch.clamp(torch.floor(n.float() * rate + 0.5).long(), min=1), torch.zeros_like(n))
    k = torch.minimum(k, n)
    u = _uniform(candidates.shape, candidates.device, generator).clamp_(1e-12, 1.0 - 1e-7)
    keys = -torch.log(-torch.log(u))  # Gumbel(0, 1)
    if scores is not None:
        logits = (scores.float() / temperature).masked_fill(~candidates, float("-inf"))
        log_p = torch.log_softmax(logits, dim=1)
        keys = keys + torch.nan_to_num(log_p, neginf=0.0)  # rows without candidates are dropped below anyway
    keys = keys.masked_fill(~candidates, float("-inf"))
    order = keys.argsort(dim=1, descending=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.size(1), device=order.device).expand_as(order))
    return (rank < k[:, None]) & candidates


def cls_similarity_importance(states: torch.Tensor) -> torch.Tensor:
    """Importance of each token for masking: the cosine similarity of its state to the [CLS] state (position 0) of
    the same row, fp32, without gradient.

    FineMolTex (Li et al. 2024) masks the motifs and words that contribute most to the global representation; the
    authors approximate the contribution by the similarity of each token's state to its stream's [CLS] state in
    the coarse pass (no co-attention). Cosine (not a raw dot product) keeps the scores in [-1, 1] whatever the
    state norms, so one `importance_temperature` means the same for both streams and along training. Positions
    that are not candidates (including [CLS] itself, scored 1) are excluded by `sample_mask`.

    states: float (B, S, D) -> float (B, S)."""
    with torch.no_grad():
        s = states.detach().float()
        return F.cosine_similarity(s, s[:, :1], dim=-1, eps=1e-6)


# ---------------------------------------------------------------------------------------------- motifs
def motif_candidates(
    motif_input_ids: torch.Tensor, motif_attention_mask: torch.Tensor, num_motif_targets: int
) -> torch.Tensor:
    """Bool (B, M): slots holding a prediction-target motif (ids 4 .. 4+T-1), excluding slot 0 ([CLS]),
    padding and [UNK]/rare motifs, which are never masked."""
    is_target = (motif_input_ids >= MOTIF_FIRST_REAL_ID) & (motif_input_ids < MOTIF_FIRST_REAL_ID + num_motif_targets)
    not_cls = torch.ones_like(is_target)
    not_cls[:, :1] = False
    return is_target & motif_attention_mask.bool() & not_cls


def masked_motif_labels(motif_input_ids: torch.Tensor, motif_mask: torch.Tensor) -> torch.Tensor:
    """Long (B, M): class label (id - 4) at masked motif slots, -100 elsewhere."""
    return torch.where(motif_mask.bool(), motif_input_ids - MOTIF_FIRST_REAL_ID, torch.full_like(motif_input_ids, IGNORE_INDEX))


#: Row of the atom-type table a masked atom takes: 0, the dummy atom ``*`` (pretrain-gnns' [MASK] row 119 on load).
ATOM_TYPE_MASK_INDEX = 0


def atom_mask_values(atom_feature_sizes) -> list[int]:
    """The input features of a masked atom, one per atom-feature column: atom type -> `ATOM_TYPE_MASK_INDEX`,
    chirality -> 0 (unspecified; Hu et al.), any further column -> its last, "other", index."""
    sizes = [int(s) for s in atom_feature_sizes]
    return [ATOM_TYPE_MASK_INDEX] + [0] * min(1, len(sizes) - 1) + [s - 1 for s in sizes[2:]]


def hide_masked_motif_atoms(
    atom_features: torch.Tensor, motif_membership: torch.Tensor, motif_mask: torch.Tensor, mask_values: torch.Tensor
) -> torch.Tensor:
    """The atom features of the graph view the fused pass sees: every atom of a masked motif takes the masked-atom
    features (`atom_mask_values`: the dummy atom type, no chirality, "other" in further columns), so no
    atom-level attribute of a masked motif reaches any motif state through message passing. An atom shared by
    several motifs (junction-tree fallback) is hidden when ANY motif that owns it is masked. Bonds and the graph
    topology are kept (the masked motif's size and ring structure stay visible, as for Hu et al.'s masked atoms).

    atom_features: Long (N, F_atom); motif_membership: Long (2, K) (atom, flat slot b*M+m); motif_mask: Bool (B, M);
    mask_values: Long (F_atom,). Returns a new Long (N, F_atom); no loop over molecules."""
    atoms, slots = motif_membership[0], motif_membership[1]
    hidden = torch.zeros(atom_features.size(0), dtype=torch.bool, device=atom_features.device)
    hidden.index_fill_(0, atoms[motif_mask.reshape(-1)[slots]], True)
    return torch.where(hidden[:, None], mask_values.to(atom_features)[None, :], atom_features)


# ---------------------------------------------------------------------------------------------- words
def word_candidates(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, special_token_ids: torch.Tensor | list[int]
) -> torch.Tensor:
    """Bool (B, L): real (attended) tokens that are not special tokens ([CLS], [SEP], [PAD], [MASK], [UNK])."""
    special = torch.as_tensor(special_token_ids, device=input_ids.device, dtype=input_ids.dtype)
    return attention_mask.bool() & ~torch.isin(input_ids, special)


def mask_words(
    input_ids: torch.Tensor,
    word_mask: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    scheme: str = "bert",
    special_token_ids: torch.Tensor | list[int] = (),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build masked text input and MLM labels.

    Args:
        input_ids: Long (B, L). word_mask: Bool (B, L), positions to predict.
        scheme: "bert" = 80% [MASK], 10% a random token, 10% unchanged (BERT); "mask" = always [MASK].
        special_token_ids: never used as random replacements (a drawn special id becomes [MASK]).

    Returns:
        (masked_input_ids Long (B, L), labels Long (B, L) with the original id at masked positions, -100 elsewhere).
    """
    word_mask = word_mask.bool()
    labels = torch.where(word_mask, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    masked = input_ids.clone()
    if scheme == "mask":
        return masked.masked_fill(word_mask, mask_token_id), labels
    if scheme != "bert":
        raise ValueError(f"Unknown word masking scheme {scheme!r} (expected 'bert' or 'mask').")
    u = _uniform(input_ids.shape, input_ids.device, generator)
    random_ids = (_uniform(input_ids.shape, input_ids.device, generator) * vocab_size).long().clamp_(max=vocab_size - 1)
    special = torch.as_tensor(list(special_token_ids), device=input_ids.device, dtype=input_ids.dtype)
    random_ids = torch.where(torch.isin(random_ids, special), torch.full_like(random_ids, mask_token_id), random_ids)
    masked = torch.where(word_mask & (u < 0.8), torch.full_like(masked, mask_token_id), masked)
    masked = torch.where(word_mask & (u >= 0.8) & (u < 0.9), random_ids, masked)
    return masked, labels


def mask_text_states(
    states: torch.Tensor,
    word_mask: torch.Tensor,
    mask_vector: torch.Tensor,
    candidates: torch.Tensor,
    scheme: str = "bert",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Masked text at the text-stream input, for a locked text encoder whose token states are cached.

    The encoder is not run again on masked ids; instead the cached states of the masked positions are replaced.
    The analogue of BERT's 80/10/10 rule on states:

    - ``"bert"``: 80% of masked positions get `mask_vector` (a learned [MASK] state), 10% the cached state of a
      random candidate token drawn from the whole batch (any row: the analogue of a random word), 10% keep their
      own state (the head must not assume that a visible token is never a target);
    - ``"mask"``: always `mask_vector`.

    Neighbouring tokens' cached states were computed on the unmasked text, so they carry some context about the
    masked word (a frozen contextual encoder cannot hide it); the fused pass still has to recover the word itself.

    Args:
        states: float (B, L, H) cached encoder states. word_mask: Bool (B, L), positions to predict.
        mask_vector: float (H,). candidates: Bool (B, L), tokens a random replacement may come from.

    Returns:
        float (B, L, H), a new tensor (gradients flow into `mask_vector`).
    """
    word_mask = word_mask.bool()
    fill = mask_vector.to(states.dtype).expand_as(states)
    if scheme == "mask":
        return torch.where(word_mask.unsqueeze(-1), fill, states)
    if scheme != "bert":
        raise ValueError(f"Unknown word masking scheme {scheme!r} (expected 'bert' or 'mask').")
    u = _uniform(word_mask.shape, states.device, generator)
    flat = states.reshape(-1, states.size(-1))
    # random candidate position per slot, without a host sync: inverse CDF over the flattened candidate mask
    cumulative = candidates.reshape(-1).long().cumsum(0)
    total = cumulative[-1:].clamp(min=1)
    draw = (_uniform(word_mask.shape, states.device, generator).reshape(-1) * total).long()
    source = torch.searchsorted(cumulative, draw, right=True).clamp_(max=flat.size(0) - 1)
    random_states = flat[source].view_as(states)
    out = torch.where((word_mask & (u < 0.8)).unsqueeze(-1), fill, states)
    return torch.where((word_mask & (u >= 0.8) & (u < 0.9)).unsqueeze(-1), random_states, out)


# ---------------------------------------------------------------------------------------------- losses
def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over rows with `labels != -100`, in fp32; exactly 0 (still attached to the graph, so
    every head parameter gets a — zero — gradient under DDP) when no row is labelled.

    logits: (n, C); labels: Long (n,)."""
    # sum / count instead of `mean` avoids a host sync and the 0/0 of an empty selection
    total = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)



# ---------------------------------------------------------------------------------------------- atoms (graph pre-training)
def sample_atom_mask(
    graph_batch: torch.Tensor, rate: float, generator: torch.Generator | None = None, num_molecules: int | None = None
) -> torch.Tensor:
    """Atoms to mask for attribute masking (Hu et al. 2020), molecule by molecule, without replacement.

    Args:
        graph_batch: Long (N,), the molecule of each atom (ascending, as the batch contract has it).
        rate: a molecule of n atoms gets ``min(n, floor(rate * n) + 1)`` masked atoms (pretrain-gnns'
            ``int(num_atoms * mask_rate + 1)``: at least one); none at all when ``rate == 0``.
        generator: optional seeded generator (reproducible masks).
        num_molecules: B (default ``graph_batch.max() + 1``; pass it to avoid a device sync).

    Returns:
        Bool (N,), True at masked atoms: exactly that many per molecule, uniformly drawn. One sort over the flat
        batch (random keys, then a stable sort by molecule), no loop over molecules.
    """
    num_atoms = graph_batch.numel()
    if num_atoms == 0 or rate <= 0:
        return torch.zeros(num_atoms, dtype=torch.bool, device=graph_batch.device)
    if num_molecules is None:
        num_molecules = int(graph_batch.max()) + 1
    counts = torch.bincount(graph_batch, minlength=num_molecules)
    k = torch.minimum(torch.floor(counts.double() * rate).long() + 1, counts)
    keys = _uniform((num_atoms,), graph_batch.device, generator)
    by_key = keys.argsort()
    order = by_key[torch.sort(graph_batch[by_key], stable=True).indices]  # by molecule, random within each
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(num_atoms, device=order.device) - starts[graph_batch[order]]
    return rank < k[graph_batch]


def masked_atom_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attribute-masking objective: (mean cross-entropy, accuracy) of the masked atoms' predicted attribute.

    logits: (n, C) at the n masked atoms; labels: Long (n,) their true class (the atom type), -100 to skip a row.
    The loss is fp32 and exactly 0 (attached to the graph) when no row is labelled (`masked_cross_entropy`); the
    accuracy is the share of labelled rows whose arg-max is the label (0 when none), without gradient."""
    loss = masked_cross_entropy(logits, labels)
    with torch.no_grad():
        labelled = labels != IGNORE_INDEX
        correct = ((logits.argmax(dim=-1) == labels) & labelled).sum()
        accuracy = correct.float() / labelled.sum().clamp(min=1)
    return loss, accuracy


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weight.T + bias`` over the labelled rows, computed chunk by chunk: the
    (n, V) logits never exist at once, and nothing of size V per row is kept for the backward pass (the gradients
    are formed in the forward pass, one chunk at a time, and only scaled in `backward`). The three matrix products
    run in `matmul_dtype` (fp32, or bf16 under autocast); logits, softmax and accumulated gradients are fp32."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, chunk_size: int, matmul_dtype: torch.dtype):
        h_mm, w_mm = hidden.to(matmul_dtype), weight.to(matmul_dtype)
        num_rows = h_mm.size(0)
        if matmul_dtype != torch.float32 and num_rows % chunk_size:
            # Reduced precision on a CPU runs on oneDNN, which keeps a compiled kernel and a packed copy of `weight`
            # for every new product shape (~2 x V x D bytes here): ragged last chunks would grow memory by one such
            # copy per new row count. Ignored zero rows make every chunk the same shape.
            pad = chunk_size - num_rows % chunk_size
            h_mm = F.pad(h_mm, (0, 0, 0, pad))
            labels = F.pad(labels, (0, pad), value=IGNORE_INDEX)
        b = bias.float() if bias is not None else None
        valid = labels != IGNORE_INDEX
        count = valid.sum().clamp(min=1).float()
        grad_h = torch.zeros(h_mm.shape, dtype=torch.float32, device=hidden.device)
        grad_w = None
        need_grad_w = ctx.needs_input_grad[1]  # False for a frozen decoder (a locked encoder's word embeddings)
        grad_b = torch.zeros_like(b) if b is not None else None
        total = grad_h.new_zeros(())
        # the (chunk, V) buffer is reused in place from logits to gradient (no second buffer of that size)
        for start in range(0, h_mm.size(0), chunk_size):
            rows = slice(start, start + chunk_size)
            if b is not None and matmul_dtype == torch.float32:
                logits = torch.addmm(b, h_mm[rows], w_mm.t())  # the bias added in the product: no extra pass
            else:
                logits = (h_mm[rows] @ w_mm.t()).float()
                if b is not None:
                    logits += b
            target = labels[rows].clamp(min=0)[:, None]
            keep = valid[rows].float()
            target_logit = logits.gather(1, target).squeeze(1)
            row_max = logits.amax(dim=1, keepdim=True)
            probs = logits.sub_(row_max).exp_()  # unnormalised softmax
            row_sum = probs.sum(dim=1)
            log_z = row_max.squeeze(1) + row_sum.log()
            total = total + ((log_z - target_logit) * keep).sum()
            # d(loss)/d(logits) = softmax - one_hot(target), zero on ignored rows
            grad_logits = probs.mul_((keep / (count * row_sum))[:, None])
            grad_logits.scatter_add_(1, target, -(keep / count)[:, None])
            if grad_b is not None:
                grad_b += grad_logits.sum(0)
            grad_mm = grad_logits.to(matmul_dtype)
            grad_h[rows] = grad_mm @ w_mm
            if need_grad_w:
                chunk_grad_w = grad_mm.t() @ h_mm[rows]
                grad_w = chunk_grad_w.float() if grad_w is None else grad_w.add_(chunk_grad_w)
        if grad_w is None:  # no rows, or no gradient wanted
            grad_w = torch.zeros(weight.shape if need_grad_w else (0,), dtype=torch.float32, device=weight.device)
        ctx.save_for_backward(grad_h[:num_rows], grad_w, grad_b if grad_b is not None else torch.empty(0))
        ctx.has_bias, ctx.need_grad_w = b is not None, need_grad_w
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total / count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        g = grad_output.float()
        # in place: the saved gradients are used once, and a (V, D) buffer is most of this head's memory traffic
        return (
            grad_h.mul_(g).to(ctx.dtypes[0]),
            grad_w.mul_(g).to(ctx.dtypes[1]) if ctx.need_grad_w else None,
            grad_b.mul_(g).to(ctx.dtypes[2]) if ctx.has_bias else None,
            None,
            None,
            None,
        )


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, labels: torch.Tensor, chunk_size: int = 512
) -> torch.Tensor:
    """`masked_cross_entropy(F.linear(hidden, weight, bias), labels)` (same value and gradients) with peak memory
    O(chunk_size x V) instead of several (n, V) buffers: for a large output vocabulary (the MLM head's 30k words)
    those buffers are most of a CPU step's memory. Under autocast the products use the autocast dtype (as
    `F.linear` would) and the softmax stays fp32; otherwise everything is fp32.

    hidden: (n, D); weight: (V, D); bias: (V,) or None; labels: Long (n,), -100 = ignored. Returns a scalar."""
    device = hidden.device.type
    matmul_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32
    with torch.autocast(device_type=device, enabled=False):
        return _LinearCrossEntropy.apply(hidden, weight, bias, labels, int(chunk_size), matmul_dtype)


def duplicate_negative_mask(duplicate_key: torch.Tensor) -> torch.Tensor:
    """Bool (B, B): True at (i, j), i != j, where rows i and j share a key (e.g. a hash of the canonical SMILES):
    such pairs are the same molecule and must not act as negatives of each other."""
    same = duplicate_key[:, None] == duplicate_key[None, :]
    return same & ~torch.eye(duplicate_key.numel(), dtype=torch.bool, device=duplicate_key.device)


def contrastive_logits(
    graph_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: float | torch.Tensor,
    duplicate_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """fp32 similarity logits (B, B) = graph_embeds @ text_embeds.T / temperature, with `duplicate_mask`
    entries set to -inf (removed from the softmax). Rows: molecules; columns: texts."""
    with torch.autocast(device_type=graph_embeds.device.type, enabled=False):
        logits = graph_embeds.float() @ text_embeds.float().t()
        logits = logits / (temperature.float() if torch.is_tensor(temperature) else temperature)
    if duplicate_mask is not None:
        logits = logits.masked_fill(duplicate_mask, float("-inf"))
    return logits


def contrastive_loss(
    graph_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: float | torch.Tensor,
    duplicate_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE (graph->text and text->graph averaged) on L2-normalised embeddings (B, P); row i of
    each is a positive pair. `duplicate_mask` (B, B) removes same-molecule pairs from the negatives."""
    logits = contrastive_logits(graph_embeds, text_embeds, temperature, duplicate_mask)
    if logits.numel() == 0:
        return logits.sum()
    targets = torch.arange(logits.size(0), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


def contrastive_accuracy(logits_per_graph: torch.Tensor) -> torch.Tensor:
    """In-batch top-1 retrieval accuracy, graph->text and text->graph averaged (a float scalar)."""
    if logits_per_graph.numel() == 0:
        return logits_per_graph.new_zeros(())
    targets = torch.arange(logits_per_graph.size(0), device=logits_per_graph.device)
    g2t = (logits_per_graph.argmax(dim=1) == targets).float().mean()
    t2g = (logits_per_graph.argmax(dim=0) == targets).float().mean()
    return 0.5 * (g2t + t2g)


# ---------------------------------------------------------------------------------------------- distributed
class _AllGatherWithGradient(torch.autograd.Function):
    """all_gather of equal-shaped tensors (world, *shape) whose backward hands each rank the sum, over ranks, of
    the gradients of its slice. Written on `all_reduce` because gloo (the CPU backend) has no reduce_scatter,
    and `torch.distributed.nn.functional.all_gather` is deprecated."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        ctx.rank = dist.get_rank()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.contiguous()
        dist.all_reduce(grad)  # sum over ranks: every rank computed the same loss from the gathered tensor
        return grad[ctx.rank]


def gather_features(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Concatenate each tensor (B_r, ...) over all processes along dim 0, keeping gradients to every rank's
    slice, so each rank sees all negatives. Per-rank batch sizes may differ (tensors are padded to the largest
    for the collective). Identity outside `torch.distributed` or with one process.

    Every rank then computes the same full-batch loss; the gather's backward sums the gradients of all ranks
    into each rank's slice, which DDP's averaging turns back into the gradient of that single loss."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    world = dist.get_world_size()
    first = tensors[0]
    size = torch.tensor([first.size(0)], device=first.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    out = []
    for t in tensors:
        padded = F.pad(t, [0, 0] * (t.dim() - 1) + [0, longest - t.size(0)]) if t.size(0) < longest else t
        if t.requires_grad:
            parts = _AllGatherWithGradient.apply(padded)
        else:
            parts = [torch.empty_like(padded) for _ in range(world)]
            dist.all_gather(parts, padded.contiguous())
        out.append(torch.cat([p[:s] for p, s in zip(parts, sizes)], dim=0))
    return tuple(out)


__all__ = [
    "MaskSeeds",
    "atom_mask_values",
    "cls_similarity_importance",
    "hide_masked_motif_atoms",
    "contrastive_accuracy",
    "contrastive_logits",
    "contrastive_loss",
    "duplicate_negative_mask",
    "gather_features",
    "linear_cross_entropy",
    "mask_text_states",
    "mask_words",
    "masked_cross_entropy",
    "masked_atom_loss",
    "masked_motif_labels",
    "motif_candidates",
    "sample_atom_mask",
    "sample_mask",
    "word_candidates",
]
