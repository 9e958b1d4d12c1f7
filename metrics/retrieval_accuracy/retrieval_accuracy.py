# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Fixed-candidate retrieval accuracy (MoleculeSTM / FineMolTex protocol): is the true candidate scored highest?

A local `evaluate` module (Hub metrics cannot load offline): ``evaluate.load("metrics/retrieval_accuracy")``.
Self-contained on purpose (numpy only), so `evaluate` can copy it into its module cache.
"""

import warnings

import datasets
import evaluate
import numpy as np

TIES = ("pessimistic", "expected", "optimistic")
DEPRECATED_TIES = {"average": "expected"}

_DESCRIPTION = """\
Accuracy of picking the true candidate among T candidates per query (T = 4, 10, 20 in MoleculeSTM and FineMolTex):
each example is the list of the T candidate scores of one query, the TRUE candidate FIRST, followed by the T-1
negatives (MoleculeSTM draws them once, with a fixed seed, from the other items of the test set).

Ties with the true candidate's score: "pessimistic" (default) counts the query as wrong, "expected" counts it as
1/m when m candidates share the top score (the expectation under random tie-breaking; "average" is a deprecated
alias), "optimistic" counts it as right. MoleculeSTM's code takes `argmax` with the true candidate first, which is "optimistic": a model that gives
every candidate the same score would get 100%.
"""

_KWARGS_DESCRIPTION = """\
Args:
    scores (`list` of `list` of `float`): per query, the scores of its T candidates, the true one first (T >= 2,
        the same T for every query).
    ties (`str`, optional, default "pessimistic"): "pessimistic", "expected" or "optimistic"
        ("average": deprecated alias of "expected").
Returns:
    accuracy (`float`), num_queries (`int`), num_candidates (`int`, T).
Examples:
    >>> metric = evaluate.load("metrics/retrieval_accuracy")
    >>> metric.compute(scores=[[0.9, 0.1, 0.2], [0.1, 0.5, 0.2]])["accuracy"]
    0.5
"""

_CITATION = """\
@article{liu2023moleculestm,
  title={Multi-modal molecule structure--text model for text-based retrieval and editing},
  author={Liu, Shengchao and Nie, Weili and Wang, Chengpeng and Lu, Jiarui and Qiao, Zhuoran and Liu, Ling and
          Tang, Jian and Xiao, Chaowei and Anandkumar, Animashree},
  journal={Nature Machine Intelligence},
  volume={5},
  pages={1447--1457},
  year={2023}
}
@article{li2024finemoltex,
  title={Advancing Molecular Graph-Text Pre-training via Fine-grained Alignment},
  author={Li, Yibo and Fang, Yuan and Zhang, Mengmei and Shi, Chuan},
  journal={arXiv preprint arXiv:2409.14106},
  year={2024}
}
"""


def correct_from_scores(scores, ties: str = "pessimistic") -> np.ndarray:
    """Per-query correctness in [0, 1] from (Q, T) scores, true candidate in column 0 (kept in sync with
    `modeling_finemoltex.retrieval_finemoltex.correct_from_scores`; a test checks)."""
    if ties in DEPRECATED_TIES:
        warnings.warn(f'ties="{ties}" is deprecated; use ties="{DEPRECATED_TIES[ties]}".', FutureWarning, stacklevel=2)
        ties = DEPRECATED_TIES[ties]
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (num_queries, T >= 2) with the true candidate first, got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    true, negatives = scores[:, :1], scores[:, 1:]
    greater = (negatives > true).sum(axis=1)
    equal = (negatives == true).sum(axis=1)
    won = greater == 0
    if ties == "pessimistic":
        return (won & (equal == 0)).astype(np.float64)
    if ties == "optimistic":
        return won.astype(np.float64)
    return np.where(won, 1.0 / (1.0 + equal), 0.0)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RetrievalAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"scores": datasets.Sequence(datasets.Value("float64"))}),
            reference_urls=["https://www.nature.com/articles/s42256-023-00759-6", "https://arxiv.org/abs/2409.14106"],
        )

    def _compute(self, scores, ties="pessimistic"):
        lengths = {len(row) for row in scores}
        if len(lengths) > 1:
            raise ValueError(f"Every query needs the same number of candidates; got lengths {sorted(lengths)}")
        correct = correct_from_scores(scores, ties)
        return {"accuracy": float(correct.mean()), "num_queries": int(correct.size), "num_candidates": int(lengths.pop())}
