"""load_gin_checkpoint: pretrain-gnns / GraphMVP / MoleculeSTM GIN state dicts into the graph tower.

The "original" side is written here from the published conventions (snap-stanford/pretrain-gnns chem/loader.py
and chem/model.py): their featuriser (atom type = atomic number - 1, chirality / bond type / bond direction as list
positions, both edge directions) and their GIN forward (self loop with bond type 4 and direction 0, sum of
``h_j + edge_embedding1[type] + edge_embedding2[dir]``, MLP H -> 2H -> H, BatchNorm, ReLU except after the last
layer). A random state dict in their layout, loaded into our tower, must give the same atom states for the same
molecules, fed through our own graph tokenizer.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from rdkit import Chem

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from _examples import load_example
from _model_fixtures import tiny_config
from modeling_finemoltex import (
    FineMolTexForMoleculePropertyPrediction,
    FineMolTexGraphTokenizer,
    feature_sizes,
    load_gin_checkpoint,
)
from modeling_finemoltex.graph_checkpoints_finemoltex import find_graph_encoder
from modeling_finemoltex.modeling_finemoltex import FineMolTexGraphEncoder
from test_pretrain import data_cache, pretrain, tiny_args, tiny_text_encoder  # noqa: F401  (fixtures)

# chirality, bond E/Z directions, aromatic, triple bond, a salt of bond-less ions, sulfur, halogens
SMILES = [
    "C/C=C/[C@H](N)C(=O)O",
    "N[C@@H](C)C(=O)O",
    "F/C=C\\Br",
    "c1ccccc1O",
    "C#N",
    "[Na+].[Cl-]",
    "O=S(=O)(O)c1ccc2ccccc2c1",
    "Ic1ccc(cc1)C(=O)N[C@@H]1CCCC[C@H]1N",
]
_CHIRALITY = [Chem.ChiralType.CHI_UNSPECIFIED, Chem.ChiralType.CHI_TETRAHEDRAL_CW, Chem.ChiralType.CHI_TETRAHEDRAL_CCW]
_BONDS = [Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC]
_DIRS = [Chem.BondDir.NONE, Chem.BondDir.ENDUPRIGHT, Chem.BondDir.ENDDOWNRIGHT]


def their_features(smiles: list[str]):
    """Their `mol_to_graph_data_obj_simple`, batched: x (N, 2), edge_index (2, E), edge_attr (E, 2)."""
    x, edges, attrs, offset = [], [], [], 0
    for text in smiles:
        mol = Chem.MolFromSmiles(text)
        x += [[a.GetAtomicNum() - 1, _CHIRALITY.index(a.GetChiralTag())] for a in mol.GetAtoms()]
        for bond in mol.GetBonds():
            i, j = bond.GetBeginAtomIdx() + offset, bond.GetEndAtomIdx() + offset
            feature = [_BONDS.index(bond.GetBondType()), _DIRS.index(bond.GetBondDir())]
            edges += [(i, j), (j, i)]
            attrs += [feature, feature]
        offset += mol.GetNumAtoms()
    return torch.tensor(x), torch.tensor(edges).T.reshape(2, -1), torch.tensor(attrs).reshape(-1, 2)


def their_gin(state: dict, x, edge_index, edge_attr, num_layers: int, training: bool = False) -> torch.Tensor:
    """Their GNN.forward with JK = last and no dropout -> (N, H); ``training`` normalises with batch statistics."""
    h = state["x_embedding1.weight"][x[:, 0]] + state["x_embedding2.weight"][x[:, 1]]
    loops = torch.arange(x.size(0))
    edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    edge_attr = torch.cat([edge_attr, torch.tensor([4, 0]).repeat(x.size(0), 1)], dim=0)
    for i in range(num_layers):
        layer = lambda name: state[f"gnns.{i}.{name}"]  # noqa: E731
        messages = h[edge_index[0]] + layer("edge_embedding1.weight")[edge_attr[:, 0]] + layer("edge_embedding2.weight")[edge_attr[:, 1]]
        summed = torch.zeros_like(h).index_add_(0, edge_index[1], messages)
        out = F.linear(F.relu(F.linear(summed, layer("mlp.0.weight"), layer("mlp.0.bias"))), layer("mlp.2.weight"), layer("mlp.2.bias"))
        norm = lambda name: state[f"batch_norms.{i}.{name}"]  # noqa: E731
        out = F.batch_norm(out, norm("running_mean").clone(), norm("running_var").clone(), norm("weight"), norm("bias"),
                           training, 0.1, 1e-5)
        h = out if i == num_layers - 1 else F.relu(out)
    return h


def their_state_dict(hidden: int, num_layers: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in their layout (every row distinct, so a wrong row order shows)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    state = {"x_embedding1.weight": r(120, hidden), "x_embedding2.weight": r(3, hidden)}
    for i in range(num_layers):
        state.update({
            f"gnns.{i}.mlp.0.weight": r(2 * hidden, hidden) / hidden**0.5, f"gnns.{i}.mlp.0.bias": r(2 * hidden),
            f"gnns.{i}.mlp.2.weight": r(hidden, 2 * hidden) / hidden**0.5, f"gnns.{i}.mlp.2.bias": r(hidden),
            f"gnns.{i}.edge_embedding1.weight": r(6, hidden), f"gnns.{i}.edge_embedding2.weight": r(3, hidden),
            f"batch_norms.{i}.weight": r(hidden), f"batch_norms.{i}.bias": r(hidden),
            f"batch_norms.{i}.running_mean": r(hidden), f"batch_norms.{i}.running_var": r(hidden).abs() + 0.5,
            f"batch_norms.{i}.num_batches_tracked": torch.tensor(1000),
        })
    return state


@pytest.fixture(scope="module")
def tokenizer():
    return FineMolTexGraphTokenizer()


def _save(state, path):
    torch.save(state, path)
    return path


def _encoder(**overrides) -> FineMolTexGraphEncoder:
    torch.manual_seed(1)
    return FineMolTexGraphEncoder(tiny_config(**overrides)).eval()


# ---------------------------------------------------------------------------------------------- same outputs
def test_their_featuriser_and_ours_differ_only_by_the_documented_row_maps(tokenizer):
    x, edge_index, edge_attr = their_features(SMILES)
    ours = tokenizer(SMILES)
    assert torch.equal(ours["graph_atom_features"][:, 0], x[:, 0] + 1)  # ours: atomic number; theirs: minus one
    assert torch.equal(ours["graph_atom_features"][:, 1], x[:, 1])
    ours_edges = {(int(i), int(j)): tuple(f.tolist()) for (i, j), f in zip(ours["graph_edge_index"].T, ours["graph_edge_features"])}
    theirs_edges = {(int(i), int(j)): tuple(f.tolist()) for (i, j), f in zip(edge_index.T, edge_attr)}
    assert ours_edges == theirs_edges and any(f[1] for f in theirs_edges.values())  # directions present


@pytest.mark.parametrize("num_layers", [2, 3])
def test_same_atom_states_as_their_gin_for_the_same_molecules(tokenizer, tmp_path, num_layers):
    hidden = 32
    state = their_state_dict(hidden, num_layers)
    path = _save(state, tmp_path / "model.pth")
    encoder = _encoder(gnn_num_layers=num_layers)
    batch = tokenizer(SMILES)
    before = encoder(batch["graph_atom_features"], batch["graph_edge_index"], batch["graph_edge_features"])

    report = load_gin_checkpoint(encoder, path)

    assert report.missing_keys == [] and report.unexpected_keys == [] and report.ignored_keys == []
    assert sorted(report.loaded_keys) == sorted(encoder.state_dict())
    with torch.no_grad():
        ours = encoder(batch["graph_atom_features"], batch["graph_edge_index"], batch["graph_edge_features"])
        expected = their_gin(state, *their_features(SMILES), num_layers=num_layers)
    assert not torch.allclose(before, ours)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    # training mode (batch statistics, dropout 0): both normalise over the same atoms
    encoder.train()
    with torch.no_grad():
        ours = encoder(batch["graph_atom_features"], batch["graph_edge_index"], batch["graph_edge_features"])
        expected = their_gin(state, *their_features(SMILES), num_layers=num_layers, training=True)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_other_rows_take_the_mask_or_neutral_row(tmp_path):
    state = their_state_dict(32, 2)
    encoder = _encoder()
    load_gin_checkpoint(encoder, _save(state, tmp_path / "m.pth"))
    atoms, layer = encoder.atom_embeddings, encoder.layers[1]
    assert torch.equal(atoms[0].weight[0], state["x_embedding1.weight"][119])  # dummy atom '*' <- [MASK]
    assert torch.equal(atoms[0].weight[118], state["x_embedding1.weight"][117])  # Og (118)
    assert torch.equal(atoms[1].weight[3], state["x_embedding2.weight"][0])  # other chirality <- unspecified
    assert torch.equal(layer.bond_embeddings[0].weight[4], state["gnns.1.edge_embedding1.weight"][5])  # other <- [MASK]
    assert torch.equal(layer.bond_embeddings[0].weight[5], state["gnns.1.edge_embedding1.weight"][4])  # self loop
    assert torch.equal(layer.bond_embeddings[1].weight[3], state["gnns.1.edge_embedding2.weight"][0])  # other dir
    assert int(layer.norm.num_batches_tracked) == 1000


def test_loads_into_a_model_through_a_saved_wrapper_prefix(tmp_path):
    """A saved GraphMVP GNN_graphpred: GIN keys under `molecule_model.`, plus a prediction head."""
    state = {f"molecule_model.{k}": v for k, v in their_state_dict(32, 2).items()}
    state["graph_pred_linear.weight"], state["graph_pred_linear.bias"] = torch.zeros(1, 32), torch.zeros(1)
    model = FineMolTexForMoleculePropertyPrediction(tiny_config(num_labels=1))
    report = load_gin_checkpoint(model, _save(state, tmp_path / "model_complete.pth"))
    assert report.prefix == "molecule_model."
    assert report.ignored_keys == ["graph_pred_linear.weight", "graph_pred_linear.bias"]
    assert torch.equal(find_graph_encoder(model).layers[0].mlp[0].weight, state["molecule_model.gnns.0.mlp.0.weight"])
    assert "ignored keys: graph_pred_linear.weight" in str(report)


def test_moleculestm_ogb_encoder_gin_is_refused_with_the_reason(tmp_path):
    """MoleculeSTM's GIN (OGB AtomEncoder/BondEncoder, eps, BatchNorm inside the MLP, ReLU on messages) is another
    network: refused, saying what differs, rather than half-loaded or reported as "no x_embedding1"."""
    state = {f"atom_encoder.atom_embedding_list.{k}.weight": torch.zeros(n, 32) for k, n in enumerate([119, 5])}
    state.update({"gnns.0.eps": torch.zeros(1), "gnns.0.mlp.1.weight": torch.ones(64),
                  "gnns.0.bond_encoder.bond_embedding_list.0.weight": torch.zeros(5, 32)})
    path = _save(state, tmp_path / "ogb_gin.pth")
    with pytest.raises(ValueError, match=r"OGB-encoder GIN .*ReLU\(h_j \+ e_ji\)\) without a self-loop") as raised:
        load_gin_checkpoint(_encoder(), path)
    assert str(path) in str(raised.value)


# ---------------------------------------------------------------------------------------------- mismatches
def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    path = _save(their_state_dict(16, 2), tmp_path / "narrow.pth")
    encoder = _encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.raises(ValueError, match=r"x_embedding1\.weight has shape \(120, 16\).*atom_embeddings\.0\.weight \(119, 32\) needs \(120, 32\)"):
        load_gin_checkpoint(encoder, path)
    assert all(torch.equal(v, before[k]) for k, v in encoder.state_dict().items())  # nothing half-loaded


def test_rich_feature_set_is_refused(tmp_path):
    path = _save(their_state_dict(32, 2), tmp_path / "m.pth")
    with pytest.raises(ValueError, match="feature_set='reference'"):
        atom_sizes, bond_sizes = feature_sizes("rich")
        load_gin_checkpoint(_encoder(atom_feature_sizes=atom_sizes, bond_feature_sizes=bond_sizes), path)


def test_missing_and_unexpected_keys_are_listed(tmp_path, caplog):
    state = their_state_dict(32, 3)  # one layer more than the tower
    del state["batch_norms.1.running_var"]
    path = _save(state, tmp_path / "m.pth")
    with pytest.raises(ValueError, match=r"layers\.1\.norm\.running_var.*gnns\.2\.mlp\.0\.weight"):
        load_gin_checkpoint(_encoder(), path)
    encoder = _encoder()
    with caplog.at_level(logging.WARNING):
        report = load_gin_checkpoint(encoder, path, strict=False)
    assert report.missing_keys == ["layers.1.norm.running_var"]
    assert "gnns.2.mlp.0.weight" in report.unexpected_keys and "batch_norms.2.weight" in report.unexpected_keys
    assert "layers.1.norm.weight" in report.loaded_keys
    assert torch.equal(encoder.layers[1].norm.weight, state["batch_norms.1.weight"])
    assert "loaded partially" in caplog.text


@pytest.mark.parametrize(
    "content, error, message",
    [
        (b"this is not a torch file", ValueError, "Cannot read GIN checkpoint"),
        ([torch.zeros(2)], ValueError, "holds a list, not a state dict"),
        ({"x_embedding1.weight": torch.zeros(120, 32), "step": 3}, ValueError, "entry 'step' is a int"),
        ({"encoder.weight": torch.zeros(2, 2)}, ValueError, "no 'x_embedding1.weight' keys"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path, content, error, message):
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(error, match=message) as raised:
        load_gin_checkpoint(_encoder(), path)
    assert str(path) in str(raised.value)


def test_missing_file_and_non_pickle_safe_objects(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_gin_checkpoint(_encoder(), tmp_path / "nowhere.pth")
    path = tmp_path / "object.pth"
    torch.save({"x_embedding1.weight": torch.zeros(1), "module": torch.nn.Linear(2, 2)}, path)
    with pytest.raises(ValueError, match="Cannot read GIN checkpoint"):  # weights_only refuses pickled modules
        load_gin_checkpoint(_encoder(), path)


def test_find_graph_encoder_needs_exactly_one():
    with pytest.raises(TypeError, match="holds 0 FineMolTexGraphEncoder"):
        find_graph_encoder(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------------------------------------- examples
def test_finetune_property_starts_from_the_gin_checkpoint(tmp_path):
    """--graph_model_name_or_path with a learning rate of 0: the trained model keeps the checkpoint's weights."""
    state = their_state_dict(32, 2)
    ckpt = _save(state, tmp_path / "model.pth")
    smiles = ["CCO", "c1ccccc1O", "CC(=O)O", "CCN", "CCCl", "C1CCCCC1", "OCC(O)CO", "CC#N", "c1ccncc1", "CCOC"] * 2
    data = tmp_path / "d.csv"
    data.write_text("smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(smiles)))
    example = load_example("finetune_property")
    args = ["--data_file", str(data), "--task_columns", "y", "--from_scratch_preset", "tiny", "--split_method",
            "random", "--num_train_epochs", "1", "--seeds", "0", "--learning_rate", "0", "--save_model"]
    example.main([*args, "--graph_model_name_or_path", str(ckpt), "--output_dir", str(tmp_path / "run")])
    model = FineMolTexForMoleculePropertyPrediction.from_pretrained(tmp_path / "run" / "seed_0" / "model")
    assert torch.equal(find_graph_encoder(model).layers[1].mlp[2].weight, state["gnns.1.mlp.2.weight"])
    assert torch.equal(find_graph_encoder(model).atom_embeddings[0].weight[6], state["x_embedding1.weight"][5])
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        example.main([*args, "--graph_model_name_or_path", str(tmp_path / "no_such.pth"), "--output_dir",
                      str(tmp_path / "run2")])


def test_pretrain_starts_from_the_gin_checkpoint(tiny_text_encoder, data_cache, tmp_path):
    from transformers import TrainerCallback

    state = their_state_dict(32, 2)
    ckpt = _save(state, tmp_path / "model.pth")

    class AtTrainBegin(TrainerCallback):
        def on_train_begin(self, args, state_, control, model=None, **kwargs):
            self.encoder = {k: v.detach().clone() for k, v in find_graph_encoder(model).state_dict().items()}

    seen = AtTrainBegin()
    pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "run", data_cache, "--max_steps", "1",
                            "--max_eval_samples", "0", "--save_strategy", "no",
                            "--graph_model_name_or_path", str(ckpt)), callbacks=[seen])
    assert torch.equal(seen.encoder["layers.0.mlp.0.weight"], state["gnns.0.mlp.0.weight"])
    assert torch.equal(seen.encoder["layers.1.bond_embeddings.0.weight"][5], state["gnns.1.edge_embedding1.weight"][4])
