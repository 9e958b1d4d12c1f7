"""Property prediction: model outputs and masked losses, pre-trained weight loading, LoRA (peft) save/reload/merge,
best-epoch selection, the local ROC-AUC evaluate module, `predict`, the fine-tuning example end to end and its
bad-input errors. Tiny configs, real BBBP molecules."""

from __future__ import annotations

import csv
import importlib.util
import json
import math

import numpy as np
import pytest
import torch

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from _examples import load_example
from _model_fixtures import tiny_config
from conftest import SHARED_DATA
from modeling_finemoltex import (
    FineMolTexForMoleculePropertyPrediction,
    FineMolTexForPreTraining,
    FineMolTexGraphTokenizer,
)
from modeling_finemoltex.modeling_finemoltex import property_loss
from modeling_finemoltex.processing_finemoltex import FineMolTexDataCollator
from modeling_finemoltex.property_finemoltex import (
    binary_roc_auc,
    check_split_labels,
    count_parameters,
    give_motif_stream_its_learning_rate,
    load_property_data,
    load_roc_auc_metric,
    lora_config,
    metric_path,
    multitask_roc_auc,
    predict,
    read_table,
    select_best_epoch,
    split_data,
)

BBBP = SHARED_DATA / "moleculenet" / "bbbp.csv"
TASK = "p_np, blood-brain barrier"  # a task name with a comma and spaces


@pytest.fixture(scope="module")
def bbbp_rows():
    """~100 BBBP rows, both classes (the file starts with a long run of positives)."""
    with open(BBBP, newline="") as handle:
        rows = list(csv.DictReader(handle))
    positives = [r for r in rows if r["p_np"] == "1"][:60]
    negatives = [r for r in rows if r["p_np"] == "0"][:40]
    mixed = [r for pair in zip(positives, negatives) for r in pair] + positives[40:]
    return [(r["smiles"], r["p_np"]) for r in mixed]


@pytest.fixture(scope="module")
def tokenizer():
    return FineMolTexGraphTokenizer()


def _batch(tokenizer, smiles, labels=None):
    rows = [tokenizer.encode_molecule(s) for s in smiles]
    if labels is not None:
        rows = [dict(r, labels=list(map(float, l))) for r, l in zip(rows, labels)]
    return FineMolTexDataCollator(2, 2)(rows)


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pretrained")
    FineMolTexForPreTraining(tiny_config()).save_pretrained(path)
    return path


def _property_model(num_labels=2, **overrides):
    torch.manual_seed(0)
    return FineMolTexForMoleculePropertyPrediction(tiny_config(num_labels=num_labels, **overrides)).eval()


# ------------------------------------------------------------------------------------------------ model
@pytest.mark.parametrize("pooling", ["atom_mean", "graph_cls"])
def test_shapes_and_outputs(tokenizer, bbbp_rows, pooling):
    model = _property_model(num_labels=3, property_pooling=pooling)
    smiles = [s for s, _ in bbbp_rows[:5]]
    out = model(**_batch(tokenizer, smiles, [[1, 0, math.nan]] * 5), output_hidden_states=True)
    assert out.logits.shape == out.predictions.shape == (5, 3)
    assert torch.all((out.predictions > 0) & (out.predictions < 1))
    assert out.pooled_output.shape[0] == 5 and out.loss.ndim == 0
    assert (hasattr(model.finemoltex, "fusion")) == (pooling == "graph_cls")
    assert not hasattr(model.finemoltex, "text_model")  # no text tower in the property model


