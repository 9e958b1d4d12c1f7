"""FineMolTex models: GIN graph tower, motif and text fusion streams with ViLBERT-style co-attention, heads.

Batch contract (flat dict of tensors from the processor/collator; B molecules, N atoms, E directed edges, M motif
slots per molecule, K atom->motif memberships, L text tokens):

- graph_atom_features Long (N, F_atom); graph_edge_index Long (2, E) (both bond directions, no self loops);
  graph_edge_features Long (E, F_bond); graph_batch Long (N,) molecule index of each atom, ascending.
- motif_input_ids Long (B, M): slot 0 [CLS] (3), motifs in BFS order of the motif tree, then [PAD] (0).
  motif_attention_mask Long (B, M); motif_position_ids Long (B, M) (0 for CLS/padding, 1+BFS position).
- motif_membership Long (2, K): row 0 global atom index, row 1 flat motif slot b*M+m (m >= 1).
- input_ids, attention_mask (and optionally token_type_ids) Long (B, L).
- text_encoder_states (optional) float (B, L, H_text_encoder): cached token states of a locked text encoder
  (`text_states_finemoltex`); when given, the text encoder is not run and `input_ids` only serve as MLM targets.

Architecture (defaults = the reference):

    atoms --GIN--> atom states --scatter-mean per motif--> Linear --> motif slot contents
    motif slots (+[CLS], +position) --motif stream (transformer layers)--> motif CLS --> graph embedding
    text --HF encoder--> Linear (if widths differ) --text stream (transformer layers)--> text CLS --> text embedding
    co-attention blocks pair motif-stream layer i with text-stream layer j (config) in the *fused* pass only.

The contrastive embeddings are the stream CLS states of a pass WITHOUT co-attention (as the reference), so
retrieval needs one tower at a time (`get_graph_features`, `get_text_features`). The masked objectives run the
fused pass on masked inputs (`FineMolTexForPreTraining`).

Masked motif slots: a masked slot's content is a learned [MASK] vector (plus its position embedding) instead of
the mean of its atoms' GIN states, and motif-id embeddings (optional, off by default) are never added at masked
slots, so the motif-classification head cannot read the answer from its own slot. Nor from its neighbours: the
fused pass reads motif contents from a second GIN pass over a view in which every atom of a masked motif has the
masked-atom features (an atom shared by overlapping motifs is hidden when any of its motifs is masked), so message
passing carries none of the masked motif's atom attributes into neighbouring motifs (`hide_masked_motif_atoms`,
on by default; the reference feeds the unmasked motif itself). What stays visible: the bonds and the topology
(the masked motif's size, rings and attachment points). The coarse pass keeps the clean view.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForSequenceClassification, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import get_torch_context_manager_or_global_device
from transformers.utils import ModelOutput

from .losses_finemoltex import (
    MaskSeeds,
    atom_mask_values,
    cls_similarity_importance,
    contrastive_accuracy,
    contrastive_logits,
    duplicate_negative_mask,
    gather_features,
    hide_masked_motif_atoms,
    linear_cross_entropy,
    mask_text_states,
    mask_words,
    masked_cross_entropy,
    masked_motif_labels,
    motif_candidates,
    sample_mask,
    word_candidates,
)
from .configuration_finemoltex import FineMolTexConfig

GRAPH_INPUT_NAMES = (
    "graph_atom_features",
    "graph_edge_index",
    "graph_edge_features",
    "graph_batch",
    "motif_input_ids",
    "motif_attention_mask",
    "motif_position_ids",
    "motif_membership",
)


# ================================================================================================ outputs
@dataclass
class FineMolTexModelOutput(ModelOutput):
    """Output of [`FineMolTexModel`].

    Args:
        loss: contrastive loss (only with `return_loss=True`).
        logits_per_graph: fp32 (B, B) graph-text similarities / temperature (rows molecules).
        logits_per_text: fp32 (B, B), its transpose.
        graph_embeds / text_embeds: (B, projection_dim), L2-normalised contrastive embeddings.
        atom_hidden_states: (N, H_gnn) GIN atom states (after jumping knowledge).
        motif_last_hidden_state: (B, M, motif width) motif stream output (no co-attention).
        text_last_hidden_state: (B, L, text-stream width) text stream output (no co-attention).
        text_encoder_last_hidden_state: (B, L, text encoder width).
    """

    loss: torch.FloatTensor | None = None
    logits_per_graph: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    graph_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    atom_hidden_states: torch.FloatTensor | None = None
    motif_last_hidden_state: torch.FloatTensor | None = None
    text_last_hidden_state: torch.FloatTensor | None = None
    text_encoder_last_hidden_state: torch.FloatTensor | None = None


@dataclass
class FineMolTexForPreTrainingOutput(ModelOutput):
    """Output of [`FineMolTexForPreTraining`].

    Args:
        loss: weighted total (contrastive_weight * contrastive + masked_lm_weight * MLM + masked_motif_weight * motif).
        contrastive_loss / masked_motif_loss / masked_lm_loss: the unweighted parts (0 when nothing was masked).
        contrastive_accuracy: in-batch top-1 accuracy, both directions averaged.
        logits_per_graph / logits_per_text: fp32 (B', B') where B' is the gathered batch across processes.
        graph_embeds / text_embeds: (B, projection_dim) local contrastive embeddings.
        masked_motif_logits: (num masked motifs, num_motif_targets), rows in row-major order of `motif_mask`.
        masked_motif_labels: (num masked motifs,) class labels (id - 4).
        mlm_logits: (num masked words, text vocab), rows in row-major order of `word_mask`; None when training with
            a loss (the MLM loss is then fused with its decoder, see `linear_cross_entropy`).
        mlm_labels: (num masked words,) original token ids.
        motif_mask / word_mask: Bool (B, M) / (B, L), the masks used this step.
        fused_motif_hidden_state / fused_text_hidden_state: (B, M, Dm) / (B, L, Dt) outputs of the co-attention pass
            on masked inputs, with `output_hidden_states=True` only (otherwise None: the pass then computes its last
            step at the masked positions alone).
    """

    loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    masked_motif_loss: torch.FloatTensor | None = None
    masked_lm_loss: torch.FloatTensor | None = None
    contrastive_accuracy: torch.FloatTensor | None = None
    logits_per_graph: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    graph_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    masked_motif_logits: torch.FloatTensor | None = None
    masked_motif_labels: torch.LongTensor | None = None
    mlm_logits: torch.FloatTensor | None = None
    mlm_labels: torch.LongTensor | None = None
    motif_mask: torch.BoolTensor | None = None
    word_mask: torch.BoolTensor | None = None
    fused_motif_hidden_state: torch.FloatTensor | None = None
    fused_text_hidden_state: torch.FloatTensor | None = None


# ================================================================================================ dropout
class FineMolTexDropout(nn.Dropout):
    """`nn.Dropout` with a cheaper mask on the CPU: one 64-bit draw of the default generator gives four 16-bit
    uniforms, so the keep probability is `1 - p` rounded to 1/65536. On a 2-core CPU step `torch.bernoulli_` (what
    `nn.Dropout` calls there) measured ~13% of the small preset's step, this mask about half of that. Other
    devices (fused kernels) use `nn.Dropout` as is. Same semantics: train-time only, kept values scaled 1/(1-p)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.inplace or x.numel() == 0:
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        n = x.numel()
        draws = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
        uniform16 = draws.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
        keep = uniform16 >= round(self.p * 65536) - 32768
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))  # a scaled 0/1 mask: backward is one multiply


# ================================================================================================ graph tower
class FineMolTexGINLayer(nn.Module):
    """One GIN layer (MoleculeSTM-style): h_i' = MLP(sum_{j in N(i) + i} (h_j + bond_emb(e_ji))), BatchNorm, ReLU
    (not after the last layer), dropout. Bond embedding = sum of one embedding per bond-feature column; column 0
    has one extra row for the self-loop bond type."""

    def __init__(self, hidden_size: int, bond_feature_sizes: list[int], dropout: float, is_last: bool):
        super().__init__()
        self.bond_embeddings = nn.ModuleList(
            nn.Embedding(size + (1 if column == 0 else 0), hidden_size) for column, size in enumerate(bond_feature_sizes)
        )
        self.mlp = nn.Sequential(nn.Linear(hidden_size, 2 * hidden_size), nn.ReLU(), nn.Linear(2 * hidden_size, hidden_size))
        self.norm = nn.BatchNorm1d(hidden_size)
        self.dropout = FineMolTexDropout(dropout)
        self.is_last = is_last

    def forward(
        self, atom_states: torch.Tensor, edge_index: torch.Tensor, edge_features: torch.Tensor, update_statistics: bool = True
    ) -> torch.Tensor:
        """atom_states (N, H); edge_index (2, E') with self loops; edge_features (E', F_bond) -> (N, H).
        `update_statistics=False`: in training, normalise with the batch statistics without updating the running
        ones (a second view of the same batch must not pull them towards its own distribution)."""
        bond = sum(emb(edge_features[:, column]) for column, emb in enumerate(self.bond_embeddings))
        messages = atom_states[edge_index[0]] + bond
        aggregated = messages.new_zeros(atom_states.size(0), messages.size(1)).index_add_(0, edge_index[1], messages)
        hidden = self.mlp(aggregated)
        if self.training and hidden.size(0) == 1:
            # BatchNorm cannot estimate batch statistics from one atom: normalise with the running statistics.
            hidden = F.batch_norm(
                hidden, self.norm.running_mean, self.norm.running_var, self.norm.weight, self.norm.bias, False, 0.0, self.norm.eps
            )
        elif self.training and not update_statistics:
            hidden = F.batch_norm(hidden, None, None, self.norm.weight, self.norm.bias, True, 0.0, self.norm.eps)
        else:
            hidden = self.norm(hidden)
        if not self.is_last:
            hidden = F.relu(hidden)
        return self.dropout(hidden)


