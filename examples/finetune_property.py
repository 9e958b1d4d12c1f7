#!/usr/bin/env python
# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune FineMolTex for molecular property prediction (MoleculeNet protocol) with the Hugging Face `Trainer`.

    python examples/finetune_property.py --data_file ../shared/data/moleculenet/bbbp.csv \\
        --model_name_or_path ./finemoltex --output_dir runs/bbbp                     # full fine-tuning, 3 seeds
    accelerate launch examples/finetune_property.py --data_file clintox.csv.gz --model_name_or_path ./finemoltex \\
        --lora --output_dir runs/clintox_lora                                         # LoRA adapters + head
    python examples/finetune_property.py --data_file bace.csv --from_scratch_preset small --output_dir runs/scratch
    python examples/finetune_property.py --data_file esol.csv --task_columns "measured log solubility" \\
        --problem_type regression --from_scratch_preset small --output_dir runs/esol

Data: any CSV/TSV (optionally gzipped) or Parquet with a SMILES column (``--smiles_column``, default ``smiles`` /
``mol``) and task columns (``--task_columns``, names may contain commas and spaces; default every other column).
Classification labels must be 0, 1 or empty (missing, masked out of loss and metrics). Unparsable SMILES are
dropped and counted at load. Errors name the file, the column and the row.

Split: ``scaffold`` (default; deterministic Bemis–Murcko 80/10/10, largest scaffold sets in train: Hu et al. 2020,
as MoleculeSTM and FineMolTex — the same split for every seed), ``random`` (seeded by ``--split_seed``, else by each
run's seed) or ``predefined`` (the file's ``split`` column, e.g. our MoleculeNet Parquet).

Each seed trains for ``--num_train_epochs``, evaluating validation and test after every epoch; the reported test
metric is the one at the epoch with the best validation metric (ROC-AUC mean over tasks with both classes, or
RMSE for regression). (The authors' classification script never updates its best-epoch index, which stays at 0, so
it reports the first epoch.) ROC-AUC comes from the local evaluate module ``metrics/roc_auc_multitask``. Results (per seed, per task, mean ± std over
seeds, parameter counts, time and peak memory) go to ``<output_dir>/results.json``, rewritten after every seed;
each seed's own result goes to ``<output_dir>/seed_<s>/result.json`` as soon as it finishes, and a later run with the
same settings reads it back instead of training that seed again (``--rerun_finished_seeds true`` to retrain), so a
killed run loses at most the seed it was in. A progress bar per seed shows epochs, the validation metric and the
time left (``--progress false`` to hide it). For a first look on a CPU: ``--seeds 0 --num_train_epochs 10``.

Full fine-tuning by default; ``--lora`` trains LoRA adapters on the GIN MLPs (and the motif-stream attention with
``--property_pooling graph_cls``) plus the head and the GIN BatchNorms (`property_finemoltex.lora_config`).
With ``graph_cls`` the motif stream is fine-tuned as well, by default at the GIN's rate; ``--motif_stream_learning_rate``
gives it a rate of its own.
``--save_model`` saves the best-validation model of each seed (LoRA: the adapter only) and the graph tokenizer
under ``<output_dir>/seed_<s>/``; ``--predict_smiles`` then runs `predict` on new SMILES with it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed  # noqa: E402
from transformers.trainer_callback import PrinterCallback  # noqa: E402

import modeling_finemoltex  # noqa: E402,F401  (registers the auto classes)
from modeling_finemoltex import FineMolTexConfig, FineMolTexForMoleculePropertyPrediction  # noqa: E402
from modeling_finemoltex.arguments_finemoltex import run_script, script_parser  # noqa: E402
from modeling_finemoltex.hub_access_finemoltex import from_pretrained_kwargs, load_error  # noqa: E402
from modeling_finemoltex.processing_finemoltex import FineMolTexDataCollator  # noqa: E402
from modeling_finemoltex.trainer_finemoltex import format_log  # noqa: E402
from modeling_finemoltex.property_finemoltex import (  # noqa: E402
    PROBLEM_TYPES,
    check_split_labels,
    count_parameters,
    encode_molecules,
    give_motif_stream_its_learning_rate,
    load_graph_tokenizer,
    load_property_data,
    load_roc_auc_metric,
    lora_config,
    mean_std,
    peft_without_deprecation_noise,
    positive_weights,
    predict,
    regression_metrics,
    save_property_model,
    select_best_epoch,
    split_data,
    standardisation,
)

logger = logging.getLogger("finetune_property")


