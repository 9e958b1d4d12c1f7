"""Hub publishing and serving: examples/push_to_hub.py with a fake Hub client, the exported folder loaded in a fresh
process that cannot import the package (AutoModel, AutoProcessor, pipeline, Inference Endpoints handler, LoRA
adapter), FineMolTexPipeline on real molecules and texts, and bad requests to the handler. Offline.

One tiny pre-training run (examples/pretrain.py, `tiny` preset, 2 steps) is published; its numbers come from
examples/zero_shot_retrieval.py and examples/finetune_property.py run on it here.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from conftest import REPO, SHARED_DATA

sys.path.insert(0, str(REPO / "examples"))
import finetune_property  # noqa: E402
import pretrain  # noqa: E402
import push_to_hub  # noqa: E402
import zero_shot_retrieval  # noqa: E402

from modeling_finemoltex import PIPELINE_TASK, FineMolTexPipeline  # noqa: E402
from modeling_finemoltex.retrieval_finemoltex import embed_molecules, embed_texts, read_pairs  # noqa: E402
from modeling_finemoltex.tokenization_finemoltex import NUM_SPECIAL_TOKENS, UNK_ID  # noqa: E402

SAMPLE = REPO / "examples" / "data" / "chebi20_sample.tsv"
BASE_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "C1CC(", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"]
TEXTS = ["The molecule is a primary alcohol.", "The molecule is a member of the class of phenols.",
         "The molecule is a benzoic acid carrying an acetoxy group.", "A purine alkaloid found in coffee."]


class FakeHubApi:
    """Stands in for `huggingface_hub.HfApi`: records the calls and the files of the uploaded folder."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []
        self.files: dict[str, bytes] = {}

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))
        root = Path(kwargs["folder_path"])
        self.files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/c0ffee", oid="c0ffee")


def _front_matter(card: str) -> dict:
    from huggingface_hub import ModelCard

    return ModelCard(card).data.to_dict()


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hub")


@pytest.fixture(scope="module")
def pretrained(work, text_tokenizer) -> Path:
    """The README's main job in miniature: examples/pretrain.py writes <work>/finemoltex."""
    from transformers import BertConfig, BertModel

    encoder = work / "tiny_bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(text_tokenizer), hidden_size=32, intermediate_size=64, num_attention_heads=2,
                         num_hidden_layers=2, max_position_embeddings=512), add_pooling_layer=False).save_pretrained(encoder)
    text_tokenizer.save_pretrained(encoder)
    out = work / "finemoltex"
    pretrain.main([
        "--model_preset", "tiny", "--text_model_name_or_path", str(encoder), "--output_dir", str(out),
        "--cache_dir", str(work / "cache"), "--max_train_samples", "32", "--max_eval_samples", "8",
        "--motif_target_min_frequency", "2", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
        "--max_text_length", "64", "--max_steps", "2", "--save_strategy", "no", "--logging_steps", "1",
        "--disable_tqdm", "true", "--report_to", "none", "--use_cpu", "true", "--dataloader_pin_memory", "false",
    ])
    return out


@pytest.fixture(scope="module")
def retrieval_json(pretrained, work) -> Path:
    path = work / "retrieval.json"
    zero_shot_retrieval.main(["--model_name_or_path", str(pretrained), "--data_file", str(SAMPLE), "--max_samples", "16",
                              "--T", "4", "--output_file", str(path), "--no_progress", "true", "--device", "cpu"])
    return path


