#!/usr/bin/env python
# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Publish a FineMolTex model, or a LoRA property head, to the Hugging Face Hub with its code and model card.

    # the pre-trained model of examples/pretrain.py, with its retrieval numbers
    python examples/push_to_hub.py --model_name_or_path ./finemoltex --repo_id you/finemoltex-small \\
        --base_model sentence-transformers/all-MiniLM-L6-v2 --retrieval_results retrieval.json --private
    # a LoRA head of examples/finetune_property.py --lora --save_model, onto the published base model
    python examples/push_to_hub.py --model_name_or_path runs/bbbp_lora/seed_0/model \\
        --repo_id you/finemoltex-small-bbbp-lora --base_model you/finemoltex-small \\
        --property_results runs/bbbp_lora/results.json
    # export and write the card only (no upload)
    python examples/push_to_hub.py --model_name_or_path ./finemoltex --base_model ... --local_dir hub_export --dry_run

**Model repos** (a folder with the model and its `FineMolTexProcessor`, e.g. ``./finemoltex``): the model, the
processor (text tokenizer + graph tokenizer), ``motif_vocab.json`` and the package's code files, registered with
``register_for_auto_class`` so that ``AutoModel`` / ``AutoProcessor`` / ``pipeline(...)`` load the repo with
``trust_remote_code=True`` and no ``finemoltex`` install (``auto_map`` and ``custom_pipelines`` in the configs), plus
``handler.py`` and ``requirements.txt`` for Inference Endpoints. ``--base_model``: the Hub id of the text encoder
the model was initialised from (the default pre-training run: sentence-transformers/all-MiniLM-L6-v2).

**Adapter repos** (a folder with peft's ``adapter_config.json``): the LoRA weights, the property config (tasks,
problem type) and the graph tokenizer; ``--base_model`` is the Hub id of the published FineMolTex base model, written
into ``adapter_config.json`` and the card's ``base_model``.

The card (``README.md``) is the template ``model_card.md`` filled with numbers computed here (architecture and
parameter counts from the weights, motif-vocabulary size and checksum, unknown-motif rate from tokenising the
evaluation SMILES) or read from the JSON written by the evaluation scripts (``--retrieval_results`` from
examples/zero_shot_retrieval.py ``--output_file``; ``--property_results`` from examples/finetune_property.py); none
is typed in by hand. Results of another model (an untrained baseline, another folder) are refused.

