"""Hand-built FineMolTex batches for model tests (no RDKit, no processor).

Molecules are chains or rings of random atoms cut into contiguous motifs (optionally with one atom shared by two
neighbouring motifs, as the junction-tree fallback produces); texts are random BERT-vocabulary token ids between
[CLS] (101) and [SEP] (102). The tensors follow the batch contract of `modeling_finemoltex.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch

# Tiny models run fastest single-threaded, and the CI/dev machines are shared: oversubscribed threads made
# the overfit test 5x slower. Override with FINEMOLTEX_TEST_THREADS.
torch.set_num_threads(int(os.environ.get("FINEMOLTEX_TEST_THREADS", "1")))

from modeling_finemoltex.configuration_finemoltex import FineMolTexConfig

CLS, SEP, PAD = 101, 102, 0
FIRST_WORD_ID = 104


@dataclass
class ToyMolecule:
    atom_features: torch.Tensor  # (n, F_atom)
    edges: list[tuple[int, int]]  # undirected bonds
    bond_features: torch.Tensor  # (num bonds, F_bond)
    motif_ids: list[int]  # in BFS order
    motif_atoms: list[list[int]] = field(default_factory=list)  # local atom indices of each motif


def tiny_config(**overrides) -> FineMolTexConfig:
    """The "tiny" preset with dropout off (deterministic tests) unless overridden."""
    defaults = dict(hidden_dropout_prob=0.0, attention_dropout_prob=0.0, gnn_dropout=0.0,
                    text_config={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    defaults.update(overrides)
    return FineMolTexConfig.from_preset("tiny", **defaults)


def make_molecule(
    generator: torch.Generator,
    config: FineMolTexConfig,
    num_atoms: int,
    num_motifs: int,
    ring: bool = False,
    shared_atom: bool = False,
    motif_ids: list[int] | None = None,
) -> ToyMolecule:
    """A chain (or ring) of `num_atoms` random atoms split into `num_motifs` contiguous motifs."""
    assert 1 <= num_motifs <= num_atoms
    atom_features = torch.stack(
        [torch.randint(0, size, (num_atoms,), generator=generator) for size in config.atom_feature_sizes], dim=1
    )
    edges = [(i, i + 1) for i in range(num_atoms - 1)]
    if ring and num_atoms > 2:
        edges.append((num_atoms - 1, 0))
    bond_features = torch.stack(
        [torch.randint(0, size, (len(edges),), generator=generator) for size in config.bond_feature_sizes], dim=1
    ).reshape(len(edges), len(config.bond_feature_sizes))
    cuts = torch.linspace(0, num_atoms, num_motifs + 1).round().long().tolist()
    motif_atoms = [list(range(cuts[i], cuts[i + 1])) for i in range(num_motifs)]
    if shared_atom and num_motifs > 1:
        motif_atoms[1].insert(0, motif_atoms[0][-1])  # junction atom in two motifs
    if motif_ids is None:
        # mostly prediction targets (4 .. 4+T-1), sometimes [UNK] or a rare (non-target) motif
        pool = list(range(4, 4 + config.num_motif_targets)) + [1, config.motif_vocab_size - 1]
        motif_ids = [pool[int(torch.randint(0, len(pool), (1,), generator=generator))] for _ in range(num_motifs)]
    return ToyMolecule(atom_features, edges, bond_features, list(motif_ids), motif_atoms)


def collate_molecules(molecules: list[ToyMolecule], texts: list[list[int]]) -> dict[str, torch.Tensor]:
    """Flat batch dict (graph_*, motif_*, input_ids, attention_mask) from molecules and token-id lists."""
    batch_size = len(molecules)
    slots = 1 + max((len(m.motif_ids) for m in molecules), default=0)
    atom_rows, edge_cols, bond_rows, graph_batch, membership = [], [], [], [], []
    motif_ids = torch.zeros(batch_size, slots, dtype=torch.long)
    motif_mask = torch.zeros(batch_size, slots, dtype=torch.long)
    motif_pos = torch.zeros(batch_size, slots, dtype=torch.long)
    offset = 0
    for b, mol in enumerate(molecules):
        n = mol.atom_features.size(0)
        atom_rows.append(mol.atom_features)
        graph_batch.append(torch.full((n,), b, dtype=torch.long))
        for (i, j), feats in zip(mol.edges, mol.bond_features):
            edge_cols += [(offset + i, offset + j), (offset + j, offset + i)]
            bond_rows += [feats, feats]
        motif_ids[b, 0] = 3
        motif_mask[b, 0] = 1
        for m, (motif_id, atoms) in enumerate(zip(mol.motif_ids, mol.motif_atoms), start=1):
            motif_ids[b, m], motif_mask[b, m], motif_pos[b, m] = motif_id, 1, m
            membership += [(offset + a, b * slots + m) for a in atoms]
        offset += n
    num_bond_columns = molecules[0].bond_features.size(1) if molecules else 2
    lengths = [len(t) for t in texts]
    input_ids = torch.full((len(texts), max(lengths, default=1)), PAD, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for b, tokens in enumerate(texts):
        input_ids[b, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        attention_mask[b, : len(tokens)] = 1
    return {
        "graph_atom_features": torch.cat(atom_rows) if atom_rows else torch.zeros(0, 2, dtype=torch.long),
        "graph_edge_index": torch.tensor(edge_cols, dtype=torch.long).t().reshape(2, -1),
        "graph_edge_features": torch.stack(bond_rows) if bond_rows else torch.zeros(0, num_bond_columns, dtype=torch.long),
        "graph_batch": torch.cat(graph_batch) if graph_batch else torch.zeros(0, dtype=torch.long),
        "motif_input_ids": motif_ids,
        "motif_attention_mask": motif_mask,
        "motif_position_ids": motif_pos,
        "motif_membership": torch.tensor(membership, dtype=torch.long).t().reshape(2, -1),
        "input_ids": input_ids,
        "attention_mask": attention_mask,
    }


def random_text(generator: torch.Generator, vocab_size: int, length: int) -> list[int]:
    words = torch.randint(FIRST_WORD_ID, vocab_size, (length,), generator=generator).tolist()
    return [CLS, *words, SEP]


def random_batch(
    config: FineMolTexConfig,
    batch_size: int = 4,
    seed: int = 0,
    atoms: tuple[int, int] = (3, 9),
    text_length: tuple[int, int] = (4, 12),
) -> dict[str, torch.Tensor]:
    """`batch_size` random molecules (chains and rings, some with a shared junction atom) with random texts."""
    g = torch.Generator().manual_seed(seed)
    molecules, texts = [], []
    for b in range(batch_size):
        n = int(torch.randint(atoms[0], atoms[1] + 1, (1,), generator=g))
        k = int(torch.randint(1, min(n, 4) + 1, (1,), generator=g))
        molecules.append(make_molecule(g, config, n, k, ring=b % 2 == 1, shared_atom=b % 3 == 2))
        length = int(torch.randint(text_length[0], text_length[1] + 1, (1,), generator=g))
        texts.append(random_text(g, config.text_config.vocab_size, length))
    return collate_molecules(molecules, texts)


def distinct_pairs_batch(config: FineMolTexConfig, num_pairs: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """`num_pairs` distinct molecules (distinct target motif sets) paired with distinct random texts."""
    g = torch.Generator().manual_seed(seed)
    molecules, texts = [], []
    targets = config.num_motif_targets
    for b in range(num_pairs):
        ids = [4 + b % targets, 4 + (3 * b + 1) % targets]
        molecules.append(make_molecule(g, config, 4 + b % 5, 2, ring=b % 2 == 0, motif_ids=ids))
        texts.append(random_text(g, config.text_config.vocab_size, 6 + b % 4))
    return collate_molecules(molecules, texts)


def select_molecules(batch: dict[str, torch.Tensor], order: list[int]) -> dict[str, torch.Tensor]:
    """Reorder, subset or repeat the molecules (and texts) of a collated batch, re-indexing atoms, edges and
    motif slots (a test helper, so a loop over molecules is fine here)."""
    graph_batch, edges, membership = batch["graph_batch"], batch["graph_edge_index"], batch["motif_membership"]
    slots = batch["motif_input_ids"].size(1)
    atoms, edge_index, edge_rows, members, new_batch = [], [], [], [], []
    offset = 0
    for new_b, old_b in enumerate(order):
        atom_ids = (graph_batch == old_b).nonzero().flatten()
        local = torch.full((graph_batch.numel(),), -1, dtype=torch.long)
        local[atom_ids] = torch.arange(atom_ids.numel()) + offset
        keep = (local[edges[0]] >= 0) & (local[edges[1]] >= 0)
        atoms.append(batch["graph_atom_features"][atom_ids])
        edge_index.append(local[edges[:, keep]])
        edge_rows.append(batch["graph_edge_features"][keep])
        in_molecule = torch.div(membership[1], slots, rounding_mode="floor") == old_b
        members.append(torch.stack([local[membership[0, in_molecule]], membership[1, in_molecule] - old_b * slots + new_b * slots]))
        new_batch.append(torch.full((atom_ids.numel(),), new_b, dtype=torch.long))
        offset += atom_ids.numel()
    index = torch.tensor(order, dtype=torch.long)
    out = {
        "graph_atom_features": torch.cat(atoms) if atoms else batch["graph_atom_features"][:0],
        "graph_edge_index": torch.cat(edge_index, dim=1) if edge_index else edges[:, :0],
        "graph_edge_features": torch.cat(edge_rows) if edge_rows else batch["graph_edge_features"][:0],
        "graph_batch": torch.cat(new_batch) if new_batch else graph_batch[:0],
        "motif_membership": torch.cat(members, dim=1) if members else membership[:, :0],
    }
    for key in ("motif_input_ids", "motif_attention_mask", "motif_position_ids", "input_ids", "attention_mask"):
        out[key] = batch[key][index]
    return out