@pytest.fixture(scope="module")
def bbbp_file(work) -> Path:
    with open(SHARED_DATA / "moleculenet" / "bbbp.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    positives = [r for r in rows if r["p_np"] == "1"][:30]
    negatives = [r for r in rows if r["p_np"] == "0"][:30]
    path = work / "bbbp_small.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["smiles", "p_np"])
        writer.writerows((r["smiles"], r["p_np"]) for pair in zip(positives, negatives) for r in pair)
    return path


@pytest.fixture(scope="module")
def lora_run(pretrained, bbbp_file, work) -> dict:
    out = work / "bbbp_lora"
    finetune_property.main([
        "--data_file", str(bbbp_file), "--model_name_or_path", str(pretrained), "--lora", "--num_train_epochs", "1",
        "--seeds", "0", "--output_dir", str(out), "--save_model", "--split_method", "random",
        "--split_seed", "1",  # both classes in validation and test (alternating rows), so ROC-AUC is defined
    ])
    return {"results": out / "results.json", "adapter": out / "seed_0" / "model"}


@pytest.fixture(scope="module")
def published(pretrained, retrieval_json, lora_run, work) -> dict:
    api = FakeHubApi()
    summary = push_to_hub.main([
        "--model_name_or_path", str(pretrained), "--repo_id", "chem-lab/finemoltex-tiny", "--private", "--revision", "dev",
        "--commit_message", "FineMolTex tiny, first upload", "--base_model", BASE_TEXT_ENCODER, "--datasets",
        "example-org/chebi-20", "--retrieval_results", str(retrieval_json), "--property_results",
        str(lora_run["results"]), "--local_dir", str(work / "export"),
    ], api=api)
    return {"api": api, "summary": summary, "dir": work / "export"}


@pytest.fixture(scope="module")
def published_adapter(published, lora_run, work) -> dict:
    api = FakeHubApi()
    summary = push_to_hub.main([
        "--model_name_or_path", str(lora_run["adapter"]), "--repo_id", "chem-lab/finemoltex-tiny-bbbp-lora",
        "--base_model", str(published["dir"]), "--property_results", str(lora_run["results"]),
        "--local_dir", str(work / "export_lora"),
    ], api=api)
    return {"api": api, "summary": summary, "dir": work / "export_lora"}


# ------------------------------------------------------------------------------------------------ upload
def test_upload_records_files_card_and_commit(published, pretrained, retrieval_json):
    from modeling_finemoltex import FineMolTexForPreTraining, MotifVocab

    api = published["api"]
    assert [c[0] for c in api.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert all(c[1] == "chem-lab/finemoltex-tiny" for c in api.calls)
    assert api.calls[0][2]["private"] is True and api.calls[0][2]["exist_ok"] is True
    assert api.calls[1][2]["branch"] == "dev"
    upload = api.calls[2][2]
    assert upload["revision"] == "dev" and upload["commit_message"] == "FineMolTex tiny, first upload"
    assert published["summary"]["commit_url"].endswith("/commit/c0ffee") and published["summary"]["uploaded"]

    files = api.files
    for name in ("config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json",
                 "graph_tokenizer/tokenizer_config.json", "graph_tokenizer/motif_vocab.json", "motif_vocab.json",
                 "configuration_finemoltex.py", "modeling_finemoltex.py", "losses_finemoltex.py",
                 "processing_finemoltex.py", "tokenization_finemoltex.py", "pipeline_finemoltex.py",
                 "retrieval_finemoltex.py", "chemistry_finemoltex.py", "features_finemoltex.py", "motifs_finemoltex.py",
                 "handler.py", "requirements.txt", "README.md"):
        assert name in files, name
    # publishing code is not model code: the export and card modules stay out of the model repo
    assert "hub_finemoltex.py" not in files and "model_card_finemoltex.py" not in files
    # the code lives at the root once: no copies of the tokenizer module or its imports under graph_tokenizer/
    assert not [name for name in files if name.startswith("graph_tokenizer/") and name.endswith(".py")]
    config = json.loads(files["config.json"])
    assert config["auto_map"]["AutoConfig"] == "configuration_finemoltex.FineMolTexConfig"
    assert config["auto_map"]["AutoModel"] == "modeling_finemoltex.FineMolTexModel"
    assert config["custom_pipelines"][PIPELINE_TASK]["impl"] == "pipeline_finemoltex.FineMolTexPipeline"
    assert config["text_model_name_or_path"] is None  # no local path in a published config
    assert json.loads(files["processor_config.json"])["auto_map"]["AutoProcessor"] == "processing_finemoltex.FineMolTexProcessor"
    graph_auto_map = json.loads(files["graph_tokenizer/tokenizer_config.json"])["auto_map"]
    assert graph_auto_map["AutoTokenizer"][0] == "processing_finemoltex.FineMolTexGraphTokenizer"
    assert b"rdkit" in files["requirements.txt"]
    # registration is restored after the export: later saves in this process write no processor auto_map
    from modeling_finemoltex import FineMolTexProcessor

    assert FineMolTexProcessor._auto_class is None

    # no local path of this machine anywhere in the published text files (text_config._name_or_path, the
    # vocabulary's build.source, ...); the card may name the data file, but not where it lies
    for name, content in files.items():
        if name.endswith((".json", ".md", ".txt")):
            assert str(pretrained.parent).encode() not in content, name
    for vocab_file in ("motif_vocab.json", "graph_tokenizer/motif_vocab.json"):
        source = json.loads(files[vocab_file])["build"].get("source")
        assert source and "/" not in source, (vocab_file, source)  # the file name only

    card = files["README.md"].decode()
    meta = _front_matter(card)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "feature-extraction"
    assert meta["license"] == "apache-2.0" and meta["base_model"] == BASE_TEXT_ENCODER
    assert meta["datasets"] == ["example-org/chebi-20"]
    assert {"finemoltex", "chemistry", "molecule-text-retrieval"} <= set(meta["tags"])
    assert "$" not in card.split("## Citation")[0]  # every placeholder filled

    # numbers: parameter count from the weights, vocabulary size/checksum, retrieval metrics from the JSON
    model = FineMolTexForPreTraining.from_pretrained(pretrained)
    assert f"| total | {sum(p.numel() for p in model.parameters()):,} |" in card
    vocab = MotifVocab.load(pretrained / "motif_vocab.json")
    assert vocab.checksum in card and f"entries: {len(vocab):,} ({NUM_SPECIAL_TOKENS} special" in card
    results = json.loads(retrieval_json.read_text())
    assert f"| molecule to text | {results['molecule_to_text/mrr']:.4f} | {results['molecule_to_text/recall@1']:.4f}" in card
    assert f"| text to molecule | {results['text_to_molecule/mrr']:.4f}" in card
    assert "examples/finetune_property.py" in card and "bbbp_small.csv" in card


def test_unknown_motif_rate_is_the_tokenizer_s(published, pretrained):
    """The card's unknown-motif rate, recomputed through the graph tokenizer's public tokenize -> ids path ([UNK] ids;
    every motif of the molecule, not only the first max_motifs that enter the model)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(pretrained)
    smiles, _ = read_pairs(str(SAMPLE))
    unknown = total = 0
    for s in smiles:
        ids = processor.graph_tokenizer.convert_tokens_to_ids(processor.graph_tokenizer.tokenize(s))
        unknown += ids.count(UNK_ID)
        total += len(ids)
    rate = published["summary"]["unknown_motif_rates"][str(SAMPLE)]
    assert rate["unknown_motifs"] == unknown and rate["motifs"] == total and 0 < unknown < total
    assert f"| {unknown:,} | {100 * unknown / total:.2f}% |" in (published["dir"] / "README.md").read_text()


def test_adapter_repo_names_its_base(published_adapter, published, lora_run):
    api = published_adapter["api"]
    files = api.files
    for name in ("adapter_config.json", "adapter_model.safetensors", "config.json", "configuration_finemoltex.py",
                 "graph_tokenizer/motif_vocab.json", "README.md"):
        assert name in files, name
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == str(published["dir"])
    meta = _front_matter(files["README.md"].decode())
    assert meta["base_model"] == str(published["dir"]) and meta["library_name"] == "peft"
    assert {"lora", "finemoltex"} <= set(meta["tags"])
    results = json.loads(lora_run["results"].read_text())
    test_auc = results["runs"][0]["test"]["roc_auc"]
    assert f"{test_auc:.4f} (seed 0" in files["README.md"].decode()
    from safetensors.torch import load_file

    adapter_parameters = sum(t.numel() for t in load_file(published_adapter["dir"] / "adapter_model.safetensors").values())
    assert f"{adapter_parameters:,} values" in files["README.md"].decode()


def test_offline_upload_fails_clearly_before_any_work(pretrained, work, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = work / "never_written"
    with pytest.raises(OSError, match="HF_HUB_OFFLINE=1.*--dry_run"):
        push_to_hub.main(["--model_name_or_path", str(pretrained), "--repo_id", "chem-lab/x", "--base_model",
                          BASE_TEXT_ENCODER, "--local_dir", str(target)])
    assert not target.exists()


def test_upload_without_network_says_so_in_one_line(pretrained, work):
    class ConnectError(Exception):  # what httpx raises when the name does not resolve
        pass

    class Unreachable(FakeHubApi):
        def create_repo(self, repo_id, **kwargs):
            raise ConnectError("[Errno -2] Name or service not known")

    with pytest.raises(OSError, match=r"^Cannot reach the Hugging Face Hub to upload 'chem-lab/x': no network") as err:
        push_to_hub.main(["--model_name_or_path", str(pretrained), "--repo_id", "chem-lab/x", "--base_model",
                          BASE_TEXT_ENCODER, "--local_dir", str(work / "no_network")], api=Unreachable())
    assert "\n" not in str(err.value) and err.value.__cause__ is None
    from modeling_finemoltex.hub_finemoltex import is_network_error

    assert not is_network_error(ValueError("401 Unauthorized"))  # the server's answers are not network errors


def test_numbers_of_another_model_are_refused(pretrained, retrieval_json, lora_run, work):
    untrained = json.loads(retrieval_json.read_text())
    untrained["model"] = "untrained:tiny"
    (work / "untrained.json").write_text(json.dumps(untrained))
    args = ["--model_name_or_path", str(pretrained), "--base_model", BASE_TEXT_ENCODER, "--dry_run"]
    with pytest.raises(ValueError, match="untrained baseline"):
        push_to_hub.main([*args, "--retrieval_results", str(work / "untrained.json")])
    other = dict(untrained, model=str(lora_run["adapter"]))
    (work / "other.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="computed with the model"):
        push_to_hub.main([*args, "--retrieval_results", str(work / "other.json")])
    (work / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        push_to_hub.main([*args, "--retrieval_results", str(work / "broken.json")])
    with pytest.raises(ValueError, match="--base_model"):
        push_to_hub.main(["--model_name_or_path", str(pretrained), "--dry_run"])


def test_publish_from_the_package_dry_run(pretrained, work):
    """`hub_finemoltex.publish` without the script: a dry run exports the folder and its card, uploads nothing."""
    from modeling_finemoltex.hub_finemoltex import publish

    summary = publish(pretrained, BASE_TEXT_ENCODER, out=work / "export_dry", dry_run=True, title="Dry run")
    assert summary["kind"] == "model" and not summary["uploaded"] and summary["unknown_motif_rates"] == {}
    assert {"config.json", "model.safetensors", "motif_vocab.json", "handler.py", "README.md"} <= set(summary["files"])
    card = (work / "export_dry" / "README.md").read_text()
    assert card.split("\n# ", 1)[1].startswith("Dry run") and "No evaluation results were given" in card
    assert _front_matter(card)["base_model"] == BASE_TEXT_ENCODER
    with pytest.raises(ValueError, match="repo_id"):
        publish(pretrained, BASE_TEXT_ENCODER, out=work / "never_exported")
    assert not (work / "never_exported").exists()


def test_card_template_placeholders_are_all_filled_or_refused():
    from modeling_finemoltex.model_card_finemoltex import TEMPLATE, render_card

    assert render_card("$title: $tags", {"title": "x", "tags": "[]"}) == "x: []"
    with pytest.raises(ValueError, match="placeholder 'library_name'"):
        render_card(TEMPLATE.read_text(encoding="utf-8"), {"title": "x"})


# ------------------------------------------------------------------------------------------------ local loading + pipeline
def test_readme_main_job_folder_loads_by_name(pretrained, monkeypatch):
    """`AutoModel.from_pretrained("finemoltex")` next to the folder examples/pretrain.py writes (package imported),
    and the registered pipeline task on it."""
    from transformers import AutoModel, AutoProcessor, pipeline

    from modeling_finemoltex import FineMolTexModel, FineMolTexProcessor

    monkeypatch.chdir(pretrained.parent)
    model = AutoModel.from_pretrained("finemoltex")
    assert type(model) is FineMolTexModel
    assert isinstance(AutoProcessor.from_pretrained("finemoltex"), FineMolTexProcessor)
    # the folder names its own pipeline code (custom_pipelines): transformers runs that copy when trusted, or the
    # installed class when given
    pipe = pipeline(PIPELINE_TASK, model="finemoltex", device="cpu", pipeline_class=FineMolTexPipeline)
    assert isinstance(pipe, FineMolTexPipeline)
    assert len(pipe(smiles="CCO")["embedding"]) == model.config.projection_dim
    trusted = pipeline(PIPELINE_TASK, model="finemoltex", device="cpu", trust_remote_code=True)
    assert type(trusted).__name__ == "FineMolTexPipeline"
    assert trusted(smiles="CCO")["embedding"] == pytest.approx(pipe(smiles="CCO")["embedding"], abs=1e-6)


@pytest.fixture(scope="module")
def pipe(pretrained):
    from transformers import AutoModel, AutoProcessor

    return FineMolTexPipeline(model=AutoModel.from_pretrained(pretrained), processor=AutoProcessor.from_pretrained(pretrained),
                              device="cpu")


def test_pipeline_embeddings_match_the_retrieval_functions_and_report_bad_items(pipe, monkeypatch):
    import modeling_finemoltex.pipeline_finemoltex as pipeline_module

    batch_sizes = []

    def recording(*args, **kwargs):
        batch_sizes.append(kwargs["batch_size"])
        return embed_molecules(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "embed_molecules", recording)
    out = pipe(smiles=MOLECULES + ["", 7], batch_size=2)
    assert batch_sizes == [2, 2, 2]  # one call per batch of 2 of the 5 strings (the time budget is checked between)
    monkeypatch.undo()
    assert [r["index"] for r in out] == list(range(len(MOLECULES) + 2))
    bad = {r["index"]: r["error"] for r in out if "error" in r}
    assert set(bad) == {3, 5, 6}
    assert "index 3" in bad[3] and "C1CC(" in bad[3] and "Empty SMILES" in bad[5] and "must be a string" in bad[6]
    expected, kept = embed_molecules(pipe.model, pipe.processor, MOLECULES, progress=False)
    assert kept == [0, 1, 2, 4]
    got = torch.tensor([out[i]["embedding"] for i in kept])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    texts = pipe(text=TEXTS)
    torch.testing.assert_close(torch.tensor([r["embedding"] for r in texts]),
                               embed_texts(pipe.model, pipe.processor, TEXTS, progress=False), rtol=1e-5, atol=1e-6)
    single = pipe(text=TEXTS[0], return_tensors=True)
    assert isinstance(single, dict) and single["embedding"].shape == (pipe.model.config.projection_dim,)


def test_pipeline_ranks_by_cosine_and_lists_invalid_candidates(pipe):
    molecule_embeds, _ = embed_molecules(pipe.model, pipe.processor, MOLECULES[:3] + MOLECULES[4:], progress=False)
    text_embeds = embed_texts(pipe.model, pipe.processor, TEXTS, progress=False)

    ranked = pipe(text=TEXTS[:2], candidate_smiles=MOLECULES, top_k=3)
    valid = [0, 1, 2, 4]
    for t, record in enumerate(ranked):
        scores = molecule_embeds @ text_embeds[t]
        order = sorted(range(len(valid)), key=lambda r: -float(scores[r]))[:3]
        assert [c["index"] for c in record["ranking"]] == [valid[r] for r in order]
        assert [c["score"] for c in record["ranking"]] == pytest.approx([float(scores[r]) for r in order], abs=1e-5)
        assert [c["index"] for c in record["invalid_candidates"]] == [3]
        assert "C1CC(" in record["invalid_candidates"][0]["error"]

    for_molecule = pipe(smiles="CCO", candidate_texts=TEXTS + ["  "])
    assert len(for_molecule["ranking"]) == len(TEXTS) and for_molecule["invalid_candidates"][0]["index"] == len(TEXTS)
    scores = [c["score"] for c in for_molecule["ranking"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
    bad_query = pipe(smiles=["C1CC(", "CCO"], candidate_texts=TEXTS)
    assert "error" in bad_query[0] and bad_query[1]["ranking"]
    batch = pipe([{"smiles": "CCO"}, {"text": "an alcohol", "candidate_smiles": ["CCO", "c1ccccc1O"]}])
    assert "embedding" in batch[0] and len(batch[1]["ranking"]) == 2


@pytest.mark.parametrize("call, error", [
    (dict(), "Cannot tell what to do"),
    (dict(smiles="CCO", text="an alcohol"), "Cannot tell what to do"),
    (dict(smiles="CCO", candidate_texts="an alcohol"), "must be a list"),
    (dict(smiles="CCO", candidate_texts=[]), "is empty"),
    (dict(smiles=3), "must be a string or a list"),
    (dict(inputs="CCO"), "pass molecules as `smiles=`"),
    (dict(inputs={"smile": "CCO"}), "Unknown request field"),
    (dict(smiles="CCO", top_k=0), "positive integer"),
    (dict(smiles="CCO", batch_size=0), "positive integer"),
    (dict(smiles="CCO", colour="red"), "Unknown FineMolTexPipeline parameter"),
])
def test_pipeline_misuse_raises_with_a_reason(pipe, call, error):
    with pytest.raises((ValueError, TypeError), match=error):
        pipe(**call)


# ------------------------------------------------------------------------------------------------ fresh process, no package
# the start of every fresh-process script: argv[1] is the checkout, which leaves sys.path, and the package cannot
# be imported at all (what a machine without it installed sees)
BLOCK_PACKAGE = textwrap.dedent(
    """
    import importlib.abc, importlib.util, json, os, sys
    repo = os.path.realpath(sys.argv[1])
    # drop the checkout from the path (but not a virtual environment that happens to live inside it)
    sys.path[:] = [p for p in sys.path
                   if p not in ("", ".") and not (os.path.realpath(p).startswith(repo) and "site-packages" not in p)]

    class BlockPackage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "modeling_finemoltex" or name.startswith("modeling_finemoltex."):
                raise ImportError("modeling_finemoltex is blocked in this test")

    sys.meta_path.insert(0, BlockPackage())
    """
)
REMOTE_SCRIPT = BLOCK_PACKAGE + textwrap.dedent(
    """
    # `evaluate` is not needed to serve: a stand-in that fails to import (the retrieval metrics import it lazily)
    sys.path.insert(0, sys.argv[6])
    for name in ("modeling_finemoltex", "evaluate"):
        try:
            __import__(name)
            raise SystemExit(name + " still importable")
        except ImportError:
            pass
    import torch
    torch.set_num_threads(1)
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoConfig, AutoProcessor, AutoTokenizer, pipeline

    folder, adapter, job = sys.argv[2], sys.argv[3], json.load(open(sys.argv[4]))
    report = {}
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    report["classes"] = [type(model).__module__ + "." + type(model).__name__, type(processor).__module__ + "." +
                         type(processor).__name__, type(processor.graph_tokenizer).__name__]
    batch = processor(smiles=job["smiles"], text=job["texts"])
    batch.pop("kept_indices")
    with torch.no_grad():
        out = model(**batch)
    report["graph_embeds"], report["text_embeds"] = out.graph_embeds.tolist(), out.text_embeds.tolist()

    pipe = pipeline(model=folder, trust_remote_code=True, device="cpu")
    report["pipeline"] = [type(pipe).__module__, pipe(text=job["texts"][0], candidate_smiles=job["candidates"], top_k=2)]

    spec = importlib.util.spec_from_file_location("handler", os.path.join(folder, "handler.py"))
    handler_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler_module)
    handler = handler_module.EndpointHandler(folder)
    report["responses"] = [handler(request) for request in job["requests"]]

    config = AutoConfig.from_pretrained(adapter, trust_remote_code=True)
    from peft import PeftModel
    base = AutoModelForSequenceClassification.from_pretrained(folder, config=config, trust_remote_code=True)
    lora = PeftModel.from_pretrained(base, adapter).eval()
    graph_tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="graph_tokenizer", trust_remote_code=True)
    graph_batch = graph_tokenizer(job["smiles"])
    graph_batch.pop("kept_indices")
    with torch.no_grad():
        report["lora_predictions"] = lora(**graph_batch).predictions.tolist()
    json.dump(report, open(sys.argv[5], "w"))
    print("REMOTE_OK")
    """
)

BAD_REQUESTS = [
    ("not an object", "", "must be a JSON object"),
    ({}, "inputs", "missing"),
    ({"inputs": "CCO"}, "inputs", "must be an object"),
    ({"inputs": {"smiles": 5}}, "inputs.smiles", "got number"),
    ({"inputs": {"smiles": ["CCO", None]}}, "inputs.smiles[1]", "must be a string, got null"),
    ({"inputs": {"smiles": ["CCO"] * 9}}, "inputs", "holds 9 molecules and texts; the limit per request is 8"),
    ({"inputs": {"smiles": "CCO", "text": "an alcohol"}}, "inputs", "cannot serve the combination"),
    ({"inputs": {"smile": "CCO"}}, "inputs.smile", "unknown field"),
    ({"inputs": {"text": "x", "candidate_smiles": "CCO"}}, "inputs.candidate_smiles", "must be an array of strings"),
    ({"inputs": {"text": "x", "candidate_smiles": []}}, "inputs.candidate_smiles", "empty list"),
    ({"inputs": {"text": "x", "candidate_smiles": ["CCO"]}, "parameters": {"top_k": "2"}}, "parameters.top_k", "positive integer"),
    ({"inputs": {"smiles": "CCO"}, "parameters": {"top_k": 2}}, "parameters.top_k", "only applies to rankings"),
    ({"inputs": {"smiles": "CCO"}, "options": {}}, "options", "unknown top-level field"),
    ({"inputs": {"text": "x" * 300}}, "inputs.text", "300 characters long; the limit is 250"),
]


def test_exported_repo_serves_in_a_fresh_process_without_the_package(published, published_adapter, pipe, bbbp_file, work):
    from modeling_finemoltex.property_finemoltex import load_property_model, predict

    good_requests = [
        {"inputs": {"smiles": ["CCO", "C1CC("]}},
        {"inputs": {"text": TEXTS[0], "candidate_smiles": ["CCO", "not-a-smiles", "c1ccccc1O"]}, "parameters": {"top_k": 2}},
        {"inputs": {"smiles": "c1ccccc1O", "candidate_texts": TEXTS}},
        {"inputs": {"text": ["", TEXTS[1]]}},
    ]
    smiles = [MOLECULES[i] for i in (0, 1, 2, 4)]
    job = {"smiles": smiles, "texts": TEXTS, "candidates": MOLECULES,
           "requests": [r for r, _, _ in BAD_REQUESTS] + good_requests}
    (work / "job.json").write_text(json.dumps(job))
    (work / "remote_check.py").write_text(REMOTE_SCRIPT)
    (work / "no_evaluate" / "evaluate").mkdir(parents=True, exist_ok=True)
    (work / "no_evaluate" / "evaluate" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'evaluate' (test_hub stand-in)\")\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(work / "modules"), PYTHONPATH="",
               TRANSFORMERS_VERBOSITY="error", FINEMOLTEX_MAX_BATCH_SIZE="8", FINEMOLTEX_MAX_STRING_LENGTH="250",
               OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, str(work / "remote_check.py"), str(REPO), str(published["dir"]), str(published_adapter["dir"]),
         str(work / "job.json"), str(work / "report.json"), str(work / "no_evaluate")],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert "REMOTE_OK" in result.stdout, result.stderr[-4000:]
    report = json.loads((work / "report.json").read_text())

    # remote classes, same numbers as the package
    assert report["classes"][0].startswith("transformers_modules.") and report["classes"][0].endswith("FineMolTexModel")
    assert report["classes"][1].startswith("transformers_modules.") and report["classes"][2] == "FineMolTexGraphTokenizer"
    expected_graph, _ = embed_molecules(pipe.model, pipe.processor, smiles, progress=False)
    torch.testing.assert_close(torch.tensor(report["graph_embeds"]), expected_graph, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.tensor(report["text_embeds"]),
                               embed_texts(pipe.model, pipe.processor, TEXTS, progress=False), rtol=1e-4, atol=1e-5)
    module, ranked = report["pipeline"]
    assert module.startswith("transformers_modules.")
    local = pipe(text=TEXTS[0], candidate_smiles=MOLECULES, top_k=2)
    assert [c["index"] for c in ranked["ranking"]] == [c["index"] for c in local["ranking"]]
    assert ranked["invalid_candidates"][0]["index"] == 3

    # the handler: every bad request answered with error objects naming the field
    responses = report["responses"]
    for (request, field, message), response in zip(BAD_REQUESTS, responses):
        assert "results" not in response, request
        assert any(e["field"] == field and message in e["message"] for e in response["errors"]), (request, response)
    embeds, ranking, for_molecule, texts = (r["results"] for r in responses[len(BAD_REQUESTS):])
    assert "embedding" in embeds[0] and "Invalid SMILES at index 1" in embeds[1]["error"]
    assert len(ranking["ranking"]) == 2 and ranking["invalid_candidates"][0]["smiles"] == "not-a-smiles"
    assert len(for_molecule["ranking"]) == len(TEXTS)
    assert "Empty text at index 0" in texts[0]["error"] and "embedding" in texts[1]

    # the LoRA head through remote code equals the package's loader on the adapter folder the test published
    package_model = load_property_model(published_adapter["dir"], base_model_name_or_path=str(published["dir"]))
    expected = predict(package_model, smiles).predictions
    torch.testing.assert_close(torch.tensor(report["lora_predictions"]), torch.as_tensor(expected, dtype=torch.float32),
                               rtol=1e-4, atol=1e-5)


PLAIN_FOLDER_SCRIPT = BLOCK_PACKAGE + textwrap.dedent(
    """
    import torch
    from transformers import AutoModel, AutoProcessor, pipeline

    folder = sys.argv[2]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    batch = processor(smiles=["CCO", "c1ccccc1O"], text=["ethanol", "phenol"], padding="max_length", max_length=16)
    batch.pop("kept_indices")
    with torch.no_grad():
        out = model(**batch)
    pipe = pipeline(model=folder, trust_remote_code=True, device="cpu")
    print(json.dumps({"classes": [type(model).__name__, type(processor).__name__, type(pipe).__name__],
                      "modules": [type(model).__module__, type(processor).__module__, type(pipe).__module__],
                      "input_ids": list(batch["input_ids"].shape), "graph_embeds": out.graph_embeds.tolist(),
                      "pipeline": pipe(smiles="CCO")["embedding"]}))
    """
)


def test_pretraining_folder_is_self_contained(pretrained, pipe, work):
    """The folder examples/pretrain.py writes (not only the Hub export) loads with AutoModel, AutoProcessor and
    pipeline(...) in a fresh process where the package cannot be imported."""
    (work / "plain_check.py").write_text(PLAIN_FOLDER_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(work / "modules_plain"), PYTHONPATH="",
               TRANSFORMERS_VERBOSITY="error", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(work / "plain_check.py"), str(REPO), str(pretrained)], cwd=work,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["classes"] == ["FineMolTexModel", "FineMolTexProcessor", "FineMolTexPipeline"]
    assert all(module.startswith("transformers_modules.") for module in report["modules"])
    assert report["input_ids"] == [2, 16]
    expected, _ = embed_molecules(pipe.model, pipe.processor, ["CCO", "c1ccccc1O"], progress=False)
    torch.testing.assert_close(torch.tensor(report["graph_embeds"]), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.tensor(report["pipeline"]), expected[0], rtol=1e-4, atol=1e-5)
    assert not [p.name for p in pretrained.iterdir() if p.name.startswith("checkpoint-")]
