"""Graph pre-training by attribute masking: the mask draw and loss (losses_finemoltex), the model
(graph_pretraining_finemoltex), the GIN checkpoint it writes (load_gin_checkpoint, our layout) and
examples/pretrain_graph.py end to end (main, --resume, accelerate launch).

Tiny runs: a 2-layer, 32-wide GIN, a few dozen ZINC-like SMILES, one thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from _examples import load_example
from _model_fixtures import tiny_config
from conftest import REPO
from modeling_finemoltex import FineMolTexGraphForAttributeMasking, FineMolTexGraphTokenizer, load_gin_checkpoint
from modeling_finemoltex.graph_pretraining_finemoltex import atom_mask_values, evaluate_attribute_masking
from modeling_finemoltex.losses_finemoltex import IGNORE_INDEX, masked_atom_loss, sample_atom_mask
from test_pretrain import data_cache, pretrain, tiny_args, tiny_text_encoder  # noqa: F401  (fixtures)

SMILES = [
    "CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1", "C", "N[C@@H](C)C(=O)O", "O=C(O)c1ccccc1OC(C)=O",
    "CN1CCC[C@H]1c1cccnc1", "Clc1ccc(Cl)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "C1CCNCC1", "OCC(O)CO", "c1ccc2ccccc2c1",
]


def graph_batch(smiles=SMILES):
    batch = dict(FineMolTexGraphTokenizer()(smiles))
    batch.pop("kept_indices")
    return batch


# ---------------------------------------------------------------------------------------------- mask and loss
@pytest.mark.parametrize("rate", [0.15, 0.5, 1.0])
def test_atom_mask_takes_exactly_floor_rate_n_plus_one_atoms_of_each_molecule(rate):
    sizes = torch.tensor([1, 2, 6, 7, 20, 33, 3])
    graph = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    expected = torch.minimum(torch.floor(sizes.double() * rate).long() + 1, sizes)
    seen = torch.zeros(graph.numel())
    for seed in range(40):
        mask = sample_atom_mask(graph, rate, torch.Generator().manual_seed(seed))
        assert mask.dtype == torch.bool and mask.shape == graph.shape  # only real atoms: the batch has no padding
        assert torch.equal(torch.bincount(graph[mask], minlength=len(sizes)), expected)
        seen += mask
    # uniform within a molecule: over 40 draws every atom of the 33-atom molecule is picked at times
    big = graph == 5
    assert (seen[big] > 0).all()
    assert torch.equal(sample_atom_mask(graph, rate, torch.Generator().manual_seed(3)),
                       sample_atom_mask(graph, rate, torch.Generator().manual_seed(3)))


def test_atom_mask_edge_cases():
    assert not sample_atom_mask(torch.zeros(5, dtype=torch.long), 0.0).any()
    assert sample_atom_mask(torch.zeros(0, dtype=torch.long), 0.15).shape == (0,)
    # the molecule count may be given (no device sync); trailing molecules without atoms are fine
    mask = sample_atom_mask(torch.tensor([0, 0, 1]), 0.15, num_molecules=4)
    assert mask.sum() == 2


def test_masked_atom_loss_is_cross_entropy_over_labelled_rows():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 5.0]], requires_grad=True)
    labels = torch.tensor([0, 2, IGNORE_INDEX])
    loss, accuracy = masked_atom_loss(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits[:2], labels[:2])
    torch.testing.assert_close(loss, expected)
    assert float(accuracy) == 0.5
    loss.backward()
    assert logits.grad[2].abs().sum() == 0
    empty, accuracy = masked_atom_loss(torch.zeros(0, 3, requires_grad=True), torch.zeros(0, dtype=torch.long))
    assert float(empty.detach()) == 0.0 and empty.requires_grad and float(accuracy) == 0.0


# ---------------------------------------------------------------------------------------------- model
def test_masked_atoms_enter_the_gin_with_the_mask_features_and_are_the_targets():
    torch.manual_seed(0)
    model = FineMolTexGraphForAttributeMasking(tiny_config())
    batch = graph_batch()
    seen = {}
    model.finemoltex.graph_encoder.register_forward_hook(lambda m, args, out: seen.update(atoms=args[0]))
    out = model(**batch, mask_seed=1)
    mask = out.atom_mask
    counts = torch.bincount(batch["graph_batch"], minlength=len(SMILES))
    assert torch.equal(torch.bincount(batch["graph_batch"][mask], minlength=len(SMILES)),
                       torch.minimum((counts * 0.15).long() + 1, counts))
    assert torch.equal(seen["atoms"][mask], torch.tensor([[0, 0]]).expand(int(mask.sum()), 2))
    assert torch.equal(seen["atoms"][~mask], batch["graph_atom_features"][~mask])
    assert torch.equal(out.labels, batch["graph_atom_features"][mask, 0])
    assert out.logits.shape == (int(mask.sum()), 119) and out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.atom_type_head.weight.grad is not None
    assert model.finemoltex.graph_encoder.layers[0].mlp[0].weight.grad.abs().sum() > 0
    # the same seed, the same masks; a given mask wins; no loss without return_loss
    assert torch.equal(model(**batch, mask_seed=1).atom_mask, mask)
    given = torch.zeros_like(mask)
    given[0] = True
    assert model(**batch, atom_mask=given).labels.tolist() == [6]
    assert model(**batch, return_loss=False).loss is None


def test_mask_values_of_the_feature_sets():
    assert atom_mask_values([119, 4]) == [0, 0]  # Hu et al.: [MASK] atom type (our '*' row), chirality unspecified
    assert atom_mask_values([119, 4, 11, 2, 7]) == [0, 0, 10, 1, 6]
    assert atom_mask_values([119]) == [0]


def test_model_learns_carbon_quickly_and_held_out_accuracy_has_a_baseline():
    torch.manual_seed(0)
    model = FineMolTexGraphForAttributeMasking(tiny_config())
    batch = graph_batch()
    before = evaluate_attribute_masking(model, [batch], mask_seed=5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(30):
        optimizer.zero_grad()
        model(**batch, mask_seed=100 + step).loss.backward()
        optimizer.step()
    after = evaluate_attribute_masking(model, [batch], mask_seed=5)
    assert after["masked_atoms"] == before["masked_atoms"] > 0
    assert after["majority_atom_type"] == 6 and 0 < after["majority_accuracy"] < 1
    assert after["loss"] < before["loss"] and after["accuracy"] > before["accuracy"]
    assert model.training  # restored


# ---------------------------------------------------------------------------------------------- checkpoint
def _tower_states(model, batch):
    model.eval()
    with torch.no_grad():
        return model.finemoltex.graph_encoder(batch["graph_atom_features"], batch["graph_edge_index"], batch["graph_edge_features"])


def test_saved_model_loads_as_a_gin_checkpoint_into_other_finemoltex_models(tmp_path):
    from modeling_finemoltex import FineMolTexForMoleculePropertyPrediction, FineMolTexForPreTraining

    torch.manual_seed(0)
    source = FineMolTexGraphForAttributeMasking(tiny_config())
    for module in source.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    source.save_pretrained(tmp_path / "gin")
    batch = graph_batch()
    expected = _tower_states(source, batch)
    for cls, config in ((FineMolTexForPreTraining, tiny_config()),
                        (FineMolTexForMoleculePropertyPrediction, tiny_config(num_labels=2))):
        torch.manual_seed(1)
        target = cls(config)
        for path in (tmp_path / "gin", tmp_path / "gin" / "model.safetensors"):
            report = load_gin_checkpoint(target, path)
            assert report.layout == "finemoltex" and report.prefix == "finemoltex.graph_encoder."
            assert set(report.ignored_keys) == {"atom_type_head.bias", "atom_type_head.weight"}
            assert not report.missing_keys and not report.unexpected_keys
            encoder = target.finemoltex.graph_encoder
            encoder.eval()
            with torch.no_grad():
                got = encoder(batch["graph_atom_features"], batch["graph_edge_index"], batch["graph_edge_features"])
            torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # the property model also starts from the folder through from_pretrained (the tower sits at the same place)
    property_model = FineMolTexForMoleculePropertyPrediction.from_pretrained(tmp_path / "gin", num_labels=2)
    torch.testing.assert_close(_tower_states(property_model, batch), expected, rtol=0, atol=0)


def test_own_layout_mismatches_fail_naming_the_keys(tmp_path):
    FineMolTexGraphForAttributeMasking(tiny_config()).save_pretrained(tmp_path / "gin")
    wider = FineMolTexGraphForAttributeMasking(tiny_config(gnn_hidden_size=48))
    with pytest.raises(ValueError, match=r"finemoltex\.graph_encoder\.atom_embeddings\.0\.weight has shape \(119, 32\)"):
        load_gin_checkpoint(wider, tmp_path / "gin")
    deeper = FineMolTexGraphForAttributeMasking(tiny_config(gnn_num_layers=3))
    with pytest.raises(ValueError, match=r"Missing keys: \['layers\.2\."):
        load_gin_checkpoint(deeper, tmp_path / "gin")
    report = load_gin_checkpoint(deeper, tmp_path / "gin", strict=False)
    assert report.missing_keys and not report.unexpected_keys
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        load_gin_checkpoint(deeper, tmp_path)


# ---------------------------------------------------------------------------------------------- the script
pretrain_graph = load_example("pretrain_graph")

CORPUS = SMILES + [
    "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1", "C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1",
    "N#Cc1ccc(-c2ccc(O[C@@H](C(=O)N3CCCC3)c3ccccc3)cc2)cc1", "CCN(Cc1ccc(OC)c(OC)c1)C(=O)c1ccsc1",
    "Cc1ccc(/C=C2\\SC(N3CC[NH2+]CC3)=NC2=O)cc1", "CC(=O)Oc1ccccc1C(=O)O", "O=C1CCCN1", "CCOC(=O)C1CCN(C)CC1",
    "Nc1ncnc2[nH]cnc12", "FC(F)(F)c1ccccc1", "CSCC[C@H](N)C(=O)O", "OC1CCCCC1", "c1ccc(-c2ccccc2)cc1",
    "CC1=CC(=O)C=CC1=O", "COc1ccc(CCN)cc1", "C1COCCN1", "CC(C)NCC(O)c1ccc(O)c(O)c1", "Brc1ccccc1",
    "O=[N+]([O-])c1ccccc1", "CC(N)Cc1ccccc1",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    smi = folder / "corpus.smi"
    smi.write_text("smiles\n" + "\n".join(CORPUS[:28] + ["not_a_smiles", ""] + CORPUS[28:]) + "\n")
    csv_file = folder / "corpus.csv"
    csv_file.write_text("id,SMILES,y\n" + "".join(f"{i},{s},1\n" for i, s in enumerate(CORPUS)))
    return {"smi": smi, "csv": csv_file, "cache": folder / "cache"}


def graph_args(corpus, output_dir, *extra, train_file=None):
    return [
        "--train_file", str(train_file or corpus["smi"]), "--model_preset", "tiny", "--output_dir", str(output_dir),
        "--cache_dir", str(corpus["cache"]), "--validation_split_percentage", "20", "--per_device_train_batch_size",
        "8", "--per_device_eval_batch_size", "16", "--logging_steps", "1", "--save_steps", "2", "--disable_tqdm",
        "true", "--dataloader_pin_memory", "false", "--use_cpu", "true", "--report_to", "none", *extra,
    ]


def test_reading_smiles_files(corpus, tmp_path):
    assert pretrain_graph.read_smiles(corpus["smi"])[:2] == CORPUS[:2]  # header skipped
    assert len(pretrain_graph.read_smiles(corpus["smi"])) == len(CORPUS) + 1  # the bad one is read, skipped later
    assert pretrain_graph.read_smiles(corpus["csv"]) == CORPUS  # the SMILES column found in any case
    (tmp_path / "logp.smi").write_text("CCO 1.5\nc1ccccc1 -0.2\n")
    assert pretrain_graph.read_smiles(tmp_path / "logp.smi") == ["CCO", "c1ccccc1"]
    (tmp_path / "chebi.txt").write_text("CID\tSMILES\tdescription\n1\tCCO\tThe molecule is ethanol.\n")
    assert pretrain_graph.read_smiles(tmp_path / "chebi.txt") == ["CCO"]  # the field the header names
    with pytest.raises(ValueError, match="no 'smiles' or 'mol' column"):
        pretrain_graph._pick_column(["id", "y"], None, "f.csv")
    with pytest.raises(FileNotFoundError, match="nowhere.smi"):
        pretrain_graph.read_smiles(tmp_path / "nowhere.smi")


def test_script_trains_reports_and_writes_a_gin_checkpoint(corpus, tmp_path):
    from modeling_finemoltex import FineMolTexForPreTraining

    out = tmp_path / "gin"
    summary = pretrain_graph.main(graph_args(corpus, out, "--max_steps", "3"))
    assert summary["steps"] == 3 and summary["molecules_per_second"] > 0
    assert summary["skipped_smiles"]["train"]["unparsable_smiles"] + summary["skipped_smiles"].get(
        "validation", {"unparsable_smiles": 0})["unparsable_smiles"] == 1
    assert summary["train_molecules"] + summary["validation_molecules"] == len(CORPUS)
    held = summary["held_out"]
    assert held["masked_atoms"] > 0 and 0 <= held["accuracy"] <= 1 and held["majority_atom_type"] == 6
    assert summary["train_masked_atom_accuracy"] is not None
    assert {"config.json", "model.safetensors", "graph_tokenizer", "graph_pretraining.json",
            "modeling_finemoltex.py"} <= {p.name for p in out.iterdir()}  # (the code auto_map names travels along)
    assert not (out / "checkpoint-2").exists() and (tmp_path / "gin-checkpoints" / "checkpoint-2").is_dir()
    assert json.loads((out / "graph_pretraining.json").read_text())["steps"] == 3
    # the written checkpoint: same GIN outputs in another FineMolTex model
    trained = FineMolTexGraphForAttributeMasking.from_pretrained(out)
    target = FineMolTexForPreTraining(tiny_config())
    report = load_gin_checkpoint(target, out)
    assert report.layout == "finemoltex" and len(report.loaded_keys) == len(target.finemoltex.graph_encoder.state_dict())
    batch = graph_batch()
    torch.testing.assert_close(_tower_states(target, batch), _tower_states(trained, batch), rtol=0, atol=0)
    assert FineMolTexGraphTokenizer.from_pretrained(out / "graph_tokenizer").feature_set == "reference"


def test_script_reads_csv_and_fails_on_a_corpus_without_molecules(corpus, tmp_path):
    summary = pretrain_graph.main(graph_args(corpus, tmp_path / "csv", "--max_steps", "1", "--save_strategy", "no",
                                             train_file=corpus["csv"]))
    assert summary["steps"] == 1 and summary["skipped_smiles"]["train"]["unparsable_smiles"] == 0
    bad = tmp_path / "bad.smi"
    bad.write_text("not_a_smiles\nC1CC\n")
    with pytest.raises(ValueError, match="No train molecule parses"):
        pretrain_graph.main(graph_args(corpus, tmp_path / "bad", "--max_steps", "1", "--validation_split_percentage", "0",
                                       train_file=bad))


class _KillAt:
    """Simulate a killed run: raise right after the checkpoint of `step` is written."""

    def __init__(self, step):
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def on_save(_, args, state, control, **kwargs):
                if state.global_step == step:
                    raise KeyboardInterrupt(f"killed after step {step}")

        self.callback = Callback()


def test_killed_run_resumes_to_the_same_weights(corpus, tmp_path):
    common = ["--max_steps", "6"]  # ~36 training molecules / batch 8: the kill at step 4 is in the first epoch
    straight = pretrain_graph.main(graph_args(corpus, tmp_path / "a", *common))
    with pytest.raises(KeyboardInterrupt):
        pretrain_graph.main(graph_args(corpus, tmp_path / "b", *common), callbacks=[_KillAt(4).callback])
    assert (tmp_path / "b-checkpoints" / "checkpoint-4").is_dir()
    assert not (tmp_path / "b-checkpoints" / "checkpoint-6").exists()
    resumed = pretrain_graph.main(graph_args(corpus, tmp_path / "b", *common, "--resume", "true"))
    assert resumed["steps"] == straight["steps"] == 6 and resumed["resumed_from"].endswith("checkpoint-4")
    losses = lambda s: [h["loss"] for h in s["log_history"] if "loss" in h and "train_runtime" not in h]  # noqa: E731
    assert losses(resumed) == pytest.approx(losses(straight), rel=1e-4, abs=1e-5)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)
    with pytest.raises(ValueError, match="already trained 6 steps"):
        pretrain_graph.main(graph_args(corpus, tmp_path / "b", *common, "--resume", "true"))


def test_property_fine_tuning_starts_from_the_graph_checkpoint(corpus, tmp_path):
    from modeling_finemoltex import FineMolTexForMoleculePropertyPrediction

    out = tmp_path / "gin"
    pretrain_graph.main(graph_args(corpus, out, "--max_steps", "2", "--save_strategy", "no"))
    data = tmp_path / "d.csv"
    data.write_text("smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(CORPUS)))
    finetune = load_example("finetune_property")
    finetune.main(["--data_file", str(data), "--task_columns", "y", "--model_name_or_path", str(out), "--split_method",
                   "random", "--num_train_epochs", "1", "--seeds", "0", "--learning_rate", "0", "--save_model",
                   "--output_dir", str(tmp_path / "run"), "--progress", "false"])
    model = FineMolTexForMoleculePropertyPrediction.from_pretrained(tmp_path / "run" / "seed_0" / "model")
    source = FineMolTexGraphForAttributeMasking.from_pretrained(out)
    for key, value in source.finemoltex.graph_encoder.state_dict().items():
        if "running" not in key and "num_batches" not in key:  # (BatchNorm statistics move even at lr 0)
            assert torch.equal(model.finemoltex.graph_encoder.state_dict()[key], value), key


def test_molecule_text_pre_training_starts_from_the_graph_checkpoint(corpus, tiny_text_encoder, data_cache, tmp_path):
    from transformers import TrainerCallback

    out = tmp_path / "gin"
    pretrain_graph.main(graph_args(corpus, out, "--max_steps", "2", "--save_strategy", "no"))
    expected = FineMolTexGraphForAttributeMasking.from_pretrained(out).finemoltex.graph_encoder.state_dict()

    class AtTrainBegin(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.encoder = {k: v.detach().clone() for k, v in model.finemoltex.graph_encoder.state_dict().items()}

    seen = AtTrainBegin()
    pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "run", data_cache, "--max_steps", "1", "--max_eval_samples",
                            "0", "--save_strategy", "no", "--graph_model_name_or_path", str(out)), callbacks=[seen])
    assert seen.encoder.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(seen.encoder[key], value), key


def test_accelerate_launch_runs_the_script(corpus, tmp_path):
    out = tmp_path / "launched"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf_home"), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "examples" / "accelerate_configs" / "default.yaml"), "--cpu", str(REPO / "examples" / "pretrain_graph.py"),
           *graph_args(corpus, out, "--max_steps", "2")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Graph pre-training (attribute masking) finished" in run.stdout
    assert "molecules/s" in run.stdout and "majority-class baseline (always C)" in run.stdout
    assert (out / "model.safetensors").is_file()
