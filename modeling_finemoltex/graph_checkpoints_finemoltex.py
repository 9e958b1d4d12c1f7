# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Load GIN checkpoints in the snap-stanford/pretrain-gnns state-dict layout into the FineMolTex graph tower.

pretrain-gnns (chem/model.py) and GraphMVP (src_classification/models/molecule_gnn_model.py, whose ``GNN`` is the
same network) save their GIN with these keys (``H`` = hidden size, ``i`` = layer)::

    x_embedding1.weight              (120, H)  atom type: row a-1 for atomic number a = 1..118, row 119 = [MASK]
    x_embedding2.weight              (3, H)    chirality: unspecified, tetrahedral CW, tetrahedral CCW
    gnns.{i}.edge_embedding1.weight  (6, H)    bond type: single, double, triple, aromatic, 4 = self loop, 5 = [MASK]
    gnns.{i}.edge_embedding2.weight  (3, H)    bond direction: none, end-up-right, end-down-right
    gnns.{i}.mlp.{0,2}.{weight,bias}           Linear(H, 2H), ReLU, Linear(2H, H)
    batch_norms.{i}.{weight,bias,running_mean,running_var,num_batches_tracked}

MoleculeSTM's GIN, which the FineMolTex authors' code imports, is a different network (OGB encoders:
``atom_encoder.atom_embedding_list.*``, ``gnns.{i}.eps``, ``gnns.{i}.bond_encoder.*``, a BatchNorm inside the MLP,
ReLU on each message and no self-loop edge); checkpoints in that layout are refused with an error saying so
(`OGB_GIN_MESSAGE`), since the graph tower cannot compute what that GIN computes.

Their layer is ours (`FineMolTexGINLayer`): sum over in-edges incl. one self loop per atom (bond type 4,
direction 0) of ``h_j + bond_emb``, the MLP, BatchNorm, ReLU on all but the last layer, dropout; the atom input is
the sum of the two atom embeddings. Only the row order of the embedding tables differs, and our ``reference``
feature set has an "other" row in each table that theirs lacks (their featuriser rejects such atoms and bonds):

===================  =================================  ====================================================
table                ours (``reference``)               filled from their row
===================  =================================  ====================================================
atom type (119)      row a = atomic number a, 0 = ``*``  a -> a-1; ``*`` (dummy atom) -> [MASK] row 119
chirality (4)        0..2 as theirs, 3 = other          0..2 -> 0..2; other -> unspecified (0)
bond type (5 + 1)    0..3 as theirs, 4 = other, 5 = loop  0..3 -> 0..3; other -> [MASK] (5); self loop -> 4
bond direction (4)   0..2 as theirs, 3 = other          0..2 -> 0..2; other -> none (0)
===================  =================================  ====================================================

so for every molecule their featuriser accepts, the loaded tower gives the same atom states as their GIN. Their
``JK`` and ``drop_ratio`` are not in the file: our config's ``gnn_jk`` and ``gnn_dropout`` apply.

Our own layout is read too: the graph tower's state dict (``atom_embeddings.*``, ``layers.{i}.bond_embeddings.*``,
``layers.{i}.mlp.*``, ``layers.{i}.norm.*``) under any one prefix, e.g. ``finemoltex.graph_encoder.`` in the
``model.safetensors`` that ``examples/pretrain_graph.py`` writes (`FineMolTexGraphForAttributeMasking`) or in any
FineMolTex checkpoint; a folder stands for its ``model.safetensors``. It is copied as it is (no row maps): every
table row survives, including the "other" rows and the masked-atom row, and any feature set, width or depth loads
into a tower built the same way.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from .modeling_finemoltex import FineMolTexGraphEncoder

logger = logging.getLogger(__name__)

# Their table sizes (pretrain-gnns chem/model.py: num_atom_type, num_chirality_tag, num_bond_type, num_bond_direction)
_THEIR_ATOM_TYPES, _THEIR_CHIRALITIES, _THEIR_BOND_TYPES, _THEIR_BOND_DIRECTIONS = 120, 3, 6, 3
# Our `reference` feature-set sizes (tokenization_finemoltex.FEATURE_SETS), repeated to keep this module free of
# RDKit; the bond-type table has one more row, the self loop.
_REFERENCE_ATOM_SIZES, _REFERENCE_BOND_TABLE_SIZES = [119, 4], [6, 4]

