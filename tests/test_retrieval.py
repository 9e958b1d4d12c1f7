"""Zero-shot retrieval: rank and accuracy maths, negative indices, the local evaluate modules, batched embedding
and the example script (tiny model, CPU)."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import math

import numpy as np
import pytest
import torch

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from _examples import load_example
from conftest import REPO
from modeling_finemoltex import FineMolTexConfig, FineMolTexGraphTokenizer, FineMolTexModel, FineMolTexProcessor, MotifVocab
from modeling_finemoltex.retrieval_finemoltex import (
    bidirectional_ranks,
    correct_from_scores,
    embed_molecules,
    embed_texts,
    evaluate_retrieval,
    fixed_candidate_accuracy,
    fixed_candidate_scores,
    load_metric,
    load_negative_indices,
    make_negative_indices,
    metric_path,
    rank_retrieval,
    ranking_metrics,
    ranks_from_scores,
    save_negative_indices,
    validate_negative_indices,
)

N_PAIRS = 40


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def processor(chebi_pairs, text_tokenizer):
    vocab = MotifVocab.build([s for _, s, _ in chebi_pairs[:300]], target_min_frequency=10)
    return FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), text_tokenizer, max_text_length=96)


@pytest.fixture(scope="module")
def model(processor):
    vocab = processor.graph_tokenizer.motif_vocab
    config = FineMolTexConfig.from_preset(
        "tiny",
        motif_vocab_size=len(vocab),
        num_motif_targets=max(vocab.num_targets, 1),
        max_motif_positions=512,
        text_config={"vocab_size": len(processor.tokenizer)},
    )
    torch.manual_seed(0)
    return FineMolTexModel(config).eval()


@pytest.fixture(scope="module")
def pairs(chebi_pairs):
    return [s for _, s, _ in chebi_pairs[:N_PAIRS]], [t for _, _, t in chebi_pairs[:N_PAIRS]]


def _as_embeddings(scores):
    """(queries, candidates) whose dot products are exactly `scores` (candidates = identity)."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    return scores, torch.eye(scores.size(1), dtype=torch.float64)


# ------------------------------------------------------------------------------------------------ full ranking
def test_perfect_retrieval_gives_mrr_one():
    q, c = _as_embeddings(torch.eye(5))
    ranks = rank_retrieval(q, c)
    assert ranks.tolist() == [1.0] * 5
    metrics = ranking_metrics(ranks)
    assert metrics["mrr"] == 1.0 and metrics["recall@1"] == metrics["recall@10"] == 1.0
    assert metrics["mean_rank"] == metrics["median_rank"] == 1.0


def test_reversed_retrieval_known_values():
    # the true candidate always scores lowest: rank N for every query
    n = 12
    q, c = _as_embeddings(-torch.eye(n))
    ranks = rank_retrieval(q, c)
    assert ranks.tolist() == [float(n)] * n
    m = ranking_metrics(ranks)
    assert m["mrr"] == pytest.approx(1 / n) and m["recall@10"] == 0.0 and m["mean_rank"] == n
    # query q's true candidate q sits at position q in the same ordering: ranks 1..4
    scores = torch.tensor([[4.0, 3, 2, 1]] * 4)
    ranks = ranks_from_scores(scores)
    assert ranks.tolist() == [1, 2, 3, 4]
    m = ranking_metrics(ranks, ks=(1, 2, 3))
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert (m["recall@1"], m["recall@2"], m["recall@3"]) == (0.25, 0.5, 0.75)
    assert m["median_rank"] == 2.5


