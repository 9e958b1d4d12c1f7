# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Molecular property prediction helpers: data loading and validation, splits, metrics, best-epoch selection, LoRA
configuration and `predict` on new SMILES. Used by `examples/finetune_property.py` and
`benchmarks/bench_property.py`; the model is `FineMolTexForMoleculePropertyPrediction`.

Labels are float arrays (N, T) with NaN for a missing label; classification labels must be 0 or 1.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .hub_access_finemoltex import from_pretrained_kwargs, hub_access

PROBLEM_TYPES = ("multi_label_classification", "regression")
MISSING_SPELLINGS = ("", "nan", "na", "n/a", "none", "null")
SMILES_COLUMN_GUESSES = ("smiles", "mol", "canonical_smiles")
METRIC_NAME = "roc_auc_multitask"

# ------------------------------------------------------------------------------------------------ LoRA
#: LoRA targets (regular expressions, `re.fullmatch` on module names; peft's `target_modules` as a string):
#: the two Linear layers of every GIN layer's MLP, and (with property_pooling="graph_cls") the query, key, value and
#: output projections of the motif-stream self-attention.
LORA_TARGET_GIN = r".*graph_encoder\.layers\.\d+\.mlp\.(0|2)"
LORA_TARGET_MOTIF_ATTENTION = r".*fusion\.motif_layers\.\d+\.attention\.(query|key|value|output)"


def lora_target_modules(config, motif_stream: bool | None = None) -> str:
    """`target_modules` regex for `config`: GIN MLPs, plus the motif-stream attention when the model has one
    (`property_pooling="graph_cls"`; `motif_stream` overrides)."""
    if motif_stream is None:
        motif_stream = config.property_pooling == "graph_cls"
    return f"({LORA_TARGET_GIN})|({LORA_TARGET_MOTIF_ATTENTION})" if motif_stream else LORA_TARGET_GIN


def lora_modules_to_save(config) -> list[str]:
    """Modules trained in full and saved with the adapter: the head (`classifier`) and the GIN BatchNorms (their
    running statistics move during fine-tuning, so an adapter without them would not reproduce predictions)."""
    return ["classifier", *[f"graph_encoder.layers.{i}.norm" for i in range(config.gnn_num_layers)]]


def lora_config(config, r: int = 8, alpha: int = 16, dropout: float = 0.0, motif_stream: bool | None = None, **kwargs):
    """A `peft.LoraConfig` for `FineMolTexForMoleculePropertyPrediction` (see `lora_target_modules`,
    `lora_modules_to_save`). `kwargs` go to `LoraConfig`."""
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_target_modules(config, motif_stream),
        modules_to_save=lora_modules_to_save(config),
        **kwargs,
    )


# ------------------------------------------------------------------------------------------------ learning rates
#: The motif stream of a `property_pooling="graph_cls"` model (motif embeddings and transformer), by parameter name,
#: plain or inside a peft wrapper (`base_model.model.finemoltex.fusion...`).
MOTIF_STREAM_PARAMETER = re.compile(r"(.*\.)?finemoltex\.(motif_embeddings|fusion)\..+")


def give_motif_stream_its_learning_rate(optimizer, model, learning_rate: float) -> int:
    """Moves the motif-stream parameters (`MOTIF_STREAM_PARAMETER`) of each param group of `optimizer` into a group
    of their own with `learning_rate`; the groups keep their other settings (weight decay, betas). Call it before the
    first step and before the scheduler is made (a scheduler records each group's starting rate). Returns how many
    parameter tensors moved; 0 when `model` has no motif stream (`atom_mean` pooling)."""
    if not learning_rate > 0:
        raise ValueError(f"the motif-stream learning rate must be > 0, got {learning_rate}")
    if optimizer.state:
        raise ValueError("the optimizer has stepped already: split its groups before training")
    is_motif = {id(p): bool(MOTIF_STREAM_PARAMETER.fullmatch(name)) for name, p in model.named_parameters()}
    groups, moved = [], 0
    for group in optimizer.param_groups:
        motif = [p for p in group["params"] if is_motif.get(id(p), False)]
        rest = [p for p in group["params"] if not is_motif.get(id(p), False)]
        moved += len(motif)
        groups += [{**group, "params": rest}, {**group, "params": motif, "lr": learning_rate}]
    optimizer.param_groups.clear()
    for group in groups:
        if group["params"]:
            optimizer.add_param_group(group)
    return moved


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