#: Our row r of each table <- their row ROW_MAPS[table][r].
ROW_MAPS: dict[str, list[int]] = {
    "atom_type": [119] + list(range(118)),
    "chirality": [0, 1, 2, 0],
    "bond_type": [0, 1, 2, 3, 5, 4],
    "bond_direction": [0, 1, 2, 0],
}


@dataclass
class GINCheckpointReport:
    """What `load_gin_checkpoint` did. Keys of ``loaded_keys`` / ``missing_keys`` are the graph tower's;
    ``unexpected_keys`` are the file's GIN keys (under ``prefix``) that had no place in the tower; ``ignored_keys``
    are the file's keys outside the GIN (e.g. a ``GNN_graphpred`` prediction head), never loaded."""

    path: str
    prefix: str = ""
    layout: str = "pretrain-gnns"
    loaded_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    ignored_keys: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{len(self.loaded_keys)} graph-tower tensors loaded from {self.path} ({self.layout} layout)"
        if self.prefix:
            text += f" (keys under {self.prefix!r})"
        for name in ("missing_keys", "unexpected_keys", "ignored_keys"):
            keys = getattr(self, name)
            if keys:
                text += f"; {name.replace('_', ' ')}: {', '.join(keys)}"
        return text


def find_graph_encoder(module: nn.Module) -> FineMolTexGraphEncoder:
    """The one `FineMolTexGraphEncoder` in ``module`` (the encoder itself, a FineMolTex model, a PEFT wrapper)."""
    if isinstance(module, FineMolTexGraphEncoder):
        return module
    found = [m for m in module.modules() if isinstance(m, FineMolTexGraphEncoder)]
    if len(found) != 1:
        raise TypeError(f"{type(module).__name__} holds {len(found)} FineMolTexGraphEncoder modules; expected exactly one.")
    return found[0]


def _weights_file(path: str | os.PathLike) -> str:
    """``path`` itself, or the ``model.safetensors`` of a model folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        weights = os.path.join(path, "model.safetensors")
        if not os.path.isfile(weights):
            raise FileNotFoundError(
                f"GIN checkpoint folder {path!r} has no model.safetensors (give the weights file itself for other names)."
            )
        return weights
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GIN checkpoint {path!r} does not exist (or is not a file).")
    return path


def _read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = _weights_file(path)
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip, weights_only and safetensors errors differ between versions
        raise ValueError(f"Cannot read GIN checkpoint {path!r} as a torch state dict: {error}") from error
    if not isinstance(state, Mapping):
        raise ValueError(f"GIN checkpoint {path!r} holds a {type(state).__name__}, not a state dict (name -> tensor).")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"GIN checkpoint {path!r}: entry {key!r} is a {type(value).__name__}, not a tensor.")
    return dict(state)


OGB_GIN_MESSAGE = (
    "is in the layout of the OGB-encoder GIN that MoleculeSTM (and the FineMolTex authors' code, which imports it) "
    "uses: atom_encoder.atom_embedding_list.*, gnns.{i}.eps, gnns.{i}.mlp.{0,1,3} with a BatchNorm inside, "
    "gnns.{i}.bond_encoder.*. That GIN computes MLP((1 + eps) h_i + sum_j ReLU(h_j + e_ji)) without a self-loop "
    "edge; the graph tower is the pretrain-gnns / GraphMVP GIN, MLP(sum over j in N(i) and i itself of "
    "(h_j + e_ji)), which cannot reproduce it, so it is not loaded. Use a checkpoint in the pretrain-gnns layout "
    "(x_embedding1/2, gnns.{i}.edge_embedding1/2, gnns.{i}.mlp.{0,2}, batch_norms.{i})."
)


def _their_prefix(state: Mapping[str, torch.Tensor], path: str) -> str:
    """The prefix of the GIN keys: '' for GraphMVP / pretrain-gnns files, e.g. 'gnn.' (pretrain-gnns) or
    'molecule_model.' (GraphMVP) for a saved ``GNN_graphpred`` wrapper."""
    if any(key.endswith("atom_encoder.atom_embedding_list.0.weight") or ".bond_encoder.bond_embedding_list." in key
           for key in state):
        raise ValueError(f"GIN checkpoint {path!r} {OGB_GIN_MESSAGE}")
    prefixes = sorted(key[: -len("x_embedding1.weight")] for key in state if key.endswith("x_embedding1.weight"))
    if len(prefixes) != 1:
        sample = ", ".join(list(state)[:6])
        what = "no" if not prefixes else f"{len(prefixes)} ({', '.join(repr(p) for p in prefixes)})"
        raise ValueError(
            f"GIN checkpoint {path!r} is not one pretrain-gnns GIN: {what} 'x_embedding1.weight' keys "
            f"(first keys: {sample})."
        )
    return prefixes[0]


#: The key that marks our own layout (the graph tower's state dict), under some prefix.
_OWN_LAYOUT_KEY = "atom_embeddings.0.weight"


def _own_prefix(state: Mapping[str, torch.Tensor], path: str) -> str | None:
    """The prefix of a FineMolTex graph tower's keys in ``state`` (e.g. 'finemoltex.graph_encoder.'), None when the
    file is in another layout."""
    prefixes = sorted(key[: -len(_OWN_LAYOUT_KEY)] for key in state if key.endswith(_OWN_LAYOUT_KEY)
                      and (key == _OWN_LAYOUT_KEY or key[: -len(_OWN_LAYOUT_KEY)].endswith(".")))
    if not prefixes:
        return None
    if len(prefixes) > 1:
        raise ValueError(
            f"GIN checkpoint {path!r} holds {len(prefixes)} FineMolTex graph towers ({', '.join(repr(p) for p in prefixes)})."
        )
    return prefixes[0]


def _copy_into(
    ours: dict[str, torch.Tensor], updates: dict[str, torch.Tensor], report: GINCheckpointReport, tower: str, strict: bool
) -> GINCheckpointReport:
    """Refuse (``strict``) or warn about missing / unexpected keys, then copy ``updates`` into the tower's tensors."""
    if strict and (report.missing_keys or report.unexpected_keys):
        raise ValueError(
            f"GIN checkpoint {report.path!r} does not fit the graph tower ({tower}). Missing keys: "
            f"{report.missing_keys or 'none'}. Unexpected keys: {report.unexpected_keys or 'none'}."
        )
    with torch.no_grad():
        for key, value in updates.items():
            ours[key].copy_(value.to(ours[key].dtype))
    report.loaded_keys = list(updates)
    if report.missing_keys or report.unexpected_keys:
        logger.warning("GIN checkpoint loaded partially (strict=False): %s", report)
    return report


