# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""The model card (``README.md``) of a published FineMolTex model or LoRA property adapter.

`model_card` fills the template ``model_card.md`` (shipped beside this module) with numbers computed here:
architecture and parameter counts from the weights, motif-vocabulary size and checksum, the unknown-motif rate from
tokenising the evaluation SMILES; and with numbers read from the JSON written by the evaluation scripts
(`load_retrieval_results`: examples/zero_shot_retrieval.py ``--output_file``; `load_property_results`:
examples/finetune_property.py ``results.json``), checked to come from the published folder. None is typed in by hand.

    from modeling_finemoltex.model_card_finemoltex import load_retrieval_results, model_card

No RDKit here (molecules are read through the graph tokenizer).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from string import Template
from typing import Any, Sequence

from .chemistry_finemoltex import MoleculeParseError
from .pipeline_finemoltex import PIPELINE_TASK
from .property_finemoltex import read_table
from .retrieval_finemoltex import read_pairs
from .tokenization_finemoltex import NUM_SPECIAL_TOKENS, FineMolTexGraphTokenizer, MotifVocab

#: the card template: ``$name`` placeholders, each filled by `model_card`
TEMPLATE = Path(__file__).resolve().with_name("model_card.md")
#: a Hub repository id, ``user/name`` (or a bare ``name``)
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


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




def read_smiles(path: str | os.PathLike) -> list[str]:
    """SMILES of an evaluation file: a ChEBI-20-style TSV (.txt/.tsv: CID, SMILES, description) or a CSV/Parquet
    with a ``smiles`` (or ``mol``) column."""
    path = Path(path)
    if path.suffix.lower() in (".txt", ".tsv"):
        smiles, _ = read_pairs(str(path))
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



# ====================================================================================== the card
def _model_fields(exported: dict, folder: Path, base_model: str, repo: str, datasets: Sequence[str]) -> dict:
    """Card fields of a pre-trained model (`export_model`'s result)."""
    return dict(
        library_name="transformers", pipeline_tag="feature-extraction",
        description=("A [FineMolTex](https://arxiv.org/abs/2409.14106) molecular graph–text model: a GIN + motif "
                     "transformer for molecules and a BERT-style encoder for text, pre-trained together with a "
                     "contrastive loss and masked motif / masked word prediction through cross-modal attention. "
                     "It embeds molecules (SMILES) and texts in one space for zero-shot retrieval, and is a "
                     "starting point for property prediction (LoRA heads). Published with the `finemoltex` package."),
        architecture=architecture_section(exported["model"], exported["architecture"], base_model),
        training_data=training_section_model(folder, exported["vocab"], list(datasets)),
        usage=usage_model(repo),
    )


def _adapter_fields(exported: dict, base_model: str, repo: str, properties: Sequence[dict]) -> dict:
    """Card fields of a LoRA property adapter (`export_adapter`'s result); `properties`: its training runs."""
    config, adapter_config = exported["config"], exported["adapter_config"]
    from safetensors import safe_open

    adapter_parameters = 0
    if exported["weights_file"].suffix == ".safetensors":
        with safe_open(str(exported["weights_file"]), framework="pt") as weights:
            for key in weights.keys():
                adapter_parameters += math.prod(weights.get_slice(key).get_shape())
    tasks = [config.id2label[i] for i in sorted(config.id2label)] if config.id2label else []
    rows = [
        ["base model", f"`{base_model}` (FineMolTex; trained on a local copy, `{_name(exported['recorded_base'])}`)"],
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
    return dict(
        library_name="peft", pipeline_tag="graph-ml",
        description=(f"A LoRA adapter with a property-prediction head for the FineMolTex model "
                     f"{_hub_link(base_model)}, trained with "
                     f"examples/finetune_property.py of the `finemoltex` package."),
        architecture=_table(["part", "setting"], rows),
        training_data="\n".join(training) or "No results.json was given (--property_results): the training run is "
                                             "not described.",
        usage=usage_adapter(repo, base_model),
    )


def model_card(
    kind: str,
    exported: dict,
    folder: Path,
    base_model: str,
    repo: str,
    title: str,
    retrieval: Sequence[dict] = (),
    properties: Sequence[dict] = (),
    rates: Sequence[tuple[str, dict]] = (),
    license: str = "apache-2.0",
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    template: str | os.PathLike = TEMPLATE,
) -> str:
    """The card text (``README.md``) of an exported `kind` ("model" or "adapter"). `exported`: what
    `hub_finemoltex.export_model` / `export_adapter` returned; `folder`: the published folder (its
    ``trainer_state.json`` describes training); `retrieval` / `properties`: `load_retrieval_results` /
    `load_property_results`; `rates`: (evaluation file, `unknown_motif_rate`) pairs; `repo`: the Hub id the usage
    snippets load; `tags`: added to the standard ones."""
    vocab = exported["vocab"]
    all_tags = list(dict.fromkeys(["finemoltex", "chemistry", "molecules", "graph-neural-network"]
                                  + (["molecule-text-retrieval", "custom_code"] if kind == "model" else ["lora", "peft",
                                     "molecular-property-prediction"]) + list(tags)))
    training_file = exported.get("training_file") or vocab.build_options.get("source")
    evaluation = [retrieval_section(list(retrieval), training_file)] if retrieval else []
    if properties:
        evaluation.append(property_section(list(properties), adapter=kind == "adapter"))
    if not evaluation:
        evaluation = ["No evaluation results were given to push_to_hub.py (--retrieval_results, --property_results), "
                      "so none are reported."]
    if kind == "model":
        fields = _model_fields(exported, folder, base_model, repo, datasets)
    else:
        fields = _adapter_fields(exported, base_model, repo, properties)
    fields.update(
        license=_yaml(license), base_model=_yaml(base_model), datasets=_yaml(list(datasets)),
        tags=_yaml(all_tags), title=title,
        motif_vocabulary=motif_section(vocab, list(rates),
                                       "motif_vocab.json" if kind == "model" else "graph_tokenizer/motif_vocab.json"),
        evaluation="\n\n".join(evaluation),
    )
    fields["library_name"], fields["pipeline_tag"] = _yaml(fields["library_name"]), _yaml(fields["pipeline_tag"])
    return render_card(Path(template).read_text(encoding="utf-8"), fields)


__all__ = ["REPO_ID", "TEMPLATE", "load_property_results", "load_retrieval_results", "model_card", "parameter_counts",
           "read_smiles", "render_card", "unknown_motif_rate"]