# ------------------------------------------------------------------------------------------------ metrics maths
def rankdata_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (scipy.stats.rankdata(method="average"))."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [values.size]])
    average = (starts + stops + 1) / 2.0  # mean of 1-based ranks start+1 .. stop
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(average, stops - starts)
    return ranks


def binary_roc_auc(labels, scores) -> float:
    """ROC-AUC of one binary task from the rank statistic (Mann–Whitney U; tied scores count 1/2). NaN when the
    labels do not contain both classes. Labels must be 0/1 (no NaN: mask first)."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((labels == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata_average(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def multitask_roc_auc(references, predictions) -> dict:
    """Per-task ROC-AUC with NaN labels masked, and the mean over the tasks that have both classes.

    references, predictions: (N, T) (or (N,) for one task). Returns ``roc_auc`` (mean over valid tasks, NaN if
    none), ``roc_auc_per_task`` (NaN for a task without both classes), ``num_valid_tasks``, ``num_tasks``.
    Kept in sync with ``metrics/roc_auc_multitask`` (a test checks)."""
    y = np.asarray(references, dtype=np.float64)
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
        "num_tasks": y.shape[1],
    }


def regression_metrics(references, predictions) -> dict:
    """MAE and RMSE per task over observed (non-NaN) labels and their means over tasks (original units)."""
    y = np.asarray(references, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    if y.ndim == 1:
        y, p = y[:, None], p[:, None]
    mae, rmse = [], []
    for t in range(y.shape[1]):
        keep = ~np.isnan(y[:, t])
        err = p[keep, t] - y[keep, t]
        mae.append(float(np.abs(err).mean()) if keep.any() else math.nan)
        rmse.append(float(np.sqrt((err**2).mean())) if keep.any() else math.nan)
    return {
        "mae": float(np.nanmean(mae)) if not all(map(math.isnan, mae)) else math.nan,
        "rmse": float(np.nanmean(rmse)) if not all(map(math.isnan, rmse)) else math.nan,
        "mae_per_task": mae,
        "rmse_per_task": rmse,
    }


def metric_path(name: str = METRIC_NAME) -> Path:
    """Folder of the local evaluate module: ``$FINEMOLTEX_METRICS_DIR``, the package's ``metrics/``, or the
    repository's ``metrics/`` (source checkout / editable install)."""
    here = Path(__file__).resolve().parent
    roots = [Path(os.environ["FINEMOLTEX_METRICS_DIR"])] if os.environ.get("FINEMOLTEX_METRICS_DIR") else []
    roots += [here / "metrics", here.parent / "metrics"]
    for root in roots:
        if (root / name / f"{name}.py").is_file():
            return root / name
    raise FileNotFoundError(
        f"Local evaluate module {name!r} not found in {', '.join(map(str, roots))}; set FINEMOLTEX_METRICS_DIR."
    )


def load_roc_auc_metric(**kwargs):
    """``evaluate.load`` of the shipped ``roc_auc_multitask`` module (offline; in memory by default)."""
    import evaluate

    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(metric_path()), **kwargs)


def select_best_epoch(history: Sequence[dict], metric: str, greater_is_better: bool = True) -> dict:
    """The record of `history` (one dict per evaluated epoch) with the best `metric`; the first one on ties.
    NaN values never win. The FineMolTex authors' classification script initialises the best-epoch index to 0 and
    never updates it (the update is commented out), so it reports the *first* epoch; this function updates it."""
    best, best_value = None, None
    for record in history:
        value = record.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if best is None or (value > best_value if greater_is_better else value < best_value):
            best, best_value = record, value
    if best is None:
        raise ValueError(f"No evaluation in the history has a value for {metric!r}.")
    return best