def _load_own_layout(encoder: FineMolTexGraphEncoder, state: dict, path: str, prefix: str, strict: bool) -> GINCheckpointReport:
    """Copy a FineMolTex graph tower's state dict (keys under ``prefix``) into ``encoder`` as it is."""
    report = GINCheckpointReport(path=path, prefix=prefix, layout="finemoltex")
    report.ignored_keys = [key for key in state if not key.startswith(prefix)]
    theirs = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    ours = encoder.state_dict()
    updates = {}
    for key, target in ours.items():
        if key not in theirs:
            report.missing_keys.append(key)
            continue
        if tuple(theirs[key].shape) != tuple(target.shape):
            raise ValueError(
                f"GIN checkpoint {path!r}: {prefix}{key} has shape {tuple(theirs[key].shape)}, but the graph tower's "
                f"{key} is {tuple(target.shape)} (another width, feature set or vocabulary: build the model with the "
                "checkpoint's gnn_hidden_size, gnn_num_layers and feature set)."
            )
        updates[key] = theirs[key]
    report.unexpected_keys = [prefix + key for key in theirs if key not in ours]
    tower = f"{len(encoder.layers)} layers, {len(encoder.atom_embeddings)} atom-feature columns"
    return _copy_into(ours, updates, report, tower, strict)


def _check_reference_features(encoder: FineMolTexGraphEncoder) -> None:
    atom_sizes = [emb.num_embeddings for emb in encoder.atom_embeddings]
    bond_sizes = [emb.num_embeddings for emb in encoder.layers[0].bond_embeddings] if len(encoder.layers) else []
    if atom_sizes != _REFERENCE_ATOM_SIZES or bond_sizes != _REFERENCE_BOND_TABLE_SIZES:
        raise ValueError(
            f"pretrain-gnns GIN checkpoints embed atomic number + chirality and bond type + direction; this graph "
            f"tower has atom tables of {atom_sizes} rows and bond tables of {bond_sizes} rows (the 'reference' "
            f"feature set has {_REFERENCE_ATOM_SIZES} and {_REFERENCE_BOND_TABLE_SIZES}). Build the model with "
            "feature_set='reference'."
        )