@dataclass
class PropertyArguments:
    data_file: str = field(metadata={"help": "CSV/TSV (optionally .gz) or Parquet with SMILES and task columns."})
    output_dir: str = field(default="runs/property", metadata={"help": "Where results.json (and models) go."})
    smiles_column: Optional[str] = field(default=None, metadata={"help": "SMILES column (default smiles / mol)."})
    task_columns: Optional[list[str]] = field(default=None, metadata={
        "help": "Task columns, space-separated (quote names with spaces); default: all other columns."})
    problem_type: str = field(default="multi_label_classification", metadata={
        "help": "multi_label_classification (binary tasks) or regression.", "choices": list(PROBLEM_TYPES)})
    split_method: str = field(default="scaffold", metadata={
        "help": "scaffold, random or predefined (the file's split column).",
        "choices": ["scaffold", "random", "predefined"]})
    split_column: Optional[str] = field(default=None, metadata={
        "help": "Split column for --split_method predefined (default: split)."})
    split_seed: Optional[int] = field(default=None, metadata={
        "help": "Seed of the random split (default: each run's seed)."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "One training run per seed."})
    max_rows: Optional[int] = field(default=None, metadata={"help": "Use only the first N rows (quick tests)."})

    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "A saved FineMolTex folder (pre-training or base model; e.g. examples/pretrain.py's output)."})
    graph_model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "A GIN loaded into the graph tower before fine-tuning: a state dict in the pretrain-gnns layout "
                "(pretrain-gnns or GraphMVP checkpoints; needs the reference features) or an output folder of "
                "examples/pretrain_graph.py (or its model.safetensors)."})
    from_scratch_preset: Optional[str] = field(default=None, metadata={
        "help": "Train from random weights with this preset (paper, small, tiny) instead.",
        "choices": [None, "paper", "small", "tiny"]})
    config_overrides: Optional[str] = field(default=None, metadata={
        "help": 'JSON object of config fields for --from_scratch_preset, e.g. \'{"gnn_hidden_size": 128}\'.'})
    property_pooling: str = field(default="atom_mean", metadata={
        "help": "atom_mean (mean of the GIN atom states: MoleculeSTM's MoleculeNet protocol) or graph_cls (the motif-stream "
                "[CLS] state: what the FineMolTex authors fine-tune).",
        "choices": ["atom_mean", "graph_cls"]})
    motif_stream_learning_rate: Optional[float] = field(default=None, metadata={
        "help": "With --property_pooling graph_cls: a learning rate of its own for the motif stream (motif "
                "embeddings and transformer), pre-trained at about 1e-4; default --learning_rate, as the GIN."})
    property_dropout: float = field(default=0.0, metadata={"help": "Dropout before the head."})
    gnn_dropout: Optional[float] = field(default=None, metadata={"help": "GIN dropout (default: the checkpoint's)."})
    pos_weight: bool = field(default=False, metadata={
        "help": "Weight positives by n_neg/n_pos of the training split per task (class imbalance)."})

    lora: bool = field(default=False, metadata={"help": "LoRA adapters instead of full fine-tuning."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})

    num_train_epochs: int = field(default=100, metadata={"help": "Epochs per seed (MoleculeSTM: 100)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size (MoleculeSTM: 32)."})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "Evaluation batch size."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam(W) learning rate (MoleculeSTM: 1e-3)."})
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Scheduler (MoleculeSTM: constant)."})
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast (GPU)."})
    use_cpu: bool = field(default=False, metadata={"help": "Train on the CPU even when a GPU is present."})
    save_model: bool = field(default=False, metadata={"help": "Save each seed's best-validation model."})
    predict_smiles: Optional[list[str]] = field(default=None, metadata={
        "help": "After training, predict these SMILES with the first seed's best model (prints JSON)."})
    results_file: Optional[str] = field(default=None, metadata={"help": "Default <output_dir>/results.json."})
    progress: bool = field(default=True, metadata={
        "help": "A progress bar per seed (epochs, validation metric, time left)."})
    rerun_finished_seeds: bool = field(default=False, metadata={
        "help": "Train seeds again whose <output_dir>/seed_<s>/result.json (same settings) exists; by default they "
                "are read back, so a killed run continues with the next seed."})