def mean_std(values: Sequence[float]) -> dict:
    """Mean and (population, as in MoleculeSTM's reports) standard deviation, NaNs ignored."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


# ------------------------------------------------------------------------------------------------ data
@dataclass
class PropertyData:
    """A property table after loading: kept rows only.

    smiles: the SMILES as written in the file; labels: float (N, T), NaN = missing; tasks: task column names;
    source_rows: 0-based data row in the file of each kept row; dropped: (row, SMILES, reason) of unparsable rows;
    split: per kept row "train"/"validation"/"test" when the file has a split column, else None."""

    path: str
    smiles: list[str]
    labels: np.ndarray
    tasks: list[str]
    source_rows: list[int]
    dropped: list[tuple[int, str, str]] = field(default_factory=list)
    split: list[str] | None = None


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return str(value).strip().lower() in MISSING_SPELLINGS


def parse_label(value: Any, problem_type: str, where: str = "") -> float:
    """One label cell -> float (NaN for missing). Classification: 0/1 only (also "0.0", "1.0", True/False)."""
    if _is_missing(value):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: label {value!r} is not a number (expected 0, 1 or empty)") from None
    if math.isnan(number):
        return math.nan
    if problem_type != "regression" and number not in (0.0, 1.0):
        raise ValueError(
            f"{where}: classification label {value!r} is not 0, 1 or empty (use --problem_type regression for "
            "real-valued tasks)"
        )
    if not math.isfinite(number):
        raise ValueError(f"{where}: label {value!r} is not finite")
    return number


def read_table(path: str | os.PathLike) -> tuple[list[str], dict[str, list]]:
    """CSV/TSV (optionally gzipped) or Parquet -> (column names, columns as lists). CSV cells are strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Property data file not found: {path}")
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        # checked on the schema: pyarrow's own error for a repeated name ("Multiple matches for FieldRef") names no file
        _refuse_duplicated_columns(list(pq.read_schema(path).names), path)
        table = pq.read_table(path)
        return list(table.column_names), {c: table.column(c).to_pylist() for c in table.column_names}
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    handle = io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="") if gzipped else open(
        path, encoding="utf-8-sig", newline=""
    )
    stem = name[:-3] if name.endswith(".gz") else name
    delimiter = "\t" if stem.endswith((".tsv", ".tab", ".txt")) else ","
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
            _refuse_duplicated_columns(header, path)
            rows = [row for row in reader if row]
        except StopIteration:
            raise ValueError(f"{path} is empty (no header line)") from None
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{path} is not UTF-8 text (line {reader.line_num + 1}: {err.reason} at byte {err.start} of its "
                "chunk); re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
            ) from None
    columns: dict[str, list] = {h: [] for h in header}
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"{path}: data row {i} (0-based) has {len(row)} fields, the header has {len(header)}")
        for h, v in zip(header, row):
            columns[h].append(v)
    return header, columns


def _refuse_duplicated_columns(header: list[str], path) -> None:
    """Columns are keyed by name: a repeated name would merge two columns into one list twice as long (misaligned
    labels, or an IndexError further on)."""
    seen, duplicated = set(), []
    for name in header:
        if name in seen and name not in duplicated:
            duplicated.append(name)
        seen.add(name)
    if duplicated:
        raise ValueError(f"{path}: duplicated column name(s) {duplicated} in the header {header}; every column "
                         "needs its own name (rename or delete the repeats)")


def _column(header: list[str], name: str, path, what: str) -> str:
    if name in header:
        return name
    near = [h for h in header if h.lower() == name.lower() or h.strip() == name.strip()]
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ValueError(f"{path}: no {what} named {name!r}{hint}; columns found: {header}")


