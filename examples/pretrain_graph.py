#!/usr/bin/env python
# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Pre-train the FineMolTex graph tower (GIN) alone, self-supervised, by attribute masking (Hu et al. 2020) on any
SMILES corpus, with the Hugging Face `Trainer`.

    accelerate launch --config_file examples/accelerate_configs/default.yaml examples/pretrain_graph.py
        # bare run: the shipped ZINC subsets (../shared/data/zinc), `small` GIN (5 x 300), a few minutes on 2 cores
    accelerate launch --config_file examples/accelerate_configs/single_gpu.yaml examples/pretrain_graph.py \\
        --train_file zinc2m.smi --output_dir runs/gin-zinc2m --bf16 --num_train_epochs 10 ...

Data: ``.smi`` / ``.txt`` (one SMILES per line, the first whitespace-separated field, or the field a header line
names ``smiles``), ``.csv`` / ``.tsv`` (optionally ``.gz``) or ``.parquet`` with a SMILES column (``--smiles_column``, default
``smiles`` in any case, else ``mol``). Molecules are tokenised once with the graph tokenizer (``datasets.map``) into
an Arrow cache keyed by the file and the feature set, reused by later runs and by the other ranks; SMILES that do
not parse are skipped, counted and reported before training. Without ``--validation_file``,
``--validation_split_percentage`` of the molecules (by a hash of the SMILES) are held out. Batches are grouped by
atom count (``--train_sampling_strategy group_by_length``, in an order fixed by seed and epoch).

Model: `FineMolTexGraphForAttributeMasking`: the graph tower of ``--model_preset`` (``small`` and ``paper``: GIN
5 x 300, the GIN of MoleculeSTM / FineMolTex / GraphMVP) with an atom-type head. 15% of each molecule's atoms
(at least one) are masked in the model at every step; defaults are Hu et al.'s (batch 256, Adam lr 1e-3 constant,
no weight decay, GIN dropout 0).

Output (``--output_dir``): ``config.json`` + ``model.safetensors`` (the graph tower under
``finemoltex.graph_encoder.``), ``graph_tokenizer/`` (its feature set) and ``graph_pretraining.json`` (the numbers
printed at the end). Start from it with

    examples/pretrain.py --graph_model_name_or_path OUT                 # molecule-text pre-training
    examples/finetune_property.py --model_name_or_path OUT ...          # property fine-tuning (or
    examples/finetune_property.py --from_scratch_preset small --graph_model_name_or_path OUT ...)

(`load_gin_checkpoint` reads the folder or its ``model.safetensors``.) Trainer checkpoints go to ``--checkpoint_dir``
(default ``<output_dir>-checkpoints``); ``--resume`` continues from the last one with the same data order;
``--max_train_minutes`` stops (and saves) after a time budget.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers.trainer_utils import get_last_checkpoint  # noqa: E402

import modeling_finemoltex  # noqa: E402
from modeling_finemoltex import (  # noqa: E402
    FineMolTexConfig,
    FineMolTexDataCollator,
    FineMolTexGraphForAttributeMasking,
    FineMolTexGraphTokenizer,
)
from modeling_finemoltex import pairs_finemoltex as pair_files  # noqa: E402
from modeling_finemoltex.arguments_finemoltex import run_script, script_parser  # noqa: E402
from modeling_finemoltex.graph_pretraining_finemoltex import evaluate_attribute_masking  # noqa: E402
from modeling_finemoltex.trainer_finemoltex import (  # noqa: E402
    FineMolTexTrainer,
    FineMolTexTrainingArguments,
    TimeBudgetCallback,
    check_steps_left,
    checkpoint_folder,
    last_logged,
    limit_heap_growth,
    save_model_folder,
    set_cpu_threads,
    tokenisation_workers,
)

logger = logging.getLogger("finemoltex.pretrain_graph")