# ------------------------------------------------------------------------------------------------ helpers
class PropertyTrainer(Trainer):
    """`Trainer` whose optimizer gives the motif stream its own learning rate (`--motif_stream_learning_rate`);
    without one, the plain `Trainer`."""

    def __init__(self, *args, motif_stream_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.motif_stream_learning_rate = motif_stream_learning_rate

    def create_optimizer(self, model=None):
        new = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if new and self.motif_stream_learning_rate is not None:
            moved = give_motif_stream_its_learning_rate(optimizer, self.model if model is None else model,
                                                        self.motif_stream_learning_rate)
            if not moved:
                raise ValueError("--motif_stream_learning_rate: the model has no trainable motif stream "
                                 "(it needs --property_pooling graph_cls)")
        return optimizer


class BestStateCallback(TrainerCallback):
    """Keeps a CPU copy of the trainable state at the best validation metric (restored at the end of training),
    so the saved / returned model is the best-validation one, not the last."""

    def __init__(self, metric_key: str, greater_is_better: bool):
        self.metric_key, self.greater_is_better = metric_key, greater_is_better
        self.best_value, self.best_state, self.best_epoch = None, None, None

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        value = (metrics or {}).get(self.metric_key)
        if value is None or model is None or (isinstance(value, float) and math.isnan(value)):
            return
        if self.best_value is None or (value > self.best_value if self.greater_is_better else value < self.best_value):
            self.best_value, self.best_epoch = value, state.epoch
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def restore(self, model):
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class SeedProgress(TrainerCallback):
    """A tqdm bar over one seed's epochs ("seed 2/3"), with the last validation metric and tqdm's time left."""

    def __init__(self, label: str, epochs: int, metric_key: str, enabled: bool):
        self.label, self.epochs, self.metric_key, self.enabled = label, epochs, metric_key, enabled
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.enabled and state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs, desc=self.label, unit="epoch", dynamic_ncols=True)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.bar is not None and metrics and self.metric_key in metrics:
            self.bar.set_postfix_str(f"{self.metric_key.removeprefix('eval_')} {metrics[self.metric_key]:.4f}")

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None and logs and state.is_world_process_zero:  # no bar: one readable line per log instead
            logger.info("%s, epoch %g: %s", self.label, state.epoch or 0, format_log(logs))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# settings a finished seed's result does not depend on (where things go, what else runs); --save_model counts (a
# read-back seed saves no model), and --predict_smiles always trains (predictions need the model)
_NOT_RESULT_SETTINGS = ("seeds", "output_dir", "results_file", "progress", "rerun_finished_seeds", "predict_smiles")


def result_settings(args) -> dict:
    """The arguments a seed's result depends on (stored with it; a re-run reuses the result only if they match)."""
    return {k: v for k, v in asdict(args).items() if k not in _NOT_RESULT_SETTINGS}


def finished_seed(run_dir: Path, args) -> dict | None:
    """A seed's stored record ({settings, parameters, run}) when it exists with the same settings (else None; one
    with other settings is logged and trained again)."""
    path = run_dir / "result.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("%s is unreadable; training this seed again", path)
        return None
    if stored.get("settings") != json.loads(json.dumps(result_settings(args), default=str)):
        logger.warning("%s was made with other settings; training this seed again", path)
        return None
    return stored


def make_compute_metrics(problem_type: str, tasks: list[str]):
    """Trainer `compute_metrics`: ROC-AUC through the local evaluate module, or MAE/RMSE (original units)."""
    metric = load_roc_auc_metric() if problem_type != "regression" else None

    def compute_metrics(eval_pred):
        outputs = eval_pred.predictions
        predictions = outputs[1] if isinstance(outputs, (tuple, list)) else outputs  # (logits, predictions)
        labels = np.asarray(eval_pred.label_ids, dtype=np.float64).reshape(predictions.shape)
        if problem_type == "regression":
            result = regression_metrics(labels, predictions)
            out = {"rmse": result["rmse"], "mae": result["mae"]}
            for i in range(len(tasks)):
                out[f"rmse_task_{i}"] = result["rmse_per_task"][i]
                out[f"mae_task_{i}"] = result["mae_per_task"][i]
            return out
        result = metric.compute(predictions=predictions.tolist(), references=labels.tolist())
        out = {"roc_auc": result["roc_auc"], "num_valid_tasks": result["num_valid_tasks"]}
        for i, value in enumerate(result["roc_auc_per_task"]):
            out[f"roc_auc_task_{i}"] = value
        return out

    return compute_metrics