def test_ties_pessimistic_expected_optimistic():
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.9, 0.5, 0.5, 0.5], [0.2, 0.1, 0.2, 0.3]])
    # true candidates 0, 1, 2. query 0: 2 others tie, none above; query 1: 1 above, 2 tie; query 2: 1 above, 1 tie
    pos = [0, 1, 2]
    assert ranks_from_scores(scores, pos).tolist() == [3, 4, 3]
    ranks, tied = ranks_from_scores(scores, pos, ties="expected", return_tied=True)
    assert ranks.tolist() == [2, 3, 2.5] and tied.tolist() == [3, 3, 2]
    assert ranks_from_scores(scores, pos, ties="optimistic").tolist() == [1, 2, 2]
    assert ranks_from_scores(scores, pos, return_tied=True)[1].tolist() == [1, 1, 1]  # pessimistic ranks are exact
    # a collapsed model (all scores equal) is the worst case, not the best
    flat = torch.ones(6, 6)
    assert ranks_from_scores(flat).tolist() == [6] * 6
    assert ranking_metrics(ranks_from_scores(flat))["recall@1"] == 0.0
    with pytest.raises(ValueError, match="ties"):
        ranks_from_scores(flat, ties="random")
    # "average" is a deprecated alias of "expected"
    with pytest.warns(FutureWarning, match="expected"):
        assert ranks_from_scores(scores, pos, ties="average").tolist() == [2, 3, 2.5]


def test_expected_ties_four_way_tie_at_the_top():
    # the true candidate (column 0) tied with 3 others at the top: rank uniform on 1..4
    scores = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, -1.0]])
    q, c = _as_embeddings(scores)
    ranks, tied = rank_retrieval(q, c, positives=[0], ties="expected", return_tied=True)
    assert ranks.tolist() == [2.5] and tied.tolist() == [4]
    m = ranking_metrics(ranks, ks=(1, 2, 5), tied=tied)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4) and round(m["mrr"], 3) == 0.521
    assert (m["recall@1"], m["recall@2"], m["recall@5"]) == (0.25, 0.5, 1.0)
    assert m["mean_rank"] == 2.5
    # the mid-rank alone is refused: 1/2.5 = 0.400 and recall@1 = 0 are not the expectations
    with pytest.raises(ValueError, match="tied"):
        ranking_metrics(ranks)
    assert load_metric("retrieval_ranking").compute(ranks=ranks.tolist(), ks=[1], tied=tied.tolist()) == pytest.approx(
        {"mrr": 0.5208333, "recall@1": 0.25, "mean_rank": 2.5, "median_rank": 2.5, "num_queries": 1}
    )
    # fixed candidates, true first: 1/4 credit
    assert correct_from_scores(scores[:, :5], ties="expected").tolist() == [0.25]


