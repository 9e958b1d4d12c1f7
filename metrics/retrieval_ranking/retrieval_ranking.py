# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Ranking metrics of cross-modal retrieval over a full candidate pool (Text2Mol protocol): MRR, Recall@k, rank.

A local `evaluate` module (Hub metrics cannot load offline): ``evaluate.load("metrics/retrieval_ranking")``.
Self-contained on purpose (numpy only), so `evaluate` can copy it into its module cache.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Mean reciprocal rank, Recall@k (Hits@k), mean and median rank of the true candidate, from one rank per query.

The rank is 1-based: 1 means the true candidate scored highest among all candidates. It is computed by the caller
(`modeling_finemoltex.retrieval_finemoltex.rank_retrieval`), where ties are resolved; the finemoltex default is
pessimistic (rank = number of candidates scoring >= the true one, itself included). Under random tie-breaking
(ties="expected") the rank is a random variable, uniform on s+1 .. s+t (s candidates strictly better, t tied with
the true one, itself included): pass the expected ranks s + (t+1)/2 with `tied` = t, and MRR and Recall@k are the
exact expectations, E[1/rank] = (H(s+t) - H(s))/t and P(rank <= k) = clamp(k - s, 0, t)/t. (Taking 1/rank of the
averaged rank is wrong: the true candidate tied with 3 others at the top has E[1/rank] = 0.521, not 1/2.5 = 0.400,
and P(rank = 1) = 0.25, not 0.) Without `tied`, ranks must be whole numbers.
"""

_KWARGS_DESCRIPTION = """\
Args:
    ranks (`list` of `float`): 1-based rank of the true candidate, one per query (all >= 1); with `tied`, the mean
        of the query's equally likely ranks.
    ks (`list` of `int`, optional, default [1, 5, 10]): the cut-offs of Recall@k.
    tied (`list` of `int`, optional): per query, in the order of `ranks`, the number t >= 1 of equally likely ranks
        centred on `ranks` (the candidates tied with the true one under ties="expected", itself included);
        default 1 (exact ranks). A compute-time argument: give it to `compute` for all the ranks.
Returns:
    mrr (`float`): mean of E[1 / rank].
    recall@k (`float`): mean of P(rank <= k), one key per k.
    mean_rank (`float`), median_rank (`float`): of the (expected) ranks.
    num_queries (`int`).
Examples:
    >>> metric = evaluate.load("metrics/retrieval_ranking")
    >>> metric.compute(ranks=[1, 2, 4, 20])["mrr"]
    0.45
    >>> round(metric.compute(ranks=[2.5], tied=[4], ks=[1])["mrr"], 3)  # tied with 3 others at the top
    0.521
"""

_CITATION = """\
@inproceedings{edwards2021text2mol,
  title={Text2Mol: Cross-Modal Molecule Retrieval with Natural Language Queries},
  author={Edwards, Carl and Zhai, ChengXiang and Ji, Heng},
  booktitle={Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing},
  pages={595--607},
  year={2021}
}
"""


def ranking_metrics(ranks, ks=(1, 5, 10), tied=None) -> dict:
    """The maths (kept in sync with `modeling_finemoltex.retrieval_finemoltex.ranking_metrics`; a test checks)."""
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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RetrievalRanking(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"ranks": datasets.Value("float64")}),
            reference_urls=["https://aclanthology.org/2021.emnlp-main.47/", "https://arxiv.org/abs/2409.14106"],
        )

    def _compute(self, ranks, ks=(1, 5, 10), tied=None):
        return ranking_metrics(ranks, ks, tied)