class FineMolTexGraphEncoder(nn.Module):
    """GIN over the flat batch of atoms (no per-molecule loops). Returns atom states (N, output_size):
    `gnn_hidden_size`, or `gnn_hidden_size * (gnn_num_layers + 1)` for `gnn_jk="concat"`."""

    def __init__(self, config: FineMolTexConfig):
        super().__init__()
        hidden = config.gnn_hidden_size
        self.atom_embeddings = nn.ModuleList(nn.Embedding(size, hidden) for size in config.atom_feature_sizes)
        self.layers = nn.ModuleList(
            FineMolTexGINLayer(hidden, config.bond_feature_sizes, config.gnn_dropout, is_last=i == config.gnn_num_layers - 1)
            for i in range(config.gnn_num_layers)
        )
        self.jk = config.gnn_jk
        self.self_loop_bond_type = config.bond_feature_sizes[0]
        self.output_size = hidden * (config.gnn_num_layers + 1) if self.jk == "concat" else hidden
        # GIN layers keep PyTorch's default init (see FineMolTexPreTrainedModel._init_weights).
        for module in self.modules():
            module._finemoltex_gnn = True

    def forward(
        self, atom_features: torch.Tensor, edge_index: torch.Tensor, edge_features: torch.Tensor, update_statistics: bool = True
    ) -> torch.Tensor:
        """`update_statistics=False`: BatchNorm running statistics are left as they are (see `FineMolTexGINLayer`)."""
        num_atoms = atom_features.size(0)
        loops = torch.arange(num_atoms, device=edge_index.device, dtype=edge_index.dtype)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        loop_features = edge_features.new_zeros(num_atoms, edge_features.size(1))
        loop_features[:, 0] = self.self_loop_bond_type
        edge_features = torch.cat([edge_features, loop_features], dim=0)

        hidden = sum(emb(atom_features[:, column]) for column, emb in enumerate(self.atom_embeddings))
        states = [hidden]
        for layer in self.layers:
            hidden = layer(hidden, edge_index, edge_features, update_statistics)
            states.append(hidden)
        if self.jk == "last":
            return states[-1]
        if self.jk == "sum":
            return torch.stack(torch.broadcast_tensors(*states), dim=0).sum(dim=0)
        return torch.cat(states, dim=-1)


def pool_motifs(atom_states: torch.Tensor, motif_membership: torch.Tensor, num_slots: int) -> torch.Tensor:
    """Scatter-mean of atom states into motif slots: (N, H), (2, K), B*M -> (B*M, H). An atom in several motifs
    counts in each; slots without atoms ([CLS], padding) get zeros."""
    atoms, slots = motif_membership[0], motif_membership[1]
    sums = atom_states.new_zeros(num_slots, atom_states.size(1)).index_add_(0, slots, atom_states[atoms])
    counts = atom_states.new_zeros(num_slots).index_add_(0, slots, atom_states.new_ones(slots.size(0)))
    return sums / counts.clamp(min=1).unsqueeze(1)


class FineMolTexMotifEmbeddings(nn.Module):
    """Motif-stream input: per slot, content + position embedding, then LayerNorm and dropout.

    Content: slot 0 -> learned [CLS] vector + mean of the visible (unmasked) motif contents (the reference uses
    zeros); real motif -> Linear(pooled atom states);
    masked motif -> learned [MASK] vector (its atoms and id are NOT used); padding -> zeros. With
    `use_motif_id_embeddings`, unmasked real motifs also add a motif-id embedding."""

    def __init__(self, config: FineMolTexConfig, graph_output_size: int):
        super().__init__()
        width = config.motif_stream_hidden_size
        self.atom_projection = nn.Linear(graph_output_size, width)
        self.cls_embedding = nn.Parameter(torch.zeros(width))
        self.mask_embedding = nn.Parameter(torch.zeros(width))
        self.position_embeddings = nn.Embedding(config.max_motif_positions, width)
        self.motif_id_embeddings = (
            nn.Embedding(config.motif_vocab_size, width, padding_idx=0) if config.use_motif_id_embeddings else None
        )
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = FineMolTexDropout(config.hidden_dropout_prob)

    def project(self, pooled_atoms: torch.Tensor) -> torch.Tensor:
        """(B, M, H_gnn) -> (B, M, width)."""
        return self.atom_projection(pooled_atoms)

    def forward(
        self,
        projected_motifs: torch.Tensor,
        motif_input_ids: torch.Tensor,
        motif_attention_mask: torch.Tensor,
        motif_position_ids: torch.Tensor,
        motif_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """projected_motifs (B, M, D) from `project`; motif_mask Bool (B, M) or None -> (B, M, D)."""
        batch, slots, width = projected_motifs.shape
        is_cls = torch.zeros(slots, dtype=torch.bool, device=projected_motifs.device)
        is_cls[0] = True
        present = motif_attention_mask.bool() & ~is_cls
        content = projected_motifs * present.unsqueeze(-1).to(projected_motifs.dtype)
        if self.motif_id_embeddings is not None:
            visible = present if motif_mask is None else present & ~motif_mask.bool()
            content = content + self.motif_id_embeddings(motif_input_ids) * visible.unsqueeze(-1).to(content.dtype)
        # [CLS] = learned vector + mean of the visible motifs' contents, so the contrastive embedding depends on
        # the molecule from the first step (a bare learned vector left it identical for all molecules at init
        # and training collapsed to uniform logits). Masked motifs are left out: no leak into the fused pass.
        visible = present if motif_mask is None else present & ~motif_mask.bool()
        weights = visible.unsqueeze(-1).to(content.dtype)
        summary = (content * weights).sum(1) / weights.sum(1).clamp(min=1)
        cls = self.cls_embedding.to(content.dtype) + summary
        content = torch.where(is_cls.view(1, slots, 1), cls.unsqueeze(1), content)
        if motif_mask is not None:
            content = torch.where(motif_mask.bool().unsqueeze(-1), self.mask_embedding.to(content.dtype), content)
        return self.dropout(self.norm(content + self.position_embeddings(motif_position_ids)))


# ================================================================================================ attention layers
class FineMolTexAttention(nn.Module):
    """Multi-head attention with `scaled_dot_product_attention`; queries and keys/values may come from streams of
    different widths (co-attention). Output projected back to the query width."""

    def __init__(self, query_size: int, key_value_size: int, inner_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_size = inner_size // num_heads
        self.query = nn.Linear(query_size, inner_size)
        self.key = nn.Linear(key_value_size, inner_size)
        self.value = nn.Linear(key_value_size, inner_size)
        self.output = nn.Linear(inner_size, query_size)
        self.dropout = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), x.size(1), self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, queries: torch.Tensor, keys_values: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
        """queries (B, Sq, Dq), keys_values (B, Sk, Dk), key_padding_mask Bool (B, Sk) True = attend -> (B, Sq, Dq)."""
        q, k, v = self._heads(self.query(queries)), self._heads(self.key(keys_values)), self._heads(self.value(keys_values))
        mask = key_padding_mask[:, None, None, :]
        dropout_p = self.dropout if self.training else 0.0
        if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # CPU bf16 autocast: the half-precision flash-attention backward measured ~3x slower than fp32 on an
            # AMX Xeon (the projections around it stay in bf16, where the CPU's matrix units pay off)
            with torch.autocast("cpu", enabled=False):
                context = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=dropout_p)
            context = context.to(q.dtype)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        context = context.transpose(1, 2).reshape(queries.size(0), queries.size(1), self.num_heads * self.head_size)
        return self.output(context)


class FineMolTexFeedForward(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, config: FineMolTexConfig):
        super().__init__()
        self.dense_in = nn.Linear(hidden_size, intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dense_out = nn.Linear(intermediate_size, hidden_size)
        self.dropout = FineMolTexDropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense_out(self.activation(self.dense_in(x))))