def load_property_data(
    path: str | os.PathLike,
    smiles_column: str | None = None,
    task_columns: Sequence[str] | None = None,
    problem_type: str = "multi_label_classification",
    split_column: str | None = None,
) -> PropertyData:
    """Read a SMILES + task-columns table, validate labels, drop (and count) unparsable SMILES.

    smiles_column: default the column called smiles / mol (any case). task_columns: default every other column
    except `split_column`, ``id``-like and list columns (e.g. the ``labels`` list of our MoleculeNet Parquet).
    Raises ValueError naming the file, column and row for a missing column, a bad label or no rows left."""
    from .chemistry_finemoltex import MoleculeParseError, parse_smiles

    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    header, columns = read_table(path)
    if smiles_column is None:
        guesses = [h for h in header if h.lower() in SMILES_COLUMN_GUESSES]
        if not guesses:
            raise ValueError(f"{path}: no SMILES column found (looked for {SMILES_COLUMN_GUESSES}); columns found: "
                             f"{header}; pass --smiles_column")
        smiles_column = guesses[0]
    smiles_column = _column(header, smiles_column, path, "SMILES column")
    if split_column is not None:
        split_column = _column(header, split_column, path, "split column")
    if task_columns:
        tasks = [_column(header, t, path, "task column") for t in task_columns]
    else:
        skip = {smiles_column, split_column, "split", "id", "inchikey", "source_smiles", "source_row", "labels",
                "num", "index", "name", "mol_id", ""}
        tasks = [h for h in header if h not in skip and h.lower() not in skip
                 and not any(isinstance(v, (list, tuple)) for v in columns[h])]
        if not tasks:
            raise ValueError(f"{path}: no task columns found; columns found: {header}; pass --task_columns")
    n = len(columns[smiles_column])
    labels = np.full((n, len(tasks)), np.nan)
    for t, task in enumerate(tasks):
        for i, value in enumerate(columns[task]):
            labels[i, t] = parse_label(value, problem_type, f"{path}: row {i} (0-based data row), column {task!r}")
    kept, dropped = [], []
    for i, s in enumerate(columns[smiles_column]):
        try:
            parse_smiles(s)
        except MoleculeParseError as err:
            dropped.append((i, s, str(err)))
            continue
        kept.append(i)
    if not kept:
        detail = f" ({len(dropped)} unparsable SMILES dropped)" if dropped else ""
        raise ValueError(f"{path}: no rows left{detail}; nothing to train or evaluate on (SMILES column {smiles_column!r})")
    if dropped:
        shown = "; ".join(f"row {r}: {s!r}" for r, s, _ in dropped[:5])
        warnings.warn(f"{path}: dropped {len(dropped)} of {n} rows with unparsable SMILES ({shown}"
                      f"{'; ...' if len(dropped) > 5 else ''})", stacklevel=2)
    split = None
    if split_column is not None:
        split = [str(columns[split_column][i]).strip().lower() for i in kept]
        split = [{"valid": "validation", "val": "validation", "dev": "validation"}.get(s, s) for s in split]
        unknown = sorted(set(split) - {"train", "validation", "test"})
        if unknown:
            raise ValueError(f"{path}: column {split_column!r} has values {unknown}; expected train/validation/test")
    return PropertyData(
        path=str(path),
        smiles=[columns[smiles_column][i] for i in kept],
        labels=labels[kept],
        tasks=tasks,
        source_rows=kept,
        dropped=dropped,
        split=split,
    )


def split_data(data: PropertyData, method: str = "scaffold", seed: int = 0,
               fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, list[int]]:
    """Indices (into the kept rows) of train/validation/test: ``scaffold`` (deterministic Bemis–Murcko, Hu et al.
    2020: largest scaffold sets to train; `chemistry_finemoltex.scaffold_split`), ``random`` (seeded) or
    ``predefined`` (the file's split column)."""
    from .chemistry_finemoltex import random_split, scaffold_split

    if method == "scaffold":
        parts = scaffold_split(data.smiles, *fractions)
    elif method == "random":
        parts = random_split(len(data.smiles), fractions, seed)
    elif method == "predefined":
        if data.split is None:
            raise ValueError(f"{data.path}: split method 'predefined' needs a split column (--split_column)")
        parts = [[i for i, s in enumerate(data.split) if s == name] for name in ("train", "validation", "test")]
    else:
        raise ValueError(f"Unknown split method {method!r}: scaffold, random or predefined")
    return dict(zip(("train", "validation", "test"), (list(p) for p in parts)))


def check_split_labels(data: PropertyData, splits: dict[str, list[int]], problem_type: str) -> list[str]:
    """Raise ValueError when a split is empty or a task has no label in a split (it could not be trained or
    evaluated); return warnings for classification tasks with one class only in a split (left out of the mean
    ROC-AUC there)."""
    notes = []
    for name, index in splits.items():
        if not index:
            raise ValueError(f"{data.path}: the {name} split is empty ({len(data.smiles)} rows in all); use more rows")
        labels = data.labels[index]
        for t, task in enumerate(data.tasks):
            column = labels[:, t]
            observed = column[~np.isnan(column)]
            if observed.size == 0:
                raise ValueError(f"{data.path}: task column {task!r} has no labels in the {name} split "
                                 f"({len(index)} rows); drop the task (--task_columns) or change the split")
            if problem_type != "regression" and np.unique(observed).size < 2:
                notes.append(f"task {task!r} has only class {int(observed[0])} in the {name} split: "
                             "no ROC-AUC there (left out of the mean)")
    return notes


def positive_weights(labels: np.ndarray) -> list[float]:
    """Per-task n_negative / n_positive over observed labels (1.0 for a task without positives or negatives)."""
    weights = []
    for t in range(labels.shape[1]):
        column = labels[:, t]
        pos, neg = float(np.sum(column == 1)), float(np.sum(column == 0))
        weights.append(neg / pos if pos > 0 and neg > 0 else 1.0)
    return weights