HERE = Path(__file__).resolve().parent
ZINC = HERE.parent.parent / "shared" / "data" / "zinc"
ZINC_TRAIN, ZINC_VALIDATION = ZINC / "zinc250k_psvae_valid.txt", ZINC / "zinc250k_psvae_test.txt"
# The bare run (no --train_file): the shipped ZINC subsets, a few minutes on 2 CPU cores (README).
EMBEDDED_MAX_STEPS = 100
EMBEDDED_TIME_BUDGET_MINUTES = 4.0
WHERE_TO_GET_DATA = (
    "Give any SMILES file (.smi/.txt one per line, .csv/.tsv[.gz] or .parquet with a SMILES column). The bare run "
    f"reads the ZINC250k subsets of the project's shared data ({ZINC}; PS-VAE's zinc250k valid/test splits, MIT)."
)
ATOM_TYPE_NAMES = {0: "*", 1: "H", 5: "B", 6: "C", 7: "N", 8: "O", 9: "F", 14: "Si", 15: "P", 16: "S", 17: "Cl",
                   35: "Br", 53: "I"}
PROGRESS_COMPONENTS = ("masked_atom_accuracy",)


# ====================================================================================== arguments
@dataclass
class ModelArguments:
    _argument_group_name = "model"
    model_preset: str = field(
        default="small",
        metadata={"help": "FineMolTexConfig preset whose graph tower is trained: 'small' or 'paper' (GIN 5 x 300, the "
                  "tower of both presets) or 'tiny' (2 x 32, tests)."},
    )
    feature_set: str = field(default="reference", metadata={"help": "Atom/bond features: 'reference' or 'rich'."})
    graph_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Start from a GIN checkpoint (pretrain-gnns layout, or a folder / model.safetensors in our "
                  "layout, e.g. an earlier run of this script) instead of random weights."},
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": 'JSON object of FineMolTexConfig fields, e.g. \'{"atom_mask_rate": 0.25, "gnn_jk": "sum"}\'. '
                  "Default GIN dropout here: 0 (Hu et al.)."},
    )


@dataclass
class DataArguments:
    _argument_group_name = "data"
    train_file: str | None = field(
        default=None, metadata={"help": "SMILES corpus (.smi/.txt, .csv/.tsv[.gz], .parquet). Default: the ZINC subset."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Held-out molecules, same formats."})
    smiles_column: str | None = field(
        default=None, metadata={"help": "SMILES column of a CSV/TSV/Parquet file (default: smiles in any case, else mol)."}
    )
    validation_split_percentage: float = field(
        default=5.0,
        metadata={"help": "Without a validation file: hold out this percentage of molecules by a hash of the SMILES."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training molecules."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N held-out molecules."})
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenisation (datasets.map num_proc); default: all cores, max 8."}
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Tokenised-data cache (default: <HF datasets cache>/finemoltex)."}
    )
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-tokenise even if a cache exists."})


@dataclass
class GraphPretrainingArguments(FineMolTexTrainingArguments):
    """`FineMolTexTrainingArguments` with Hu et al.'s defaults."""

    output_dir: str | None = field(
        default="finemoltex-gin",
        metadata={"help": "The model folder: config, weights (the GIN checkpoint), graph tokenizer, results."},
    )
    num_train_epochs: float = field(
        default=3.0,
        metadata={"help": "Epochs over the corpus (default 3), unless --max_steps is set. A bare run (no --train_file) "
                  f"trains {EMBEDDED_MAX_STEPS} steps on the ZINC subset, or {EMBEDDED_TIME_BUDGET_MINUTES:g} minutes "
                  "if that comes first."},
    )
    max_steps: int = field(
        default=-1,
        metadata={"help": "Optimizer steps; overrides --num_train_epochs. Default: by epochs (-1), or "
                  f"{EMBEDDED_MAX_STEPS} for a bare run."},
    )
    per_device_train_batch_size: int = field(default=256, metadata={"help": "Molecules per process and step (Hu et al.)."})
    per_device_eval_batch_size: int = field(default=256, metadata={"help": "Molecules per process in evaluation."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate (Hu et al.: 1e-3, constant)."})
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay (Hu et al.: none)."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Learning-rate schedule (Hu et al.: constant)."})
    logging_steps: float = field(default=10, metadata={"help": "Log the loss every this many steps."})
    save_steps: float = field(default=500, metadata={"help": "Save a Trainer checkpoint every this many steps."})
    save_total_limit: int | None = field(
        default=2, metadata={"help": "Keep this many Trainer checkpoints in the checkpoint folder."}
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "group_by_length: batches of similar atom count, in an order fixed by the seed and epoch."},
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep every tokenised column (needed)."})
    dataloader_drop_last: bool = field(default=True, metadata={"help": "Full batches only (molecules/s is exact)."})


#: The Trainer options `--help` shows (the rest: --help-all).
BRIEF_TRAINING_HELP = (
    "output_dir", "checkpoint_dir", "resume", "max_train_minutes", "cpu_threads", "num_train_epochs", "max_steps",
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "learning_rate",
    "weight_decay", "lr_scheduler_type", "logging_steps", "eval_strategy", "eval_steps", "save_steps",
    "save_total_limit", "seed", "bf16", "use_cpu", "dataloader_num_workers", "report_to", "disable_tqdm",
)


def parse_arguments(args: list[str] | None = None):
    args = sys.argv[1:] if args is None else list(args)
    parser = script_parser(
        (ModelArguments, DataArguments, GraphPretrainingArguments), description="\n\n".join(__doc__.split("\n\n")[:2]),
        brief={GraphPretrainingArguments: BRIEF_TRAINING_HELP}, help_all="--help-all" in args,
    )
    if len(args) == 1 and args[0].endswith(".json"):
        path = Path(args[0])
        if not path.is_file():
            raise FileNotFoundError(f"Config file not found: {path}")
        return parser.parse_json_file(path, allow_extra_keys=False)
    return parser.parse_args_into_dataclasses(args=args)


# ====================================================================================== data
def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" else open(
        path, encoding="utf-8-sig", newline="")