def test_nan_labels_masked_from_loss(tokenizer, bbbp_rows):
    model = _property_model(num_labels=2)
    smiles = [s for s, _ in bbbp_rows[:4]]
    batch = _batch(tokenizer, smiles)
    labels = torch.tensor([[1.0, math.nan], [0.0, 1.0], [math.nan, 0.0], [1.0, 1.0]])
    out = model(**batch, labels=labels)
    observed = ~torch.isnan(labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits[observed], labels[observed])
    torch.testing.assert_close(out.loss, expected)
    # missing entries get no gradient
    logits = out.logits.detach().requires_grad_()
    property_loss(logits, labels, "multi_label_classification").backward()
    assert torch.all(logits.grad[~observed] == 0) and torch.all(logits.grad[observed] != 0)
    all_nan = model(**batch, labels=torch.full_like(labels, math.nan)).loss
    assert all_nan.item() == 0.0 and all_nan.requires_grad


def test_nan_labels_masked_from_metric():
    labels = np.array([[1, 0], [0, np.nan], [1, 1], [0, np.nan], [np.nan, 0]], dtype=float)
    scores = np.array([[0.9, 0.2], [0.1, 0.99], [0.8, 0.7], [0.3, 0.5], [0.0, 0.1]])
    result = multitask_roc_auc(labels, scores)
    assert result["roc_auc_per_task"][0] == 1.0
    assert result["roc_auc_per_task"][1] == 1.0  # task 1 on rows 0, 2, 4 only (0.99 and 0.5 are unlabelled)
    single = multitask_roc_auc(np.array([[1, 1], [1, 0]], float), np.array([[0.2, 0.3], [0.1, 0.4]]))
    assert math.isnan(single["roc_auc_per_task"][0]) and single["num_valid_tasks"] == 1
    assert single["roc_auc"] == 0.0  # mean over the task with both classes only


def test_pos_weight_scales_positive_terms(tokenizer, bbbp_rows):
    smiles = [s for s, _ in bbbp_rows[:4]]
    batch = _batch(tokenizer, smiles)
    positives = torch.ones(4, 2)
    plain = _property_model(num_labels=2)
    weighted = _property_model(num_labels=2, property_pos_weight=[3.0, 1.0])
    weighted.load_state_dict(plain.state_dict())
    out_plain, out_weighted = plain(**batch, labels=positives), weighted(**batch, labels=positives)
    per_task_plain = torch.nn.functional.binary_cross_entropy_with_logits(out_plain.logits, positives, reduction="none").mean(0)
    torch.testing.assert_close(out_weighted.loss, (3.0 * per_task_plain[0] + per_task_plain[1]) / 2)
    negatives = torch.zeros(4, 2)  # negatives are not reweighted
    torch.testing.assert_close(plain(**batch, labels=negatives).loss, weighted(**batch, labels=negatives).loss)
    with pytest.raises(ValueError, match="property_pos_weight"):
        tiny_config(num_labels=2, property_pos_weight=[1.0])


def test_regression_standardisation_round_trip(tokenizer, bbbp_rows, tmp_path):
    mean, std = [5.0, -100.0], [2.0, 10.0]
    model = _property_model(num_labels=2, problem_type="regression", regression_mean=mean, regression_std=std)
    smiles = [s for s, _ in bbbp_rows[:6]]
    batch = _batch(tokenizer, smiles)
    targets = torch.tensor([[7.0, -90.0]] * 6)
    with torch.no_grad():  # a head that outputs exactly the standardised targets
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([(7.0 - 5.0) / 2.0, (-90.0 + 100.0) / 10.0]))
    out = model(**batch, labels=targets)
    torch.testing.assert_close(out.predictions, targets)  # original units
    assert out.loss.item() == pytest.approx(0.0, abs=1e-10)
    off = model(**batch, labels=targets + torch.tensor([2.0, 10.0]))  # one std off on each task
    assert off.loss.item() == pytest.approx(1.0)  # MSE in standardised units
    model.save_pretrained(tmp_path)
    loaded = FineMolTexForMoleculePropertyPrediction.from_pretrained(tmp_path).eval()
    assert loaded.config.regression_mean == mean and loaded.config.regression_std == std
    torch.testing.assert_close(loaded(**batch).predictions, out.predictions)