def standardisation(labels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-task mean and std of the observed labels (std 1.0 where it is 0 or undefined)."""
    mean = np.nanmean(labels, axis=0)
    std = np.nanstd(labels, axis=0)
    std = np.where(~np.isfinite(std) | (std == 0), 1.0, std)
    return [float(v) for v in mean], [float(v) for v in std]


# ------------------------------------------------------------------------------------------------ encoding
def encode_molecules(graph_tokenizer, smiles: Sequence[str]) -> tuple[list[dict], dict[int, str]]:
    """Graph rows (`encode_molecule`; None where it fails) of all SMILES, encoded as one batch; failures (an
    unparsable SMILES, a non-string cell) -> {index: reason}, never raised."""
    failed: dict[int, str] = {}
    columns, kept = graph_tokenizer.encode_batch(list(smiles), ignore_errors=True, errors=failed)
    rows: list = [None] * len(smiles)
    for r, i in enumerate(kept):
        rows[i] = {name: values[r] for name, values in columns.items()}
    return rows, failed


def load_graph_tokenizer(folder: str | os.PathLike | None):
    """The graph tokenizer saved with a model: ``folder/graph_tokenizer`` (processor layout) or ``folder``
    itself; else a tokenizer without motif vocabulary (all motifs [UNK]: the property model does not use motif
    ids unless `use_motif_id_embeddings`)."""
    from .tokenization_finemoltex import FineMolTexGraphTokenizer

    if folder is not None:
        for candidate in (Path(folder) / "graph_tokenizer", Path(folder)):
            if (candidate / "motif_vocab.json").is_file() or (candidate / "tokenizer_config.json").is_file():
                try:
                    return FineMolTexGraphTokenizer.from_pretrained(str(candidate))
                except Exception:  # a text tokenizer at the root, not ours
                    continue
    return FineMolTexGraphTokenizer()


def save_property_model(model, graph_tokenizer, folder: str | os.PathLike) -> Path:
    """Save a fine-tuned property model as a self-contained folder: the model (with its code files and ``auto_map``,
    or a LoRA adapter plus the property config: tasks, problem type, pooling) and ``graph_tokenizer/`` with its own
    code and ``auto_map``. Without the package::

        model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="graph_tokenizer", trust_remote_code=True)
        predictions = model(**tokenizer(["CCO"])).predictions

    (an adapter folder loads onto its recorded base with peft). -> the folder."""
    from .processing_finemoltex import remote_code_registration

    folder = Path(folder)
    model.save_pretrained(folder)
    base = model.get_base_model() if hasattr(model, "get_base_model") else None
    if base is not None:  # peft: the adapter folder gets the property config too
        base.config.save_pretrained(folder)
    with remote_code_registration():  # the tokenizer's code and auto_map travel with it
        graph_tokenizer.save_pretrained(str(folder / "graph_tokenizer"))
    # transformers looks for a sub-folder's remote code at the repository root
    for code in (folder / "graph_tokenizer").glob("*_finemoltex.py"):
        os.replace(code, folder / code.name)
    return folder


@contextlib.contextmanager
def peft_without_deprecation_noise():
    """peft (<= 0.18) reads ``model.is_gradient_checkpointing``, which transformers 5 deprecates with a FutureWarning
    on every LoRA wrap or load; silence exactly that warning, nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def _check_adapter_base(base: str, adapter_file: Path, given: bool) -> None:
    """Fail at once, naming the adapter and its base, when the base is a local path that is not there or a Hub id
    that cannot be fetched offline (instead of transformers' retries and a message about pytorch_model.bin)."""
    if os.path.isdir(base):
        return
    source = "given" if given else f"recorded in {adapter_file}"
    fix = "pass the base checkpoint's folder (base_model_name_or_path=..., or predict_property.py --base_model)"
    if os.path.isabs(base) or base.startswith(("./", "../", "~")):
        raise FileNotFoundError(f"The LoRA adapter's base model {base!r} ({source}) is not a folder here; {fix}.")
    access = hub_access(base)
    if access in ("offline", "no network"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(base, "config.json"), str):
            why = "the Hub is offline (HF_HUB_OFFLINE=1)" if access == "offline" else "there is no network"
            raise FileNotFoundError(
                f"The LoRA adapter's base model {base!r} ({source}) is neither a folder under {os.getcwd()} nor in the "
                f"Hub cache, and {why}; {fix}."
            )


