# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Multi-task ROC-AUC with missing labels (MoleculeNet protocol of Hu et al. 2020 / MoleculeSTM / FineMolTex).

A local `evaluate` module (Hub metrics cannot load offline): ``evaluate.load("metrics/roc_auc_multitask")``.
Self-contained on purpose (numpy only, no scikit-learn), so `evaluate` can copy it into its module cache.
"""

import math

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
ROC-AUC of each binary task, from the rank statistic (Mann-Whitney U: the probability that a random positive
scores above a random negative, tied scores counting 1/2, i.e. average ranks for ties, as scikit-learn's
`roc_auc_score`). Missing labels (NaN or None in `references`) are left out task by task. A task whose observed
labels in the evaluated split do not contain both classes has no ROC-AUC (NaN) and is left out of the mean, as
in Hu et al. 2020's `eval` (which, like MoleculeSTM, also prints how many tasks were left out).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `list` of `float`): per molecule, one score per task (probability or logit: only the
        order matters).
    references (`list` of `list` of `float`): per molecule, one label per task: 0, 1, or NaN/None for missing.
    task_names (`list` of `str`, optional): names for `roc_auc_per_task_named`.
Returns:
    roc_auc (`float`): mean over the tasks with both classes (NaN if there is none),
    roc_auc_per_task (`list` of `float`, NaN for a task without both classes),
    num_valid_tasks (`int`), num_tasks (`int`), and roc_auc_per_task_named (`dict`) when task_names are given.
Examples:
    >>> metric = evaluate.load("metrics/roc_auc_multitask")
    >>> metric.compute(predictions=[[0.9], [0.2], [0.6]], references=[[1], [0], [0]])["roc_auc"]
    1.0
"""

_CITATION = """\
@inproceedings{hu2020strategies,
  title={Strategies for Pre-training Graph Neural Networks},
  author={Hu, Weihua and Liu, Bowen and Gomes, Joseph and Zitnik, Marinka and Liang, Percy and Pande, Vijay and
          Leskovec, Jure},
  booktitle={ICLR},
  year={2020}
}
"""


def rankdata_average(values):
    """1-based ranks, ties get their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [values.size]])
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + stops + 1) / 2.0, stops - starts)
    return ranks


def binary_roc_auc(labels, scores):
    """ROC-AUC of one task (labels 0/1, no NaN); NaN without both classes."""
    labels = np.asarray(labels, dtype=np.float64)
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((labels == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata_average(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def multitask_roc_auc(references, predictions):
    """(N, T) labels (NaN = missing) and scores -> dict (kept in sync with
    `modeling_finemoltex.property_finemoltex.multitask_roc_auc`; a test checks)."""
    y = np.asarray([[math.nan if v is None else v for v in row] for row in references], dtype=np.float64)
    s = np.asarray(predictions, dtype=np.float64)
    if y.ndim == 1:
        y, s = y[:, None], s[:, None]
    if y.shape != s.shape:
        raise ValueError(f"references {y.shape} and predictions {s.shape} must have the same shape (N, T)")
    observed = ~np.isnan(y)
    if np.isnan(s[observed]).any():
        raise ValueError("predictions contain NaN where a label is observed")
    bad = observed & (y != 0) & (y != 1)
    if bad.any():
        row, task = np.argwhere(bad)[0]
        raise ValueError(f"references must be 0, 1 or NaN; got {y[row, task]!r} at row {row}, task {task}")
    per_task = [binary_roc_auc(y[observed[:, t], t], s[observed[:, t], t]) for t in range(y.shape[1])]
    valid = [a for a in per_task if not math.isnan(a)]
    return {
        "roc_auc": float(np.mean(valid)) if valid else math.nan,
        "roc_auc_per_task": per_task,
        "num_valid_tasks": len(valid),
        "num_tasks": int(y.shape[1]),
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RocAucMultitask(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
            reference_urls=["https://arxiv.org/abs/1905.12265", "https://arxiv.org/abs/2409.14106"],
        )

    def _compute(self, predictions, references, task_names=None):
        result = multitask_roc_auc(references, predictions)
        if task_names is not None:
            if len(task_names) != result["num_tasks"]:
                raise ValueError(f"{len(task_names)} task names for {result['num_tasks']} tasks")
            result["roc_auc_per_task_named"] = dict(zip(task_names, result["roc_auc_per_task"]))
        return result