def _pick_column(columns: list[str], wanted: str | None, path: Path) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{path}: no column {wanted!r}; columns are {columns}.")
        return wanted
    lowered = {c.lower(): c for c in columns}
    for name in ("smiles", "mol"):
        if name in lowered:
            return lowered[name]
    raise ValueError(f"{path}: no 'smiles' or 'mol' column among {columns}; name it with --smiles_column.")


def read_smiles(path: str | os.PathLike, smiles_column: str | None = None) -> list[str]:
    """The SMILES of a corpus file, in file order; empty lines and cells are left out (they are not molecules)."""
    path = pair_files.require_file(path, "SMILES file", WHERE_TO_GET_DATA)
    suffixes = [s.lower() for s in path.suffixes]
    kind = suffixes[-2] if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if kind == ".parquet":
        table = datasets.Dataset.from_parquet(str(path))
        column = _pick_column(table.column_names, smiles_column, path)
        return [s.strip() for s in table[column] if isinstance(s, str) and s.strip()]
    with _open_text(path) as f:
        if kind in (".csv", ".tsv"):
            reader = csv.reader(f, delimiter="\t" if kind == ".tsv" else ",")
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path} is empty.")
            index = header.index(_pick_column(header, smiles_column, path))
            return [row[index].strip() for row in reader if len(row) > index and row[index].strip()]
        lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    # a header line naming a smiles field (e.g. ChEBI-20's "CID SMILES description") picks that field; else the first
    header = [field.lower() for field in lines[0].split()] if lines else []
    wanted = (smiles_column or "smiles").lower()
    index = header.index(wanted) if wanted in header else 0
    if wanted in header:
        lines = lines[1:]
    return [parts[index] for parts in (line.split() for line in lines) if len(parts) > index]


def load_corpus(data_args: DataArguments) -> tuple[datasets.Dataset, datasets.Dataset | None, dict]:
    """-> (training molecules, held-out molecules or None, where they came from), as ``smiles`` columns."""
    train_file = data_args.train_file or str(ZINC_TRAIN)
    validation_file = data_args.validation_file or (str(ZINC_VALIDATION) if data_args.train_file is None else None)
    train = read_smiles(train_file, data_args.smiles_column)
    if not train:
        raise ValueError(f"{train_file}: no SMILES found.")
    info = {"train_file": os.path.abspath(train_file)}
    if validation_file:
        validation = read_smiles(validation_file, data_args.smiles_column)
        info["validation"] = os.path.abspath(validation_file)
    elif data_args.validation_split_percentage > 0:
        held = [pair_files.held_out(s, data_args.validation_split_percentage) for s in train]
        validation = [s for s, h in zip(train, held) if h]
        train = [s for s, h in zip(train, held) if not h]
        info["validation"] = f"{data_args.validation_split_percentage:g}% of {Path(train_file).name} by SMILES hash"
    else:
        validation = []
    if data_args.max_train_samples is not None:
        train = train[: data_args.max_train_samples]
    if data_args.max_eval_samples is not None:
        validation = validation[: data_args.max_eval_samples]
    as_dataset = lambda smiles: datasets.Dataset.from_dict({"smiles": smiles})  # noqa: E731
    return as_dataset(train), (as_dataset(validation) if validation else None), info


