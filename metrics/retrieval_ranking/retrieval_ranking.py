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
pessimistic (rank = 1 + number of other candidates scoring >= the true one), so "average" ties give fractional
ranks such as 1.5, which this metric accepts. A fractional rank counts for Recall@k only when it is <= k.
"""

_KWARGS_DESCRIPTION = """\
Args:
    ranks (`list` of `float`): 1-based rank of the true candidate, one per query (all >= 1).
    ks (`list` of `int`, optional, default [1, 5, 10]): the cut-offs of Recall@k.
Returns:
    mrr (`float`): mean of 1 / rank.
    recall@k (`float`): share of queries with rank <= k, one key per k.
    mean_rank (`float`), median_rank (`float`).
    num_queries (`int`).
Examples:
    >>> metric = evaluate.load("metrics/retrieval_ranking")
    >>> metric.compute(ranks=[1, 2, 4, 20])["mrr"]
    0.45
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


def ranking_metrics(ranks, ks=(1, 5, 10)) -> dict:
    """The maths (kept in sync with `modeling_finemoltex.retrieval_finemoltex.ranking_metrics`; a test checks)."""
    ranks = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if ranks.size == 0:
        raise ValueError("No ranks given.")
    if not np.all(np.isfinite(ranks)) or ranks.min() < 1:
        raise ValueError("Ranks must be finite and >= 1 (1-based).")
    out = {"mrr": float(np.mean(1.0 / ranks))}
    for k in ks:
        out[f"recall@{int(k)}"] = float(np.mean(ranks <= int(k)))
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

    def _compute(self, ranks, ks=(1, 5, 10)):
        return ranking_metrics(ranks, ks)
