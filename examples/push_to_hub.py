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

The card (``README.md``) is the template ``modeling_finemoltex/model_card.md`` filled with numbers computed here
(architecture and parameter counts from the weights, motif-vocabulary size and checksum, unknown-motif rate from
tokenising the evaluation SMILES) or read from the JSON written by the evaluation scripts (``--retrieval_results`` from
examples/zero_shot_retrieval.py ``--output_file``; ``--property_results`` from examples/finetune_property.py); none
is typed in by hand. Results of another model (an untrained baseline, another folder) are refused.

The work is `modeling_finemoltex.hub_finemoltex.publish` (export, upload) and `model_card_finemoltex` (the card);
this script parses and checks the command line and calls it.

Upload: ``huggingface_hub`` (token from ``--token``, ``HF_TOKEN`` or ``huggingface-cli login``): create the repo
(``--private``), the branch ``--revision`` if it does not exist, and one commit (``--commit_message``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from modeling_finemoltex.arguments_finemoltex import run_script, script_parser  # noqa: E402
from modeling_finemoltex.hub_finemoltex import REPO_ID, folder_kind, publish, require_online  # noqa: E402
from modeling_finemoltex.model_card_finemoltex import TEMPLATE  # noqa: E402


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
    args = sys.argv[1:] if args is None else list(args)
    parser = script_parser(PushArguments, description=__doc__)
    if len(args) == 1 and args[0].endswith(".json"):
        (parsed,) = parser.parse_json_file(args[0], allow_extra_keys=False)
    else:
        (parsed,) = parser.parse_args_into_dataclasses(args=args)
    return parsed


def check_arguments(args: PushArguments, uploading_with_real_client: bool) -> str:
    """Fail fast, before anything is loaded: -> the folder kind ("model" or "adapter")."""
    kind = folder_kind(args.model_name_or_path)
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
    if uploading_with_real_client:
        require_online(args.repo_id)
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


# ====================================================================================== main
def main(args: list[str] | None = None, api=None) -> dict:
    """Export (and upload) a FineMolTex model or LoRA adapter. `args`: a command line (list) or None (sys.argv);
    `api`: a `huggingface_hub.HfApi`-like client (default: a new `HfApi`). Returns `hub_finemoltex.publish`'s
    summary dict."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    opts = parse_arguments(args)
    kind = check_arguments(opts, uploading_with_real_client=api is None and not opts.dry_run)
    summary = publish(
        opts.model_name_or_path, opts.base_model, repo_id=opts.repo_id, out=opts.local_dir, dry_run=opts.dry_run,
        api=api, private=opts.private, revision=opts.revision, commit_message=opts.commit_message, token=opts.token,
        license=opts.license, datasets=opts.datasets, tags=opts.tags, title=opts.title,
        retrieval_results=opts.retrieval_results, property_results=opts.property_results,
        evaluation_files=opts.evaluation_files, template=opts.template)
    if summary["uploaded"]:
        print(f"Uploaded {summary['local_dir']} to {summary['repo_url']} ({summary['commit_url']})")
    else:
        print(f"Dry run: exported {kind} to {summary['local_dir']} (README.md is the model card); nothing uploaded")
    return summary


if __name__ == "__main__":
    run_script(main)
