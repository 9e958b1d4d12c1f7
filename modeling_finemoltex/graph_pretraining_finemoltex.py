# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Self-supervised pre-training of the graph tower alone: attribute masking (Hu, Liu, Gomes, Zitnik, Liang, Pande,
Leskovec 2020, "Strategies for Pre-training Graph Neural Networks"; snap-stanford/pretrain-gnns
``chem/pretrain_masking.py``).

At every call a share of each molecule's atoms (`FineMolTexConfig.atom_mask_rate`, 0.15 as Hu et al.; at least one
atom, `losses_finemoltex.sample_atom_mask`) is masked: the masked atoms' input features are replaced by
`atom_mask_values` before the GIN runs, and a linear head on the GIN state of each masked atom predicts its atom
type (atomic number, the first atom-feature column) with cross-entropy (`losses_finemoltex.masked_atom_loss`).

The masked-atom input is Hu et al.'s: atom type -> row 0 of our atom-type table (the dummy atom ``*``), which is the
row `load_gin_checkpoint` fills from pretrain-gnns' [MASK] row 119; chirality -> 0 (unspecified), as theirs. The
further columns of the ``rich`` feature set go to their last ("other") index, so no attribute of a masked atom is
left to read.

The graph tower sits where it sits in [`FineMolTexForMoleculePropertyPrediction`] (``finemoltex.graph_encoder``), so
a saved folder of this model is also a starting point for property fine-tuning (``from_pretrained``), and its
``model.safetensors`` is a GIN checkpoint `load_gin_checkpoint` reads for any FineMolTex model. No RDKit here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from .configuration_finemoltex import FineMolTexConfig
from .losses_finemoltex import (
    ATOM_TYPE_MASK_INDEX,
    IGNORE_INDEX,
    MaskSeeds,
    atom_mask_values,
    masked_atom_loss,
    sample_atom_mask,
)
from .modeling_finemoltex import FineMolTexGraphModel, FineMolTexPreTrainedModel

@dataclass
class FineMolTexAttributeMaskingOutput(ModelOutput):
    """Output of [`FineMolTexGraphForAttributeMasking`].

    Args:
        loss: mean cross-entropy of the masked atoms' atom type (with `return_loss=True`).
        masked_atom_accuracy: share of masked atoms whose atom type is predicted right.
        logits: (n masked atoms, atom types), rows in atom order of `atom_mask`.
        labels: (n masked atoms,) true atom types (the first atom-feature column, before masking).
        atom_mask: Bool (N,), the atoms masked this call.
        atom_hidden_states: (N, H_gnn) GIN states of the masked input (with `output_hidden_states=True`).
    """

    loss: torch.FloatTensor | None = None
    masked_atom_accuracy: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    labels: torch.LongTensor | None = None
    atom_mask: torch.BoolTensor | None = None
    atom_hidden_states: torch.FloatTensor | None = None