def _encode(batch: dict, indices: list[int], graph_tokenizer: FineMolTexGraphTokenizer) -> dict:
    """`datasets.map` function: graph columns of the molecules that parse, their atom count as ``length`` (batching by
    size) and their row in the input (``row``: the others were skipped)."""
    columns, kept = graph_tokenizer.encode_batch(batch["smiles"], ignore_errors=True)
    columns["length"] = [int(n[0]) for n in columns["num_atoms"]]
    columns["row"] = [indices[i] for i in kept]
    return columns


def tokenise(data_args, model_args, train_raw, valid_raw, info) -> tuple[dict, dict, Path, FineMolTexGraphTokenizer]:
    """Both splits through the graph tokenizer into the Arrow cache (no text side). -> (datasets, skipped SMILES
    per split with an example, cache folder, graph tokenizer)."""
    cache_dir = Path(data_args.cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "finemoltex")
    cache_dir.mkdir(parents=True, exist_ok=True)
    files = [pair_files.file_key(info["train_file"])]
    if data_args.validation_file or data_args.train_file is None:
        files.append(pair_files.file_key(info["validation"]))
    # motifs are not needed here: no cap on them (no warnings), every motif is [UNK]
    graph_tokenizer = FineMolTexGraphTokenizer(feature_set=model_args.feature_set, max_motifs=None)
    key = pair_files.cache_key("graph-pretraining", files, data_args.validation_split_percentage,
                               data_args.max_train_samples, data_args.max_eval_samples, data_args.smiles_column,
                               model_args.feature_set, modeling_finemoltex.__version__)
    tokenised, dropped = {}, {}
    for split, raw in (("train", train_raw), ("validation", valid_raw)):
        if raw is None:
            continue
        ds = raw.map(
            _encode, batched=True, batch_size=256, with_indices=True, num_proc=tokenisation_workers(data_args.preprocessing_num_workers, len(raw), 5000),
            remove_columns=raw.column_names, fn_kwargs={"graph_tokenizer": graph_tokenizer},
            cache_file_name=str(cache_dir / f"graph-{key}-{split}.arrow"),
            load_from_cache_file=not data_args.overwrite_cache, desc=f"Tokenising {split} molecules",
        )
        kept = set(ds["row"]) if len(ds) and "row" in ds.column_names else set()
        bad = [i for i in range(len(raw)) if i not in kept]
        example = raw[bad[0]]["smiles"][:80] if bad else None
        if not kept:
            raise ValueError(f"No {split} molecule parses ({len(raw)} SMILES read; e.g. {example!r}).")
        ds = ds.remove_columns(["row"])
        if bad:
            logger.warning("%s: skipped %d of %d SMILES that do not parse (e.g. %r).", split, len(bad), len(raw), example)
        tokenised[split] = ds
        dropped[split] = {"unparsable_smiles": len(bad), "example": example}
    return tokenised, dropped, cache_dir, graph_tokenizer


# ====================================================================================== model
def build_config(model_args: ModelArguments) -> FineMolTexConfig:
    if model_args.model_preset not in FineMolTexConfig.PRESETS:
        raise ValueError(f"Unknown --model_preset {model_args.model_preset!r}; choose one of {FineMolTexConfig.PRESETS}.")
    overrides = {"gnn_dropout": 0.0}
    if model_args.config_overrides:
        try:
            given = json.loads(model_args.config_overrides)
        except json.JSONDecodeError as err:
            raise ValueError(f"--config_overrides is not valid JSON ({err}): {model_args.config_overrides!r}") from None
        if not isinstance(given, dict):
            raise ValueError(f"--config_overrides must be a JSON object, got {model_args.config_overrides!r}")
        unknown = FineMolTexConfig.find_unknown_keys(given)
        if unknown:
            raise ValueError(f"Unknown FineMolTexConfig field(s) in --config_overrides: {unknown}.")
        overrides.update(given)
    if model_args.feature_set != "reference":
        atoms, bonds = modeling_finemoltex.feature_sizes(model_args.feature_set)
        overrides.update(atom_feature_sizes=atoms, bond_feature_sizes=bonds)
    return FineMolTexConfig.from_preset(model_args.model_preset, **overrides)