def epoch_history(log_history: list[dict]) -> list[dict]:
    """Trainer log entries merged per epoch: {"epoch", "validation": {...}, "test": {...}, "train_loss"}."""
    by_epoch: dict[float, dict] = {}
    for entry in log_history:
        epoch = entry.get("epoch")
        if epoch is None:
            continue
        record = by_epoch.setdefault(round(float(epoch), 4), {"epoch": round(float(epoch), 4)})
        for key, value in entry.items():
            for split in ("validation", "test"):
                prefix = f"eval_{split}_"
                if key.startswith(prefix):
                    record.setdefault(split, {})[key[len(prefix):]] = value
            if key == "loss":
                record["train_loss"] = value
    return [r for _, r in sorted(by_epoch.items()) if "validation" in r]


def _name_tasks(metrics: dict, tasks: list[str]) -> dict:
    """`roc_auc_task_3` -> `roc_auc/<task name>` for the JSON report."""
    out = {}
    for key, value in metrics.items():
        head, sep, index = key.rpartition("_task_")
        out[f"{head}/{tasks[int(index)]}" if sep and index.isdigit() else key] = value
    return out


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (MB): VmHWM (reset by exec, unlike ru_maxrss, which a child started
    by a large parent inherits), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def build_model(args: PropertyArguments, tasks: list[str], extra: dict):
    """A fresh property model: from `model_name_or_path` (pre-trained graph tower + new head) or a preset."""
    kwargs = dict(
        problem_type=args.problem_type,
        property_pooling=args.property_pooling,
        property_dropout=args.property_dropout,
        id2label={i: t for i, t in enumerate(tasks)},
        label2id={t: i for i, t in enumerate(tasks)},
        **extra,
    )
    if args.gnn_dropout is not None:
        kwargs["gnn_dropout"] = args.gnn_dropout
    if args.model_name_or_path:
        name = args.model_name_or_path
        try:
            return FineMolTexForMoleculePropertyPrediction.from_pretrained(name, **kwargs, **from_pretrained_kwargs(name, model=True))
        except OSError as err:
            raise load_error("the pre-trained checkpoint", name, err, hint=(
                "Pass the folder examples/pretrain.py wrote, or a Hub id with network access.")) from None
    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    config = FineMolTexConfig.from_preset(args.from_scratch_preset, **{**overrides, **kwargs})
    return FineMolTexForMoleculePropertyPrediction(config)


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    parser = script_parser(PropertyArguments, description=__doc__)
    if argv is not None and len(argv) == 1 and argv[0].endswith(".json"):
        (args,) = parser.parse_json_file(argv[0])
    else:
        (args,) = parser.parse_args_into_dataclasses(args=argv)
    if bool(args.model_name_or_path) == bool(args.from_scratch_preset):
        raise ValueError("Pass exactly one of --model_name_or_path (pre-trained) and --from_scratch_preset.")
    if args.model_name_or_path and os.path.isdir(args.model_name_or_path):
        # a local base travels as an absolute path: a LoRA adapter records it, and is loaded from other folders
        args.model_name_or_path = os.path.abspath(args.model_name_or_path)
    if args.config_overrides and not args.from_scratch_preset:
        raise ValueError("--config_overrides applies to --from_scratch_preset only (a checkpoint has its own config).")
    if not args.seeds:
        raise ValueError("--seeds needs at least one seed.")
    if args.motif_stream_learning_rate is not None and args.property_pooling != "graph_cls":
        raise ValueError("--motif_stream_learning_rate applies to --property_pooling graph_cls only (atom_mean "
                         "fine-tunes no motif stream).")
    regression = args.problem_type == "regression"

    # ---- data: load, validate, drop unparsable SMILES, encode once
    split_column = args.split_column or ("split" if args.split_method == "predefined" else None)
    data = load_property_data(args.data_file, args.smiles_column, args.task_columns, args.problem_type, split_column)
    if args.max_rows is not None:
        keep = [i for i, r in enumerate(data.source_rows) if r < args.max_rows]
        data.smiles, data.labels = [data.smiles[i] for i in keep], data.labels[keep]
        data.source_rows = [data.source_rows[i] for i in keep]
        data.split = [data.split[i] for i in keep] if data.split is not None else None
        data.dropped = [d for d in data.dropped if d[0] < args.max_rows]
        if not keep:
            raise ValueError(f"{args.data_file}: no rows left among the first {args.max_rows}")
    graph_tokenizer = load_graph_tokenizer(args.model_name_or_path)
    rows, failed = encode_molecules(graph_tokenizer, data.smiles)
    if failed:  # parsed but could not be encoded: drop and count as well
        keep = [i for i in range(len(rows)) if i not in failed]
        data.dropped += [(data.source_rows[i], data.smiles[i], reason) for i, reason in failed.items()]
        data.smiles, data.labels = [data.smiles[i] for i in keep], data.labels[keep]
        data.source_rows = [data.source_rows[i] for i in keep]
        data.split = [data.split[i] for i in keep] if data.split is not None else None
        rows = [rows[i] for i in keep]
    logger.info("%s: %d molecules kept, %d rows dropped (unparsable SMILES); tasks: %s", args.data_file,
                len(data.smiles), len(data.dropped), data.tasks)

    metric_name = "rmse" if regression else "roc_auc"
    greater_is_better = not regression
    collator = FineMolTexDataCollator(len(graph_tokenizer.atom_feature_sizes), len(graph_tokenizer.bond_feature_sizes))
    compute_metrics = make_compute_metrics(args.problem_type, data.tasks)
    output_dir = Path(args.output_dir)
    results_file = Path(args.results_file) if args.results_file else output_dir / "results.json"
    main_process = int(os.environ.get("RANK", "0")) == 0
    runs, notes, split_sizes = [], [], {}
    parameters = None
    for seed_number, seed in enumerate(args.seeds, start=1):
        run_dir = output_dir / f"seed_{seed}"
        stored = None if args.rerun_finished_seeds or args.predict_smiles else finished_seed(run_dir, args)
        if stored is not None:
            logger.info("seed %d: finished before (%s); read back (--rerun_finished_seeds true trains it again)", seed,
                        run_dir / "result.json")
            runs.append(stored["run"])
            parameters = parameters or stored["parameters"]
            continue
        split_seed = args.split_seed if args.split_seed is not None else seed
        splits = split_data(data, args.split_method, split_seed)
        split_notes = check_split_labels(data, splits, args.problem_type)
        notes += [n for n in split_notes if n not in notes]
        if not regression:
            valid_tasks = [t for t in range(len(data.tasks))
                           if np.unique(data.labels[splits["validation"], t][~np.isnan(data.labels[splits["validation"], t])]).size == 2]
            if not valid_tasks:
                raise ValueError(f"{args.data_file}: no task has both classes in the validation split; the best epoch "
                                 "cannot be chosen (use a random split or more rows)")
        split_sizes = {k: len(v) for k, v in splits.items()}
        datasets = {
            name: [dict(rows[i], labels=[float(v) for v in data.labels[i]]) for i in index]
            for name, index in splits.items()
        }
        train_labels = data.labels[splits["train"]]
        extra = {}
        if args.pos_weight and not regression:
            extra["property_pos_weight"] = positive_weights(train_labels)
        if regression:
            extra["regression_mean"], extra["regression_std"] = standardisation(train_labels)

        set_seed(seed)
        model = build_model(args, data.tasks, extra)
        if args.graph_model_name_or_path:
            logger.info("Graph tower: %s", modeling_finemoltex.load_gin_checkpoint(model, args.graph_model_name_or_path))
        if args.lora:
            from peft import get_peft_model

            with peft_without_deprecation_noise():
                model = get_peft_model(model, lora_config(model.config, args.lora_r, args.lora_alpha, args.lora_dropout))
        trainable, total = count_parameters(model)
        parameters = {"trainable": trainable, "total": total, "trainable_share": trainable / total}

        training_args = TrainingArguments(
            output_dir=str(run_dir),
            seed=seed,
            num_train_epochs=args.num_train_epochs,
            per_device_train_batch_size=args.per_device_train_batch_size,
            per_device_eval_batch_size=args.per_device_eval_batch_size,
            learning_rate=args.learning_rate,
            weight_decay=args.weight_decay,
            lr_scheduler_type=args.lr_scheduler_type,
            eval_strategy="epoch",
            logging_strategy="epoch",
            save_strategy="no",
            report_to="none",
            remove_unused_columns=False,
            label_names=["labels"],
            disable_tqdm=True,
            bf16=args.bf16,
            use_cpu=args.use_cpu,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
        )
        best_state = BestStateCallback(f"eval_validation_{metric_name}", greater_is_better) if (
            args.save_model or args.predict_smiles) else None
        progress = SeedProgress(f"seed {seed} ({seed_number}/{len(args.seeds)})", args.num_train_epochs,
                                f"eval_validation_{metric_name}", args.progress)
        trainer = PropertyTrainer(
            model=model,
            motif_stream_learning_rate=args.motif_stream_learning_rate,
            args=training_args,
            train_dataset=datasets["train"],
            eval_dataset={"validation": datasets["validation"], "test": datasets["test"]},
            data_collator=collator,
            compute_metrics=compute_metrics,
            callbacks=[progress] + ([best_state] if best_state else []),
        )
        trainer.pop_callback(PrinterCallback)  # per-epoch dicts of quoted numbers: the bar (or log lines) instead
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        rss_before = _peak_rss_mb()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*max_motifs.*")
            trainer.train()
        elapsed = time.perf_counter() - start
        history = epoch_history(trainer.state.log_history)
        best = select_best_epoch(
            [{"epoch": r["epoch"], metric_name: r["validation"].get(metric_name), "record": r} for r in history],
            metric_name, greater_is_better,
        )["record"]
        run = {
            "seed": seed,
            "split_seed": split_seed if args.split_method == "random" else None,
            "best_epoch": best["epoch"],
            "validation": _name_tasks(best["validation"], data.tasks),
            "test": _name_tasks(best.get("test", {}), data.tasks),
            "last_epoch_test": _name_tasks(history[-1].get("test", {}), data.tasks) if history else {},
            "train_time_s": elapsed,
            "peak_rss_mb": _peak_rss_mb(),
            "peak_rss_before_training_mb": rss_before,
            "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "history": [{"epoch": r["epoch"], "train_loss": r.get("train_loss"),
                         f"validation_{metric_name}": r["validation"].get(metric_name),
                         f"test_{metric_name}": r.get("test", {}).get(metric_name)} for r in history],
        }
        if best_state is not None:
            best_state.restore(trainer.model)
            if args.save_model and trainer.is_world_process_zero():
                save_property_model(trainer.model, graph_tokenizer, run_dir / "model")
                run["model_dir"] = str(run_dir / "model")
            if args.predict_smiles and not runs:
                result = predict(trainer.model, args.predict_smiles, graph_tokenizer)
                run["predictions"] = result.to_records(args.predict_smiles)
        runs.append(run)
        logger.info("seed %d: best epoch %s, validation %s %.4f, test %s %.4f (%.1f s)", seed, best["epoch"],
                    metric_name, best["validation"].get(metric_name, math.nan), metric_name,
                    best.get("test", {}).get(metric_name, math.nan), elapsed)
        if main_process:  # written at once: a killed run keeps its finished seeds (and a re-run skips them)
            run_dir.mkdir(parents=True, exist_ok=True)
            record = {"settings": result_settings(args), "parameters": parameters, "run": run}
            (run_dir / "result.json").write_text(json.dumps(record, indent=2, default=float))
            write_results(results_file, collect_results(args, data, runs, notes, split_sizes, parameters, metric_name))

    results = collect_results(args, data, runs, notes, split_sizes, parameters, metric_name)
    if main_process:
        write_results(results_file, results)
        s = results["summary"][f"test_{metric_name}"]
        print(f"{Path(args.data_file).name}: test {metric_name} {s['mean']:.4f} ± {s['std']:.4f} over {s['n']} seeds "
              f"(best-validation epoch); results in {results_file}")
    return results