def _key_plan(encoder: FineMolTexGraphEncoder) -> dict[str, tuple[str, str | None, int | None]]:
    """Our state key -> (their key without prefix, row-map name or None, their table's row count or None)."""
    plan = {
        "atom_embeddings.0.weight": ("x_embedding1.weight", "atom_type", _THEIR_ATOM_TYPES),
        "atom_embeddings.1.weight": ("x_embedding2.weight", "chirality", _THEIR_CHIRALITIES),
    }
    for i in range(len(encoder.layers)):
        plan[f"layers.{i}.bond_embeddings.0.weight"] = (f"gnns.{i}.edge_embedding1.weight", "bond_type", _THEIR_BOND_TYPES)
        plan[f"layers.{i}.bond_embeddings.1.weight"] = (
            f"gnns.{i}.edge_embedding2.weight", "bond_direction", _THEIR_BOND_DIRECTIONS)
        for linear in ("0", "2"):
            for kind in ("weight", "bias"):
                plan[f"layers.{i}.mlp.{linear}.{kind}"] = (f"gnns.{i}.mlp.{linear}.{kind}", None, None)
        for kind in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            plan[f"layers.{i}.norm.{kind}"] = (f"batch_norms.{i}.{kind}", None, None)
    return plan


def load_gin_checkpoint(
    graph_encoder_or_model: nn.Module, path: str | os.PathLike, strict: bool = True
) -> GINCheckpointReport:
    """Copy a pretrain-gnns-layout GIN (pretrain-gnns, GraphMVP), or a FineMolTex graph tower saved in our own layout
    (``examples/pretrain_graph.py``, any FineMolTex checkpoint), into a FineMolTex graph tower.

    Args:
        graph_encoder_or_model: a `FineMolTexGraphEncoder`, or a model holding exactly one (FineMolTexModel,
            FineMolTexForPreTraining, FineMolTexForMoleculePropertyPrediction). Load before adding LoRA adapters.
            For the pretrain-gnns layout the tower must use the ``reference`` feature set; width and depth must match.
        path: a ``torch.save``d state dict, read with ``weights_only=True``, a ``.safetensors`` file, or a model
            folder (its ``model.safetensors``). Keys may carry one prefix (``molecule_model.`` in a saved GraphMVP
            ``GNN_graphpred``, ``gnn.`` in pretrain-gnns', ``finemoltex.graph_encoder.`` in ours); keys outside it
            (a prediction head) are ignored. Our layout (keys ``atom_embeddings.0.weight``...) is copied as it is; the
            pretrain-gnns layout needs the ``reference`` feature set and is row-mapped (module docstring).
        strict: raise when a tower tensor is not in the file (``missing_keys``) or a GIN key of the file has no
            place in the tower (``unexpected_keys``, e.g. a sixth layer). With False they are only reported.

    Returns:
        `GINCheckpointReport` (loaded, missing, unexpected and ignored keys). Embedding rows are re-ordered to our
        feature indices (module docstring), so the tower computes what the checkpoint's GIN computes.

    Raises:
        FileNotFoundError / ValueError naming the file when it is absent, unreadable, not a state dict, or a
        MoleculeSTM-style OGB-encoder GIN (`OGB_GIN_MESSAGE`);
        ValueError naming the key and both shapes on a shape mismatch, or the tables on a feature-set mismatch.
    """
    encoder = find_graph_encoder(graph_encoder_or_model)
    path = _weights_file(path)
    state = _read_state_dict(path)
    own = _own_prefix(state, path)
    if own is not None:
        return _load_own_layout(encoder, state, path, own, strict)
    prefix = _their_prefix(state, path)
    _check_reference_features(encoder)

    report = GINCheckpointReport(path=path, prefix=prefix)
    report.ignored_keys = [key for key in state if not key.startswith(prefix)]
    theirs = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    ours = encoder.state_dict()
    plan = _key_plan(encoder)

    updates: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for our_key, target in ours.items():
        their_key, row_map, their_rows = plan.get(our_key, (None, None, None))
        if their_key is None or their_key not in theirs:
            report.missing_keys.append(our_key)
            continue
        source = theirs[their_key]
        expected = (their_rows, *target.shape[1:]) if row_map is not None else tuple(target.shape)
        if tuple(source.shape) != expected:
            raise ValueError(
                f"GIN checkpoint {path!r}: {prefix}{their_key} has shape {tuple(source.shape)}, but the graph tower's "
                f"{our_key} {tuple(target.shape)} needs {expected} from it."
            )
        updates[our_key] = source[ROW_MAPS[row_map]] if row_map is not None else source
        used.add(their_key)
    # under the prefix, a key with no place in the tower means another layer count or another GIN variant
    report.unexpected_keys = [prefix + key for key in theirs if key not in used]
    return _copy_into(ours, updates, report, f"{len(encoder.layers)} layers", strict)