class FineMolTexGraphForAttributeMasking(FineMolTexPreTrainedModel):
    """The FineMolTex graph tower (`FineMolTexGraphEncoder`, at ``finemoltex.graph_encoder``) with an atom-type head,
    pre-trained by attribute masking (module docstring). Input: the ``graph_*`` tensors of the batch contract (the
    collator's ``motif_*`` tensors are accepted and ignored, but for the batch size). Masks are drawn per call from
    a generator seeded by ``mask_seed`` (argument, else ``config.mask_seed``) or the global RNG; ``atom_mask``
    (Bool (N,)) overrides the draw."""

    main_input_name = "graph_atom_features"
    _keys_to_ignore_on_load_unexpected = FineMolTexGraphModel._keys_to_ignore_on_load_unexpected + [
        r"motif_embeddings\.", r"fusion\.", r"classifier\."]

    def __init__(self, config: FineMolTexConfig):
        super().__init__(config)
        graph_config = config
        if config.property_pooling != "atom_mean":  # only the GIN is built (not the motif stream)
            graph_config = copy.deepcopy(config)
            graph_config.property_pooling = "atom_mean"
        self.finemoltex = FineMolTexGraphModel(graph_config)
        self.atom_type_head = nn.Linear(self.finemoltex.graph_encoder.output_size, config.atom_feature_sizes[0])
        self.register_buffer("atom_mask_values", torch.tensor(atom_mask_values(config.atom_feature_sizes)), persistent=False)
        self._mask_seeds = MaskSeeds()
        self.post_init()

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`save_pretrained`, plus the model code its ``auto_map`` names (``modeling_finemoltex.py`` and what it
        imports), so the folder also loads as remote code (e.g. as a property model) where the package is absent."""
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            from transformers.dynamic_module_utils import custom_object_save

            from .modeling_finemoltex import FineMolTexForMoleculePropertyPrediction

            custom_object_save(FineMolTexForMoleculePropertyPrediction, save_directory)
        return saved

    @property
    def graph_encoder(self):
        return self.finemoltex.graph_encoder

    def get_input_embeddings(self):  # no token embeddings: a graph model
        return None

    def _generator(self, mask_seed: int | None) -> torch.Generator | None:
        return self._mask_seeds(mask_seed, self.config.mask_seed)

    def forward(
        self,
        graph_atom_features: torch.Tensor | None = None,
        graph_edge_index: torch.Tensor | None = None,
        graph_edge_features: torch.Tensor | None = None,
        graph_batch: torch.Tensor | None = None,
        motif_input_ids: torch.Tensor | None = None,
        atom_mask: torch.Tensor | None = None,
        mask_seed: int | None = None,
        return_loss: bool = True,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> FineMolTexAttributeMaskingOutput | tuple:
        """See the class docstring; shapes follow the batch contract of `modeling_finemoltex`."""
        if graph_atom_features is None or graph_edge_index is None or graph_edge_features is None or graph_batch is None:
            raise ValueError(
                "FineMolTexGraphForAttributeMasking needs graph_atom_features, graph_edge_index, graph_edge_features "
                "and graph_batch."
            )
        num_columns = len(self.config.atom_feature_sizes)
        if graph_atom_features.dim() != 2 or graph_atom_features.size(1) != num_columns:
            raise ValueError(f"`graph_atom_features` must be (N, {num_columns}), got {tuple(graph_atom_features.shape)}.")
        if graph_batch.shape != graph_atom_features.shape[:1]:
            raise ValueError(f"`graph_batch` must be (N,) = ({graph_atom_features.size(0)},), got {tuple(graph_batch.shape)}.")
        if atom_mask is None:
            num_molecules = motif_input_ids.size(0) if motif_input_ids is not None else None
            atom_mask = sample_atom_mask(graph_batch, self.config.atom_mask_rate, self._generator(mask_seed), num_molecules)
        atom_mask = atom_mask.bool()
        masked_features = torch.where(atom_mask[:, None], self.atom_mask_values.to(graph_atom_features.dtype), graph_atom_features)
        states = self.finemoltex.graph_encoder(masked_features, graph_edge_index, graph_edge_features)
        logits = self.atom_type_head(states[atom_mask])
        labels = graph_atom_features[atom_mask, 0]
        loss, accuracy = masked_atom_loss(logits, labels)
        output = FineMolTexAttributeMaskingOutput(
            loss=loss if return_loss else None,
            masked_atom_accuracy=accuracy,
            logits=logits,
            labels=labels,
            atom_mask=atom_mask,
            atom_hidden_states=states if output_hidden_states else None,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


@torch.no_grad()
def evaluate_attribute_masking(model: FineMolTexGraphForAttributeMasking, batches, mask_seed: int = 0, device=None) -> dict:
    """Held-out attribute-masking quality over ``batches`` (collated graph batches), with fixed masks (batch ``i`` uses
    ``mask_seed + i``): masked atoms, their mean loss and accuracy, and the majority-class baseline (always predict
    the most frequent atom type among them, carbon on drug-like sets). Counts are exact over all masked atoms."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    total_loss, correct, count = 0.0, 0, 0
    label_counts = torch.zeros(model.config.atom_feature_sizes[0], dtype=torch.long)
    for i, batch in enumerate(batches):
        batch = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        out = model(**batch, mask_seed=mask_seed + i)
        n = out.labels.numel()
        total_loss += float(out.loss) * n
        correct += int((out.logits.argmax(-1) == out.labels).sum())
        count += n
        label_counts += torch.bincount(out.labels[out.labels != IGNORE_INDEX].cpu(), minlength=label_counts.numel())
    model.train(was_training)
    majority = int(label_counts.argmax())
    return {
        "masked_atoms": count,
        "loss": total_loss / count if count else None,
        "accuracy": correct / count if count else None,
        "majority_atom_type": majority,
        "majority_accuracy": int(label_counts[majority]) / count if count else None,
    }


__all__ = [
    "ATOM_TYPE_MASK_INDEX",
    "FineMolTexAttributeMaskingOutput",
    "FineMolTexGraphForAttributeMasking",
    "atom_mask_values",
    "evaluate_attribute_masking",
]