def load_property_model(path: str | os.PathLike, base_model_name_or_path: str | None = None, **kwargs):
    """A fine-tuned property model from `path`: a full `save_pretrained` folder, or a LoRA adapter folder (peft's
    ``adapter_config.json``) with the property ``config.json`` saved beside it (as `examples/finetune_property.py`
    does); the adapter goes onto its base checkpoint (`base_model_name_or_path`, default the one recorded in the
    adapter config). Returns the model in eval mode."""
    import json

    from .modeling_finemoltex import FineMolTexForMoleculePropertyPrediction, expected_load_report

    path = Path(path)
    adapter_file = path / "adapter_config.json"
    if not adapter_file.is_file():
        return FineMolTexForMoleculePropertyPrediction.from_pretrained(str(path), **kwargs).eval()
    from peft import PeftModel

    from .configuration_finemoltex import FineMolTexConfig

    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: a LoRA adapter without the property config.json (tasks, problem type); "
                                "save model.config next to the adapter")
    config = FineMolTexConfig.from_pretrained(str(path))
    base = base_model_name_or_path or json.loads(adapter_file.read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{adapter_file} names no base model; pass base_model_name_or_path")
    _check_adapter_base(base, adapter_file, given=base_model_name_or_path is not None)
    # the base has no trained head yet: the adapter brings it (modules_to_save), so its MISSING rows are expected
    with expected_load_report("classifier."):
        model = FineMolTexForMoleculePropertyPrediction.from_pretrained(
            base, config=config, **{**from_pretrained_kwargs(base, model=True), **kwargs})
    with peft_without_deprecation_noise():
        return PeftModel.from_pretrained(model, str(path)).eval()


@dataclass
class PropertyPredictions:
    """Result of `predict`. predictions: (N, T) probabilities (classification) or values in the training units
    (regression), NaN rows for invalid inputs; invalid: {input index: reason}; tasks: task names."""

    predictions: np.ndarray
    invalid: dict[int, str]
    tasks: list[str]

    def to_records(self, smiles: Sequence[str]) -> list[dict]:
        records = []
        for i, s in enumerate(smiles):
            record = {"index": i, "smiles": s}
            if i in self.invalid:
                record["error"] = self.invalid[i]
            else:
                record.update({task: float(v) for task, v in zip(self.tasks, self.predictions[i])})
            records.append(record)
        return records


def predict(model, smiles: Sequence[str], graph_tokenizer=None, batch_size: int = 64, device=None) -> PropertyPredictions:
    """Per-task probabilities / values for new SMILES. Invalid SMILES are reported by index in
    ``result.invalid`` (their rows are NaN); they never fail the batch. `model`: a
    `FineMolTexForMoleculePropertyPrediction` (or a peft model around one)."""
    import torch

    from .processing_finemoltex import FineMolTexDataCollator

    if isinstance(smiles, str):
        smiles = [smiles]
    smiles = list(smiles)
    if graph_tokenizer is None:
        graph_tokenizer = load_graph_tokenizer(getattr(getattr(model, "config", None), "_name_or_path", None))
    config = model.config
    tasks = [config.id2label[i] for i in range(config.num_labels)]
    rows, invalid = encode_molecules(graph_tokenizer, smiles)
    collator = FineMolTexDataCollator(len(graph_tokenizer.atom_feature_sizes), len(graph_tokenizer.bond_feature_sizes))
    out = np.full((len(smiles), config.num_labels), np.nan)
    valid = [i for i, r in enumerate(rows) if r is not None]
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(valid), batch_size):
                index = valid[start : start + batch_size]
                batch = {k: v.to(device) for k, v in collator([rows[i] for i in index]).items()}
                out[index] = model(**batch).predictions.float().cpu().numpy()
    finally:
        model.train(was_training)
    return PropertyPredictions(out, invalid, tasks)


__all__ = [
    "LORA_TARGET_GIN",
    "LORA_TARGET_MOTIF_ATTENTION",
    "PropertyData",
    "PropertyPredictions",
    "binary_roc_auc",
    "check_split_labels",
    "count_parameters",
    "encode_molecules",
    "load_graph_tokenizer",
    "load_property_data",
    "load_property_model",
    "load_roc_auc_metric",
    "lora_config",
    "lora_modules_to_save",
    "lora_target_modules",
    "mean_std",
    "metric_path",
    "multitask_roc_auc",
    "parse_label",
    "positive_weights",
    "predict",
    "rankdata_average",
    "read_table",
    "regression_metrics",
    "save_property_model",
    "select_best_epoch",
    "split_data",
    "standardisation",
]