def test_bad_classification_label_in_batch(tokenizer, bbbp_rows):
    model = _property_model(num_labels=1)
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        model(**_batch(tokenizer, [bbbp_rows[0][0]]), labels=torch.tensor([[2.0]]))


@pytest.mark.parametrize("pooling", ["atom_mean", "graph_cls"])
def test_pretrained_graph_weights_loaded(pretrained_dir, pooling):
    from transformers import AutoModelForSequenceClassification

    model, info = FineMolTexForMoleculePropertyPrediction.from_pretrained(
        pretrained_dir, num_labels=2, problem_type="multi_label_classification", property_pooling=pooling,
        output_loading_info=True,
    )
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    assert not info["mismatched_keys"]
    checkpoint = FineMolTexForPreTraining.from_pretrained(pretrained_dir).state_dict()
    graph_keys = [k for k in model.state_dict() if k.startswith("finemoltex.")]
    assert any(".graph_encoder.layers.0.mlp.0.weight" in k for k in graph_keys)
    for key in graph_keys:
        torch.testing.assert_close(model.state_dict()[key], checkpoint[key], rtol=0, atol=0, msg=key)
    auto = AutoModelForSequenceClassification.from_pretrained(pretrained_dir, num_labels=1)
    assert isinstance(auto, FineMolTexForMoleculePropertyPrediction)