def collect_results(args, data, runs: list[dict], notes: list[str], split_sizes: dict, parameters, metric_name: str) -> dict:
    """results.json: the runs so far and their mean ± std."""
    summary = {
        f"test_{metric_name}": mean_std([r["test"].get(metric_name, math.nan) for r in runs]),
        f"validation_{metric_name}": mean_std([r["validation"].get(metric_name, math.nan) for r in runs]),
        "train_time_s": mean_std([r["train_time_s"] for r in runs]),
    }
    for task in data.tasks:
        key = f"{metric_name}/{task}"
        summary[f"test_{key}"] = mean_std([r["test"].get(key, math.nan) for r in runs])
    return {
        "data_file": str(args.data_file),
        "tasks": data.tasks,
        "problem_type": args.problem_type,
        "split_method": args.split_method,
        "split_sizes": split_sizes,
        "rows_kept": len(data.smiles),
        "rows_dropped": len(data.dropped),
        "dropped": [{"row": r, "smiles": s, "reason": why} for r, s, why in data.dropped],
        "notes": notes,
        "model": args.model_name_or_path or f"from scratch ({args.from_scratch_preset})",
        "finetuning": "lora" if args.lora else "full",
        "parameters": parameters,
        "metric": metric_name,
        "summary": summary,
        "runs": runs,
        "seeds_finished": len(runs),
        "seeds_asked": len(args.seeds),
        "arguments": asdict(args),
    }


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float))
    os.replace(tmp, path)  # never a half-written results file


if __name__ == "__main__":
    run_script(main)