def _brute_force(scores: np.ndarray, positives: np.ndarray, ks) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per query, over every ordering of the candidates that sorts the scores descending (all tie orders, each
    equally likely): mean 1/rank, P(rank <= k) for each k, and the best and worst rank. -> (Q,), (Q, K), (Q,), (Q,)."""
    reciprocal, hits, best, worst = [], [], [], []
    for row, pos in zip(scores, positives):
        ranks = [
            order.index(pos) + 1
            for order in itertools.permutations(range(len(row)))
            if all(row[a] >= row[b] for a, b in zip(order, order[1:]))
        ]
        reciprocal.append(np.mean([1 / r for r in ranks]))
        hits.append([np.mean([r <= k for r in ranks]) for k in ks])
        best.append(min(ranks))
        worst.append(max(ranks))
    return np.array(reciprocal), np.array(hits), np.array(best), np.array(worst)


@pytest.mark.parametrize("shape", [(6, 6), (5, 5), (7, 7), (4, 6), (6, 3)])
def test_tie_rules_match_brute_force_enumeration_of_tie_orders(shape):
    rng = np.random.default_rng(sum(shape))
    ks = (1, 2, 3, 5)
    ranking = load_metric("retrieval_ranking")
    for trial in range(3):
        scores = rng.integers(0, 3, size=shape).astype(np.float64)  # 3 values: many ties
        if shape[0] == shape[1]:  # aligned pairs: both directions
            cases = [(scores, np.arange(shape[0])), (scores.T.copy(), np.arange(shape[0]))]
        else:
            cases = [(scores, rng.integers(0, shape[1], size=shape[0]))]
        for matrix, positives in cases:
            reciprocal, hits, best, worst = _brute_force(matrix, positives, ks)
            q, c = _as_embeddings(matrix)
            ranks, tied = rank_retrieval(q, c, positives=positives, ties="expected", return_tied=True, chunk_size=2)
            expected = {"mrr": reciprocal.mean(), **{f"recall@{k}": hits[:, i].mean() for i, k in enumerate(ks)}}
            m = ranking_metrics(ranks, ks, tied)
            assert {k: m[k] for k in expected} == pytest.approx(expected, abs=1e-12)
            assert ranking.compute(ranks=ranks.tolist(), ks=list(ks), tied=tied.tolist()) == pytest.approx(m, abs=1e-12)
            np.testing.assert_allclose(ranks, (best + worst) / 2)  # the expected rank is the mid-rank
            # pessimistic / optimistic: the worst / best tie order
            np.testing.assert_array_equal(ranks_from_scores(matrix, positives), worst)
            np.testing.assert_array_equal(ranks_from_scores(matrix, positives, ties="optimistic"), best)
            for ties, extreme in (("pessimistic", worst), ("optimistic", best)):
                m = ranking_metrics(ranks_from_scores(matrix, positives, ties=ties), ks)
                assert m["mrr"] == pytest.approx(np.mean(1 / extreme))
                assert m["recall@1"] == pytest.approx(np.mean(extreme <= 1))
            # fixed candidates (any row read as: true candidate first, then the negatives): accuracy = P(rank 1)
            _, first_hits, _, _ = _brute_force(matrix, np.zeros(len(matrix), dtype=int), (1,))
            np.testing.assert_allclose(correct_from_scores(matrix, ties="expected"), first_hits[:, 0])


def test_rank_retrieval_matches_scores_in_both_directions_and_chunks():
    g = torch.Generator().manual_seed(0)
    mol = torch.nn.functional.normalize(torch.randn(37, 16, generator=g), dim=-1)
    text = torch.nn.functional.normalize(mol + 0.8 * torch.randn(37, 16, generator=g), dim=-1)
    scores = mol @ text.T
    both = bidirectional_ranks(mol, text)
    np.testing.assert_array_equal(both["molecule_to_text"], ranks_from_scores(scores))
    np.testing.assert_array_equal(both["text_to_molecule"], ranks_from_scores(scores.T))
    for chunk in (1, 5, 36, 10_000):
        np.testing.assert_array_equal(rank_retrieval(mol, text, chunk_size=chunk), both["molecule_to_text"])
    # explicit positives: a shuffled candidate pool gives the same ranks
    perm = torch.randperm(37, generator=g)
    shuffled = rank_retrieval(mol, text[perm], positives=torch.argsort(perm))
    np.testing.assert_array_equal(shuffled, both["molecule_to_text"])
    # rank via positives into a larger pool
    assert rank_retrieval(mol[:3], text, positives=[0, 1, 2]).shape == (3,)
    with pytest.raises(ValueError, match="positives"):
        rank_retrieval(mol[:3], text)
    with pytest.raises(ValueError, match="NaN"):
        rank_retrieval(torch.full((2, 16), float("nan")), text[:2])


# ------------------------------------------------------------------------------------------------ fixed candidates
def test_fixed_candidate_accuracy_hand_cases():
    # 5 aligned pairs; score of query q against candidate c is scores[q, c]
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.2, 0.3, 0.4],  # true wins against everything
            [0.5, 0.4, 0.6, 0.1, 0.1],  # loses to 0 and 2
            [0.1, 0.1, 0.3, 0.3, 0.9],  # ties 3, loses to 4
            [0.1, 0.2, 0.1, 0.5, 0.1],  # wins
            [0.2, 0.2, 0.2, 0.2, 0.2],  # ties everything
        ]
    )
    q, c = _as_embeddings(scores)
    negatives = np.array([[1, 2, 3], [3, 4, 0], [3, 0, 4], [0, 1, 2], [0, 1, 2]])
    acc = fixed_candidate_accuracy(q, c, negatives, T=(2, 3, 4))
    # T=2: q0 vs 1 win, q1 vs 3 win, q2 vs 3 tie, q3 vs 0 win, q4 tie -> 3/5
    # T=3: q1 vs 3,4 win; q2 vs 3,0 tie -> 3/5
    # T=4: q1 vs 3,4,0 lose; q2 vs 4 lose -> 2/5
    assert acc == {2: 0.6, 3: 0.6, 4: 0.4}
    s = fixed_candidate_scores(q, c, negatives, 4)
    assert s.shape == (5, 4) and s[1].tolist() == pytest.approx([0.4, 0.1, 0.1, 0.5])
    assert fixed_candidate_accuracy(q, c, negatives, T=(2,), ties="optimistic") == {2: 1.0}
    # expected: q2 and q4 tie with one candidate at T=2 -> 1/2 credit each
    assert fixed_candidate_accuracy(q, c, negatives, T=(2,), ties="expected") == {2: pytest.approx(0.8)}
    assert correct_from_scores([[1.0, 1.0, 1.0, 0.0]], ties="expected").tolist() == pytest.approx([1 / 3])
    with pytest.raises(ValueError, match="T=5"):
        fixed_candidate_accuracy(q, c, negatives, T=(5,))


# ------------------------------------------------------------------------------------------------ negative indices
def test_negative_indices_exclude_query_and_are_reproducible():
    for n in (20, 300, 3000):  # small pools (exact permutation) and large pools (redraws)
        neg = make_negative_indices(n, max_T=20, seed=7)
        assert neg.shape == (n, 19) and neg.dtype == np.int64
        assert not (neg == np.arange(n)[:, None]).any()
        assert neg.min() >= 0 and neg.max() < n
        assert all(len(set(row)) == 19 for row in neg.tolist())
        np.testing.assert_array_equal(neg, make_negative_indices(n, max_T=20, seed=7))
        assert not np.array_equal(neg, make_negative_indices(n, max_T=20, seed=8))
    assert validate_negative_indices(make_negative_indices(50, 4), 50).shape == (50, 3)
    with pytest.raises(ValueError, match="at least max_T=20"):
        make_negative_indices(10, max_T=20)


def test_negative_index_files_round_trip_and_bad_files(tmp_path):
    neg = make_negative_indices(30, max_T=10, seed=1)
    for name in ("neg.npy", "neg.txt"):
        path = save_negative_indices(neg, tmp_path / name)
        np.testing.assert_array_equal(load_negative_indices(path, num_items=30, min_T=10), neg)
    bad = neg.copy()
    bad[2, 4] = 30
    path = save_negative_indices(bad, tmp_path / "bad.txt")
    with pytest.raises(ValueError, match=r"bad\.txt.*row 2 .*out of range"):
        load_negative_indices(path, num_items=30)
    bad = neg.copy()
    bad[5, 0] = 5
    path = save_negative_indices(bad, tmp_path / "self.npy")
    with pytest.raises(ValueError, match=r"self\.npy.*row 5 lists the query itself"):
        load_negative_indices(path, num_items=30)
    with pytest.raises(ValueError, match="has 30 rows but there are 40 items"):
        load_negative_indices(tmp_path / "neg.npy", num_items=40)
    with pytest.raises(ValueError, match="T=20 needs 19"):
        load_negative_indices(tmp_path / "neg.npy", num_items=30, min_T=20)
    with pytest.raises(FileNotFoundError):
        load_negative_indices(tmp_path / "missing.npy")


# ------------------------------------------------------------------------------------------------ evaluate modules
def test_evaluate_modules_load_offline_and_agree_with_library():
    assert metric_path("retrieval_ranking") == REPO / "metrics" / "retrieval_ranking"
    ranking, accuracy = load_metric("retrieval_ranking"), load_metric("retrieval_accuracy")
    assert "MRR" in ranking.description or "reciprocal" in ranking.description
    assert "Text2Mol" in ranking.citation and "MoleculeSTM" in accuracy.description
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(50, 50, generator=g).round(decimals=1)  # rounding makes ties
    for ties in ("pessimistic", "expected", "optimistic"):
        ranks, tied = ranks_from_scores(scores, ties=ties, return_tied=True)
        assert ranking.compute(ranks=ranks.tolist(), ks=[1, 5, 10], tied=tied.tolist()) == pytest.approx(
            ranking_metrics(ranks, tied=tied)
        )
        fixed = scores[:, :10].double()
        expected = float(correct_from_scores(fixed, ties).mean())
        assert accuracy.compute(scores=fixed.tolist(), ties=ties)["accuracy"] == pytest.approx(expected)
    # add_batch then compute, as an evaluation loop would
    ranking.add_batch(ranks=[1, 2])
    ranking.add_batch(ranks=[4, 20])
    assert ranking.compute()["mrr"] == pytest.approx(0.45)
    with pytest.raises(ValueError, match="same number of candidates"):
        accuracy.compute(scores=[[1.0, 0.0], [1.0, 0.0, 0.5]])
    # the module files are self-contained copies of the library maths: load one directly too
    spec = importlib.util.spec_from_file_location("rr", metric_path("retrieval_ranking") / "retrieval_ranking.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.ranking_metrics([1, 3, 7]) == ranking_metrics([1, 3, 7])
    assert module.ranking_metrics([2, 3.5], tied=[3, 2]) == ranking_metrics([2, 3.5], tied=[3, 2])


# ------------------------------------------------------------------------------------------------ embedding
def test_embed_texts_restores_order_after_length_sorting(model, processor, pairs):
    texts = pairs[1][:12]
    embeds = embed_texts(model, processor, texts, batch_size=5, progress=False)
    assert embeds.shape == (12, model.config.projection_dim) and embeds.dtype == torch.float32
    torch.testing.assert_close(embeds.norm(dim=-1), torch.ones(12))
    # one text at a time (no padding at all) and one unsorted padded batch give the same rows
    alone = torch.cat([embed_texts(model, processor, [t], progress=False) for t in texts])
    torch.testing.assert_close(embeds, alone, atol=1e-5, rtol=1e-4)
    batch = processor(text=texts, return_tensors="pt")
    with torch.inference_mode():
        direct = model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    torch.testing.assert_close(embeds, direct, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="index 1"):
        embed_texts(model, processor, ["a molecule", "  "], progress=False)


def test_embed_molecules_reports_unparsable_by_index(model, processor, pairs):
    smiles = pairs[0][:10]
    embeds, kept = embed_molecules(model, processor, smiles, batch_size=4, progress=False)
    assert embeds.shape == (10, model.config.projection_dim) and kept == list(range(10))
    batch = processor(smiles=smiles, return_tensors="pt")
    graph = {k: v for k, v in batch.items() if k.startswith(("graph_", "motif_"))}
    with torch.inference_mode():
        direct = model.get_graph_features(**graph)
    torch.testing.assert_close(embeds, direct, atol=1e-5, rtol=1e-4)
    broken = smiles[:5] + ["C1CC"] + smiles[5:]
    embeds2, kept2 = embed_molecules(model, processor, broken, batch_size=4, progress=False)
    assert kept2 == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    torch.testing.assert_close(embeds2, embeds, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="5"):
        embed_molecules(model, processor, broken, batch_size=4, progress=False, ignore_errors=False)
    assert model.training is False


def test_evaluate_retrieval_with_dropped_molecule(model, processor, pairs):
    smiles, texts = list(pairs[0][:24]), list(pairs[1][:24])
    smiles[3] = "not a smiles"
    negatives = make_negative_indices(24, max_T=10, seed=0)
    results = evaluate_retrieval(model, processor, smiles, texts, negatives=negatives, T=(4, 10), progress=False)
    assert results["dropped_indices"] == [3] and results["num_candidates"] == 23
    for direction in ("molecule_to_text", "text_to_molecule"):
        for key in ("mrr", "recall@1", "recall@5", "recall@10", "mean_rank", "median_rank", "accuracy@T4", "accuracy@T10"):
            assert 0 <= results[f"{direction}/{key}"] <= 23, key
    # queries whose negatives hit the dropped pair are left out
    hits = lambda t: int(sum(3 in row[: t - 1] for i, row in enumerate(negatives.tolist()) if i != 3))  # noqa: E731
    assert results["num_queries@T4"] == 23 - hits(4) and results["num_queries@T10"] == 23 - hits(10)
    library = evaluate_retrieval(
        model, processor, smiles, texts, negatives=negatives, T=(4, 10), progress=False, use_evaluate=False
    )
    assert library.pop("dropped_indices") == results.pop("dropped_indices") == [3]
    assert library == pytest.approx(results)
    json.dumps(results)


def test_evaluate_retrieval_returns_per_query_ranks_on_request(model, processor, pairs):
    smiles, texts = list(pairs[0][:12]), list(pairs[1][:12])
    results = evaluate_retrieval(model, processor, smiles, texts, T=(4,), progress=False, return_ranks=True)
    for direction in ("molecule_to_text", "text_to_molecule"):
        ranks = np.asarray(results[f"{direction}/ranks"])
        assert ranks.shape == (12,) and (ranks >= 1).all()
        assert np.mean(1.0 / ranks) == pytest.approx(results[f"{direction}/mrr"])
    assert not any(k.endswith("/ranks") for k in evaluate_retrieval(model, processor, smiles, texts, T=(4,), progress=False))


# ------------------------------------------------------------------------------------------------ example script
def _load_example():
    return load_example("zero_shot_retrieval")


def test_example_script_end_to_end(model, processor, chebi_pairs, tmp_path, capsys):
    folder = tmp_path / "finemoltex"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    data = tmp_path / "pairs.tsv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, quotechar=None)
        writer.writerow(["CID", "SMILES", "description"])
        writer.writerows(chebi_pairs[:N_PAIRS])
    out = tmp_path / "out" / "retrieval.json"
    example = _load_example()
    args = ["--model_name_or_path", str(folder), "--data_file", str(data), "--output_file", str(out), "--no_progress", "--batch_size", "16"]
    results = example.main([*args, "--training_file", str(data)])
    saved = json.loads(out.read_text())
    assert saved.pop("dropped_indices") == results.pop("dropped_indices")
    # chance levels beside the metrics, and how many evaluated molecules the model saw in pre-training
    n = saved["num_candidates"]
    assert saved.pop("chance") == pytest.approx(results.pop("chance"))
    overlap = saved.pop("training_overlap")
    assert overlap == results.pop("training_overlap")
    assert overlap["seen_in_training"] == overlap["evaluated_molecules"] > 0  # evaluated on its own training pairs
    printed = capsys.readouterr().out
    assert "molecule_to_text" in printed and "chance" in printed and "are in the pre-training file" in printed
    assert f"{sum(1 / r for r in range(1, n + 1)) / n:.4f}" in printed  # MRR of a random ranking
    assert saved == pytest.approx(results) and saved["num_pairs"] == N_PAIRS
    for direction in ("molecule_to_text", "text_to_molecule"):
        for key in ("mrr", "recall@1", "recall@5", "recall@10", "mean_rank", "median_rank", "accuracy@T4", "accuracy@T10", "accuracy@T20"):
            value = saved[f"{direction}/{key}"]
            assert isinstance(value, float) and math.isfinite(value), key
    negatives_file = out.with_name("retrieval.negatives.npy")
    assert saved["negatives_file"] == str(negatives_file)
    np.testing.assert_array_equal(np.load(negatives_file), make_negative_indices(N_PAIRS, 20, 42))
    # the same model, pairs (as Parquet) and negatives file reproduce the numbers
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"smiles": [s for _, s, _ in chebi_pairs[:N_PAIRS]], "text": [t for _, _, t in chebi_pairs[:N_PAIRS]]})
    pq.write_table(table, tmp_path / "pairs.parquet")
    again = example.main(
        ["--model_name_or_path", str(folder), "--data_file", str(tmp_path / "pairs.parquet"), "--negatives_file", str(negatives_file), "--no_progress"]
    )
    for key, value in results.items():
        if "/" in key:
            assert again[key] == pytest.approx(value, abs=1e-12), key


def test_example_script_clear_error_for_unreachable_model(tmp_path):
    example = _load_example()
    data = tmp_path / "pairs.tsv"
    data.write_text("CID\tSMILES\tdescription\n1\tCCO\tThe molecule is ethanol.\n")
    with pytest.raises(OSError, match=r"not a local folder, and the Hub is offline \(HF_HUB_OFFLINE=1\) with no cached copy"):
        example.main(["--model_name_or_path", "someone/finemoltex-does-not-exist", "--data_file", str(data)])