# ------------------------------------------------------------------------------------------------ LoRA
def test_lora_adapters_save_reload_merge(pretrained_dir, tokenizer, bbbp_rows, tmp_path):
    from peft import PeftModel, get_peft_model

    def base():
        return FineMolTexForMoleculePropertyPrediction.from_pretrained(
            pretrained_dir, num_labels=1, property_pooling="graph_cls")

    torch.manual_seed(0)
    model = get_peft_model(base(), lora_config(base().config, r=4, alpha=8))
    trainable, total = count_parameters(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "modules_to_save" in n for n in names), names
    assert any("mlp.0.lora_A" in n for n in names) and any("attention.query.lora_A" in n for n in names)
    assert any("classifier" in n for n in names)
    assert trainable / total < 0.25  # tiny model: the head and BatchNorms weigh more than at full size

    smiles = [s for s, _ in bbbp_rows[:16]]
    labels = [[float(y)] for _, y in bbbp_rows[:16]]
    batch = _batch(tokenizer, smiles, labels)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):  # moves adapters, head and the BatchNorm running statistics
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    model.eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        expected = model(**inputs).predictions

    model.save_pretrained(tmp_path / "adapter")
    files = {p.name: p.stat().st_size for p in (tmp_path / "adapter").iterdir()}
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    full_size = sum(p.stat().st_size for p in pretrained_dir.glob("*.safetensors"))
    assert files["adapter_model.safetensors"] < full_size / 2

    torch.manual_seed(123)  # a fresh base: different random head, untouched BatchNorm statistics
    reloaded = PeftModel.from_pretrained(base(), tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).predictions, expected)
        merged = reloaded.merge_and_unload().eval()
        assert isinstance(merged, FineMolTexForMoleculePropertyPrediction)
        torch.testing.assert_close(merged(**inputs).predictions, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ learning rates
def _trainer_like_groups(model, weight_decay=0.01):
    """The two groups `Trainer.create_optimizer` makes: with and without weight decay."""
    decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("weight") and p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not (n.endswith("weight") and p.ndim > 1)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def test_motif_stream_learning_rate_moves_only_the_motif_stream(tokenizer, bbbp_rows):
    model = _property_model(num_labels=1, property_pooling="graph_cls").train()
    optimizer = torch.optim.AdamW(_trainer_like_groups(model), lr=1e-3)
    moved = give_motif_stream_its_learning_rate(optimizer, model, 1e-6)
    names = {id(p): n for n, p in model.named_parameters()}
    motif = {n for n in names.values() if n.startswith(("finemoltex.fusion.", "finemoltex.motif_embeddings."))}
    assert moved == len(motif) > 0
    grouped = [names[id(p)] for g in optimizer.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(names.values())  # every parameter once
    for group in optimizer.param_groups:
        in_motif = {names[id(p)] in motif for p in group["params"]}
        assert in_motif == {group["lr"] == 1e-6}, group["lr"]
    assert sorted(g["weight_decay"] for g in optimizer.param_groups) == [0.0, 0.0, 0.01, 0.01]

    # one AdamW step moves each element by about its group's rate: the motif stream 1000x less than the GIN
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = _batch(tokenizer, [s for s, _ in bbbp_rows[:8]], [[float(y)] for _, y in bbbp_rows[:8]])
    model(**batch).loss.backward()
    optimizer.step()
    step = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    assert max(step[n] for n in motif) < 2e-6
    assert step["finemoltex.graph_encoder.layers.0.mlp.0.weight"] > 5e-4

    with pytest.raises(ValueError, match="stepped already"):
        give_motif_stream_its_learning_rate(optimizer, model, 1e-5)
    with pytest.raises(ValueError, match="> 0"):
        give_motif_stream_its_learning_rate(torch.optim.AdamW(model.parameters()), model, 0.0)
    atom_mean = _property_model(num_labels=1)
    assert give_motif_stream_its_learning_rate(torch.optim.AdamW(atom_mean.parameters()), atom_mean, 1e-5) == 0


def test_motif_stream_learning_rate_finds_lora_adapters(pretrained_dir):
    from peft import get_peft_model

    base = FineMolTexForMoleculePropertyPrediction.from_pretrained(pretrained_dir, num_labels=1,
                                                                   property_pooling="graph_cls")
    model = get_peft_model(base, lora_config(base.config, r=4))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    assert give_motif_stream_its_learning_rate(optimizer, model, 1e-5) > 0
    names = {id(p): n for n, p in model.named_parameters()}
    slow = [names[id(p)] for g in optimizer.param_groups if g["lr"] == 1e-5 for p in g["params"]]
    assert slow and all(".fusion.motif_layers." in n and "lora_" in n for n in slow), slow


# ------------------------------------------------------------------------------------------------ selection, metric
def test_select_best_epoch_updates():
    history = [
        {"epoch": 1, "roc_auc": 0.60, "test": 0.50},  # first epoch: what the authors' classification script reports
        {"epoch": 2, "roc_auc": 0.75, "test": 0.55},  # best validation
        {"epoch": 3, "roc_auc": float("nan"), "test": 0.99},
        {"epoch": 4, "roc_auc": 0.75, "test": 0.70},  # tie: the first one stays
        {"epoch": 5, "roc_auc": 0.65, "test": 0.80},  # last epoch
    ]
    assert select_best_epoch(history, "roc_auc")["epoch"] == 2
    assert select_best_epoch(history, "roc_auc", greater_is_better=False)["epoch"] == 1
    with pytest.raises(ValueError, match="rmse"):
        select_best_epoch(history, "rmse")


def test_evaluate_metric_module_offline_with_ties():
    metric = load_roc_auc_metric()
    # positives 0.5, 0.9; negatives 0.5, 0.2: pairs (0.5,0.5)=1/2, (0.5,0.2)=1, (0.9,0.5)=1, (0.9,0.2)=1 -> 3.5/4
    result = metric.compute(
        predictions=[[0.5, 0.3], [0.5, 0.1], [0.2, 0.9], [0.9, 0.4], [0.7, 0.2]],
        references=[[1, 1], [0, 0], [0, float("nan")], [1, 1], [float("nan"), 0]],
        task_names=["a, b", "c d"],
    )
    assert result["roc_auc_per_task"][0] == pytest.approx(0.875)
    # task 2 on rows 0, 1, 3, 4: positives 0.3, 0.4; negatives 0.1, 0.2 -> 1.0
    assert result["roc_auc_per_task"][1] == pytest.approx(1.0)
    assert result["roc_auc"] == pytest.approx((0.875 + 1.0) / 2)
    assert result["roc_auc_per_task_named"] == {"a, b": pytest.approx(0.875), "c d": pytest.approx(1.0)}
    # the module and the package copy agree, and match the Mann-Whitney definition
    spec = importlib.util.spec_from_file_location("rocm", metric_path() / "roc_auc_multitask.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (50, 3)).astype(float)
    y[rng.random((50, 3)) < 0.2] = np.nan
    s = np.round(rng.random((50, 3)), 1)  # many ties
    assert module.multitask_roc_auc(y.tolist(), s.tolist()) == multitask_roc_auc(y, s)
    for t in range(3):
        keep = ~np.isnan(y[:, t])
        pos, neg = s[keep, t][y[keep, t] == 1], s[keep, t][y[keep, t] == 0]
        brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
        assert binary_roc_auc(y[keep, t], s[keep, t]) == pytest.approx(brute)
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        metric.compute(predictions=[[0.1], [0.2]], references=[[2], [0]])


# ------------------------------------------------------------------------------------------------ predict
def test_predict_reports_invalid_smiles(tokenizer, bbbp_rows):
    model = _property_model(num_labels=2, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    smiles = [bbbp_rows[0][0], "C1CC(", bbbp_rows[1][0], "", "[Al](C)(C)(C)(C)(C)C"]
    result = predict(model, smiles, tokenizer, batch_size=2)
    assert set(result.invalid) == {1, 3, 4}
    assert "C1CC(" in result.invalid[1]
    assert np.isnan(result.predictions[[1, 3, 4]]).all() and np.isfinite(result.predictions[[0, 2]]).all()
    direct = model(**_batch(tokenizer, [smiles[0], smiles[2]])).predictions.detach().numpy()
    np.testing.assert_allclose(result.predictions[[0, 2]], direct, rtol=1e-5, atol=1e-6)
    records = result.to_records(smiles)
    assert records[1]["error"] and set(records[0]) == {"index", "smiles", "a", "b"}


# ------------------------------------------------------------------------------------------------ example + bad input
def _load_example():
    return load_example("finetune_property")


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_example_end_to_end(bbbp_rows, tmp_path):
    data = _write_csv(tmp_path / "bbbp_small.csv", ["smiles", TASK], bbbp_rows + [("not_a_smiles", "1")])
    results = _load_example().main([
        "--data_file", str(data), "--task_columns", TASK, "--from_scratch_preset", "tiny",
        "--num_train_epochs", "2", "--seeds", "0", "1", "--output_dir", str(tmp_path / "run"),
        "--per_device_train_batch_size", "16",
    ])
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["tasks"] == [TASK] and saved["rows_dropped"] == 1 and saved["dropped"][0]["row"] == len(bbbp_rows)
    assert sum(saved["split_sizes"].values()) == len(bbbp_rows)
    summary = saved["summary"]["test_roc_auc"]
    assert summary["n"] == 2 and 0.0 <= summary["mean"] <= 1.0 and summary["std"] >= 0.0
    assert f"test_roc_auc/{TASK}" in saved["summary"]
    for run in saved["runs"]:
        assert len(run["history"]) == 2
        best = max(run["history"], key=lambda r: r["validation_roc_auc"])  # (first on ties)
        assert run["best_epoch"] == best["epoch"]
        assert run["test"]["roc_auc"] == best["test_roc_auc"]
    assert results["summary"] == saved["summary"]


SAVED_PROPERTY_MODEL_SCRIPT = """
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

folder, smiles = sys.argv[2], sys.argv[3:]
model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="graph_tokenizer", trust_remote_code=True)
with torch.no_grad():
    out = model(**tokenizer(smiles))
print(json.dumps({"classes": [type(model).__module__, type(tokenizer).__name__], "predictions": out.predictions.tolist()}))
"""


def test_saved_model_is_self_contained(bbbp_rows, tmp_path):
    """finetune_property.py --save_model writes a folder that AutoModelForSequenceClassification and AutoTokenizer
    load in a fresh process where the package cannot be imported, predicting what the package predicts."""
    import os
    import subprocess
    import sys

    from test_hub import BLOCK_PACKAGE

    from conftest import REPO
    from modeling_finemoltex.property_finemoltex import load_graph_tokenizer, load_property_model

    data = _write_csv(tmp_path / "d.csv", ["smiles", TASK], bbbp_rows)
    _load_example().main(["--data_file", str(data), "--from_scratch_preset", "tiny", "--num_train_epochs", "1",
                          "--seeds", "0", "--output_dir", str(tmp_path / "run"), "--save_model", "--progress", "false"])
    folder = tmp_path / "run" / "seed_0" / "model"
    smiles = [bbbp_rows[0][0], bbbp_rows[1][0], "CCO"]
    (tmp_path / "check.py").write_text(BLOCK_PACKAGE + SAVED_PROPERTY_MODEL_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), PYTHONPATH="",
               TRANSFORMERS_VERBOSITY="error", OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, str(tmp_path / "check.py"), str(REPO), str(folder), *smiles], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["classes"][0].startswith("transformers_modules.") and report["classes"][1] == "FineMolTexGraphTokenizer"
    expected = predict(load_property_model(folder), smiles, load_graph_tokenizer(folder)).predictions
    torch.testing.assert_close(torch.tensor(report["predictions"]), torch.as_tensor(expected, dtype=torch.float32),
                               rtol=1e-4, atol=1e-5)


def test_example_keeps_finished_seeds_and_shows_progress(bbbp_rows, tmp_path, capsys):
    data = _write_csv(tmp_path / "d.csv", ["smiles", TASK], bbbp_rows)
    common = ["--data_file", str(data), "--task_columns", TASK, "--from_scratch_preset", "tiny", "--num_train_epochs",
              "2", "--output_dir", str(tmp_path / "run"), "--per_device_train_batch_size", "16"]
    example = _load_example()
    trained = []
    original = example.Trainer.train

    def counting(self, *args, **kwargs):
        trained.append(self.args.seed)
        return original(self, *args, **kwargs)

    example.Trainer.train = counting
    try:
        first = example.main([*common, "--seeds", "0", "1"])
        assert trained == [0, 1] and "seed 1 (2/2)" in capsys.readouterr().err  # a tqdm bar per seed
        record = json.loads((tmp_path / "run" / "seed_0" / "result.json").read_text())
        assert record["run"] == json.loads(json.dumps(first["runs"][0], default=float))
        # a longer run (e.g. after a kill) reads finished seeds back and trains only the new one
        second = example.main([*common, "--seeds", "0", "1", "2"])
        assert trained == [0, 1, 2] and second["seeds_finished"] == 3
        assert second["runs"][:2] == json.loads(json.dumps(first["runs"], default=float))
        # other settings: trained again
        example.main([*common, "--seeds", "0", "--learning_rate", "3e-4"])
        assert trained == [0, 1, 2, 0]
        example.main([*common, "--seeds", "0", "--rerun_finished_seeds", "true", "--progress", "false"])
        assert trained == [0, 1, 2, 0, 0]
    finally:
        example.Trainer.train = original
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["seeds_finished"] == saved["seeds_asked"] == 1


def test_example_lora_from_pretrained_with_predict(bbbp_rows, pretrained_dir, tmp_path, monkeypatch):
    data = _write_csv(tmp_path / "d.csv", ["smiles", "p_np"], bbbp_rows)
    monkeypatch.chdir(pretrained_dir.parent)  # the base given relatively, as the README's ./finemoltex
    results = _load_example().main([
        "--data_file", str(data), "--model_name_or_path", pretrained_dir.name, "--lora", "--num_train_epochs", "1",
        "--seeds", "0", "--output_dir", str(tmp_path / "run"), "--save_model",
        "--predict_smiles", bbbp_rows[0][0], "C1CC(",
    ])
    run = results["runs"][0]
    assert results["finetuning"] == "lora" and results["parameters"]["trainable_share"] < 0.5
    assert (tmp_path / "run" / "seed_0" / "model" / "adapter_model.safetensors").is_file()
    assert "error" in run["predictions"][1] and 0 < run["predictions"][0]["p_np"] < 1
    # the adapter records its base as an absolute path, so it loads from any folder
    adapter_config = json.loads((tmp_path / "run" / "seed_0" / "model" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(pretrained_dir.resolve())
    monkeypatch.chdir(tmp_path)
    # the saved adapter (+ property config) reloads onto its base through the prediction CLI: same numbers
    cli = load_example("predict_property")
    records = cli.main(["--model_dir", str(tmp_path / "run" / "seed_0" / "model"), "--smiles", bbbp_rows[0][0], "C1CC("])
    assert records[0]["p_np"] == pytest.approx(run["predictions"][0]["p_np"], rel=1e-5)
    assert records[1]["index"] == 1 and "C1CC(" in records[1]["error"]


def test_example_motif_stream_learning_rate(bbbp_rows, tmp_path, monkeypatch):
    data = _write_csv(tmp_path / "d.csv", ["smiles", "p_np"], bbbp_rows[:40])
    example = _load_example()
    common = ["--data_file", str(data), "--from_scratch_preset", "tiny", "--num_train_epochs", "1", "--seeds", "0",
              "--motif_stream_learning_rate", "1e-5", "--progress", "false"]
    with pytest.raises(ValueError, match="graph_cls only"):
        example.main([*common, "--output_dir", str(tmp_path / "atom_mean")])
    optimizers = []

    def recording(optimizer, model, learning_rate):
        optimizers.append(optimizer)
        return give_motif_stream_its_learning_rate(optimizer, model, learning_rate)

    monkeypatch.setattr(example, "give_motif_stream_its_learning_rate", recording)
    results = example.main([*common, "--property_pooling", "graph_cls", "--output_dir", str(tmp_path / "run")])
    assert results["seeds_finished"] == 1 and results["arguments"]["motif_stream_learning_rate"] == 1e-5
    (optimizer,) = optimizers
    assert sorted({g["lr"] for g in optimizer.param_groups}) == [1e-5, 1e-3]


def test_bad_inputs_name_file_column_row(bbbp_rows, tmp_path):
    rows = bbbp_rows[:20]
    bad_label = _write_csv(tmp_path / "label2.csv", ["smiles", "y"], rows[:5] + [(rows[5][0], "2")] + rows[6:])
    with pytest.raises(ValueError, match=r"label2\.csv: row 5 .*column 'y'.*'2' is not 0, 1 or empty"):
        load_property_data(bad_label)
    good = _write_csv(tmp_path / "good.csv", ["smiles", "y"], rows)
    with pytest.raises(ValueError, match=r"good\.csv: no task column named 'z'.*columns found"):
        load_property_data(good, task_columns=["z"])
    with pytest.raises(ValueError, match=r"good\.csv: no SMILES column named 'SMILES_X'"):
        load_property_data(good, smiles_column="SMILES_X")
    sparse = _write_csv(tmp_path / "sparse.csv", ["smiles", "y", "rare"],
                        [(s, y, "1" if i < 3 else "") for i, (s, y) in enumerate(rows)])
    data = load_property_data(sparse)
    with pytest.raises(ValueError, match=r"sparse\.csv: task column 'rare' has no labels in the (validation|test) split"):
        check_split_labels(data, split_data(data, "scaffold"), "multi_label_classification")
    invalid = _write_csv(tmp_path / "invalid.csv", ["smiles", "y"], [("C1CC(", "1"), ("xyz", "0")])
    with pytest.raises(ValueError, match=r"invalid\.csv: no rows left \(2 unparsable"):
        load_property_data(invalid)
    empty = _write_csv(tmp_path / "empty.csv", ["smiles", "y"], [])
    with pytest.raises(ValueError, match=r"empty\.csv: no rows left"):
        load_property_data(empty)
    with pytest.warns(UserWarning, match=r"dropped 1 of 21 rows.*row 20: 'C1CC\('"):
        data = load_property_data(_write_csv(tmp_path / "one_bad.csv", ["smiles", "y"], rows + [("C1CC(", "1")]))
    assert data.dropped[0][0] == 20 and len(data.smiles) == 20
    example = _load_example()
    with pytest.raises(ValueError, match="exactly one of"):
        example.main(["--data_file", str(good), "--output_dir", str(tmp_path / "x")])


@pytest.mark.parametrize("header, duplicated", [(["smiles", "smiles", "p_np"], r"\['smiles'\]"),
                                                (["smiles", "p_np", "p_np"], r"\['p_np'\]"),
                                                ([" smiles", "smiles ", "p_np"], r"\['smiles'\]")])
def test_duplicated_column_is_refused(bbbp_rows, tmp_path, header, duplicated):
    # smiles,smiles,p_np doubled the molecules with misaligned labels; smiles,p_np,p_np raised IndexError
    rows = [(s, s, y) if header.count("p_np") == 1 else (s, y, y) for s, y in bbbp_rows[:10]]
    path = _write_csv(tmp_path / "dup.csv", header, rows)
    with pytest.raises(ValueError, match=rf"dup\.csv: duplicated column name\(s\) {duplicated}"):
        load_property_data(path)


def test_duplicated_parquet_column_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["CCO"]), pa.array(["CCN"]), pa.array([1])],
                                        names=["smiles", "smiles", "y"]), path)
    with pytest.raises(ValueError, match=r"dup\.parquet: duplicated column name\(s\) \['smiles'\]"):
        load_property_data(path)


def test_non_utf8_property_table_names_the_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("smiles,p_np\nCCO,1\nCCN,0\nc1ccccc1O,1 caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.csv is not UTF-8 text.*re-encode"):
        read_table(path)


@pytest.mark.parametrize("recorded", ["/nowhere/finemoltex", "./finemoltex", "finemoltex-not-in-cache"])
def test_adapter_with_a_missing_base_fails_at_once_naming_it(tmp_path, monkeypatch, recorded):
    import re

    from huggingface_hub import constants

    from modeling_finemoltex import FineMolTexConfig
    from modeling_finemoltex.property_finemoltex import load_property_model

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": recorded, "peft_type": "LORA"}))
    FineMolTexConfig.from_preset("tiny").save_pretrained(adapter)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)  # no ./finemoltex here
    with pytest.raises(FileNotFoundError, match=rf"base model '{re.escape(recorded)}' \(recorded in .*adapter_config.json\)"):
        load_property_model(adapter)


def test_lora_wrap_and_load_raise_no_deprecation_noise(pretrained_dir, tmp_path):
    import warnings

    from peft import get_peft_model

    from modeling_finemoltex.property_finemoltex import load_property_model, peft_without_deprecation_noise

    base = FineMolTexForMoleculePropertyPrediction.from_pretrained(pretrained_dir, num_labels=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with peft_without_deprecation_noise():
            model = get_peft_model(base, lora_config(base.config, r=2, alpha=4))
        model.save_pretrained(tmp_path / "adapter")
        model.get_base_model().config.save_pretrained(tmp_path / "adapter")
        load_property_model(tmp_path / "adapter", base_model_name_or_path=str(pretrained_dir))
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
