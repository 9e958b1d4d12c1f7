"""Held-out evaluation: cross-modal dependence of the masked heads (paired vs shuffled partner, same masks) and the
paired bootstrap (tiny model on real ChEBI-20 pairs, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from modeling_finemoltex import FineMolTexConfig, FineMolTexForPreTraining, FineMolTexGraphTokenizer, FineMolTexProcessor, MotifVocab
from modeling_finemoltex.evaluation_finemoltex import (
    cross_modal_dependence,
    fixed_derangement,
    paired_bootstrap_difference,
)

N_PAIRS = 24


@pytest.fixture(scope="module")
def pairs(chebi_pairs):
    chosen = chebi_pairs[:N_PAIRS]
    return [s for _, s, _ in chosen], [t for _, _, t in chosen]


@pytest.fixture(scope="module")
def processor(chebi_pairs, text_tokenizer):
    vocab = MotifVocab.build([s for _, s, _ in chebi_pairs[:300]], target_min_frequency=5)
    return FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab, max_motifs=127), text_tokenizer, max_text_length=48)


def _model(processor, **overrides) -> FineMolTexForPreTraining:
    vocab, tokenizer = processor.graph_tokenizer.motif_vocab, processor.tokenizer
    config = FineMolTexConfig.from_preset(
        "tiny",
        motif_vocab_size=len(vocab),
        num_motif_targets=vocab.num_targets,
        max_motif_positions=128,
        text_config={"vocab_size": tokenizer.vocab_size, "max_position_embeddings": 64},
        text_mask_token_id=tokenizer.mask_token_id,
        text_special_token_ids=sorted(set(tokenizer.all_special_ids)),
        hidden_dropout_prob=0.0,
        attention_dropout_prob=0.0,
        gnn_dropout=0.0,
        **overrides,
    )
    torch.manual_seed(0)
    return FineMolTexForPreTraining(config).eval()


@pytest.mark.parametrize("n", [2, 3, 5, 17, 64])
def test_fixed_derangement_moves_every_item_and_is_reproducible(n):
    pi = fixed_derangement(n, torch.Generator().manual_seed(1))
    assert sorted(pi.tolist()) == list(range(n))
    assert (pi != torch.arange(n)).all()
    assert torch.equal(pi, fixed_derangement(n, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError):
        fixed_derangement(1)


def test_paired_bootstrap_difference_of_means_and_ratios():
    rng = np.random.default_rng(0)
    a, b = rng.random(200) + 0.1, rng.random(200)
    out = paired_bootstrap_difference(a, b, num_resamples=500, seed=3)
    assert out["difference"] == pytest.approx(a.mean() - b.mean())
    assert out["low"] < out["difference"] < out["high"]
    assert out == paired_bootstrap_difference(a, b, num_resamples=500, seed=3)
    same = paired_bootstrap_difference(a, a, num_resamples=100)
    assert same["difference"] == same["low"] == same["high"] == 0.0
    counts = np.array([2.0, 3.0, 5.0])
    ratio = paired_bootstrap_difference([1, 3, 5], [0, 1, 2], weights=counts, num_resamples=100)
    assert ratio["a"] == pytest.approx(9 / 10) and ratio["b"] == pytest.approx(3 / 10)


def test_cross_modal_dependence_returns_both_accuracies_and_gap_intervals(processor, pairs):
    smiles, texts = pairs
    model = _model(processor)
    out = cross_modal_dependence(model, processor, smiles, texts, batch_size=10, num_resamples=200,
                                 return_per_example=True)
    assert out["num_pairs"] == N_PAIRS and out["heads_trained"] and out["num_masked_motifs"] > 0
    assert out["num_masked_words"] > 0
    for head, shuffled in (("masked_motif_accuracy", "shuffled_text"), ("masked_word_accuracy", "shuffled_molecule")):
        paired, other, gap = out[f"{head}/paired"], out[f"{head}/{shuffled}"], out[f"{head}/gap"]
        assert 0.0 <= paired <= 1.0 and 0.0 <= other <= 1.0
        assert gap == pytest.approx(paired - other)
        assert out[f"{head}/gap_low"] <= gap <= out[f"{head}/gap_high"]
    # no text met its own molecule in the shuffled pass; the same call gives the same numbers (fixed seeds)
    partner = np.asarray(out["per_example"]["shuffled_partner"])
    assert (partner != np.arange(N_PAIRS)).all() and sorted(partner) == list(range(N_PAIRS))
    again = cross_modal_dependence(model, processor, smiles, texts, batch_size=10, num_resamples=200,
                                   return_per_example=True)
    assert again == out


def test_heads_that_cannot_see_the_partner_give_gap_zero(processor, pairs):
    """Co-attention outputs zeroed: each stream's fused states ignore the other stream, so swapping the partner
    under the same masks changes no prediction."""
    smiles, texts = pairs
    model = _model(processor)
    with torch.no_grad():
        for block in model.finemoltex.fusion.coattention_layers:
            for attention in (block.motif_to_text, block.text_to_motif):
                attention.output.weight.zero_()
                attention.output.bias.zero_()
    out = cross_modal_dependence(model, processor, smiles, texts, batch_size=10, num_resamples=200,
                                 return_per_example=True)
    per = out["per_example"]
    assert per["motif_correct_paired"] == per["motif_correct_shuffled"]
    assert per["word_correct_paired"] == per["word_correct_shuffled"]
    for head in ("masked_motif_accuracy", "masked_word_accuracy"):
        assert out[f"{head}/gap"] == 0.0 and out[f"{head}/gap_low"] == 0.0 and out[f"{head}/gap_high"] == 0.0


def test_contrastive_only_model_is_evaluated_with_untrained_heads(processor, pairs):
    smiles, texts = pairs
    model = _model(processor, masked_motif_weight=0.0, masked_lm_weight=0.0)
    out = cross_modal_dependence(model, processor, smiles[:6], texts[:6], batch_size=4, num_resamples=50)
    assert out["heads_trained"] is False and out["num_pairs"] == 6
    assert (model.config.masked_motif_weight, model.config.masked_lm_weight) == (0.0, 0.0)  # restored


def test_morgan_count_fingerprints_count_ecfp4_environments():
    from modeling_finemoltex.chemistry_finemoltex import MoleculeParseError, morgan_count_fingerprints

    counts, kept = morgan_count_fingerprints(["CCO", "c1ccccc1", "not a smiles"], ignore_errors=True)
    assert counts.shape == (2, 2048) and counts.dtype == np.float32 and kept == [0, 1]
    assert counts[0].sum() == 6 and (counts == np.round(counts)).all()  # integer environment counts
    assert counts[1].max() == 6  # benzene: six identical atoms, one environment per radius
    with pytest.raises(MoleculeParseError):
        morgan_count_fingerprints(["C(("])


# ------------------------------------------------------------------------------------------------ the ablation benchmark
def test_quality_benchmark_ridge_rows_and_bootstrap_bookkeeping():
    from _examples import load_example

    bench = load_example("bench_pretrain_quality", folder="benchmarks")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    for alpha, w in bench.ridge_path(x, y, [0.5, 10.0]).items():
        np.testing.assert_allclose(w, np.linalg.solve(x.T @ x + alpha * np.eye(6), x.T @ y), atol=1e-10)
    # perfect predictions rank every partner first, both ways
    ranks = bench.ranks_by_cosine(y, y)
    assert (ranks["text_to_molecule"] == 1).all() and (ranks["molecule_to_text"] == 1).all()
    # the row table is data: rows a-c are valid overrides of this version's config
    import pretrain

    for row in "abc":
        assert pretrain.parse_overrides(json.dumps(bench.ROWS[row][1])) == bench.ROWS[row][1]
    per_seed = {0: {"text_to_molecule/ranks": [1.0, 2.0, float("nan")]}, 1: {"text_to_molecule/ranks": [1.0, 4.0, 1.0]}}
    np.testing.assert_allclose(bench.mean_reciprocal_ranks(per_seed)[:2], [1.0, 0.375])
    results = {"e": {"seeds": per_seed}, "a": {"seeds": {0: {"text_to_molecule/ranks": [2.0, 2.0, 2.0]}}}}
    out = bench.compare(results, resamples=50)
    assert list(out) == ["e-a"] and out["e-a"]["num_examples"] == 2  # the NaN (dropped) pair is left out
    assert out["e-a"]["difference"] == pytest.approx((1.0 + 0.375) / 2 - 0.5)


def test_quality_benchmark_variants_compare_merge_and_keep_ablation_switches(tmp_path):
    from _examples import load_example

    bench = load_example("bench_pretrain_quality", folder="benchmarks")
    # a variant's extra overrides never switch a row's ablated objective back on
    assert bench.row_overrides("a", {"masked_lm_weight": 0.7, "motif_mask_rate": 0.5}) == {
        "masked_lm_weight": 0.0, "motif_mask_rate": 0.5, "masked_motif_weight": 0.0}
    assert bench.row_key("e", None) == "e" and bench.row_key("e", "gin") == "e/gin"
    keys = ["a", "d", "e", "a/gin", "e/gin", "b/gin", bench.ANCHOR]
    assert bench.comparison_pairs(keys) == [
        ("d", "a"), ("e", "a"), ("e", "d"), ("e", bench.ANCHOR),
        ("a/gin", "a"),
        ("e/gin", "a/gin"), ("e/gin", "a"), ("e/gin", "e"), ("e/gin", bench.ANCHOR),
        ("b/gin", "a/gin"), ("b/gin", "a"),
    ]
    # --merge: rows of several reports, one table; a repeated row or another split is refused
    seeds = {"0": {"text_to_molecule/ranks": [1.0, 2.0], "text_to_molecule/mrr": 0.75}}
    base = {"split": {"validation": "10%"}, "num_held_out": 2}
    first, second, clash = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "3.json"
    first.write_text(json.dumps({**base, "rows": {"a": {"name": "a", "seeds": seeds, "mean": {}, "std": {}}}}))
    second.write_text(json.dumps({**base, "rows": {"e/gin": {"name": "e", "seeds": seeds, "mean": {}, "std": {}}}}))
    report = bench.main(["--merge", str(first), str(second), "--bootstrap_resamples", "20"])
    assert list(report["rows"]) == ["a", "e/gin"] and report["comparisons"]["e/gin-a"]["difference"] == 0.0
    clash.write_text(json.dumps({**base, "split": {"validation": "20%"}, "rows": {}}))
    with pytest.raises(SystemExit, match="different splits"):
        bench.main(["--merge", str(first), str(clash)])
    with pytest.raises(SystemExit, match="more than one report"):
        bench.main(["--merge", str(first), str(first)])
    with pytest.raises(SystemExit):  # a variant needs a name
        bench.main(["--rows", "e", "--extra_overrides", '{"motif_mask_rate": 0.5}'])
