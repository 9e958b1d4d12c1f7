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
from modeling_finemoltex.graph_pretraining_finemoltex import atom_mask_values, masked_atom_accuracy
from modeling_finemoltex.losses_finemoltex import IGNORE_INDEX, masked_atom_loss, sample_atom_mask

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
    before = masked_atom_accuracy(model, [batch], mask_seed=5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(30):
        optimizer.zero_grad()
        model(**batch, mask_seed=100 + step).loss.backward()
        optimizer.step()
    after = masked_atom_accuracy(model, [batch], mask_seed=5)
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
