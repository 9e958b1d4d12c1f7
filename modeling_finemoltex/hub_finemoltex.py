# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Publishing to the Hugging Face Hub: a FineMolTex model, or a LoRA property adapter, exported into a folder with
its code, model card and Inference Endpoints files, then uploaded in one commit.

    from modeling_finemoltex.hub_finemoltex import publish
    summary = publish("./finemoltex", base_model="sentence-transformers/all-MiniLM-L6-v2", out="hub_export",
                      dry_run=True)

**Models** (a folder with the model and its `FineMolTexProcessor`; `export_model`): the model, the processor,
``motif_vocab.json`` and the package's code files (written by ``save_pretrained``, so ``AutoModel`` /
``AutoProcessor`` / ``pipeline(...)`` load the folder with ``trust_remote_code=True``), plus ``handler.py`` and
``requirements.txt`` (`write_endpoint_files`). **Adapters** (a folder with peft's ``adapter_config.json``;
`export_adapter`): the LoRA weights, the property config and the graph tokenizer, the adapter config naming the
published base model. Neither keeps a path of the publishing machine. The card: `model_card_finemoltex`.

The exported model folder does not import this module (nor the card module): they are not copied into it.
No RDKit here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from transformers import AutoConfig, AutoProcessor

from . import handler as handler_module
from .hub_access_finemoltex import hub_offline, is_network_error
from .model_card_finemoltex import (
    REPO_ID,
    TEMPLATE,
    load_property_results,
    load_retrieval_results,
    model_card,
    read_smiles,
    unknown_motif_rate,
)
from .modeling_finemoltex import FineMolTexForPreTraining, FineMolTexModel
from .processing_finemoltex import FineMolTexProcessor
from .property_finemoltex import load_graph_tokenizer
from .tokenization_finemoltex import MotifVocab

#: what the remote code needs beyond torch and transformers (Inference Endpoints install requirements.txt)
REMOTE_REQUIREMENTS = ["rdkit>=2024.3"]


def require_online(repo_id: str | None) -> None:
    """`OSError` when an upload to `repo_id` cannot happen because the Hub is offline (`hub_offline`)."""
    if hub_offline():
        raise OSError(
            f"Cannot upload to {repo_id!r}: the Hugging Face Hub is offline (HF_HUB_OFFLINE=1). Unset HF_HUB_OFFLINE "
            "to upload, or pass --dry_run --local_dir DIR to export the repository folder without uploading.")


def folder_kind(folder: str | os.PathLike) -> str:
    """What a folder to publish holds: "adapter" (peft's ``adapter_config.json``) or "model" (``config.json``);
    `FileNotFoundError` for anything else."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Model folder not found: {folder} (pass the folder written by examples/pretrain.py or "
                                "by examples/finetune_property.py --lora --save_model)")
    kind = "adapter" if (folder / "adapter_config.json").is_file() else "model"
    if kind == "model" and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds neither config.json (a model) nor adapter_config.json (a LoRA adapter)")
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



# ====================================================================================== upload
def upload(api, out: Path, repo_id: str, kind: str, private: bool = False, revision: str | None = None,
           commit_message: str | None = None, token: str | None = None) -> dict:
    """create_repo (+ create_branch) + upload_folder of `out` with `api` (a `huggingface_hub.HfApi`-like client):
    -> {"repo_url", "commit_url", "commit_oid", "commit_message"}. An existing repo keeps its visibility."""
    from . import __version__

    message = commit_message or (
        f"Upload FineMolTex {'LoRA adapter' if kind == 'adapter' else 'model'} with code and model card (push_to_hub.py)")
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model", token=token)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model", token=token)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(out), repo_type="model", revision=revision, commit_message=message,
            commit_description=f"Exported by examples/push_to_hub.py (finemoltex {__version__}).",
            token=token)
    except Exception as err:
        if not is_network_error(err):
            raise
        raise OSError(
            f"Cannot reach the Hugging Face Hub to upload {repo_id!r}: no network ({type(err).__name__}: {err}). "
            f"Connect and run again, or export with --dry_run --local_dir DIR and upload that folder later.") from None
    return {"repo_url": str(repo_url), "commit_url": getattr(commit, "commit_url", None),
            "commit_oid": getattr(commit, "oid", None), "commit_message": message}


# ====================================================================================== all of it
def publish(
    folder: str | os.PathLike,
    base_model: str,
    repo_id: str | None = None,
    out: str | os.PathLike | None = None,
    dry_run: bool = False,
    api=None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    license: str = "apache-2.0",
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    title: str | None = None,
    retrieval_results: Sequence[str] = (),
    property_results: Sequence[str] = (),
    evaluation_files: Sequence[str] = (),
    template: str | os.PathLike = TEMPLATE,
) -> dict:
    """Export `folder` (a model or a LoRA adapter, `folder_kind`) into `out` (default: a new temporary folder) with
    its card, and upload it to `repo_id` unless `dry_run`. `base_model`: a model's text encoder, or an adapter's
    published FineMolTex base model (Hub ids). `retrieval_results` / `property_results`: JSON of the evaluation
    scripts, refused when they describe another model; `evaluation_files`: whose SMILES give the unknown-motif rate
    (default: the data files the results name). `api`: a `huggingface_hub.HfApi`-like client (default: a new
    `HfApi(token=token)`). -> {"kind", "local_dir", "files", "unknown_motif_rates", "uploaded"} (+ `upload`'s keys)."""
    folder = Path(folder)
    kind = folder_kind(folder)
    if not dry_run and not repo_id:
        raise ValueError("Pass repo_id ('user/name') to upload, or dry_run=True to export only.")
    if not dry_run and api is None:
        require_online(repo_id)
    repo = repo_id or f"your-name/{folder.resolve().name}"
    title = title or repo.split("/")[-1]

    # evaluation outputs first: a wrong file fails before any export work
    retrieval = load_retrieval_results(list(retrieval_results), folder)
    properties = load_property_results(list(property_results), folder, kind)
    evaluation_files = list(evaluation_files) or list(dict.fromkeys(
        [r["data_file"] for r in retrieval] + [r["data_file"] for r in properties]))
    missing = [f for f in evaluation_files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"Evaluation data not found: {missing} (named in the results files; pass "
                                "--evaluation_files with the files' current location)")

    out = Path(out) if out else Path(tempfile.mkdtemp(prefix="finemoltex-hub-"))
    if kind == "model":
        exported = export_model(folder, out)
        graph_tokenizer = exported["processor"].graph_tokenizer
    else:
        exported = export_adapter(folder, out, base_model)
        graph_tokenizer = exported["graph_tokenizer"]
    rates = [(f, unknown_motif_rate(exported["vocab"], graph_tokenizer, read_smiles(f))) for f in evaluation_files]
    card = model_card(kind, exported, folder, base_model, repo, title, retrieval, properties, rates, license=license,
                      datasets=datasets, tags=tags, template=template)
    (out / "README.md").write_text(card, encoding="utf-8")

    summary = {"kind": kind, "local_dir": str(out), "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")
                                                                    if p.is_file()),
               "unknown_motif_rates": dict(rates), "uploaded": False}
    if not dry_run:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(token=token)
        summary.update(upload(api, out, repo_id, kind, private, revision, commit_message, token), uploaded=True)
    return summary


__all__ = ["REPO_ID", "export_adapter", "export_model", "folder_kind", "hub_offline", "is_network_error", "publish",
           "require_online", "upload", "write_endpoint_files"]
