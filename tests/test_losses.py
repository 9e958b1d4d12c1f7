"""Tests of the pure maths in modeling_finemoltex/losses_finemoltex.py."""

import math

import pytest
import torch
import torch.nn.functional as F

from modeling_finemoltex import losses_finemoltex as L


# ----------------------------------------------------------------------------------------- sample_mask
def test_sample_mask_counts_subset_and_empty_rows():
    candidates = torch.tensor(
        [[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0] * 11, [1] * 11], dtype=torch.bool
    )
    mask = L.sample_mask(candidates, 0.2, torch.Generator().manual_seed(0))
    assert not (mask & ~candidates).any()
    # max(1, round(0.2 * n)): n=10 -> 2, n=1 -> 1, n=0 -> 0, n=11 -> 2
    assert mask.sum(1).tolist() == [2, 1, 0, 2]
    assert not L.sample_mask(candidates, 0.0).any()
    assert L.sample_mask(candidates[:0], 0.2).shape == (0, 11)


def test_sample_mask_seeded_and_random_per_call():
    candidates = torch.ones(8, 50, dtype=torch.bool)
    a = L.sample_mask(candidates, 0.2, torch.Generator().manual_seed(3))
    b = L.sample_mask(candidates, 0.2, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(3)
    assert not torch.equal(L.sample_mask(candidates, 0.2, g), L.sample_mask(candidates, 0.2, g))


def test_uniform_sampling_is_uniform():
    candidates = torch.ones(20000, 5, dtype=torch.bool)
    mask = L.sample_mask(candidates, 0.2, torch.Generator().manual_seed(0))  # one per row
    freq = mask.float().mean(0)
    assert torch.allclose(freq, torch.full((5,), 0.2), atol=0.02)


def test_importance_sampling_follows_single_softmax():
    """Selection frequencies (one draw per row) equal softmax(scores / T): the softmax is applied once. Applying
    it twice (the reference's bug) would flatten these to near-uniform."""
    scores = torch.tensor([0.0, 1.0, 2.0, 3.0, -1.0])
    candidates = torch.ones(20000, 5, dtype=torch.bool)
    mask = L.sample_mask(candidates, 0.2, torch.Generator().manual_seed(0), scores.expand(20000, 5), temperature=1.0)
    freq = mask.float().mean(0)
    expected = torch.softmax(scores, 0)
    assert torch.allclose(freq, expected, atol=0.02)
    assert freq.max() - freq.min() > 0.4  # far from uniform


@pytest.mark.parametrize("temperature", [0.5, 3.0])
def test_importance_sampling_divides_scores_by_the_temperature(temperature):
    """Frequencies follow softmax(scores / temperature): sharper below 1, flatter above. Ignoring the temperature,
    multiplying by it or applying the softmax twice would each miss these by more than 0.1."""
    scores = torch.tensor([0.0, 1.0, 2.0, 3.0, -1.0])
    candidates = torch.ones(20000, 5, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    mask = L.sample_mask(candidates, 0.2, generator, scores.expand(20000, 5), temperature=temperature)
    torch.testing.assert_close(mask.float().mean(0), torch.softmax(scores / temperature, 0), atol=0.02, rtol=0)


def test_importance_sampling_ignores_non_candidates():
    scores = torch.tensor([[10.0, 0.0, 0.0, 0.0]]).expand(1000, 4)
    candidates = torch.tensor([[0, 1, 1, 1]], dtype=torch.bool).expand(1000, 4)
    mask = L.sample_mask(candidates, 0.34, torch.Generator().manual_seed(1), scores)
    assert not mask[:, 0].any() and (mask.sum(1) == 1).all()


def test_importance_masking_exact_count_specials_and_preference():
    """Importance masking of words as the model does it: CLS-similarity scores, exact per-row counts, special tokens
    and padding never masked, and more CLS-like tokens masked more often (over many draws of one generator)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([[101, 2000, 2001, 2002, 2003, 2004, 2005, 2006, 2007, 102, 0, 0],
                        [101, 2000, 100, 2002, 2003, 103, 2005, 102, 0, 0, 0, 0]])  # [UNK]=100, [MASK]=103
    attn = (ids != 0).long()
    candidates = L.word_candidates(ids, attn, [0, 100, 101, 102, 103])
    # token j's state at angle arccos(c_j) from the [CLS] state, with random norms: the importance is c_j
    cosines = torch.linspace(-0.9, 0.9, 12).expand(2, 12).clone()
    cosines[:, 0] = 1.0
    norms = torch.rand(2, 12, 1, generator=g) * 10 + 0.1
    states = torch.zeros(2, 12, 16)
    states[..., 0], states[..., 1] = cosines, (1 - cosines**2).sqrt()
    states = (states * norms).requires_grad_()
    importance = L.cls_similarity_importance(states)
    assert importance.shape == (2, 12) and not importance.requires_grad and importance.dtype == torch.float32
    torch.testing.assert_close(importance, cosines)
    n = 4000  # draws: the batch repeated n times, one call
    draws = L.sample_mask(candidates.repeat(n, 1), 0.3, g, importance.repeat(n, 1), temperature=0.2).view(n, 2, 12)
    assert (draws.sum(2) == torch.tensor([2, 1])).all()  # round(0.3 * 8) = 2, max(1, round(0.3 * 4)) = 1, every draw
    assert not (draws & ~candidates).any()  # never [CLS], [SEP], [PAD], [UNK], [MASK]
    freq = draws.float().mean(0)
    for row in range(2):
        cols = candidates[row].nonzero().flatten()
        order = importance[row, cols].argsort()
        assert (freq[row, cols][order].diff() > 0).all(), (importance[row, cols], freq[row, cols])  # monotone
    uniform = L.sample_mask(candidates.repeat(n, 1), 0.3, g).view(n, 2, 12).float().mean(0)
    assert (uniform[0, candidates[0]] - 0.25).abs().max() < 0.03  # 2 of 8, uniformly


def test_hide_masked_motif_atoms_hides_every_owner_s_atoms():
    features = torch.tensor([[6, 1], [7, 2], [8, 0], [9, 1], [6, 3]])  # 5 atoms, 2 columns
    # molecule 0 (slots 0..2): motif 1 = atoms 0,1; motif 2 = atoms 1,2 (atom 1 shared); molecule 1 (slots 3..5):
    # motif 1 = atoms 3,4
    membership = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 1, 2, 2, 4, 4]])
    values = torch.tensor(L.atom_mask_values([120, 4]))
    assert values.tolist() == [0, 0]
    mask = torch.tensor([[False, False, True], [False, False, False]])
    hidden = L.hide_masked_motif_atoms(features, membership, mask, values)
    assert hidden.tolist() == [[6, 1], [0, 0], [0, 0], [9, 1], [6, 3]]  # the shared atom 1 is hidden too
    assert torch.equal(L.hide_masked_motif_atoms(features, membership, torch.zeros_like(mask), values), features)
    assert L.atom_mask_values([120, 4, 11, 5]) == [0, 0, 10, 4]  # further columns: their "other" index


# ----------------------------------------------------------------------------------------- motifs / words
def test_motif_candidates_and_labels():
    ids = torch.tensor([[3, 4, 1, 19, 20, 5, 0]])  # CLS, target, UNK, last target (T=16), rare, target, PAD
    attn = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    cand = L.motif_candidates(ids, attn, num_motif_targets=16)
    assert cand.tolist() == [[False, True, False, True, False, True, False]]
    labels = L.masked_motif_labels(ids, cand)
    assert labels.tolist() == [[-100, 0, -100, 15, -100, 1, -100]]


def test_word_candidates_skip_special_and_padding():
    ids = torch.tensor([[101, 2000, 2001, 102, 0], [101, 103, 2500, 102, 0]])
    attn = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    cand = L.word_candidates(ids, attn, [0, 100, 101, 102, 103])
    assert cand.tolist() == [[False, True, True, False, False], [False, False, True, False, False]]


def test_mask_words_bert_scheme_proportions():
    ids = torch.randint(1000, 2000, (400, 100), generator=torch.Generator().manual_seed(0))
    word_mask = torch.rand(400, 100, generator=torch.Generator().manual_seed(1)) < 0.5
    masked, labels = L.mask_words(ids, word_mask, 103, 30522, "bert", [0, 100, 101, 102, 103], torch.Generator().manual_seed(2))
    assert torch.equal(masked[~word_mask], ids[~word_mask])
    assert (labels[~word_mask] == -100).all() and torch.equal(labels[word_mask], ids[word_mask])
    sel = masked[word_mask]
    orig = ids[word_mask]
    frac_mask = (sel == 103).float().mean().item()
    frac_kept = (sel == orig).float().mean().item()
    assert abs(frac_mask - 0.8) < 0.02 and abs(frac_kept - 0.1) < 0.02
    assert not torch.isin(sel[(sel != 103) & (sel != orig)], torch.tensor([0, 100, 101, 102])).any()


def test_mask_words_mask_scheme():
    ids = torch.tensor([[101, 2000, 2001, 102]])
    word_mask = torch.tensor([[False, True, False, False]])
    masked, labels = L.mask_words(ids, word_mask, 103, 30522, "mask")
    assert masked.tolist() == [[101, 103, 2001, 102]]
    assert labels.tolist() == [[-100, 2000, -100, -100]]
    with pytest.raises(ValueError):
        L.mask_words(ids, word_mask, 103, 30522, "span")


def test_mask_text_states_bert_scheme_proportions_and_sources():
    gen = torch.Generator().manual_seed(0)
    b, length, h = 64, 50, 4
    # each position's state encodes (row, position), so a replacement's source can be read back
    states = torch.stack(torch.meshgrid(torch.arange(b).float(), torch.arange(length).float(), indexing="ij"), -1)
    states = torch.cat([states, torch.ones(b, length, h - 2)], -1)
    candidates = torch.rand(b, length, generator=gen) < 0.7
    candidates[:, 0] = False  # e.g. [CLS]
    word_mask = candidates & (torch.rand(b, length, generator=gen) < 0.5)
    mask_vector = torch.full((h,), -7.0, requires_grad=True)
    out = L.mask_text_states(states, word_mask, mask_vector, candidates, "bert", torch.Generator().manual_seed(1))
    assert torch.equal(out[~word_mask], states[~word_mask])  # untouched outside the mask
    sel, orig = out[word_mask], states[word_mask]
    is_mask = (sel == -7.0).all(-1)
    is_kept = (sel == orig).all(-1)
    replaced = sel[~is_mask & ~is_kept]
    assert abs(is_mask.float().mean().item() - 0.8) < 0.03 and abs(is_kept.float().mean().item() - 0.1) < 0.03
    assert len(replaced) > 50
    rows, cols = replaced[:, 0].long(), replaced[:, 1].long()
    assert candidates[rows, cols].all()  # replacements are real candidate tokens, never [CLS]/padding
    assert len(set(rows.tolist())) > 20  # drawn from the whole batch, not one row
    out.sum().backward()
    assert mask_vector.grad is not None and mask_vector.grad.sum() == is_mask.sum() * h


def test_mask_text_states_mask_scheme_and_errors():
    states = torch.arange(12.0).view(1, 4, 3)
    word_mask = torch.tensor([[False, True, False, True]])
    out = L.mask_text_states(states, word_mask, torch.zeros(3) - 1, torch.ones(1, 4, dtype=torch.bool), "mask")
    assert torch.equal(out[0, [1, 3]], torch.full((2, 3), -1.0)) and torch.equal(out[0, [0, 2]], states[0, [0, 2]])
    with pytest.raises(ValueError, match="span"):
        L.mask_text_states(states, word_mask, torch.zeros(3), word_mask, "span")


# ----------------------------------------------------------------------------------------- losses
def test_masked_cross_entropy_empty_is_zero_with_grad():
    logits = torch.randn(0, 7, requires_grad=True)
    loss = L.masked_cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and torch.isfinite(loss)
    loss.backward()
    logits = torch.randn(3, 7, requires_grad=True)
    loss = L.masked_cross_entropy(logits, torch.full((3,), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_masked_cross_entropy_matches_mean():
    logits = torch.randn(5, 7)
    labels = torch.tensor([1, -100, 3, 6, -100])
    keep = labels != -100
    assert torch.allclose(L.masked_cross_entropy(logits, labels), F.cross_entropy(logits[keep], labels[keep]))


def _embeds(b, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(b, d, generator=g), dim=-1)


def test_contrastive_loss_matches_definition():
    g, t = _embeds(6, 8, 0), _embeds(6, 8, 1)
    logits = g @ t.T / 0.1
    expected = 0.5 * (
        -torch.log_softmax(logits, 1).diagonal().mean() - torch.log_softmax(logits, 0).diagonal().mean()
    )
    assert torch.allclose(L.contrastive_loss(g, t, 0.1), expected, atol=1e-6)
    assert L.contrastive_loss(g, g, 0.01) < 0.01  # aligned pairs -> ~0
    assert L.contrastive_accuracy(g @ g.T).item() == 1.0


def test_duplicates_are_not_negatives():
    g, t = _embeds(5, 8, 0), _embeds(5, 8, 1)
    key = torch.tensor([7, 3, 7, 9, 3])
    dup = L.duplicate_negative_mask(key)
    assert dup.tolist()[0] == [False, False, True, False, False] and not dup.diagonal().any()
    logits = L.contrastive_logits(g, t, 0.1, dup)
    assert torch.isinf(logits[0, 2]) and torch.isinf(logits[2, 0]) and torch.isfinite(logits.diagonal()).all()
    # the loss equals InfoNCE computed by hand over the allowed columns/rows only
    raw = g @ t.T / 0.1
    allowed = ~dup
    g2t = torch.stack([-(raw[i, i] - torch.logsumexp(raw[i][allowed[i]], 0)) for i in range(5)]).mean()
    t2g = torch.stack([-(raw[i, i] - torch.logsumexp(raw[:, i][allowed[:, i]], 0)) for i in range(5)]).mean()
    assert torch.allclose(L.contrastive_loss(g, t, 0.1, dup), 0.5 * (g2t + t2g), atol=1e-5)
    # a duplicate's text cannot be confused with the positive: making text 2 a copy of text 0 leaves molecule 0's
    # graph->text term unchanged under the mask (and raises it without the mask)
    t_changed = t.clone()
    t_changed[2] = t[0]

    def row_loss(texts, mask):  # molecule 0's graph->text cross-entropy
        return F.cross_entropy(L.contrastive_logits(g, texts, 0.1, mask), torch.arange(5), reduction="none")[0]

    torch.testing.assert_close(row_loss(t_changed, dup), row_loss(t, dup))
    assert row_loss(t_changed, None) > row_loss(t, None) + 0.1


def test_contrastive_logits_fp32_under_bf16_autocast():
    g, t = _embeds(4, 8, 0).bfloat16(), _embeds(4, 8, 1).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = L.contrastive_logits(g, t, 0.1)
        loss = L.contrastive_loss(g, t, 0.1)
    assert logits.dtype == torch.float32 and loss.dtype == torch.float32 and torch.isfinite(loss)


def test_gather_features_identity_without_distributed():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    out = L.gather_features(a, b)
    assert out[0] is a and out[1] is b


def test_contrastive_loss_empty_batch_is_finite():
    assert L.contrastive_loss(torch.zeros(0, 4), torch.zeros(0, 4), 0.1).item() == 0.0
    assert not math.isnan(L.contrastive_accuracy(torch.zeros(0, 0)).item())


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_linear_cross_entropy_matches_the_unfused_loss_and_gradients(chunk_size):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    weight = torch.randn(11, 5, generator=gen, dtype=torch.float64)
    bias = torch.randn(11, generator=gen, dtype=torch.float64)
    labels = torch.tensor([3, -100, 0, 10, 10, -100, 5])
    params = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
    reference = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
    fused = L.linear_cross_entropy(*params, labels, chunk_size=chunk_size)
    plain = L.masked_cross_entropy(F.linear(*reference), labels)
    (2.5 * fused).backward()
    (2.5 * plain).backward()
    torch.testing.assert_close(fused.double(), plain.double(), rtol=1e-6, atol=1e-6)
    for got, want in zip(params, reference):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-5, atol=1e-6)


def test_linear_cross_entropy_with_a_frozen_weight_gives_the_same_loss_and_input_gradients():
    # a frozen decoder (a locked encoder's word embeddings): no weight gradient formed, the rest unchanged
    gen = torch.Generator().manual_seed(2)
    hidden, weight, bias = torch.randn(9, 6, generator=gen), torch.randn(13, 6, generator=gen), torch.randn(13, generator=gen)
    labels = torch.tensor([1, 12, -100, 0, 4, 4, 7, -100, 2])
    h, b = hidden.clone().requires_grad_(), bias.clone().requires_grad_()
    h_ref, b_ref = hidden.clone().requires_grad_(), bias.clone().requires_grad_()
    fused = L.linear_cross_entropy(h, weight, b, labels, chunk_size=4)
    plain = L.masked_cross_entropy(F.linear(h_ref, weight, b_ref), labels)
    fused.backward()
    plain.backward()
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h.grad, h_ref.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.grad, b_ref.grad, rtol=1e-5, atol=1e-6)
    assert weight.grad is None


def test_linear_cross_entropy_without_labels_is_zero_and_attached():
    hidden, weight = torch.randn(3, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    loss = L.linear_cross_entropy(hidden, weight, None, torch.full((3,), -100))
    loss.backward()
    assert loss.item() == 0.0 and weight.grad is not None and not weight.grad.any()


def test_linear_cross_entropy_under_bf16_autocast_stays_close_to_fp32():
    # the products run in bf16 (as F.linear would under autocast); the softmax and the returned gradients are fp32
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(40, 16, generator=gen)
    weight = 0.3 * torch.randn(300, 16, generator=gen)
    labels = torch.randint(0, 300, (40,), generator=gen)
    labels[::7] = -100
    exact = [t.clone().requires_grad_() for t in (hidden, weight)]
    half = [t.clone().requires_grad_() for t in (hidden, weight)]
    L.linear_cross_entropy(*exact, None, labels, chunk_size=16).backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = L.linear_cross_entropy(*half, None, labels, chunk_size=16)
    loss.backward()
    assert loss.dtype == torch.float32 and half[1].grad.dtype == torch.float32
    torch.testing.assert_close(loss, L.masked_cross_entropy(F.linear(hidden, weight), labels), rtol=2e-2, atol=2e-2)
    for got, want in zip(half, exact):
        torch.testing.assert_close(got.grad, want.grad, rtol=0.1, atol=2e-3)


def test_linear_cross_entropy_with_no_rows():
    weight = torch.randn(6, 4, requires_grad=True)
    loss = L.linear_cross_entropy(torch.zeros(0, 4, requires_grad=True), weight, None, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and weight.grad is not None and not weight.grad.any()