Upload: ``huggingface_hub`` (token from ``--token``, ``HF_TOKEN`` or ``huggingface-cli login``): create the repo
(``--private``), the branch ``--revision`` if it does not exist, and one commit (``--commit_message``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from transformers import AutoConfig, AutoProcessor, HfArgumentParser  # noqa: E402

import modeling_finemoltex  # noqa: E402  (registers the auto classes)
from modeling_finemoltex import (  # noqa: E402
    FineMolTexForPreTraining,
    FineMolTexGraphTokenizer,
    FineMolTexModel,
    FineMolTexProcessor,
    MotifVocab,
)
from modeling_finemoltex import handler as handler_module  # noqa: E402
from modeling_finemoltex.pipeline_finemoltex import PIPELINE_TASK  # noqa: E402
from modeling_finemoltex.property_finemoltex import load_graph_tokenizer, read_table  # noqa: E402
from modeling_finemoltex.tokenization_finemoltex import NUM_SPECIAL_TOKENS, MoleculeParseError  # noqa: E402

logger = logging.getLogger("push_to_hub")

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "model_card.md"
#: what the remote code needs beyond torch and transformers (Inference Endpoints install requirements.txt)
REMOTE_REQUIREMENTS = ["rdkit>=2024.3"]
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


# ====================================================================================== arguments
@dataclass
class PushArguments:
    model_name_or_path: str = field(metadata={
        "help": "Folder to publish: a model with its processor (examples/pretrain.py's output, e.g. ./finemoltex) or a "
                "LoRA adapter (examples/finetune_property.py --lora --save_model: <output_dir>/seed_<s>/model)."})
    repo_id: str | None = field(default=None, metadata={"help": "Hub repository, 'user/name' (needed unless --dry_run)."})
    base_model: str | None = field(default=None, metadata={
        "help": "Model repos: Hub id of the text encoder the model started from. Adapter repos: Hub id of the "
                "published FineMolTex base model."})
    local_dir: str | None = field(default=None, metadata={
        "help": "Write the export here (a new or empty folder) and keep it; default: a temporary folder."})
    dry_run: bool = field(default=False, metadata={"help": "Export and write the card, do not upload."})
    private: bool = field(default=False, metadata={
        "help": "Create the repo as private (an existing repo keeps its visibility)."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (created if missing); default main."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message (default: says what is uploaded)."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: HF_TOKEN or the stored login)."})
    license: str = field(default="apache-2.0", metadata={"help": "Licence of the published weights (card front matter)."})
    datasets: list[str] = field(default_factory=list, metadata={
        "help": "Hub ids of the training/evaluation datasets for the card's front matter."})
    tags: list[str] = field(default_factory=list, metadata={"help": "Extra card tags."})
    title: str | None = field(default=None, metadata={"help": "Card title (default: the repo name)."})
    retrieval_results: list[str] = field(default_factory=list, metadata={
        "help": "JSON files of examples/zero_shot_retrieval.py --output_file for this model."})
    property_results: list[str] = field(default_factory=list, metadata={
        "help": "results.json files of examples/finetune_property.py (from this model, or the run of this adapter)."})
    evaluation_files: list[str] = field(default_factory=list, metadata={
        "help": "Data files whose SMILES give the unknown-motif rate; default: the data files named in the results."})
    template: str = field(default=str(TEMPLATE), metadata={"help": "Model card template."})


def parse_arguments(args: list[str] | None = None) -> PushArguments:
    parser = HfArgumentParser(PushArguments)
    args = sys.argv[1:] if args is None else list(args)
    if len(args) == 1 and args[0].endswith(".json"):
        (parsed,) = parser.parse_json_file(args[0], allow_extra_keys=False)
    else:
        (parsed,) = parser.parse_args_into_dataclasses(args=args)
    return parsed


def hub_offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return bool(constants.HF_HUB_OFFLINE) or flag


def check_arguments(args: PushArguments, uploading_with_real_client: bool) -> str:
    """Fail fast, before anything is loaded: -> the folder kind ("model" or "adapter")."""
    folder = Path(args.model_name_or_path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Model folder not found: {folder} (pass the folder written by examples/pretrain.py or "
                                "by examples/finetune_property.py --lora --save_model)")
    kind = "adapter" if (folder / "adapter_config.json").is_file() else "model"
    if kind == "model" and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds neither config.json (a model) nor adapter_config.json (a LoRA adapter)")
    if not args.dry_run and not args.repo_id:
        raise ValueError("Pass --repo_id user/name to upload, or --dry_run (with --local_dir) to export only.")
    if args.repo_id and not REPO_ID.match(args.repo_id):
        raise ValueError(f"--repo_id {args.repo_id!r} is not a Hub repository id ('user/name')")
    if not args.base_model:
        what = ("the Hub id of the published FineMolTex base model this adapter goes onto" if kind == "adapter" else
                "the Hub id of the text encoder the model was initialised from (examples/pretrain.py's default run "
                "starts from sentence-transformers/all-MiniLM-L6-v2; the paper's is allenai/scibert_scivocab_uncased)")
        raise ValueError(f"Pass --base_model: {what}. It goes into the card's front matter"
                         + (" and adapter_config.json." if kind == "adapter" else "."))
    if uploading_with_real_client and hub_offline():
        raise OSError(
            f"Cannot upload to {args.repo_id!r}: the Hugging Face Hub is offline (HF_HUB_OFFLINE=1). Unset HF_HUB_OFFLINE "
            "to upload, or pass --dry_run --local_dir DIR to export the repository folder without uploading.")
    if args.local_dir and Path(args.local_dir).exists() and any(Path(args.local_dir).iterdir()):
        raise FileExistsError(f"--local_dir {args.local_dir} exists and is not empty; pass a new or empty folder")
    template = Path(args.template)
    if not template.is_file():
        raise FileNotFoundError(f"Model card template not found: {template}")
    for path in [*args.retrieval_results, *args.property_results, *args.evaluation_files]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"File not found: {path}")
    if kind == "adapter" and args.retrieval_results:
        raise ValueError("--retrieval_results belong to the base model's card, not to a LoRA property adapter")
    return kind


# ====================================================================================== export
def _without_local_paths(vocab: MotifVocab) -> MotifVocab:
    """The vocabulary with local paths in its build record (``source``…) cut to file names: a published repo must
    not reveal the machine's folders. The checksum covers motifs and targets only, so it is unchanged."""
    build = {
        key: os.path.basename(value.rstrip("/\\")) if isinstance(value, str) and ("/" in value or "\\" in value) else value
        for key, value in vocab.build_options.items()
    }
    return MotifVocab(vocab.motifs, num_targets=vocab.num_targets, build=build)


def _strip_local_paths(config) -> None:
    """Forget where the text encoder was loaded from (``text_config._name_or_path`` is a local path after
    pre-training from a folder); the weights are in the checkpoint."""
    config.text_model_name_or_path = None
    text_config = getattr(config, "text_config", None)
    if text_config is not None and hasattr(text_config, "_name_or_path"):
        text_config._name_or_path = ""


def write_endpoint_files(out: Path) -> None:
    shutil.copyfile(handler_module.__file__, out / "handler.py")
    (out / "requirements.txt").write_text(
        "# Packages the remote code of this repository needs besides torch and transformers\n"
        + "\n".join(REMOTE_REQUIREMENTS) + "\n", encoding="utf-8")


def export_model(folder: Path, out: Path) -> dict:
    """Model + processor + motif vocabulary + code + pipeline registration + endpoint files -> `out`."""
    config = AutoConfig.from_pretrained(folder)
    if getattr(config, "model_type", None) != "finemoltex":
        raise ValueError(f"{folder}/config.json is not a FineMolTex model (model_type={getattr(config, 'model_type', None)!r})")
    architecture = (config.architectures or ["FineMolTexModel"])[0]
    classes = {"FineMolTexModel": FineMolTexModel, "FineMolTexForPreTraining": FineMolTexForPreTraining}
    if architecture not in classes:
        raise ValueError(
            f"{folder} holds a {architecture}; push_to_hub publishes pre-trained models (FineMolTexModel, "
            "FineMolTexForPreTraining) and LoRA property adapters (finetune_property.py --lora --save_model).")
    if not (folder / "processor_config.json").is_file():
        raise FileNotFoundError(f"{folder} has no processor_config.json: save the FineMolTexProcessor with the model "
                                "(examples/pretrain.py does)")
    model = classes[architecture].from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    if not isinstance(processor, FineMolTexProcessor):
        raise TypeError(f"{folder} holds a {type(processor).__name__}, not a FineMolTexProcessor")
    vocab = processor.graph_tokenizer.motif_vocab
    if len(vocab) != model.config.motif_vocab_size:
        raise ValueError(f"{folder}: the motif vocabulary has {len(vocab)} entries but the model was built for "
                         f"{model.config.motif_vocab_size}; they do not belong together")
    _strip_local_paths(model.config)  # the weights are in the checkpoint; a local path would not travel
    training_file = vocab.build_options.get("source")  # read locally for the card; not published
    vocab = _without_local_paths(vocab)
    processor.graph_tokenizer.set_vocab(vocab)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # self-contained: code, auto_map, custom_pipelines (as every folder the package saves)
    processor.save_pretrained(out)
    vocab.save(out / "motif_vocab.json")
    write_endpoint_files(out)
    return {"model": model, "processor": processor, "vocab": vocab, "architecture": architecture,
            "training_file": training_file}


def export_adapter(folder: Path, out: Path, base_model: str) -> dict:
    """LoRA adapter + property config + graph tokenizer -> `out`; the adapter config names `base_model`."""
    adapter_config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    weights = [p for p in ("adapter_model.safetensors", "adapter_model.bin") if (folder / p).is_file()]
    if not weights:
        raise FileNotFoundError(f"{folder} has adapter_config.json but no adapter_model.safetensors")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: a LoRA adapter without its property config.json (tasks, problem type); "
                                "examples/finetune_property.py --save_model writes it")
    config = AutoConfig.from_pretrained(folder)
    head_class = (adapter_config.get("auto_mapping") or {}).get("base_model_class")
    if getattr(config, "model_type", None) != "finemoltex" or "FineMolTexForMoleculePropertyPrediction" not in (
        head_class, *(config.architectures or [])
    ):
        raise ValueError(f"{folder} is not a LoRA adapter of FineMolTexForMoleculePropertyPrediction "
                         f"(adapter base class {head_class!r}, config model_type {getattr(config, 'model_type', None)!r})")
    # the config saved beside the adapter still names the pre-training class it was loaded from
    config.architectures = ["FineMolTexForMoleculePropertyPrediction"]
    _strip_local_paths(config)
    out.mkdir(parents=True, exist_ok=True)
    recorded_base = adapter_config.get("base_model_name_or_path")
    adapter_config["base_model_name_or_path"] = base_model
    (out / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    shutil.copyfile(folder / weights[0], out / weights[0])
    config.save_pretrained(out)  # with auto_map and configuration_finemoltex.py (AutoConfig with remote code)
    graph_tokenizer = load_graph_tokenizer(folder)
    graph_tokenizer.set_vocab(_without_local_paths(graph_tokenizer.motif_vocab))
    graph_tokenizer.save_pretrained(str(out / "graph_tokenizer"))
    return {"config": config, "adapter_config": adapter_config, "recorded_base": recorded_base,
            "weights_file": out / weights[0], "vocab": graph_tokenizer.motif_vocab, "graph_tokenizer": graph_tokenizer}


# ====================================================================================== numbers
def parameter_counts(model) -> dict[str, int]:
    """Parameters per component of a FineMolTex model (the base model's modules, then the heads)."""
    base = model.finemoltex if hasattr(model, "finemoltex") else model
    groups = {
        "graph encoder (GIN + motif embeddings)": ("graph_encoder.", "motif_embeddings."),
        "text encoder": ("text_model.",),
        "motif and text streams + co-attention": ("fusion.", "text_input_projection."),
        "contrastive projections": ("graph_projection.", "text_projection.", "logit_scale"),
    }
    counts = dict.fromkeys(groups, 0)
    for name, parameter in base.named_parameters():
        group = next((g for g, prefixes in groups.items() if name.startswith(prefixes)), "other")
        counts[group] = counts.get(group, 0) + parameter.numel()
    heads = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in base.parameters())
    if heads:
        counts["pre-training heads (masked motif, masked word)"] = heads
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def _load_sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_finemoltex_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def read_smiles(path: str | os.PathLike) -> list[str]:
    """SMILES of an evaluation file: a ChEBI-20-style TSV (.txt/.tsv: CID, SMILES, description) or a CSV/Parquet
    with a ``smiles`` (or ``mol``) column."""
    path = Path(path)
    if path.suffix.lower() in (".txt", ".tsv"):
        smiles, _ = _load_sibling("zero_shot_retrieval").read_pairs(str(path))
        return smiles
    header, columns = read_table(path)
    for name in ("smiles", "mol", "SMILES"):
        matches = [h for h in header if h.lower() == name.lower()]
        if matches:
            return [str(s) for s in columns[matches[0]]]
    raise ValueError(f"{path}: no SMILES column (looked for smiles, mol); columns are {header}")


def unknown_motif_rate(vocab: MotifVocab, graph_tokenizer: FineMolTexGraphTokenizer, smiles: list[str]) -> dict:
    """Tokenise `smiles` and count motif occurrences missing from `vocab` (-> [UNK])."""
    parsed = unknown = total = with_unknown = 0
    for s in smiles:
        try:
            motifs = graph_tokenizer.decompose(s).motifs
        except MoleculeParseError:
            continue
        parsed += 1
        missing = sum(1 for m in motifs if m not in vocab)
        unknown += missing
        total += len(motifs)
        with_unknown += missing > 0
    return {
        "molecules": len(smiles), "parsed": parsed, "motifs": total, "unknown_motifs": unknown,
        "unknown_motif_rate": unknown / total if total else None,
        "molecules_with_unknown_motif": with_unknown,
        "molecules_with_unknown_motif_share": with_unknown / parsed if parsed else None,
    }


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _read_json(path: str, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected the output of {what}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object written by {what}")
    return data


RETRIEVAL_COLUMNS = ("mrr", "recall@1", "recall@5", "recall@10", "mean_rank")


def load_retrieval_results(paths: list[str], model_folder: Path) -> list[dict]:
    """zero_shot_retrieval.py outputs, checked to be complete and to come from `model_folder`."""
    results = []
    for path in paths:
        data = _read_json(path, "examples/zero_shot_retrieval.py --output_file")
        missing = [k for k in ("model", "data_file", "num_pairs", "num_candidates", "ties", "molecule_to_text/mrr",
                               "text_to_molecule/mrr") if k not in data]
        if missing:
            raise ValueError(f"{path}: missing {missing}; is it the --output_file of examples/zero_shot_retrieval.py?")
        recorded = str(data["model"])
        if recorded.startswith("untrained:"):
            raise ValueError(f"{path} holds the numbers of an untrained baseline ({recorded}), not of this model")
        if Path(recorded).exists() and not _same_path(recorded, model_folder):
            raise ValueError(f"{path} was computed with the model {recorded}, not {model_folder}")
        results.append({"file": path, **data})
    return results


def load_property_results(paths: list[str], model_folder: Path, kind: str) -> list[dict]:
    """finetune_property.py results: for a model repo, runs started from this folder; for an adapter, the LoRA run
    that saved this adapter (the seed is matched through ``model_dir``)."""
    results = []
    for path in paths:
        data = _read_json(path, "examples/finetune_property.py")
        missing = [k for k in ("data_file", "tasks", "metric", "summary", "runs", "finetuning", "model") if k not in data]
        if missing:
            raise ValueError(f"{path}: missing {missing}; is it the results.json of examples/finetune_property.py?")
        entry = {"file": path, **data}
        if kind == "adapter":
            runs = [r for r in data["runs"] if r.get("model_dir") and _same_path(r["model_dir"], model_folder)]
            if data["finetuning"] != "lora" or not runs:
                raise ValueError(f"{path} does not describe the LoRA run that saved {model_folder} (no run's model_dir "
                                 "points there)")
            entry["this_run"] = runs[0]
        else:
            recorded = str(data["model"])
            if not Path(recorded).exists() or not _same_path(recorded, model_folder):
                raise ValueError(f"{path} was fine-tuned from {recorded}, not from {model_folder}")
        results.append(entry)
    return results


# ====================================================================================== card
def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _name(path: Any) -> str:
    """The last component of a local path: cards name files, they do not publish the publisher's directories."""
    text = str(path)
    local = text.startswith(("/", ".", "~")) or Path(text).exists()  # (a Hub id such as user/name stays whole)
    return Path(text).name if local else text


def _hub_link(name: str) -> str:
    local = name.startswith(("/", ".", "~")) or Path(name).exists()
    return f"`{name}`" if local or not REPO_ID.match(name) else f"[`{name}`](https://huggingface.co/{name})"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def architecture_section(model, architecture: str, base_model: str) -> str:
    c = model.config
    t = c.text_config
    rows = [
        ["graph encoder", f"GIN, {c.gnn_num_layers} layers × {c.gnn_hidden_size}, jumping knowledge `{c.gnn_jk}`, "
                          f"atom feature sizes {c.atom_feature_sizes}, bond feature sizes {c.bond_feature_sizes}"],
        ["motif embedding", f"mean of each motif's atom states → {c.motif_stream_hidden_size}, BFS position "
                            f"(max {c.max_motif_positions} slots incl. [CLS])"],
        ["text encoder", f"{t.model_type} {t.num_hidden_layers} layers × {t.hidden_size}, {t.num_attention_heads} heads, "
                         f"vocabulary {t.vocab_size:,} (initialised from `{base_model}`)"],
        ["text stream", f"{c.text_stream_num_layers} layers × {c.text_stream_hidden_size}, {c.text_stream_num_heads} heads, "
                        f"FFN {c.text_stream_intermediate_size}"],
        ["motif stream", f"{c.motif_stream_num_layers} layers × {c.motif_stream_hidden_size}, "
                         f"{c.motif_stream_num_heads} heads, FFN {c.motif_stream_intermediate_size}"],
        ["co-attention", f"after motif layers {c.coattention_motif_layers} / text layers {c.coattention_text_layers}, "
                         f"{c.coattention_hidden_size} wide, {c.coattention_num_heads} heads"],
        ["contrastive space", f"{c.projection_dim} dimensions, temperature {c.contrastive_temperature}"
                              + (" (learnable)" if c.learnable_temperature else "")],
        ["pre-training losses", f"InfoNCE × {c.contrastive_weight} + masked motifs × {c.masked_motif_weight} "
                                f"({c.num_motif_targets:,} target motifs, {c.motif_mask_rate:.0%} masked) + masked words "
                                f"× {c.masked_lm_weight} ({c.word_mask_rate:.0%} masked)"],
    ]
    counts = parameter_counts(model)
    count_rows = [[name, n] for name, n in counts.items()]
    return (f"Published class: `{architecture}` (`AutoModel` gives the `FineMolTexModel` inside it).\n\n"
            + _table(["part", "setting"], rows) + "\n\nParameters (counted from the published weights):\n\n"
            + _table(["component", "parameters"], count_rows))


def motif_section(vocab: MotifVocab, rates: list[tuple[str, dict]], vocab_file: str) -> str:
    build = vocab.build_options
    source = f"`{_name(build['source'])}`" if build.get("source") else "not recorded in the vocabulary file"
    lines = [
        f"- entries: {len(vocab):,} ({NUM_SPECIAL_TOKENS} special tokens + {len(vocab) - NUM_SPECIAL_TOKENS:,} motifs), "
        f"of which {vocab.num_targets:,} are masked-motif prediction targets"
        + (f" (seen ≥ {build['target_min_frequency']} times)" if "target_min_frequency" in build else ""),
        f"- source corpus: {source}"
        + (f", {build['num_molecules']:,} molecules" if isinstance(build.get("num_molecules"), int) else "")
        + (f", {build['distinct_motifs_seen']:,} distinct motifs seen" if isinstance(build.get("distinct_motifs_seen"), int) else ""),
        f"- file: `{vocab_file}`, sha256 checksum of the ordered (motif, count) list and target count: `{vocab.checksum}`",
    ]
    if rates:
        rows = [[Path(name).name, r["parsed"], r["motifs"], r["unknown_motifs"],
                 f"{100 * r['unknown_motif_rate']:.2f}%" if r["unknown_motif_rate"] is not None else "n/a",
                 f"{100 * r['molecules_with_unknown_motif_share']:.2f}%" if r["molecules_with_unknown_motif_share"] is not None else "n/a"]
                for name, r in rates]
        lines += ["", "Unknown motifs on the evaluation data (its SMILES tokenised with this vocabulary):", "",
                  _table(["file", "molecules parsed", "motifs", "unknown motifs", "unknown-motif rate",
                          "molecules with an unknown motif"], rows)]
    else:
        lines.append("- unknown-motif rate: no evaluation data was given to push_to_hub.py, so none is reported")
    return "\n".join(lines)


def training_section_model(folder: Path, vocab: MotifVocab, datasets: list[str]) -> str:
    lines = []
    source = vocab.build_options.get("source")
    if source:
        lines.append(f"- pre-training pairs: `{_name(source)}` (the file the motif vocabulary was counted on: the training "
                     "split of examples/pretrain.py)")
    state_file = folder / "trainer_state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text(encoding="utf-8"))
        history = state.get("log_history", [])

        def last(key):
            values = [h[key] for h in history if key in h]
            return values[-1] if values else None

        lines.append(f"- optimisation: {state.get('global_step')} steps, {_fmt(state.get('epoch'), 2)} epochs, "
                     f"batch size {state.get('train_batch_size')} per device (from trainer_state.json)")
        logged = [("training loss", last("loss")), ("contrastive", last("contrastive_loss")),
                  ("masked motif", last("masked_motif_loss")), ("masked word", last("masked_lm_loss")),
                  ("validation loss", last("eval_loss")),
                  ("validation in-batch graph→text accuracy", last("eval_contrastive_accuracy"))]
        lines.append("- last logged values: " + ", ".join(f"{name} {_fmt(v)}" for name, v in logged if v is not None))
    else:
        lines.append("- no trainer_state.json in the published folder: optimisation details were not recorded")
    if datasets:
        lines.append("- datasets: " + ", ".join(f"[{d}](https://huggingface.co/datasets/{d})" for d in datasets))
    return "\n".join(lines)


def training_overlap(evaluation_file: str, training_file: str | None) -> str:
    """How many evaluation SMILES (exact strings) also occur in the pre-training data file, when it is readable."""
    if not training_file or not Path(training_file).is_file():
        return ""
    training = set(read_smiles(training_file))
    evaluation = read_smiles(evaluation_file)
    shared = sum(1 for s in evaluation if s in training)
    return (f" {shared:,} of its {len(evaluation):,} SMILES also occur in the pre-training data file "
            f"`{Path(training_file).name}`.")


def retrieval_section(results: list[dict], training_file: str | None = None) -> str:
    blocks = []
    for r in results:
        ts = sorted({int(k.split("@T")[1]) for k in r if k.startswith("molecule_to_text/accuracy@T")})
        columns = [*RETRIEVAL_COLUMNS, *[f"accuracy@T{t}" for t in ts]]
        rows = [[direction.replace("_", " "), *[r.get(f"{direction}/{c}") for c in columns]]
                for direction in ("molecule_to_text", "text_to_molecule")]
        blocks.append(
            f"Zero-shot retrieval on `{_name(r['data_file'])}` ({r['num_candidates']:,} of {r['num_pairs']:,} pairs in the pool, "
            f"{len(r.get('dropped_indices', []))} unparsable SMILES dropped; ties: {r['ties']}; "
            f"negatives: {_name(r.get('negatives_file', 'n/a'))}), from `{_name(r['file'])}` written by "
            f"examples/zero_shot_retrieval.py.{training_overlap(r['data_file'], training_file)} Full ranking over the "
            "pool (MRR, recall@k, mean rank) and fixed-candidate accuracy with T candidates:\n\n"
            + _table(["direction", *columns], rows))
    return "\n\n".join(blocks)


def property_section(results: list[dict], adapter: bool) -> str:
    rows = []
    for r in results:
        metric = r["metric"]
        test = r["summary"].get(f"test_{metric}", {})
        valid = r["summary"].get(f"validation_{metric}", {})
        row = [Path(r["data_file"]).name, len(r["tasks"]), r.get("split_method"), r["finetuning"], metric,
               f"{_fmt(test.get('mean'))} ± {_fmt(test.get('std'))} (n={test.get('n')})",
               f"{_fmt(valid.get('mean'))} ± {_fmt(valid.get('std'))}"]
        if adapter:
            run = r["this_run"]
            row.append(f"{_fmt(run['test'].get(metric))} (seed {run['seed']}, epoch {_fmt(run['best_epoch'], 0)})")
        rows.append(row)
    header = ["data", "tasks", "split", "fine-tuning", "metric", "test (mean ± std over seeds)", "validation"]
    if adapter:
        header.append("test, this adapter")
    return ("Property prediction from examples/finetune_property.py (test metric at the epoch with the best "
            "validation metric; from " + ", ".join(f"`{_name(Path(r['file']).parent)}/{_name(r['file'])}`" for r in results)
            + "):\n\n"
            + _table(header, rows))


def usage_model(repo: str) -> str:
    return f"""Without installing anything but `transformers`, `torch` and `rdkit` (the code ships in this repository):

```python
from transformers import AutoModel, AutoProcessor, pipeline

model = AutoModel.from_pretrained("{repo}", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("{repo}", trust_remote_code=True)

pipe = pipeline("{PIPELINE_TASK}", model="{repo}", trust_remote_code=True)
pipe(smiles=["CCO", "c1ccccc1O"])                                   # molecule embeddings
pipe(text="The molecule is an aromatic alcohol.")                    # text embedding
pipe(text="an aromatic alcohol", candidate_smiles=["CCO", "c1ccccc1O"], top_k=1)  # molecules ranked for a text
pipe(smiles="CCO", candidate_texts=["a primary alcohol", "an arene"])              # texts ranked for a molecule
```

Unparsable SMILES come back as `{{"index": i, "smiles": ..., "error": ...}}` entries; they never fail the call.
With the `finemoltex` package installed, `import modeling_finemoltex` and load without
`trust_remote_code`. On Inference Endpoints, `handler.py` serves JSON requests such as
`{{"inputs": {{"text": "an aromatic alcohol", "candidate_smiles": ["CCO", "c1ccccc1O"]}}, "parameters": {{"top_k": 1}}}}`."""


def usage_adapter(repo: str, base: str) -> str:
    return f"""A LoRA adapter (with its property head) for `{base}`. With the `finemoltex` package:

```python
from huggingface_hub import snapshot_download
from modeling_finemoltex.property_finemoltex import load_property_model, predict

model = load_property_model(snapshot_download("{repo}"))   # the base model comes from adapter_config.json
print(predict(model, ["CCO", "c1ccccc1O"]).predictions)   # one probability (or value) per task
```

With remote code only (`transformers`, `peft`, `torch`, `rdkit`):

```python
from peft import PeftModel
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

config = AutoConfig.from_pretrained("{repo}", trust_remote_code=True)          # tasks, problem type, pooling
base = AutoModelForSequenceClassification.from_pretrained("{base}", config=config, trust_remote_code=True)
model = PeftModel.from_pretrained(base, "{repo}").eval()
graph_tokenizer = AutoTokenizer.from_pretrained("{base}", subfolder="graph_tokenizer", trust_remote_code=True)
batch = graph_tokenizer(["CCO", "c1ccccc1O"])
batch.pop("kept_indices")
predictions = model(**batch).predictions
```"""


def render_card(template: str, fields: dict[str, str]) -> str:
    """Fill the ``$name`` placeholders; a placeholder without a value raises (nothing is left unfilled)."""
    try:
        return Template(template).substitute(fields)
    except KeyError as err:
        raise ValueError(f"The model card template has a placeholder {err} that push_to_hub.py does not fill") from None


def _yaml(value: Any) -> str:
    """A YAML flow value (JSON is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


# ====================================================================================== upload
def upload(api, out: Path, args: PushArguments, kind: str) -> dict:
    """create_repo (+ create_branch) + upload_folder: -> {"repo_url", "commit_url", "commit_oid"}."""
    repo_url = api.create_repo(args.repo_id, private=args.private, exist_ok=True, repo_type="model", token=args.token)
    if args.revision and args.revision != "main":
        api.create_branch(args.repo_id, branch=args.revision, exist_ok=True, repo_type="model", token=args.token)
    message = args.commit_message or (
        f"Upload FineMolTex {'LoRA adapter' if kind == 'adapter' else 'model'} with code and model card (push_to_hub.py)")
    commit = api.upload_folder(
        repo_id=args.repo_id, folder_path=str(out), repo_type="model", revision=args.revision, commit_message=message,
        commit_description=f"Exported by examples/push_to_hub.py (finemoltex {modeling_finemoltex.__version__}).",
        token=args.token)
    return {"repo_url": str(repo_url), "commit_url": getattr(commit, "commit_url", None),
            "commit_oid": getattr(commit, "oid", None), "commit_message": message}


# ====================================================================================== main
def main(args: list[str] | None = None, api=None) -> dict:
    """Export (and upload) a FineMolTex model or LoRA adapter. `args`: a command line (list) or None (sys.argv);
    `api`: a `huggingface_hub.HfApi`-like client (default: a new `HfApi`). Returns a summary dict."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    opts = parse_arguments(args)
    kind = check_arguments(opts, uploading_with_real_client=api is None and not opts.dry_run)
    folder = Path(opts.model_name_or_path)
    repo = opts.repo_id or f"your-name/{folder.resolve().name}"
    title = opts.title or repo.split("/")[-1]

    # evaluation outputs first: a wrong file fails before any export work
    retrieval = load_retrieval_results(opts.retrieval_results, folder)
    properties = load_property_results(opts.property_results, folder, kind)
    evaluation_files = list(opts.evaluation_files) or list(dict.fromkeys(
        [r["data_file"] for r in retrieval] + [r["data_file"] for r in properties]))
    missing = [f for f in evaluation_files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"Evaluation data not found: {missing} (named in the results files; pass "
                                "--evaluation_files with the files' current location)")

    out = Path(opts.local_dir) if opts.local_dir else Path(tempfile.mkdtemp(prefix="finemoltex-hub-"))
    if kind == "model":
        exported = export_model(folder, out)
        vocab, graph_tokenizer = exported["vocab"], exported["processor"].graph_tokenizer
    else:
        exported = export_adapter(folder, out, opts.base_model)
        vocab, graph_tokenizer = exported["vocab"], exported["graph_tokenizer"]
    rates = [(f, unknown_motif_rate(vocab, graph_tokenizer, read_smiles(f))) for f in evaluation_files]

    tags = list(dict.fromkeys(["finemoltex", "chemistry", "molecules", "graph-neural-network"]
                              + (["molecule-text-retrieval", "custom_code"] if kind == "model" else ["lora", "peft",
                                 "molecular-property-prediction"]) + opts.tags))
    training_file = exported.get("training_file") or vocab.build_options.get("source")
    evaluation = [retrieval_section(retrieval, training_file)] if retrieval else []
    if properties:
        evaluation.append(property_section(properties, adapter=kind == "adapter"))
    if not evaluation:
        evaluation = ["No evaluation results were given to push_to_hub.py (--retrieval_results, --property_results), "
                      "so none are reported."]
    if kind == "model":
        model = exported["model"]
        fields = dict(
            library_name="transformers", pipeline_tag="feature-extraction",
            description=("A [FineMolTex](https://arxiv.org/abs/2409.14106) molecular graph–text model: a GIN + motif "
                         "transformer for molecules and a BERT-style encoder for text, pre-trained together with a "
                         "contrastive loss and masked motif / masked word prediction through cross-modal attention. "
                         "It embeds molecules (SMILES) and texts in one space for zero-shot retrieval, and is a "
                         "starting point for property prediction (LoRA heads). Published with the `finemoltex` package."),
            architecture=architecture_section(model, exported["architecture"], opts.base_model),
            training_data=training_section_model(folder, vocab, opts.datasets),
            usage=usage_model(repo),
        )
    else:
        config, adapter_config = exported["config"], exported["adapter_config"]
        from safetensors import safe_open

        adapter_parameters = 0
        if exported["weights_file"].suffix == ".safetensors":
            with safe_open(str(exported["weights_file"]), framework="pt") as weights:
                for key in weights.keys():
                    adapter_parameters += math.prod(weights.get_slice(key).get_shape())
        tasks = [config.id2label[i] for i in sorted(config.id2label)] if config.id2label else []
        rows = [
            ["base model", f"`{opts.base_model}` (FineMolTex; trained on a local copy, `{_name(exported['recorded_base'])}`)"],
            ["head", f"{config.problem_type}, {config.num_labels} task(s): {', '.join(tasks)}; pooling "
                     f"`{config.property_pooling}`"],
            ["LoRA", f"r={adapter_config.get('r')}, alpha={adapter_config.get('lora_alpha')}, dropout "
                     f"{adapter_config.get('lora_dropout')}, target modules `{adapter_config.get('target_modules')}`, "
                     f"fully trained modules {adapter_config.get('modules_to_save')}"],
            ["adapter weights", f"{adapter_parameters:,} values: LoRA matrices, head and BatchNorm parameters and "
                                f"statistics (counted from {exported['weights_file'].name})"],
        ]
        training = []
        for r in properties:
            training.append(f"- `{_name(r['data_file'])}`: {r.get('rows_kept')} molecules kept, {r.get('rows_dropped')} dropped "
                            f"(unparsable SMILES); split {r.get('split_method')} {r.get('split_sizes')}; "
                            f"{r['arguments'].get('num_train_epochs') if r.get('arguments') else 'n/a'} epochs per seed, "
                            f"parameters trained: {r['parameters'] and _fmt(r['parameters'].get('trainable'))} of "
                            f"{r['parameters'] and _fmt(r['parameters'].get('total'))}")
        fields = dict(
            library_name="peft", pipeline_tag="graph-ml",
            description=(f"A LoRA adapter with a property-prediction head for the FineMolTex model "
                         f"{_hub_link(opts.base_model)}, trained with "
                         f"examples/finetune_property.py of the `finemoltex` package."),
            architecture=_table(["part", "setting"], rows),
            training_data="\n".join(training) or "No results.json was given (--property_results): the training run is "
                                                 "not described.",
            usage=usage_adapter(repo, opts.base_model),
        )
    fields.update(
        license=_yaml(opts.license), base_model=_yaml(opts.base_model), datasets=_yaml(list(opts.datasets)),
        tags=_yaml(tags), title=title,
        motif_vocabulary=motif_section(vocab, rates, "motif_vocab.json" if kind == "model" else "graph_tokenizer/motif_vocab.json"),
        evaluation="\n\n".join(evaluation),
    )
    fields["library_name"], fields["pipeline_tag"] = _yaml(fields["library_name"]), _yaml(fields["pipeline_tag"])
    card = render_card(Path(opts.template).read_text(encoding="utf-8"), fields)
    (out / "README.md").write_text(card, encoding="utf-8")

    summary = {"kind": kind, "local_dir": str(out), "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")
                                                                    if p.is_file()),
               "unknown_motif_rates": dict(rates), "uploaded": False}
    if not opts.dry_run:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(token=opts.token)
        summary.update(upload(api, out, opts, kind), uploaded=True)
        print(f"Uploaded {out} to {summary['repo_url']} ({summary['commit_url']})")
    else:
        print(f"Dry run: exported {kind} to {out} (README.md is the model card); nothing uploaded")
    return summary


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (OSError, ValueError, TypeError) as err:  # a clear one-line message, not a traceback
        sys.exit(f"error: {err}")