# ====================================================================================== main
def main(args: list[str] | None = None, callbacks=()) -> dict:
    """Run graph pre-training; returns a summary dict (also printed and saved as ``graph_pretraining.json``)."""
    wall_start = time.perf_counter()
    model_args, data_args, training_args = parse_arguments(args)
    model_dir = training_args.output_dir
    training_args.output_dir = training_args.checkpoint_dir or checkpoint_folder(model_dir)
    limit_heap_growth()
    if training_args.use_cpu or not torch.cuda.is_available():
        threads = set_cpu_threads(training_args.cpu_threads)
        if threads:
            logger.info("CPU: %d torch threads per process", threads)
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False
    if data_args.train_file is None and training_args.max_steps == -1:
        training_args.max_steps = EMBEDDED_MAX_STEPS
        if training_args.max_train_minutes is None:
            training_args.max_train_minutes = EMBEDDED_TIME_BUDGET_MINUTES

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(min(level, logging.WARNING))
    transformers.utils.logging.set_verbosity(min(level, logging.WARNING))

    # ---- fail fast, before anything expensive
    config = build_config(model_args)
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and training_args.resume and os.path.isdir(training_args.output_dir):
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint:
            logger.info("Resuming from %s", checkpoint)
    elif checkpoint is None and os.path.isdir(training_args.output_dir) and get_last_checkpoint(training_args.output_dir):
        logger.warning("%s holds checkpoints; pass --resume to continue from the last one.", training_args.output_dir)
    if checkpoint:
        check_steps_left(checkpoint, training_args.max_steps)

    # ---- data (main process first; the other ranks read its cache)
    with training_args.main_process_first(desc="reading and tokenising the molecules"):
        train_raw, valid_raw, info = load_corpus(data_args)
        tokenised, dropped, cache_dir, graph_tokenizer = tokenise(data_args, model_args, train_raw, valid_raw, info)
    train_ds, eval_ds = tokenised["train"], tokenised.get("validation")
    if training_args.eval_strategy != "no" and eval_ds is None:
        raise ValueError("--eval_strategy needs held-out molecules (--validation_file or --validation_split_percentage).")
    logger.info("Data: %d training molecules (%s), %d held out (%s); cache %s", len(train_ds), info["train_file"],
                len(eval_ds) if eval_ds is not None else 0, info.get("validation", "none"), cache_dir)

    # ---- model (seeded: the same initial weights in every run and on every rank)
    transformers.set_seed(training_args.seed)
    model = FineMolTexGraphForAttributeMasking(config)
    if model_args.graph_model_name_or_path:
        logger.info("Graph tower: %s", modeling_finemoltex.load_gin_checkpoint(model, model_args.graph_model_name_or_path))
    logger.info("Model: graph tower of preset %s (GIN %d x %d, %s features), %.2fM parameters; %.0f%% of atoms masked",
                model_args.model_preset, config.gnn_num_layers, config.gnn_hidden_size, model_args.feature_set,
                sum(p.numel() for p in model.parameters()) / 1e6, 100 * config.atom_mask_rate)
    collator = FineMolTexDataCollator(len(config.atom_feature_sizes), len(config.bond_feature_sizes))

    trainer_callbacks = list(callbacks)
    budget = None
    if training_args.max_train_minutes:
        budget = TimeBudgetCallback(training_args.max_train_minutes)
        trainer_callbacks.append(budget)
    trainer = FineMolTexTrainer(
        model=model, args=training_args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
        callbacks=trainer_callbacks, eval_mask_seed=training_args.seed,
        components=PROGRESS_COMPONENTS,
    )
    train_start = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - train_start
    save_model_folder(trainer, model_dir, lambda folder: graph_tokenizer.save_pretrained(str(folder / "graph_tokenizer")))
    trainer.save_state()

    # ---- held-out masked-atom accuracy (fixed masks) against always predicting the most frequent atom type
    held_out = None
    if eval_ds is not None and trainer.is_world_process_zero():
        loader = torch.utils.data.DataLoader(eval_ds, batch_size=training_args.per_device_eval_batch_size,
                                             collate_fn=collator)
        held_out = evaluate_attribute_masking(model, loader, mask_seed=training_args.seed, device=training_args.device)
    history = trainer.state.log_history
    steps = trainer.state.global_step
    molecules = (steps - _steps_before(checkpoint)) * training_args.train_batch_size \
        * training_args.gradient_accumulation_steps * training_args.world_size
    summary = {
        "output_dir": model_dir,
        "checkpoint_dir": training_args.output_dir,
        "train_molecules": len(train_ds),
        "validation_molecules": len(eval_ds) if eval_ds is not None else 0,
        "skipped_smiles": dropped,
        "model_preset": model_args.model_preset,
        "gnn": f"{config.gnn_num_layers} x {config.gnn_hidden_size}",
        "steps": steps,
        "resumed_from": checkpoint,
        "train_seconds": train_seconds,
        "molecules_per_second": molecules / train_seconds if train_seconds > 0 else None,
        "data_wait_share": trainer.data_wait_seconds / train_seconds if train_seconds > 0 else None,
        "train_loss": last_logged(history, "loss"),
        "train_masked_atom_accuracy": last_logged(history, "masked_atom_accuracy"),
        "held_out": held_out,
        "stopped_by_time_budget": bool(budget and budget.stopped_at_step),
        "wall_seconds": time.perf_counter() - wall_start,
    }
    if trainer.is_world_process_zero():
        Path(model_dir, "graph_pretraining.json").write_text(json.dumps(summary, indent=2) + "\n")
        print_summary(summary)
    summary["log_history"] = history
    return summary