class FineMolTexTransformerLayer(GradientCheckpointingLayer):
    """Post-LayerNorm (BERT-style) transformer encoder layer of a fusion stream."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, config: FineMolTexConfig):
        super().__init__()
        self.attention = FineMolTexAttention(hidden_size, hidden_size, hidden_size, num_heads, config.attention_dropout_prob)
        self.attention_dropout = FineMolTexDropout(config.hidden_dropout_prob)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FineMolTexFeedForward(hidden_size, intermediate_size, config)
        self.output_norm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, padding_mask: torch.Tensor, query_states: torch.Tensor | None = None
    ) -> torch.Tensor:
        """hidden_states (B, S, D), padding_mask Bool (B, S) True = real -> (B, S, D). With `query_states` (B, Q, D),
        the states of some positions (`take_positions`), only those are computed (keys and values still come from
        every position) -> (B, Q, D): what the last layer needs when only some outputs are used."""
        queries = hidden_states if query_states is None else query_states
        attended = self.attention(queries, hidden_states, padding_mask)
        queries = self.attention_norm(queries + self.attention_dropout(attended))
        return self.output_norm(queries + self.feed_forward(queries))


class FineMolTexCoAttentionLayer(GradientCheckpointingLayer):
    """ViLBERT-style bi-directional co-attention block: motif queries attend over text keys/values and text
    queries over motif keys/values (both from the block's inputs), each followed by residual + LayerNorm and a
    feed-forward sub-layer with residual + LayerNorm."""

    def __init__(self, config: FineMolTexConfig):
        super().__init__()
        motif, text = config.motif_stream_hidden_size, config.text_stream_hidden_size
        inner, heads, ffn = config.coattention_hidden_size, config.coattention_num_heads, config.coattention_intermediate_size
        self.motif_to_text = FineMolTexAttention(motif, text, inner, heads, config.attention_dropout_prob)
        self.text_to_motif = FineMolTexAttention(text, motif, inner, heads, config.attention_dropout_prob)
        self.dropout = FineMolTexDropout(config.hidden_dropout_prob)
        self.motif_attention_norm = nn.LayerNorm(motif, eps=config.layer_norm_eps)
        self.text_attention_norm = nn.LayerNorm(text, eps=config.layer_norm_eps)
        self.motif_feed_forward = FineMolTexFeedForward(motif, ffn, config)
        self.text_feed_forward = FineMolTexFeedForward(text, ffn, config)
        self.motif_output_norm = nn.LayerNorm(motif, eps=config.layer_norm_eps)
        self.text_output_norm = nn.LayerNorm(text, eps=config.layer_norm_eps)

    def forward(
        self,
        motif_states: torch.Tensor,
        text_states: torch.Tensor,
        motif_padding_mask: torch.Tensor,
        text_padding_mask: torch.Tensor,
        motif_queries: torch.Tensor | None = None,
        text_queries: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, Dm), (B, L, Dt), Bool (B, M), Bool (B, L) -> ((B, M, Dm), (B, L, Dt)). With `motif_queries`
        (B, Qm, Dm) / `text_queries` (B, Qt, Dt), states of some positions of a stream, only those are computed
        for that stream (keys and values are always every position of the other stream) -> (B, Qm, Dm) / (B, Qt, Dt)."""
        motif_q = motif_states if motif_queries is None else motif_queries
        text_q = text_states if text_queries is None else text_queries
        motif_new = self.motif_attention_norm(motif_q + self.dropout(self.motif_to_text(motif_q, text_states, text_padding_mask)))
        text_new = self.text_attention_norm(text_q + self.dropout(self.text_to_motif(text_q, motif_states, motif_padding_mask)))
        motif_new = self.motif_output_norm(motif_new + self.motif_feed_forward(motif_new))
        text_new = self.text_output_norm(text_new + self.text_feed_forward(text_new))
        return motif_new, text_new


def gather_positions(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool (B, S) -> (positions Long (B, Q), valid Bool (B, Q)), Q = the most True entries in a row: row b's True
    positions in ascending order, then filler (valid False). `states[mask]` equals
    `take_positions(states, positions)[valid]` (same rows, same order)."""
    counts = mask.sum(dim=1)
    width = int(counts.max()) if mask.numel() else 0
    positions = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :width]
    valid = torch.arange(width, device=mask.device)[None, :] < counts[:, None]
    return positions, valid


def take_positions(states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """states (B, S, D), positions Long (B, Q) -> (B, Q, D)."""
    return states.gather(1, positions[:, :, None].expand(-1, -1, states.size(-1)))


def _cls_positions(states: torch.Tensor) -> torch.Tensor:
    """Long (B, 1) zeros: the [CLS] position of every row of `states` (B, S, D)."""
    return torch.zeros(states.size(0), 1, dtype=torch.long, device=states.device)


class FineMolTexFusionEncoder(nn.Module):
    """The motif stream and the text stream, with co-attention blocks between them in the fused pass."""

    def __init__(self, config: FineMolTexConfig):
        super().__init__()
        self.motif_layers = nn.ModuleList(
            FineMolTexTransformerLayer(
                config.motif_stream_hidden_size, config.motif_stream_num_heads, config.motif_stream_intermediate_size, config
            )
            for _ in range(config.motif_stream_num_layers)
        )
        self.text_layers = nn.ModuleList(
            FineMolTexTransformerLayer(
                config.text_stream_hidden_size, config.text_stream_num_heads, config.text_stream_intermediate_size, config
            )
            for _ in range(config.text_stream_num_layers)
        )
        self.coattention_layers = nn.ModuleList(FineMolTexCoAttentionLayer(config) for _ in config.coattention_motif_layers)
        self.schedule = list(zip(config.coattention_motif_layers, config.coattention_text_layers))

    @staticmethod
    def _run(layers, states, padding_mask, start: int, stop: int, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Layers [start, stop); with `positions` (B, Q) the last of them computes only those positions."""
        for i in range(start, stop):
            last_subset = positions is not None and i == stop - 1
            states = layers[i](states, padding_mask, take_positions(states, positions) if last_subset else None)
        if positions is not None and start == stop:
            states = take_positions(states, positions)
        return states

    def encode_motifs(self, motif_states: torch.Tensor, motif_padding_mask: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Motif stream alone (no co-attention): (B, M, Dm) -> (B, M, Dm), or (B, 1, Dm) with `cls_only` (the
        last layer then computes only the [CLS] slot: all the contrastive embedding needs)."""
        cls = _cls_positions(motif_states) if cls_only else None
        return self._run(self.motif_layers, motif_states, motif_padding_mask, 0, len(self.motif_layers), cls)

    def encode_text(self, text_states: torch.Tensor, text_padding_mask: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Text stream alone (no co-attention): (B, L, Dt) -> (B, L, Dt), or (B, 1, Dt) with `cls_only`."""
        cls = _cls_positions(text_states) if cls_only else None
        return self._run(self.text_layers, text_states, text_padding_mask, 0, len(self.text_layers), cls)

    def encode_cls_and_importance(
        self, stream: str, states: torch.Tensor, padding_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One stream alone (no co-attention), for the coarse pass of pre-training: -> ([CLS] states (B, 1, D), as
        `encode_motifs` / `encode_text` with `cls_only`, with gradient; importance (B, S) fp32, no gradient).

        Importance is `cls_similarity_importance` of the stream's last-layer states: the last layer is run once more
        over all positions under `no_grad` (a forward of one layer; the gradient-carrying pass still computes only
        the [CLS] slot there)."""
        layers = self.motif_layers if stream == "motif" else self.text_layers
        depth = len(layers)
        if depth == 0:
            return states[:, :1], cls_similarity_importance(states)
        before_last = self._run(layers, states, padding_mask, 0, depth - 1)
        cls = self._run(layers, before_last, padding_mask, depth - 1, depth, _cls_positions(before_last))
        with torch.no_grad():
            full = layers[-1](before_last.detach(), padding_mask)
        return cls, cls_similarity_importance(full)

    def fuse(
        self,
        motif_states: torch.Tensor,
        motif_padding_mask: torch.Tensor,
        text_states: torch.Tensor,
        text_padding_mask: torch.Tensor,
        motif_positions: torch.Tensor | None = None,
        text_positions: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both streams with co-attention after the configured layers (1-based), ViLBERT schedule:
        -> ((B, M, Dm), (B, L, Dt)). With `motif_positions` (B, Qm) / `text_positions` (B, Qt) (`gather_positions`
        of the masked slots and words), the last step of that stream (a co-attention block or a stream layer)
        computes only those positions and returns (B, Qm, Dm) / (B, Qt, Dt): the heads read nothing else, and on
        the text side that skips most of the last block's work."""
        num_motif, num_text, num_blocks = len(self.motif_layers), len(self.text_layers), len(self.coattention_layers)
        motif_done = text_done = 0
        for i, (block, (motif_until, text_until)) in enumerate(zip(self.coattention_layers, self.schedule)):
            motif_states = self._run(self.motif_layers, motif_states, motif_padding_mask, motif_done, motif_until)
            text_states = self._run(self.text_layers, text_states, text_padding_mask, text_done, text_until)
            # a stream whose layers all ran by the last block ends with it: only its wanted positions are computed
            motif_last = i == num_blocks - 1 and motif_until == num_motif and motif_positions is not None
            text_last = i == num_blocks - 1 and text_until == num_text and text_positions is not None
            motif_states, text_states = block(
                motif_states,
                text_states,
                motif_padding_mask,
                text_padding_mask,
                take_positions(motif_states, motif_positions) if motif_last else None,
                take_positions(text_states, text_positions) if text_last else None,
            )
            motif_done, text_done = motif_until, text_until
            if motif_last:
                motif_positions, motif_done = None, num_motif
            if text_last:
                text_positions, text_done = None, num_text
        motif_states = self._run(self.motif_layers, motif_states, motif_padding_mask, motif_done, num_motif, motif_positions)
        text_states = self._run(self.text_layers, text_states, text_padding_mask, text_done, num_text, text_positions)
        return motif_states, text_states


class FineMolTexPredictionHead(nn.Module):
    """BERT-style prediction head: dense + activation + LayerNorm, then a linear decoder."""

    def __init__(self, hidden_size: int, num_classes: int, config: FineMolTexConfig):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.norm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, num_classes)

    def transform(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Everything before the decoder: (n, D) -> (n, D)."""
        return self.norm(self.activation(self.dense(hidden_states)))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden_states))


class FineMolTexEmbeddingDecoderHead(nn.Module):
    """MLM head that decodes with the text encoder's input word embeddings (`mlm_decoder="text_embeddings"`):
    dense (Dt -> H) + activation + LayerNorm(H), then logits = x @ E.T + bias, where E (V, H) is handed in by the
    caller. E belongs to the text encoder (trained with it, fixed when it is locked); the head owns only the bias."""

    def __init__(self, hidden_size: int, embedding_size: int, vocab_size: int, config: FineMolTexConfig):
        super().__init__()
        self.dense = nn.Linear(hidden_size, embedding_size)
        self.activation = ACT2FN[config.hidden_act]
        self.norm = nn.LayerNorm(embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def transform(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(n, Dt) -> (n, H)."""
        return self.norm(self.activation(self.dense(hidden_states)))

    def forward(self, hidden_states: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """(n, Dt), (V, H) -> logits (n, V)."""
        hidden = self.transform(hidden_states)
        return F.linear(hidden, word_embeddings.to(hidden.dtype), self.bias.to(hidden.dtype))


# ================================================================================================ input checks
def check_batch(config: FineMolTexConfig, batch: dict, values: bool = True) -> None:
    """Raise `ValueError` for a batch that breaks the contract. Shape checks always; value checks (one host
    sync) when `values`. Keys absent from `batch` are skipped (a tower may be run alone)."""
    motif_ids = batch.get("motif_input_ids")
    input_ids = batch.get("input_ids")
    sizes = {name: batch[name].size(0) for name in ("motif_input_ids", "input_ids") if batch.get(name) is not None}
    if any(size == 0 for size in sizes.values()):
        raise ValueError("Empty batch: FineMolTex needs at least one molecule-text pair.")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"Graph and text batch sizes differ: {sizes['motif_input_ids']} molecules vs {sizes['input_ids']} texts.")
    conditions: dict[str, torch.Tensor] = {}
    if input_ids is not None:
        attention_mask = batch.get("attention_mask")
        if attention_mask is None or attention_mask.shape != input_ids.shape:
            raise ValueError("`attention_mask` is required and must have the shape of `input_ids` (B, L).")
        conditions["a text row is all padding (attention_mask all zero)"] = (attention_mask.sum(dim=1) == 0).any()
        vocab = getattr(config.text_config, "vocab_size", None)
        if vocab is not None:
            conditions[f"input_ids outside the text vocabulary (size {vocab})"] = ((input_ids < 0) | (input_ids >= vocab)).any()
        states = batch.get("text_encoder_states")
        if states is not None:
            expected = (*input_ids.shape, config.text_config.hidden_size)
            if tuple(states.shape) != expected:
                raise ValueError(
                    f"`text_encoder_states` must be (B, L, text hidden size) = {expected}, got {tuple(states.shape)}."
                )
            conditions["text_encoder_states has NaN/inf values"] = ~torch.isfinite(states).all()
    if motif_ids is not None:
        for name in GRAPH_INPUT_NAMES:
            if batch.get(name) is None:
                raise ValueError(f"Missing graph input `{name}`.")
        batch_size, slots = motif_ids.shape
        for name in ("motif_attention_mask", "motif_position_ids"):
            if batch[name].shape != motif_ids.shape:
                raise ValueError(f"`{name}` must have the shape of `motif_input_ids` {tuple(motif_ids.shape)}.")
        if slots < 2:
            raise ValueError("`motif_input_ids` needs slot 0 ([CLS]) and at least one motif slot per molecule.")
        atoms, edges = batch["graph_atom_features"], batch["graph_edge_index"]
        edge_features, membership, graph_batch = batch["graph_edge_features"], batch["motif_membership"], batch["graph_batch"]
        if atoms.dim() != 2 or atoms.size(1) != len(config.atom_feature_sizes):
            raise ValueError(f"`graph_atom_features` must be (N, {len(config.atom_feature_sizes)}), got {tuple(atoms.shape)}.")
        if edges.dim() != 2 or edges.size(0) != 2:
            raise ValueError(f"`graph_edge_index` must be (2, E), got {tuple(edges.shape)}.")
        if edge_features.shape != (edges.size(1), len(config.bond_feature_sizes)):
            raise ValueError(
                f"`graph_edge_features` must be (E={edges.size(1)}, {len(config.bond_feature_sizes)}), got {tuple(edge_features.shape)}."
            )
        if membership.dim() != 2 or membership.size(0) != 2:
            raise ValueError(f"`motif_membership` must be (2, K), got {tuple(membership.shape)}.")
        if graph_batch.shape != (atoms.size(0),):
            raise ValueError("`graph_batch` must have one molecule index per atom.")
        if atoms.size(0) == 0:
            raise ValueError("The batch has no atoms; every molecule needs at least one atom.")
        if values:
            num_atoms = atoms.size(0)
            atom_limits = torch.tensor(config.atom_feature_sizes, device=atoms.device)
            bond_limits = torch.tensor(config.bond_feature_sizes, device=atoms.device)
            conditions["graph_atom_features outside atom_feature_sizes"] = ((atoms < 0) | (atoms >= atom_limits)).any()
            if edges.numel():
                conditions["graph_edge_features outside bond_feature_sizes"] = ((edge_features < 0) | (edge_features >= bond_limits)).any()
                conditions["graph_edge_index outside [0, N)"] = ((edges < 0) | (edges >= num_atoms)).any()
            conditions["graph_batch outside [0, B)"] = ((graph_batch < 0) | (graph_batch >= batch_size)).any()
            conditions["a molecule has no atom"] = (torch.bincount(graph_batch.clamp(0, batch_size - 1), minlength=batch_size) == 0).any()
            conditions[f"motif_input_ids outside [0, motif_vocab_size={config.motif_vocab_size})"] = (
                (motif_ids < 0) | (motif_ids >= config.motif_vocab_size)
            ).any()
            positions = batch["motif_position_ids"]
            conditions[f"motif_position_ids outside [0, max_motif_positions={config.max_motif_positions})"] = (
                (positions < 0) | (positions >= config.max_motif_positions)
            ).any()
            real = batch["motif_attention_mask"].bool().clone()
            real[:, 0] = False
            conditions["a molecule has no motif"] = (real.sum(dim=1) == 0).any()
            atom_index, slot_index = membership[0], membership[1]
            bad_slot = (slot_index < 0) | (slot_index >= batch_size * slots) | (slot_index % slots == 0)
            bad_atom = (atom_index < 0) | (atom_index >= num_atoms)
            conditions["motif_membership outside the atoms or the motif slots (slot 0 is [CLS])"] = (bad_slot | bad_atom).any()
            safe_atoms, safe_slots = atom_index.clamp(0, num_atoms - 1), slot_index.clamp(0, batch_size * slots - 1)
            conditions["motif_membership links an atom to another molecule's motif"] = (
                graph_batch[safe_atoms] != torch.div(safe_slots, slots, rounding_mode="floor")
            ).any()
            has_atoms = torch.zeros(batch_size * slots, dtype=torch.bool, device=motif_ids.device)
            has_atoms[safe_slots] = True
            conditions["a motif has no atom in motif_membership"] = (real.flatten() & ~has_atoms).any()
    if values and conditions:
        flags = torch.stack([c.to("cpu") if c.device.type != "cpu" else c for c in conditions.values()]).tolist()
        problems = [message for message, bad in zip(conditions, flags) if bad]
        if problems:
            raise ValueError("Invalid FineMolTex batch: " + "; ".join(problems) + ".")


# ================================================================================================ base class
class FineMolTexPreTrainedModel(PreTrainedModel):
    config_class = FineMolTexConfig
    base_model_prefix = "finemoltex"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["FineMolTexTransformerLayer", "FineMolTexCoAttentionLayer", "FineMolTexGraphEncoder"]

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`save_pretrained`, with `auto_map` naming every FineMolTex auto class (transformers only writes the
        saved class's own), so a pre-training checkpoint also loads with `AutoModel` as remote code."""
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        for auto_class, cls in (
            ("AutoConfig", FineMolTexConfig),
            ("AutoModel", FineMolTexModel),
            ("AutoModelForPreTraining", FineMolTexForPreTraining),
            ("AutoModelForSequenceClassification", FineMolTexForMoleculePropertyPrediction),
        ):
            auto_map.setdefault(auto_class, f"{cls.__module__.split('.')[-1]}.{cls.__name__}")
        self.config.auto_map = auto_map
        pipeline_model = isinstance(self, (FineMolTexModel, FineMolTexForPreTraining))
        if pipeline_model:  # `pipeline(model=folder, trust_remote_code=True)` finds the retrieval pipeline's code
            from .pipeline_finemoltex import custom_pipelines_entry

            self.config.custom_pipelines = custom_pipelines_entry()
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        if pipeline_model and kwargs.get("is_main_process", True):
            from transformers.dynamic_module_utils import custom_object_save

            from .pipeline_finemoltex import FineMolTexPipeline

            custom_object_save(FineMolTexPipeline, save_directory)  # pipeline_finemoltex.py and what it imports
        return saved

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`from_pretrained`; a weights file that cannot be read (cut short by an interrupted save, copy or
        download) gives an error of the same class that names the file: safetensors' own message names none."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except Exception as err:
            message = str(err)
            from_weights_reader = type(err).__name__ == "SafetensorError" or (
                isinstance(err, (OSError, ValueError))
                and any(word in message.lower() for word in ("header", "deserializ", "incomplete"))
            )
            # Rewrite only when a weights file is confirmed unreadable; anything else propagates untouched.
            broken = cls._unreadable_weights_file(pretrained_model_name_or_path, kwargs) if from_weights_reader else None
            if broken is None:
                raise
            path, size = broken
            try:
                named = type(err)(
                    f"Cannot read the weights file {path} ({size:,} bytes): {message}. It looks truncated or "
                    "half-written (an interrupted save, copy or download); save or download it again."
                )
            except TypeError:  # an exception class that does not take one message: keep the original
                named = None
            if named is None:
                raise
            raise named from err

    @staticmethod
    def _unreadable_weights_file(pretrained_model_name_or_path, kwargs) -> tuple[str, int] | None:
        """(path, size) of the first `*.safetensors` file of a local or cached checkpoint whose header does not
        open (safetensors also checks that the header covers the whole file, so any cut is caught), else None."""
        import glob
        import os

        from safetensors import safe_open

        folder = str(pretrained_model_name_or_path)
        if not os.path.isdir(folder):
            try:  # a Hub id already in the local cache: its snapshot folder
                from huggingface_hub import try_to_load_from_cache

                cached = try_to_load_from_cache(folder, "config.json", revision=kwargs.get("revision"))
            except Exception:
                cached = None
            if not isinstance(cached, str):
                return None
            folder = os.path.dirname(cached)
        if kwargs.get("subfolder"):
            folder = os.path.join(folder, kwargs["subfolder"])
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*.safetensors"))):
            try:
                with safe_open(path, framework="pt"):
                    pass
            except Exception:
                return path, os.path.getsize(path)
        return None

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """GIN modules: PyTorch's default Linear init and xavier-uniform atom/bond embeddings (MoleculeSTM);
        transformers' normal(0.02) there collapses the graph embedding (ENVIRONMENT.md). Stream layers and
        heads: BERT-style normal(initializer_range). The HF text encoder is initialised by its own class (and
        keeps loaded weights: transformers skips parameters flagged as initialised)."""
        std = self.config.initializer_range
        if getattr(module, "_finemoltex_gnn", False):
            if isinstance(module, nn.Linear):
                init.kaiming_uniform_(module.weight, a=math.sqrt(5))
                if module.bias is not None:
                    bound = 1 / math.sqrt(module.in_features)
                    init.uniform_(module.bias, -bound, bound)
            elif isinstance(module, nn.Embedding):
                init.xavier_uniform_(module.weight)
            elif isinstance(module, nn.BatchNorm1d):
                init.ones_(module.weight)
                init.zeros_(module.bias)
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
            return
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, FineMolTexMotifEmbeddings):
            init.normal_(module.cls_embedding, mean=0.0, std=std)
            init.normal_(module.mask_embedding, mean=0.0, std=std)
        elif isinstance(module, FineMolTexModel) and module.logit_scale is not None:
            init.constant_(module.logit_scale, math.log(1.0 / self.config.contrastive_temperature))
        elif isinstance(module, FineMolTexForPreTraining):
            init.normal_(module.text_state_mask_embedding, mean=0.0, std=std)
        elif isinstance(module, FineMolTexEmbeddingDecoderHead):
            init.zeros_(module.bias)


# ================================================================================================ base model
class _ExpectedLoadReport(logging.Filter):
    """Drops transformers' load report when every key it lists starts with one of `prefixes` (weights the caller
    knows are absent or unused); a report with any other row is kept whole."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" not in message:
            return True
        keys = [line.split("|")[0].strip() for line in message.splitlines() if "|" in line][1:]  # rows after the header
        return not (keys and all(key.startswith(self.prefixes) for key in keys))


@contextlib.contextmanager
def expected_load_report(*prefixes: str):
    """Within the block, `from_pretrained` prints no load report that lists only keys starting with `prefixes`."""
    report_filter = _ExpectedLoadReport(prefixes)
    report_logger = logging.getLogger("transformers.modeling_utils")
    report_logger.addFilter(report_filter)
    try:
        yield
    finally:
        report_logger.removeFilter(report_filter)


def _build_text_encoder(config: FineMolTexConfig) -> PreTrainedModel:
    """The HF text encoder with SDPA attention, without BERT's unused pooler. Pretrained weights from
    `config.text_model_name_or_path` unless we are inside `from_pretrained` (meta device: the FineMolTex
    checkpoint provides all weights)."""
    kwargs = {"attn_implementation": "sdpa", "add_pooling_layer": False}
    loading_checkpoint = get_torch_context_manager_or_global_device() == torch.device("meta")
    path = config.text_model_name_or_path
    for attempt in (kwargs, {"attn_implementation": "sdpa"}, {}):  # not every encoder takes these kwargs
        try:
            if path and not loading_checkpoint:
                with expected_load_report("pooler."):  # BERT's pooler: in the checkpoint, never built here
                    return AutoModel.from_pretrained(path, config=config.text_config, **attempt)
            return AutoModel.from_config(config.text_config, **attempt)
        except (TypeError, ValueError):
            if not attempt:
                raise
    raise AssertionError("unreachable")


class FineMolTexModel(FineMolTexPreTrainedModel):
    """Graph tower (GIN -> motif stream) and text tower (HF encoder -> text stream), the co-attention blocks,
    and the contrastive projections. `forward` runs both towers without co-attention and returns the
    contrastive embeddings and similarity logits (`return_loss=True` adds the InfoNCE loss)."""

    # a pre-training checkpoint's heads and [MASK] state are expected leftovers when loading the encoders alone
    _keys_to_ignore_on_load_unexpected = [r"^(motif|mlm)_head\.", r"^text_state_mask_embedding$"]

    def __init__(self, config: FineMolTexConfig):
        super().__init__(config)
        self.graph_encoder = FineMolTexGraphEncoder(config)
        self.motif_embeddings = FineMolTexMotifEmbeddings(config, self.graph_encoder.output_size)
        self.text_model = _build_text_encoder(config)
        text_width = config.text_config.hidden_size
        self.text_input_projection = (
            nn.Linear(text_width, config.text_stream_hidden_size) if text_width != config.text_stream_hidden_size else nn.Identity()
        )
        self.fusion = FineMolTexFusionEncoder(config)
        self.graph_projection = nn.Linear(config.motif_stream_hidden_size, config.projection_dim)
        self.text_projection = nn.Linear(config.text_stream_hidden_size, config.projection_dim)
        self.logit_scale = (
            nn.Parameter(torch.tensor(math.log(1.0 / config.contrastive_temperature))) if config.learnable_temperature else None
        )
        self.post_init()

    # -------------------------------------------------------------------- pieces
    def get_input_embeddings(self) -> nn.Module:
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.text_model.set_input_embeddings(value)

    @property
    def temperature(self) -> torch.Tensor | float:
        """Contrastive temperature (a tensor when learnable; the scale is capped at 100 as in CLIP)."""
        if self.logit_scale is None:
            return self.config.contrastive_temperature
        return 1.0 / self.logit_scale.clamp(max=math.log(100.0)).exp()

    def encode_atoms_and_motifs(
        self,
        graph_atom_features: torch.Tensor,
        graph_edge_index: torch.Tensor,
        graph_edge_features: torch.Tensor,
        motif_membership: torch.Tensor,
        num_molecules: int,
        num_slots: int,
        update_statistics: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the GIN once: -> (atom states (N, H_gnn), projected motif contents (B, M, motif width)).
        `update_statistics=False` for a second view of the same batch (BatchNorm running statistics untouched)."""
        atom_states = self.graph_encoder(graph_atom_features, graph_edge_index, graph_edge_features, update_statistics)
        pooled = pool_motifs(atom_states, motif_membership, num_molecules * num_slots).view(num_molecules, num_slots, -1)
        return atom_states, self.motif_embeddings.project(pooled)

    def encode_text_tokens(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        text_encoder_states: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """HF text encoder + projection to the text-stream width: -> (encoder states (B, L, H), stream input
        (B, L, Dt)). With `text_encoder_states` (cached states of a locked encoder) the encoder is not run."""
        if text_encoder_states is None:
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            encoder_states = self.text_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        else:
            encoder_states = text_encoder_states.to(self.text_input_projection_dtype)
        return encoder_states, self.text_input_projection(encoder_states)

    @property
    def text_input_projection_dtype(self) -> torch.dtype:
        """The dtype cached states are cast to: the text encoder's parameter dtype (what it would output)."""
        return next(self.text_model.parameters()).dtype

    def graph_embeds_from_motif_states(self, motif_states: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.graph_projection(motif_states[:, 0]).float(), dim=-1)

    def text_embeds_from_text_states(self, text_states: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_projection(text_states[:, 0]).float(), dim=-1)

    # -------------------------------------------------------------------- single towers (retrieval)
    def get_graph_features(
        self,
        graph_atom_features: torch.Tensor,
        graph_edge_index: torch.Tensor,
        graph_edge_features: torch.Tensor,
        graph_batch: torch.Tensor,
        motif_input_ids: torch.Tensor,
        motif_attention_mask: torch.Tensor,
        motif_position_ids: torch.Tensor,
        motif_membership: torch.Tensor,
        **kwargs,
    ) -> torch.Tensor:
        """Molecule embeddings (B, projection_dim), L2-normalised: motif-stream CLS, no co-attention."""
        batch = dict(
            graph_atom_features=graph_atom_features,
            graph_edge_index=graph_edge_index,
            graph_edge_features=graph_edge_features,
            graph_batch=graph_batch,
            motif_input_ids=motif_input_ids,
            motif_attention_mask=motif_attention_mask,
            motif_position_ids=motif_position_ids,
            motif_membership=motif_membership,
        )
        check_batch(self.config, batch, values=self.config.check_inputs)
        num_molecules, num_slots = motif_input_ids.shape
        _, projected = self.encode_atoms_and_motifs(
            graph_atom_features, graph_edge_index, graph_edge_features, motif_membership, num_molecules, num_slots
        )
        motif_inputs = self.motif_embeddings(projected, motif_input_ids, motif_attention_mask, motif_position_ids)
        motif_states = self.fusion.encode_motifs(motif_inputs, motif_attention_mask.bool(), cls_only=True)
        return self.graph_embeds_from_motif_states(motif_states)

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        """Text embeddings (B, projection_dim), L2-normalised: text-stream CLS, no co-attention."""
        check_batch(self.config, {"input_ids": input_ids, "attention_mask": attention_mask}, values=self.config.check_inputs)
        _, stream_inputs = self.encode_text_tokens(input_ids, attention_mask, token_type_ids)
        text_states = self.fusion.encode_text(stream_inputs, attention_mask.bool(), cls_only=True)
        return self.text_embeds_from_text_states(text_states)

    # -------------------------------------------------------------------- contrastive
    def contrastive(
        self, graph_embeds: torch.Tensor, text_embeds: torch.Tensor, duplicate_key: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather negatives across processes (config.gather_negatives), mask duplicates, -> (loss, logits_per_graph,
        accuracy). Logits are fp32."""
        tensors = [graph_embeds, text_embeds] + ([duplicate_key] if duplicate_key is not None else [])
        if self.config.gather_negatives:
            tensors = list(gather_features(*tensors))  # module global: tests swap it for a fake
        all_graph, all_text = tensors[0], tensors[1]
        duplicate_mask = duplicate_negative_mask(tensors[2]) if duplicate_key is not None else None
        logits = contrastive_logits(all_graph, all_text, self.temperature, duplicate_mask)
        targets = torch.arange(logits.size(0), device=logits.device)
        loss = 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))
        return loss, logits, contrastive_accuracy(logits)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        graph_atom_features: torch.Tensor | None = None,
        graph_edge_index: torch.Tensor | None = None,
        graph_edge_features: torch.Tensor | None = None,
        graph_batch: torch.Tensor | None = None,
        motif_input_ids: torch.Tensor | None = None,
        motif_attention_mask: torch.Tensor | None = None,
        motif_position_ids: torch.Tensor | None = None,
        motif_membership: torch.Tensor | None = None,
        duplicate_key: torch.Tensor | None = None,
        text_encoder_states: torch.Tensor | None = None,
        return_loss: bool = False,
        return_dict: bool | None = None,
        **kwargs,
    ) -> FineMolTexModelOutput | tuple:
        """Both towers without co-attention. `duplicate_key` Long (B,) (e.g. hash of the canonical SMILES): rows
        with equal keys are not negatives of each other."""
        batch = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            graph_atom_features=graph_atom_features,
            graph_edge_index=graph_edge_index,
            graph_edge_features=graph_edge_features,
            graph_batch=graph_batch,
            motif_input_ids=motif_input_ids,
            motif_attention_mask=motif_attention_mask,
            motif_position_ids=motif_position_ids,
            motif_membership=motif_membership,
            text_encoder_states=text_encoder_states,
        )
        if input_ids is None or motif_input_ids is None:
            raise ValueError("FineMolTexModel.forward needs both the text and the graph inputs; use get_text_features / get_graph_features for one tower.")
        check_batch(self.config, batch, values=self.config.check_inputs)
        num_molecules, num_slots = motif_input_ids.shape
        atom_states, projected = self.encode_atoms_and_motifs(
            graph_atom_features, graph_edge_index, graph_edge_features, motif_membership, num_molecules, num_slots
        )
        motif_inputs = self.motif_embeddings(projected, motif_input_ids, motif_attention_mask, motif_position_ids)
        motif_states = self.fusion.encode_motifs(motif_inputs, motif_attention_mask.bool())
        encoder_states, stream_inputs = self.encode_text_tokens(input_ids, attention_mask, token_type_ids, text_encoder_states)
        text_states = self.fusion.encode_text(stream_inputs, attention_mask.bool())
        graph_embeds = self.graph_embeds_from_motif_states(motif_states)
        text_embeds = self.text_embeds_from_text_states(text_states)
        if return_loss:
            loss, logits, _ = self.contrastive(graph_embeds, text_embeds, duplicate_key)
        else:
            loss = None
            mask = duplicate_negative_mask(duplicate_key) if duplicate_key is not None else None
            logits = contrastive_logits(graph_embeds, text_embeds, self.temperature, mask)
        output = FineMolTexModelOutput(
            loss=loss,
            logits_per_graph=logits,
            logits_per_text=logits.t(),
            graph_embeds=graph_embeds,
            text_embeds=text_embeds,
            atom_hidden_states=atom_states,
            motif_last_hidden_state=motif_states,
            text_last_hidden_state=text_states,
            text_encoder_last_hidden_state=encoder_states,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


# ================================================================================================ pre-training
class FineMolTexForPreTraining(FineMolTexPreTrainedModel):
    """FineMolTex pre-training: contrastive (coarse) + masked-motif and masked-word prediction through the
    co-attention pass (fine).

    One step, coarse then fine:

    - coarse: the GIN on the clean molecule, the motif slots (pooled atom states) and the clean text (text encoder,
      or cached states) through their streams WITHOUT co-attention; their [CLS] states give InfoNCE. The same pass
      scores every token's importance for masking: the cosine similarity of its last-layer state to its stream's
      [CLS] state, without gradient (`encode_cls_and_importance`, `cls_similarity_importance`).
    - masks: motifs among target slots (`motif_candidates`), words among non-special attended tokens, exactly
      `max(1, round(rate * n))` per example (0 when none is maskable), drawn without replacement with
      probabilities softmax(importance / importance_temperature) (`motif_masking_strategy` /
      `word_masking_strategy` "importance", the default) or uniformly ("uniform"), from a generator seeded by
      `mask_seed` (argument, else config) when given. `motif_mask` / `word_mask` (Bool) override the sampling
      (e.g. masks made by a collator); `motif_importance` (B, M) / `word_importance` (B, L) floats override the
      scores (e.g. a log frequency rank, the rule this package used before the paper's).
    - fine: a second GIN pass on a view in which every atom of a masked motif has the masked-atom features
      (`hide_masked_motif_atoms`; config flag of the same name), masked slots get the [MASK] vector
      (`FineMolTexMotifEmbeddings`); the masked text goes through the text encoder (a second call); the fused pass
      (co-attention) computes the masked positions, which feed the motif head (num_motif_targets classes) and the
      MLM head (text vocabulary). With `text_encoder_states` (B, L, H) — cached token states of a locked encoder
      (`text_states_finemoltex`) — the coarse pass (and the word importance) projects the states as they are, and
      the fine pass runs the locked encoder once, without gradient, on the masked ids (`hide_masked_words`, the
      default), as the trained-encoder path does. With `hide_masked_words=False` the encoder does not run at all:
      the masked text is the cached states with the masked words replaced at the stream input (`mask_text_states`;
      the MLM targets stay the original ids), which leaks, since the encoder computed every neighbour's state with
      the masked word in view.

    With `masked_motif_weight` and `masked_lm_weight` both 0 (contrastive-only pre-training) the fine branch is
    skipped altogether (no masking, no second text pass, no fused pass): its outputs are None. With one of them 0
    (ablations), that objective is off: its stream is neither scored nor masked and enters the fused pass clean (no
    second GIN pass for motifs, no second encoder pass for words), its loss is None and its head sees no positions;
    handing in that stream's mask (`motif_mask` / `word_mask`) switches it back on for the call.
    """

    def __init__(self, config: FineMolTexConfig):
        super().__init__(config)
        self.finemoltex = FineMolTexModel(config)
        self.motif_head = FineMolTexPredictionHead(config.motif_stream_hidden_size, config.num_motif_targets, config)
        if config.mlm_decoder == "text_embeddings":
            word_embeddings = self.finemoltex.text_model.get_input_embeddings()  # (V, E); E may differ from the
            self.mlm_head = FineMolTexEmbeddingDecoderHead(  # encoder's width (ALBERT-style factorised embeddings)
                config.text_stream_hidden_size, word_embeddings.embedding_dim, word_embeddings.num_embeddings, config
            )
        else:
            self.mlm_head = FineMolTexPredictionHead(config.text_stream_hidden_size, config.text_config.vocab_size, config)
        # [MASK] state for masked words when the text encoder's states are cached (locked text, `mask_text_states`)
        self.text_state_mask_embedding = nn.Parameter(torch.zeros(config.text_config.hidden_size))
        self._mask_seeds = MaskSeeds()
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.finemoltex.get_input_embeddings()

    def _generator(self, mask_seed: int | None) -> torch.Generator | None:
        return self._mask_seeds(mask_seed, self.config.mask_seed)

    def mlm_decoder_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The MLM decoder's (weight (V, D), bias (V,)): the head's own linear layer, or the text encoder's word
        embeddings and the head's bias (`mlm_decoder="text_embeddings"`)."""
        if self.config.mlm_decoder == "text_embeddings":
            return self.finemoltex.text_model.get_input_embeddings().weight, self.mlm_head.bias
        return self.mlm_head.decoder.weight, self.mlm_head.decoder.bias

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        graph_atom_features: torch.Tensor | None = None,
        graph_edge_index: torch.Tensor | None = None,
        graph_edge_features: torch.Tensor | None = None,
        graph_batch: torch.Tensor | None = None,
        motif_input_ids: torch.Tensor | None = None,
        motif_attention_mask: torch.Tensor | None = None,
        motif_position_ids: torch.Tensor | None = None,
        motif_membership: torch.Tensor | None = None,
        duplicate_key: torch.Tensor | None = None,
        motif_mask: torch.Tensor | None = None,
        word_mask: torch.Tensor | None = None,
        motif_importance: torch.Tensor | None = None,
        word_importance: torch.Tensor | None = None,
        mask_seed: int | None = None,
        text_encoder_states: torch.Tensor | None = None,
        return_loss: bool = True,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> FineMolTexForPreTrainingOutput | tuple:
        """See the class docstring. Shapes follow the batch contract; `duplicate_key` Long (B,).
        `output_hidden_states` (default `config.output_hidden_states`): return the fused pass's states of every
        position (otherwise its last step computes only the masked positions the heads read)."""
        config = self.config
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        model = self.finemoltex
        if input_ids is None or motif_input_ids is None:
            raise ValueError("FineMolTexForPreTraining needs both the text and the graph inputs.")
        batch = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            graph_atom_features=graph_atom_features,
            graph_edge_index=graph_edge_index,
            graph_edge_features=graph_edge_features,
            graph_batch=graph_batch,
            motif_input_ids=motif_input_ids,
            motif_attention_mask=motif_attention_mask,
            motif_position_ids=motif_position_ids,
            motif_membership=motif_membership,
            text_encoder_states=text_encoder_states,
        )
        check_batch(config, batch, values=config.check_inputs)
        num_molecules, num_slots = motif_input_ids.shape
        if config.masked_motif_weight == 0 and config.masked_lm_weight == 0:
            return self._contrastive_only(batch, token_type_ids, duplicate_key, return_loss, return_dict)
        generator = self._generator(mask_seed)
        # an objective with weight 0 is off (see the class docstring); a mask handed in switches it on for the call
        motifs_on = config.masked_motif_weight != 0 or motif_mask is not None
        words_on = config.masked_lm_weight != 0 or word_mask is not None

        # ---- coarse: clean graph view (GIN) and clean text through their streams WITHOUT co-attention -> InfoNCE;
        # the same pass scores each token's importance (similarity to its stream's [CLS]) for masking
        _, projected = model.encode_atoms_and_motifs(
            graph_atom_features, graph_edge_index, graph_edge_features, motif_membership, num_molecules, num_slots
        )
        motif_padding = motif_attention_mask.bool()
        clean_motifs = model.motif_embeddings(projected, motif_input_ids, motif_attention_mask, motif_position_ids)
        if text_encoder_states is not None:  # cached states of a locked encoder: no encoder run on the clean text
            encoder_states = text_encoder_states.to(model.text_input_projection_dtype)
            clean_text = model.text_input_projection(encoder_states)
        else:
            encoder_states = None
            _, clean_text = model.encode_text_tokens(input_ids, attention_mask, token_type_ids)
        text_padding = attention_mask.bool()
        score_motifs = (
            motifs_on and motif_mask is None and motif_importance is None and config.motif_masking_strategy == "importance"
        )
        score_words = words_on and word_mask is None and word_importance is None and config.word_masking_strategy == "importance"
        if score_motifs:
            graph_cls, motif_importance = model.fusion.encode_cls_and_importance("motif", clean_motifs, motif_padding)
        else:
            graph_cls = model.fusion.encode_motifs(clean_motifs, motif_padding, cls_only=True)
        if score_words:
            text_cls, word_importance = model.fusion.encode_cls_and_importance("text", clean_text, text_padding)
        else:
            text_cls = model.fusion.encode_text(clean_text, text_padding, cls_only=True)
        graph_embeds = model.graph_embeds_from_motif_states(graph_cls)
        text_embeds = model.text_embeds_from_text_states(text_cls)
        contrastive_loss, logits, accuracy = model.contrastive(graph_embeds, text_embeds, duplicate_key)

        # ---- masks (random per call unless given): exact count per row, uniform or by importance
        if not motifs_on:
            motif_mask = torch.zeros_like(motif_attention_mask, dtype=torch.bool)
        elif motif_mask is None:
            candidates = motif_candidates(motif_input_ids, motif_attention_mask, config.num_motif_targets)
            scores = motif_importance if config.motif_masking_strategy == "importance" else None
            motif_mask = sample_mask(candidates, config.motif_mask_rate, generator, scores, config.importance_temperature)
        motif_mask = motif_mask.bool()
        candidates = word_candidates(input_ids, attention_mask, config.text_special_token_ids)
        if not words_on:
            word_mask = torch.zeros_like(attention_mask, dtype=torch.bool)
        elif word_mask is None:
            scores = word_importance if config.word_masking_strategy == "importance" else None
            word_mask = sample_mask(candidates, config.word_mask_rate, generator, scores, config.importance_temperature)
        word_mask = word_mask.bool()
        masked_input_ids, word_labels = mask_words(
            input_ids,
            word_mask,
            config.text_mask_token_id,
            config.text_config.vocab_size,
            config.word_masking_scheme,
            config.text_special_token_ids,
            generator,
        )

        # ---- masked graph view: the masked motifs' atoms hidden from the GIN (a second pass), [MASK] at their slots
        if not motifs_on:
            masked_motifs = clean_motifs
        else:
            if config.hide_masked_motif_atoms:
                mask_values = atom_mask_values(config.atom_feature_sizes)
                mask_values = torch.tensor(mask_values, device=graph_atom_features.device)
                hidden_atoms = hide_masked_motif_atoms(graph_atom_features, motif_membership, motif_mask, mask_values)
                _, projected = model.encode_atoms_and_motifs(
                    hidden_atoms, graph_edge_index, graph_edge_features, motif_membership, num_molecules, num_slots,
                    update_statistics=False,  # the running statistics describe clean molecules (what inference sees)
                )
            masked_motifs = model.motif_embeddings(
                projected, motif_input_ids, motif_attention_mask, motif_position_ids, motif_mask
            )

        # ---- masked text: the masked ids through the encoder, or, with cached states of a locked encoder, the masked
        # words replaced at the stream input (no encoder pass at all)
        if not words_on:
            masked_text = clean_text
        elif encoder_states is not None and config.hide_masked_words:
            # the cached states were computed on the clean text, so every neighbour's state carries the masked word
            # (self-attention): run the locked encoder on the masked ids instead (no gradient: it is locked; no
            # dropout: the cache it stands beside was computed in eval mode)
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            was_training = model.text_model.training
            model.text_model.eval()
            try:
                with torch.no_grad():
                    masked_states = model.text_model(input_ids=masked_input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
            finally:
                model.text_model.train(was_training)
            masked_text = model.text_input_projection(masked_states.to(model.text_input_projection_dtype))
        elif encoder_states is not None:
            masked_states = mask_text_states(
                encoder_states, word_mask, self.text_state_mask_embedding, candidates, config.word_masking_scheme, generator
            )
            masked_text = model.text_input_projection(masked_states)
        else:
            _, masked_text = model.encode_text_tokens(masked_input_ids, attention_mask, token_type_ids)

        # ---- fine: fused pass on masked inputs, heads at masked positions only (and unless the fused states are
        # asked for, the pass's last step computes only those positions)
        if output_hidden_states:
            fused_motifs, fused_text = model.fusion.fuse(masked_motifs, motif_padding, masked_text, text_padding)
            masked_motif_states, masked_word_states = fused_motifs[motif_mask], fused_text[word_mask]
        else:
            fused_motifs = fused_text = None
            motif_positions, motif_valid = gather_positions(motif_mask)
            word_positions, word_valid = gather_positions(word_mask)
            motif_rows, word_rows = model.fusion.fuse(
                masked_motifs, motif_padding, masked_text, text_padding, motif_positions, word_positions
            )
            masked_motif_states, masked_word_states = motif_rows[motif_valid], word_rows[word_valid]
        motif_logits = self.motif_head(masked_motif_states)
        motif_labels = masked_motif_labels(motif_input_ids, motif_mask)[motif_mask]
        mlm_labels = word_labels[word_mask]
        # Training: the MLM loss is fused with its decoder (`linear_cross_entropy`), so the (words x vocabulary)
        # logits are never all kept for backward (most of a CPU step's peak memory otherwise); no logits returned.
        fuse_mlm = return_loss and self.training and torch.is_grad_enabled()
        mlm_hidden = self.mlm_head.transform(masked_word_states)
        decoder_weight, decoder_bias = self.mlm_decoder_parameters()
        mlm_logits = None if fuse_mlm else F.linear(mlm_hidden, decoder_weight.to(mlm_hidden.dtype), decoder_bias.to(mlm_hidden.dtype))

        loss = masked_motif_loss = masked_lm_loss = None
        if return_loss:
            loss = config.contrastive_weight * contrastive_loss
            if motifs_on:
                masked_motif_loss = masked_cross_entropy(motif_logits, motif_labels)
                loss = loss + config.masked_motif_weight * masked_motif_loss
            if words_on:
                masked_lm_loss = (
                    linear_cross_entropy(mlm_hidden, decoder_weight, decoder_bias, mlm_labels)
                    if fuse_mlm
                    else masked_cross_entropy(mlm_logits, mlm_labels)
                )
                loss = loss + config.masked_lm_weight * masked_lm_loss
            if text_encoder_states is None or config.hide_masked_words or not words_on:
                # the [MASK] state of cached text is unused: give it a zero gradient (DDP)
                loss = loss + 0.0 * self.text_state_mask_embedding.sum()
        output = FineMolTexForPreTrainingOutput(
            loss=loss,
            contrastive_loss=contrastive_loss if return_loss else None,
            masked_motif_loss=masked_motif_loss,
            masked_lm_loss=masked_lm_loss,
            contrastive_accuracy=accuracy,
            logits_per_graph=logits,
            logits_per_text=logits.t(),
            graph_embeds=graph_embeds,
            text_embeds=text_embeds,
            masked_motif_logits=motif_logits,
            masked_motif_labels=motif_labels,
            mlm_logits=mlm_logits,
            mlm_labels=mlm_labels,
            motif_mask=motif_mask,
            word_mask=word_mask,
            fused_motif_hidden_state=fused_motifs,
            fused_text_hidden_state=fused_text,
        )
        return output if (return_dict if return_dict is not None else config.return_dict) else output.to_tuple()

    def _contrastive_only(self, batch: dict, token_type_ids, duplicate_key, return_loss: bool, return_dict):
        """The coarse half of `forward` alone (both masked weights 0): towers without co-attention, InfoNCE."""
        model, config = self.finemoltex, self.config
        num_molecules, num_slots = batch["motif_input_ids"].shape
        _, projected = model.encode_atoms_and_motifs(
            batch["graph_atom_features"], batch["graph_edge_index"], batch["graph_edge_features"],
            batch["motif_membership"], num_molecules, num_slots,
        )
        motifs = model.motif_embeddings(
            projected, batch["motif_input_ids"], batch["motif_attention_mask"], batch["motif_position_ids"]
        )
        _, text = model.encode_text_tokens(
            batch["input_ids"], batch["attention_mask"], token_type_ids, batch.get("text_encoder_states")
        )
        graph_embeds = model.graph_embeds_from_motif_states(
            model.fusion.encode_motifs(motifs, batch["motif_attention_mask"].bool(), cls_only=True)
        )
        text_embeds = model.text_embeds_from_text_states(model.fusion.encode_text(text, batch["attention_mask"].bool(), cls_only=True))
        contrastive_loss, logits, accuracy = model.contrastive(graph_embeds, text_embeds, duplicate_key)
        output = FineMolTexForPreTrainingOutput(
            loss=config.contrastive_weight * contrastive_loss if return_loss else None,
            contrastive_loss=contrastive_loss if return_loss else None,
            contrastive_accuracy=accuracy,
            logits_per_graph=logits,
            logits_per_text=logits.t(),
            graph_embeds=graph_embeds,
            text_embeds=text_embeds,
        )
        return output if (return_dict if return_dict is not None else config.return_dict) else output.to_tuple()


# ================================================================================================ property prediction
@dataclass
class FineMolTexPropertyPredictionOutput(ModelOutput):
    """Output of [`FineMolTexForMoleculePropertyPrediction`].

    Args:
        loss: masked loss over the observed (non-NaN) labels (only with `labels`).
        logits: (B, num_labels) head outputs: per-task logits (classification) or standardised values (regression).
        predictions: (B, num_labels) per-task probabilities (sigmoid of the logits) or values in the original units
            (`logits * regression_std + regression_mean`).
        pooled_output: (B, D) the molecule representation fed to the head (only with `output_hidden_states=True`).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
    pooled_output: torch.FloatTensor | None = None


class FineMolTexMotifStream(nn.Module):
    """The motif stream alone: `FineMolTexFusionEncoder` without text layers or co-attention. Same parameter
    names (`motif_layers.*`), so a pre-training checkpoint's `fusion.motif_layers` load into it."""

    def __init__(self, config: FineMolTexConfig):
        super().__init__()
        self.motif_layers = nn.ModuleList(
            FineMolTexTransformerLayer(
                config.motif_stream_hidden_size, config.motif_stream_num_heads, config.motif_stream_intermediate_size, config
            )
            for _ in range(config.motif_stream_num_layers)
        )

    def encode_motifs(self, motif_states: torch.Tensor, motif_padding_mask: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """(B, M, Dm) -> (B, M, Dm), or (B, 1, Dm) with `cls_only` (see `FineMolTexFusionEncoder.encode_motifs`)."""
        cls = _cls_positions(motif_states) if cls_only else None
        return FineMolTexFusionEncoder._run(self.motif_layers, motif_states, motif_padding_mask, 0, len(self.motif_layers), cls)


class FineMolTexGraphModel(FineMolTexPreTrainedModel):
    """Graph tower only, for property prediction: the GIN and, with `property_pooling="graph_cls"`, the motif
    embeddings and the motif stream. Module names are those of [`FineMolTexModel`], so the graph weights of a
    `FineMolTexModel` or `FineMolTexForPreTraining` checkpoint load into it; the text tower, co-attention and
    contrastive projections are not built (their checkpoint weights are ignored on load).

    `forward` -> pooled molecule representation (B, D): the mean of the GIN atom states ("atom_mean", D = GIN
    output size) or the motif-stream [CLS] state without co-attention ("graph_cls", D = motif-stream width)."""

    _keys_to_ignore_on_load_unexpected = [
        r"text_model\.",
        r"text_input_projection\.",
        r"fusion\.(text_layers|coattention_layers)\.",
        r"(graph|text)_projection\.",
        r"logit_scale",
        r"(motif|mlm)_head\.",
        r"text_state_mask_embedding",
    ]

    def __init__(self, config: FineMolTexConfig):
        super().__init__(config)
        self.graph_encoder = FineMolTexGraphEncoder(config)
        self.pooling = config.property_pooling
        if self.pooling == "graph_cls":
            self.motif_embeddings = FineMolTexMotifEmbeddings(config, self.graph_encoder.output_size)
            self.fusion = FineMolTexMotifStream(config)
            self.output_size = config.motif_stream_hidden_size
        else:
            self.output_size = self.graph_encoder.output_size
            # the motif stream is not built: its checkpoint weights are expected leftovers
            self._keys_to_ignore_on_load_unexpected = [*self._keys_to_ignore_on_load_unexpected, r"motif_embeddings\.", r"fusion\."]
        self.post_init()

    def forward(
        self,
        graph_atom_features: torch.Tensor | None = None,
        graph_edge_index: torch.Tensor | None = None,
        graph_edge_features: torch.Tensor | None = None,
        graph_batch: torch.Tensor | None = None,
        motif_input_ids: torch.Tensor | None = None,
        motif_attention_mask: torch.Tensor | None = None,
        motif_position_ids: torch.Tensor | None = None,
        motif_membership: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Flat graph batch (see the batch contract) -> pooled representation (B, output_size). "atom_mean" needs
        only the `graph_*` tensors; "graph_cls" also the `motif_*` tensors."""
        if graph_atom_features is None or graph_edge_index is None or graph_edge_features is None or graph_batch is None:
            raise ValueError("FineMolTexGraphModel needs graph_atom_features, graph_edge_index, graph_edge_features and graph_batch.")
        if self.pooling == "graph_cls" and motif_input_ids is None:
            raise ValueError("property_pooling='graph_cls' needs the motif inputs (motif_input_ids, ...) from the processor.")
        batch = dict(
            graph_atom_features=graph_atom_features,
            graph_edge_index=graph_edge_index,
            graph_edge_features=graph_edge_features,
            graph_batch=graph_batch,
            motif_input_ids=motif_input_ids,
            motif_attention_mask=motif_attention_mask,
            motif_position_ids=motif_position_ids,
            motif_membership=motif_membership,
        )
        check_batch(self.config, batch, values=self.config.check_inputs)
        if self.pooling == "graph_cls":
            num_molecules, num_slots = motif_input_ids.shape
            atom_states = self.graph_encoder(graph_atom_features, graph_edge_index, graph_edge_features)
            pooled = pool_motifs(atom_states, motif_membership, num_molecules * num_slots).view(num_molecules, num_slots, -1)
            motif_inputs = self.motif_embeddings(
                self.motif_embeddings.project(pooled), motif_input_ids, motif_attention_mask, motif_position_ids
            )
            return self.fusion.encode_motifs(motif_inputs, motif_attention_mask.bool(), cls_only=True)[:, 0]
        num_molecules = motif_input_ids.size(0) if motif_input_ids is not None else int(graph_batch.max()) + 1
        atom_states = self.graph_encoder(graph_atom_features, graph_edge_index, graph_edge_features)
        sums = atom_states.new_zeros(num_molecules, atom_states.size(1)).index_add_(0, graph_batch, atom_states)
        counts = atom_states.new_zeros(num_molecules).index_add_(0, graph_batch, atom_states.new_ones(graph_batch.size(0)))
        return sums / counts.clamp(min=1).unsqueeze(1)


def property_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    problem_type: str,
    pos_weight: torch.Tensor | None = None,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss over the observed labels (NaN = missing, masked out): BCE with logits (optional per-task
    `pos_weight`) or MSE on standardised targets `(labels - mean) / std`. A batch without any observed label
    gives a zero loss that still backpropagates (DDP-safe)."""
    labels = labels.to(logits.dtype).view_as(logits)
    observed = ~torch.isnan(labels)
    targets = torch.where(observed, labels, torch.zeros_like(labels))
    if problem_type == "regression":
        if mean is not None:
            targets = targets - mean
        if std is not None:
            targets = targets / std
        per_entry = (logits - targets) ** 2
    else:
        per_entry = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    per_entry = torch.where(observed, per_entry, torch.zeros_like(per_entry))
    return per_entry.sum() / observed.sum().clamp(min=1)


class FineMolTexForMoleculePropertyPrediction(FineMolTexPreTrainedModel):
    """Molecular property prediction: graph tower ([`FineMolTexGraphModel`], at `.finemoltex` like the base model
    of [`FineMolTexForPreTraining`], so `from_pretrained(pretraining_checkpoint, num_labels=..., problem_type=...)`
    loads the pre-trained GIN/motif stream) -> dropout -> `classifier` Linear(D, num_labels).

    `problem_type`: "multi_label_classification" (default; independent binary tasks, BCE with logits,
    `property_pos_weight` per task) or "regression" (MSE on targets standardised with `regression_mean` /
    `regression_std`; `predictions` in the original units). Missing labels (NaN) are masked out of the loss.

    LoRA (peft): see `property_finemoltex.lora_config` for the documented `target_modules` (GIN MLP Linears
    `graph_encoder.layers.*.mlp.0|2`, motif-stream attention `fusion.motif_layers.*.attention.query|key|value|output`)
    and `modules_to_save` (the head and the GIN BatchNorms, whose running statistics change during fine-tuning).
    """

    accepts_loss_kwargs = False  # the loss is a masked mean: let Trainer scale it for gradient accumulation

    def __init__(self, config: FineMolTexConfig):
        super().__init__(config)
        if config.problem_type is None:
            config.problem_type = "multi_label_classification"
        if config.problem_type not in ("multi_label_classification", "regression"):
            raise ValueError(
                "FineMolTexForMoleculePropertyPrediction supports problem_type 'multi_label_classification' (binary "
                f"tasks, one output each) or 'regression', got {config.problem_type!r}."
            )
        config.validate_property_fields()
        self.num_labels = config.num_labels
        self.finemoltex = FineMolTexGraphModel(config)
        self.dropout = FineMolTexDropout(config.property_dropout)
        self.classifier = nn.Linear(self.finemoltex.output_size, config.num_labels)
        self.post_init()

    def _config_tensor(self, name: str, like: torch.Tensor) -> torch.Tensor | None:
        """A per-task config list (pos weight, regression mean/std) as a tensor; the config is the only copy."""
        values = getattr(self.config, name)
        return None if values is None else torch.tensor(values, dtype=like.dtype, device=like.device)

    def get_input_embeddings(self):  # no token embeddings: a graph model
        return None

    def forward(
        self,
        graph_atom_features: torch.Tensor | None = None,
        graph_edge_index: torch.Tensor | None = None,
        graph_edge_features: torch.Tensor | None = None,
        graph_batch: torch.Tensor | None = None,
        motif_input_ids: torch.Tensor | None = None,
        motif_attention_mask: torch.Tensor | None = None,
        motif_position_ids: torch.Tensor | None = None,
        motif_membership: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> FineMolTexPropertyPredictionOutput | tuple:
        """Graph batch (+ `labels` float (B, num_labels), NaN = missing) -> loss, logits, predictions. Text inputs
        and other extra keys are ignored."""
        pooled = self.finemoltex(
            graph_atom_features,
            graph_edge_index,
            graph_edge_features,
            graph_batch,
            motif_input_ids,
            motif_attention_mask,
            motif_position_ids,
            motif_membership,
        )
        logits = self.classifier(self.dropout(pooled))
        regression = self.config.problem_type == "regression"
        mean, std = self._config_tensor("regression_mean", logits), self._config_tensor("regression_std", logits)
        if regression:
            predictions = logits
            if mean is not None:
                predictions = logits * (std if std is not None else 1.0) + mean
            elif std is not None:
                predictions = logits * std
        else:
            predictions = torch.sigmoid(logits)
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            if labels.dim() == 1 and self.num_labels == 1:
                labels = labels.unsqueeze(1)
            if labels.shape != logits.shape:
                raise ValueError(f"`labels` must be (B, num_labels) = {tuple(logits.shape)}, got {tuple(labels.shape)}.")
            if not regression and self.config.check_inputs:
                observed = labels[~torch.isnan(labels)]
                if ((observed != 0) & (observed != 1)).any():
                    bad = observed[(observed != 0) & (observed != 1)][:5].tolist()
                    raise ValueError(f"Classification labels must be 0, 1 or NaN (missing), got {bad}.")
            logits32 = logits.float()
            loss = property_loss(
                logits32,
                labels.float(),
                self.config.problem_type,
                self._config_tensor("property_pos_weight", logits32),
                self._config_tensor("regression_mean", logits32),
                self._config_tensor("regression_std", logits32),
            )
        output = FineMolTexPropertyPredictionOutput(
            loss=loss,
            logits=logits,
            predictions=predictions,
            pooled_output=pooled if output_hidden_states else None,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


# ================================================================================================ registration
def register_auto_classes() -> None:
    """Register FineMolTex with AutoConfig / AutoModel / AutoModelForPreTraining / AutoModelForSequenceClassification
    (the property-prediction model; model_type "finemoltex")."""
    AutoConfig.register(FineMolTexConfig.model_type, FineMolTexConfig, exist_ok=True)
    AutoModel.register(FineMolTexConfig, FineMolTexModel, exist_ok=True)
    AutoModelForPreTraining.register(FineMolTexConfig, FineMolTexForPreTraining, exist_ok=True)
    # No molecule-property auto class exists; chemistry models on the Hub use the sequence-classification one.
    AutoModelForSequenceClassification.register(FineMolTexConfig, FineMolTexForMoleculePropertyPrediction, exist_ok=True)


# Remote code: `save_pretrained` copies this folder's .py files and writes `auto_map`.
FineMolTexModel.register_for_auto_class("AutoModel")
FineMolTexForPreTraining.register_for_auto_class("AutoModelForPreTraining")
FineMolTexForMoleculePropertyPrediction.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "FineMolTexCoAttentionLayer",
    "FineMolTexForMoleculePropertyPrediction",
    "FineMolTexForPreTraining",
    "FineMolTexForPreTrainingOutput",
    "FineMolTexGraphModel",
    "FineMolTexGraphEncoder",
    "FineMolTexModel",
    "FineMolTexModelOutput",
    "FineMolTexPreTrainedModel",
    "FineMolTexPropertyPredictionOutput",
    "check_batch",
    "pool_motifs",
    "property_loss",
    "register_auto_classes",
]