def _steps_before(checkpoint: str | None) -> int:
    """Steps a resumed run had already done (from its checkpoint's trainer state)."""
    if not checkpoint:
        return 0
    state_file = Path(checkpoint) / "trainer_state.json"
    return int(json.loads(state_file.read_text()).get("global_step", 0)) if state_file.is_file() else 0


def print_summary(s: dict) -> None:
    def fmt(v, digits=4):
        return "n/a" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    skipped = sum(d["unparsable_smiles"] for d in s["skipped_smiles"].values())
    lines = [
        "",
        "=" * 72,
        f"Graph pre-training (attribute masking) finished in {s['wall_seconds']:.0f} s (training {s['train_seconds']:.0f} s, "
        f"{s['steps']} steps{', stopped by the time budget' if s['stopped_by_time_budget'] else ''}; GIN {s['gnn']})",
        f"  data: {s['train_molecules']} training / {s['validation_molecules']} held-out molecules; skipped {skipped} "
        "SMILES that do not parse",
        f"  speed: {fmt(s['molecules_per_second'], 1)} molecules/s; waiting on data "
        f"{100 * (s['data_wait_share'] or 0):.1f}% of training time",
        f"  last training log: loss {fmt(s['train_loss'])}, masked-atom accuracy {fmt(s['train_masked_atom_accuracy'])}",
    ]
    h = s.get("held_out")
    if h and h["masked_atoms"]:
        name = ATOM_TYPE_NAMES.get(h["majority_atom_type"], f"Z={h['majority_atom_type']}")
        lines.append(
            f"  held out: masked-atom accuracy {fmt(h['accuracy'])} over {h['masked_atoms']} masked atoms (loss "
            f"{fmt(h['loss'])}); majority-class baseline (always {name}) {fmt(h['majority_accuracy'])}"
        )
    out = s["output_dir"]
    lines += [
        f"  saved the GIN checkpoint to {os.path.abspath(out)} (model.safetensors, config.json, graph_tokenizer/)",
        f"  next: examples/pretrain.py --graph_model_name_or_path {out}   |   examples/finetune_property.py "
        f"--model_name_or_path {out} ...",
        "=" * 72,
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    run_script(main)
