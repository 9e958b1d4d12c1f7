"""Model tests on the "tiny" preset (CPU, a few seconds each)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from _model_fixtures import distinct_pairs_batch, make_molecule, collate_molecules, random_batch, random_text, select_molecules, tiny_config
from modeling_finemoltex import losses_finemoltex as losses
from modeling_finemoltex import modeling_finemoltex as modeling
from modeling_finemoltex.configuration_finemoltex import FineMolTexConfig
from modeling_finemoltex.modeling_finemoltex import (
    FineMolTexForPreTraining,
    FineMolTexModel,
    register_auto_classes,
)

REPO = Path(__file__).resolve().parents[1]
LOSS_NAMES = ("loss", "contrastive_loss", "masked_motif_loss", "masked_lm_loss")


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def batch(config):
    return random_batch(config, batch_size=6, seed=0)


def _model(cls, config, seed=0):
    torch.manual_seed(seed)
    return cls(config)


# ----------------------------------------------------------------------------------------- config
def test_presets_and_validation():
    paper = FineMolTexConfig.from_preset("paper")
    assert paper.text_config.vocab_size == 31090 and paper.text_mask_token_id == 104
    assert paper.coattention_motif_layers == [2, 3] and paper.coattention_text_layers == [10, 12]
    small = FineMolTexConfig.from_preset("small", gnn_num_layers=3)
    assert small.text_config.hidden_size == 384 and small.gnn_num_layers == 3
    with pytest.raises(ValueError, match="paper, small, tiny"):
        FineMolTexConfig.from_preset("huge")
    with pytest.raises(ValueError, match="same length"):
        FineMolTexConfig(coattention_motif_layers=[2, 3], coattention_text_layers=[12])
    with pytest.raises(ValueError, match="1-based"):
        FineMolTexConfig(coattention_motif_layers=[2, 4])
    with pytest.raises(ValueError, match="divisible"):
        FineMolTexConfig(motif_stream_num_heads=7)
    with pytest.raises(ValueError, match="motif_vocab_size"):
        FineMolTexConfig(motif_vocab_size=100)
    with pytest.raises(ValueError, match="vocabulary"):
        FineMolTexConfig.from_preset("tiny", text_mask_token_id=9999)


def test_config_json_round_trip_and_unknown_keys(tmp_path):
    config = FineMolTexConfig.from_preset("tiny", text_config={"num_hidden_layers": 3})
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "finemoltex" and data["text_config"]["num_hidden_layers"] == 3
    loaded = FineMolTexConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert FineMolTexConfig.find_unknown_keys(loaded) == []
    assert FineMolTexConfig.find_unknown_keys({**data, "gnn_num_layer": 3}) == ["gnn_num_layer"]
    assert FineMolTexConfig.find_unknown_keys(FineMolTexConfig(motif_mask_ratio=0.3)) == ["motif_mask_ratio"]


# ----------------------------------------------------------------------------------------- shapes / losses
def test_output_shapes(config, batch):
    model = _model(FineMolTexModel, config).eval()
    b, m = batch["motif_input_ids"].shape
    length = batch["input_ids"].size(1)
    out = model(**batch, return_loss=True)
    assert out.graph_embeds.shape == out.text_embeds.shape == (b, config.projection_dim)
    assert torch.allclose(out.graph_embeds.norm(dim=-1), torch.ones(b), atol=1e-5)
    assert out.logits_per_graph.shape == (b, b) and torch.equal(out.logits_per_text, out.logits_per_graph.t())
    assert out.atom_hidden_states.shape == (batch["graph_atom_features"].size(0), config.gnn_hidden_size)
    assert out.motif_last_hidden_state.shape == (b, m, config.motif_stream_hidden_size)
    assert out.text_last_hidden_state.shape == (b, length, config.text_stream_hidden_size)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    graph_only = model.get_graph_features(**{k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")})
    text_only = model.get_text_features(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(graph_only, out.graph_embeds, atol=1e-6) and torch.allclose(text_only, out.text_embeds, atol=1e-6)

    pre = _model(FineMolTexForPreTraining, config)
    out = pre(**batch, mask_seed=0)
    for name in LOSS_NAMES:
        value = getattr(out, name)
        assert value.ndim == 0 and torch.isfinite(value) and value > 0, name
    n_motifs, n_words = int(out.motif_mask.sum()), int(out.word_mask.sum())
    assert n_motifs > 0 and n_words > 0
    assert out.masked_motif_logits.shape == (n_motifs, config.num_motif_targets)
    assert out.mlm_logits is None  # training with a loss: the MLM loss is fused with its decoder
    with torch.no_grad():  # no gradient: plain logits, and the same loss
        plain = pre(**batch, mask_seed=0)
    assert plain.mlm_logits.shape == (n_words, config.text_config.vocab_size)
    torch.testing.assert_close(plain.masked_lm_loss, out.masked_lm_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(plain.masked_lm_loss, losses.masked_cross_entropy(plain.mlm_logits, plain.mlm_labels))
    assert out.fused_motif_hidden_state is None  # unless asked for (see the test below)
    assert 0.0 <= out.contrastive_accuracy <= 1.0
    # masks only touch maskable positions: target motifs, non-special real words
    assert (batch["motif_input_ids"][out.motif_mask] >= 4).all()
    assert (batch["motif_input_ids"][out.motif_mask] < 4 + config.num_motif_targets).all()
    assert not out.motif_mask[:, 0].any()
    assert batch["attention_mask"].bool()[out.word_mask].all()
    assert not torch.isin(batch["input_ids"][out.word_mask], torch.tensor(config.text_special_token_ids)).any()
    expected = out.contrastive_loss + 1.0 * out.masked_motif_loss + 0.5 * out.masked_lm_loss
    assert torch.allclose(out.loss, expected)


def test_gather_positions_orders_rows_as_boolean_indexing():
    mask = torch.tensor([[False, True, False, True], [False, False, False, False], [True, True, True, False]])
    positions, valid = modeling.gather_positions(mask)
    assert positions.shape == valid.shape == (3, 3)
    assert valid.sum(1).tolist() == [2, 0, 3]
    states = torch.randn(3, 4, 5)
    assert torch.equal(modeling.take_positions(states, positions)[valid], states[mask])
    empty_positions, empty_valid = modeling.gather_positions(torch.zeros(2, 4, dtype=torch.bool))
    assert empty_positions.shape == empty_valid.shape == (2, 0)


@pytest.mark.parametrize("overrides", [{}, {"coattention_motif_layers": [1], "coattention_text_layers": [1]}])
def test_fused_pass_on_masked_positions_only_equals_the_full_pass(batch, overrides):
    """Computing the fused pass's last step only at the masked positions (the default) gives the full pass's
    logits, losses and gradients; with the co-attention before the last layers too (stream layers end the pass)."""
    config = tiny_config(hidden_dropout_prob=0.0, **overrides)
    model = _model(FineMolTexForPreTraining, config)
    full = model(**batch, mask_seed=3, output_hidden_states=True)
    full.loss.backward()
    full_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    subset = model(**batch, mask_seed=3)
    subset.loss.backward()
    assert subset.fused_text_hidden_state is None and full.fused_text_hidden_state.shape[:2] == batch["input_ids"].shape
    torch.testing.assert_close(subset.masked_motif_logits, full.masked_motif_logits, rtol=1e-5, atol=1e-5)
    for name in LOSS_NAMES:
        torch.testing.assert_close(getattr(subset, name), getattr(full, name), rtol=1e-5, atol=1e-6)
    for name, param in model.named_parameters():
        if name in full_grads:
            torch.testing.assert_close(param.grad, full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_cls_only_streams_equal_the_full_streams(config, batch):
    model = _model(FineMolTexModel, config).eval()
    states = torch.randn(3, 7, config.text_stream_hidden_size)
    padding = torch.ones(3, 7, dtype=torch.bool)
    padding[1, 4:] = False
    with torch.no_grad():
        full = model.fusion.encode_text(states, padding)
        cls = model.fusion.encode_text(states, padding, cls_only=True)
        motifs = torch.randn(3, 5, config.motif_stream_hidden_size)
        full_motifs = model.fusion.encode_motifs(motifs, padding[:, :5])
        cls_motifs = model.fusion.encode_motifs(motifs, padding[:, :5], cls_only=True)
    assert cls.shape == (3, 1, config.text_stream_hidden_size)
    torch.testing.assert_close(cls[:, 0], full[:, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cls_motifs[:, 0], full_motifs[:, 0], rtol=1e-5, atol=1e-6)


def test_contrastive_only_skips_the_fine_branch_with_the_same_coarse_loss(config, batch):
    full = _model(FineMolTexForPreTraining, config).eval()
    coarse = FineMolTexForPreTraining(tiny_config(masked_motif_weight=0.0, masked_lm_weight=0.0)).eval()
    coarse.load_state_dict(full.state_dict())
    with torch.no_grad():
        a, b = full(**batch, mask_seed=0), coarse(**batch, mask_seed=0)
    assert torch.allclose(a.contrastive_loss, b.contrastive_loss) and torch.allclose(b.loss, b.contrastive_loss)
    assert torch.allclose(a.graph_embeds, b.graph_embeds) and torch.allclose(a.logits_per_graph, b.logits_per_graph)
    assert b.masked_motif_loss is None and b.mlm_logits is None and b.fused_text_hidden_state is None
    calls, text_rows = [], []
    for name, module in (("coattention", coarse.finemoltex.fusion.coattention_layers[0]), ("mlm", coarse.mlm_head),
                         ("motif", coarse.motif_head)):
        module.register_forward_hook(lambda *args, name=name: calls.append(name))
    coarse.finemoltex.text_model.register_forward_hook(lambda module, args, kwargs, out: text_rows.append(
        (args[0] if args else kwargs["input_ids"]).shape[0]), with_kwargs=True)
    coarse.train()
    out = coarse(**batch)
    out.loss.backward()
    assert not calls and text_rows == [batch["input_ids"].shape[0]]  # no fused pass, no masked-text pass
    assert torch.isfinite(out.loss)
    assert coarse.mlm_head.dense.weight.grad is None and coarse.finemoltex.graph_encoder.layers[0].mlp[0].weight.grad is not None


@pytest.mark.parametrize("off", ["motif", "word"])
def test_a_zero_weight_switches_its_objective_off(config, batch, off):
    # row (b)/(c) of the ablation: the idle stream is neither masked nor run twice, and has no loss; what the other
    # head predicts is what the full model predicts when handed that stream unmasked ("mask": masked ids that do not
    # depend on the generator's state)
    full = _model(FineMolTexForPreTraining, tiny_config(word_masking_scheme="mask")).eval()
    weights = {"motif": "masked_motif_weight", "word": "masked_lm_weight"}
    ablated = FineMolTexForPreTraining(tiny_config(word_masking_scheme="mask", **{weights[off]: 0.0})).eval()
    ablated.load_state_dict(full.state_dict())
    gin_calls, text_rows = [], []
    ablated.finemoltex.graph_encoder.register_forward_hook(lambda *args: gin_calls.append(1))
    ablated.finemoltex.text_model.register_forward_hook(lambda module, args, kwargs, out: text_rows.append(
        (args[0] if args else kwargs["input_ids"]).shape[0]), with_kwargs=True)
    with torch.no_grad():
        out = ablated(**batch, mask_seed=0)
        reference = full(**batch, motif_mask=out.motif_mask, word_mask=out.word_mask, mask_seed=0)
    assert len(gin_calls) == (1 if off == "motif" else 2) and len(text_rows) == (1 if off == "word" else 2)
    idle_mask = out.motif_mask if off == "motif" else out.word_mask
    busy_mask = out.word_mask if off == "motif" else out.motif_mask
    assert not idle_mask.any() and busy_mask.any()
    if off == "motif":
        assert out.masked_motif_loss is None and out.masked_motif_logits.shape[0] == 0
        torch.testing.assert_close(out.mlm_logits, reference.mlm_logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.loss, out.contrastive_loss + config.masked_lm_weight * out.masked_lm_loss)
    else:
        assert out.masked_lm_loss is None and out.mlm_logits.shape[0] == 0
        torch.testing.assert_close(out.masked_motif_logits, reference.masked_motif_logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.loss, out.contrastive_loss + config.masked_motif_weight * out.masked_motif_loss)
    ablated.train()
    ablated(**batch).loss.backward()
    idle_head, busy_head = (ablated.motif_head, ablated.mlm_head) if off == "motif" else (ablated.mlm_head, ablated.motif_head)
    assert idle_head.dense.weight.grad is None and busy_head.dense.weight.grad.abs().sum() > 0


def test_masks_random_per_call_and_reproducible(config, batch):
    model = _model(FineMolTexForPreTraining, tiny_config(mask_seed=5))
    first, second = model(**batch), model(**batch)
    assert not torch.equal(first.word_mask, second.word_mask)
    again = _model(FineMolTexForPreTraining, tiny_config(mask_seed=5))(**batch)
    assert torch.equal(first.word_mask, again.word_mask) and torch.equal(first.motif_mask, again.motif_mask)
    a, b = model(**batch, mask_seed=1), model(**batch, mask_seed=1)
    assert torch.equal(a.word_mask, b.word_mask) and torch.equal(a.motif_mask, b.motif_mask)


def test_every_parameter_gets_a_gradient(batch):
    # hide_masked_words=False: the cached-state path below then uses the [MASK] state (the default runs the encoder)
    config = tiny_config(learnable_temperature=True, use_motif_id_embeddings=True, gnn_jk="concat", hide_masked_words=False)
    model = _model(FineMolTexForPreTraining, config)
    model(**batch, mask_seed=0).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []  # every parameter is in the graph (DDP without find_unused_parameters needs that)
    zero = [name for name, p in model.named_parameters() if p.grad.abs().sum() == 0]
    # the only legitimately zero gradient: the [MASK] state of cached text, unused when the encoder runs ...
    assert zero == ["text_state_mask_embedding"], zero
    model.zero_grad()
    states = model.finemoltex.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    model(**batch, mask_seed=0, text_encoder_states=states.detach()).loss.backward()
    assert model.text_state_mask_embedding.grad.abs().sum() > 0  # ... and trained when the states are cached


def test_overfits_sixteen_pairs():
    """A tiny model aligns 16 distinct molecule-text pairs (contrastive accuracy 1.0) within a bounded number
    of CPU steps."""
    config = tiny_config()
    batch = distinct_pairs_batch(config, 16)
    model = _model(FineMolTexForPreTraining, config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    accuracy, reached = 0.0, None
    for step in range(200):
        out = model(**batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        accuracy = out.contrastive_accuracy.item()
        if accuracy == 1.0 and reached is None:
            reached = step
        if reached is not None and step >= reached + 10:  # a few more steps to settle BatchNorm running stats
            break
    assert reached is not None, f"accuracy {accuracy} after {step + 1} steps"
    model.eval()
    with torch.no_grad():
        logits = model.finemoltex(**batch).logits_per_graph
    # eval mode uses BatchNorm running statistics, which lag the training batch statistics
    assert (logits.argmax(1) == torch.arange(16)).float().mean() >= 0.75


def test_permuting_molecules_permutes_outputs(config, batch):
    model = _model(FineMolTexModel, config).eval()
    order = [3, 0, 5, 1, 4, 2]
    permuted = select_molecules(batch, order)
    with torch.no_grad():
        out, out_p = model(**batch), model(**permuted)
    assert torch.allclose(out_p.graph_embeds, out.graph_embeds[order], atol=1e-5)
    assert torch.allclose(out_p.text_embeds, out.text_embeds[order], atol=1e-5)
    assert torch.allclose(out_p.logits_per_graph, out.logits_per_graph[order][:, order], atol=1e-4)
    # each molecule's embedding does not depend on the rest of the batch (eval-mode BatchNorm)
    alone = model.get_graph_features(**{k: v for k, v in select_molecules(batch, [2]).items() if not k.endswith(("input_ids", "attention_mask")) or k.startswith("motif")})
    assert torch.allclose(alone[0], out.graph_embeds[2], atol=1e-5)


def test_coattention_only_in_fused_pass(config, batch):
    """Contrastive embeddings come from the towers alone; the fused motif states depend on the text."""
    model = _model(FineMolTexForPreTraining, config).eval()
    motif_mask = torch.zeros_like(batch["motif_input_ids"], dtype=torch.bool)
    motif_mask[:, 1] = True
    word_mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    word_mask[:, 1] = True
    other_text = dict(batch, input_ids=torch.where(batch["attention_mask"].bool() & (batch["input_ids"] > 103), batch["input_ids"].flip(0).clamp(min=104), batch["input_ids"]))
    with torch.no_grad():
        a = model(**batch, motif_mask=motif_mask, word_mask=word_mask, output_hidden_states=True)
        b = model(**other_text, motif_mask=motif_mask, word_mask=word_mask, output_hidden_states=True)
    assert torch.equal(a.graph_embeds, b.graph_embeds)
    assert not torch.allclose(a.fused_motif_hidden_state, b.fused_motif_hidden_state)
    assert not torch.allclose(a.masked_motif_logits, b.masked_motif_logits)


# ----------------------------------------------------------------------------------------- label leak
@pytest.mark.parametrize("hide", [True, False])
def test_masked_motif_prediction_does_not_see_the_masked_motif(batch, hide):
    """The reference feeds unmasked motifs to the masked-motif head. Here a masked slot carries only [MASK] +
    position, and the fused pass reads a graph view in which the masked motif's atoms are hidden: changing the
    masked motif's id and its atoms' attributes (every atom-feature column) leaves its logits exactly unchanged,
    while changing another motif's atoms does change them. With `hide_masked_motif_atoms=False` (one GIN pass for
    both views, the old behaviour) the same perturbation changes the logits: the test can fail."""
    config = tiny_config(use_motif_id_embeddings=True, hide_masked_motif_atoms=hide)
    model = _model(FineMolTexForPreTraining, config).eval()
    candidates = losses.motif_candidates(batch["motif_input_ids"], batch["motif_attention_mask"], config.num_motif_targets)
    real = batch["motif_attention_mask"].bool().clone()
    real[:, 0] = False
    row = int((candidates.any(1) & (real.sum(1) >= 2)).nonzero()[0])  # a molecule with a target and another motif
    slot = int(candidates[row].nonzero()[0])
    other = int((real[row] & (torch.arange(real.size(1)) != slot)).nonzero()[0])
    motif_mask = torch.zeros_like(candidates)
    motif_mask[row, slot] = True
    word_mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    word_mask[:, 1] = True
    num_slots = candidates.size(1)
    atoms, slots = batch["motif_membership"]

    def perturbed(target_slot):
        features = batch["graph_atom_features"].clone()
        owned = atoms[slots == row * num_slots + target_slot]
        sizes = torch.tensor(config.atom_feature_sizes)
        features[owned] = (features[owned] + 1 + torch.arange(features.size(1))) % sizes  # every column changes
        return features

    changed_ids = batch["motif_input_ids"].clone()
    changed_ids[row, slot] = 4 + (int(changed_ids[row, slot]) - 4 + 5) % config.num_motif_targets
    with torch.no_grad():
        a = model(**batch, motif_mask=motif_mask, word_mask=word_mask, mask_seed=0)
        b = model(**dict(batch, motif_input_ids=changed_ids, graph_atom_features=perturbed(slot)),
                  motif_mask=motif_mask, word_mask=word_mask, mask_seed=0)
        c = model(**dict(batch, graph_atom_features=perturbed(other)), motif_mask=motif_mask, word_mask=word_mask, mask_seed=0)
    assert a.masked_motif_labels.item() != b.masked_motif_labels.item()
    assert not torch.equal(a.graph_embeds, b.graph_embeds)  # the coarse pass keeps the clean view
    assert not torch.allclose(a.masked_motif_logits, c.masked_motif_logits, atol=1e-5)  # other motifs' atoms are seen
    if hide:
        assert torch.equal(a.masked_motif_logits, b.masked_motif_logits) and torch.equal(a.mlm_logits, b.mlm_logits)
    else:
        assert not torch.allclose(a.masked_motif_logits, b.masked_motif_logits, atol=1e-5)


@pytest.mark.parametrize("hide", [True, False])
def test_masked_word_prediction_from_cached_states_does_not_see_the_masked_word(batch, hide):
    """With cached states of a locked encoder, replacing a masked word's state at the stream input is not enough: the
    encoder computed its neighbours' states with the word in view. `hide_masked_words=True` runs the locked encoder
    on the masked ids for the fused pass, so changing the masked word (and the cache with it) leaves the MLM logits
    exactly unchanged; with False the same change moves them (the leak, so the test can fail)."""
    config = tiny_config(hide_masked_words=hide, word_masking_scheme="mask")
    model = _model(FineMolTexForPreTraining, config).eval()
    for parameter in model.finemoltex.text_model.parameters():
        parameter.requires_grad_(False)  # locked, as with cached states
    word_mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    word_mask[:, 1] = True
    motif_mask = losses.motif_candidates(batch["motif_input_ids"], batch["motif_attention_mask"], config.num_motif_targets)
    changed_ids = batch["input_ids"].clone()
    changed_ids[:, 1] = 104 + (changed_ids[:, 1] - 104 + 7) % (config.text_config.vocab_size - 104)

    def run(input_ids):
        with torch.no_grad():
            states = model.finemoltex.text_model(input_ids=input_ids, attention_mask=batch["attention_mask"]).last_hidden_state
            return model(**dict(batch, input_ids=input_ids), text_encoder_states=states, motif_mask=motif_mask,
                         word_mask=word_mask, mask_seed=0)

    a, b = run(batch["input_ids"]), run(changed_ids)
    if hide:  # the encoder pass (run in eval mode, like the cache) leaves the model's training mode as it was
        model.train()
        torch.manual_seed(0)
        with torch.no_grad():
            states = model.finemoltex.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        model(**batch, text_encoder_states=states, word_mask=word_mask, motif_mask=motif_mask, mask_seed=0)
        assert model.finemoltex.text_model.training
        model.eval()
    assert not torch.equal(a.mlm_labels, b.mlm_labels)
    assert not torch.equal(a.text_embeds, b.text_embeds)  # the coarse pass reads the clean (changed) text
    if hide:
        assert torch.equal(a.mlm_logits, b.mlm_logits) and torch.equal(a.masked_motif_logits, b.masked_motif_logits)
    else:
        assert not torch.allclose(a.mlm_logits, b.mlm_logits, atol=1e-5)


def test_mlm_decoder_from_the_text_encoders_word_embeddings(batch, tmp_path):
    """`mlm_decoder="text_embeddings"`: the MLM logits are the head's transform (stream width 48 -> encoder width 32)
    times the encoder's word embeddings plus the head's bias; with a locked encoder a training step leaves the
    embeddings untouched and trains the head; the training (fused) loss equals the plain one; save/load keeps it."""
    config = tiny_config(mlm_decoder="text_embeddings", text_stream_hidden_size=48)
    model = _model(FineMolTexForPreTraining, config).eval()
    assert not hasattr(model.mlm_head, "decoder") and model.mlm_head.dense.out_features == config.text_config.hidden_size
    embeddings = model.finemoltex.text_model.get_input_embeddings().weight
    masks = dict(word_mask=torch.zeros_like(batch["input_ids"], dtype=torch.bool), mask_seed=0)
    masks["word_mask"][:, 1:3] = True
    with torch.no_grad():
        out = model(**batch, **masks, output_hidden_states=True)
        expected = model.mlm_head.transform(out.fused_text_hidden_state[masks["word_mask"]]) @ embeddings.t()
        torch.testing.assert_close(out.mlm_logits, expected + model.mlm_head.bias)
        # the head reads the encoder's matrix itself, not a copy: move the row of a word absent from the batch (so the
        # encoder's input is unchanged) and only that word's logits move
        word = next(i for i in range(config.text_config.vocab_size - 1, 0, -1) if not (batch["input_ids"] == i).any())
        embeddings[word] += torch.linspace(-1.0, 1.0, embeddings.size(1))  # not constant: LayerNorm output sums to 0
        moved = model(**batch, **masks).mlm_logits
    others = torch.arange(config.text_config.vocab_size) != word
    assert not torch.allclose(moved[:, word], out.mlm_logits[:, word], atol=1e-3)
    torch.testing.assert_close(moved[:, others], out.mlm_logits[:, others], atol=1e-6, rtol=0)  # GEMM blocking may round

    for parameter in model.finemoltex.text_model.parameters():
        parameter.requires_grad_(False)  # locked
    before = embeddings.detach().clone()
    model.train()
    for module in model.modules():  # no dropout: the fused and plain losses must see the same network
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    loss = model(**batch, **masks).masked_lm_loss
    loss.backward()
    assert torch.equal(embeddings, before) and embeddings.grad is None
    assert model.mlm_head.bias.grad.abs().sum() > 0 and model.mlm_head.dense.weight.grad.abs().sum() > 0
    with torch.no_grad():  # still training mode (batch-norm statistics as above); no gradient -> plain logits
        plain = model(**batch, **masks)
    assert plain.mlm_logits is not None
    torch.testing.assert_close(loss.detach(), plain.masked_lm_loss, rtol=1e-5, atol=1e-6)

    model.eval().save_pretrained(tmp_path)
    loaded = FineMolTexForPreTraining.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch, **masks).mlm_logits, model(**batch, **masks).mlm_logits)
    with pytest.raises(ValueError, match="mlm_decoder"):
        tiny_config(mlm_decoder="tied")


def test_hidden_view_leaves_batchnorm_running_statistics_to_the_clean_view(batch):
    """The second GIN pass (masked motifs' atoms hidden) normalises with its own batch statistics but does not update
    the running ones: after a training step they are those of the clean molecules alone, which inference sees."""
    hide, one_pass = (_model(FineMolTexForPreTraining, tiny_config(hide_masked_motif_atoms=flag)) for flag in (True, False))
    one_pass.load_state_dict(hide.state_dict())
    for model in (hide, one_pass):
        model(**batch, mask_seed=0)
    for name, buffer in hide.named_buffers():
        if "running" in name:
            assert torch.equal(buffer, dict(one_pass.named_buffers())[name]), name


# ----------------------------------------------------------------------------------------- scale
def test_faked_gather_equals_concatenated_batch_and_keeps_gradients(config, monkeypatch):
    """With negatives gathered from a (faked) second process, the loss equals the single-process loss on the
    concatenated batch, and gradients reach the local embeddings."""
    model = _model(FineMolTexModel, config).eval()
    local = random_batch(config, batch_size=3, seed=1)
    remote = random_batch(config, batch_size=3, seed=2)
    with torch.no_grad():
        remote_out = model(**remote)
    remote_tensors = [remote_out.graph_embeds, remote_out.text_embeds]

    def fake_gather(*tensors):
        return tuple(torch.cat([t, r]) for t, r in zip(tensors, remote_tensors))

    monkeypatch.setattr(modeling, "gather_features", fake_gather)
    out = model(**local, return_loss=True)
    out.loss.backward()
    assert out.logits_per_graph.shape == (6, 6)
    joint = losses.contrastive_loss(
        torch.cat([out.graph_embeds.detach(), remote_tensors[0]]), torch.cat([out.text_embeds.detach(), remote_tensors[1]]), 0.1
    )
    assert torch.allclose(out.loss, joint, atol=1e-6)
    assert model.graph_projection.weight.grad.abs().sum() > 0 and model.text_projection.weight.grad.abs().sum() > 0
    # and with gathering switched off the fake is not used
    model_off = _model(FineMolTexModel, tiny_config(gather_negatives=False)).eval()
    assert model_off(**local, return_loss=True).logits_per_graph.shape == (3, 3)


def test_duplicate_molecules_are_not_negatives(config):
    model = _model(FineMolTexModel, config).eval()
    batch = random_batch(config, batch_size=4, seed=3)
    batch = select_molecules(batch, [0, 1, 2, 0])  # molecule 0 twice
    key = torch.tensor([11, 12, 13, 11])
    with torch.no_grad():
        out = model(**batch, duplicate_key=key, return_loss=True)
        plain = model(**batch, return_loss=True)
    assert torch.isinf(out.logits_per_graph[0, 3]) and torch.isinf(out.logits_per_graph[3, 0])
    assert torch.isfinite(out.logits_per_graph.diagonal()).all()
    expected = losses.contrastive_loss(out.graph_embeds, out.text_embeds, 0.1, losses.duplicate_negative_mask(key))
    assert torch.allclose(out.loss, expected) and out.loss < plain.loss


def _coarse_importance(model, batch):
    """The importance rule, computed apart from the pre-training forward: cosine similarity of each token's state to
    its stream's [CLS] state in the pass without co-attention (`FineMolTexModel.forward`'s full stream states)."""
    with torch.no_grad():
        out = model.finemoltex(**batch)
    def cosine(states):
        return torch.nn.functional.cosine_similarity(states, states[:, :1], dim=-1)
    return cosine(out.motif_last_hidden_state), cosine(out.text_last_hidden_state)


def _top_k(candidates, scores, rate):
    n = candidates.sum(1)
    k = torch.where(n > 0, torch.clamp(torch.floor(n * rate + 0.5).long(), min=1), 0)
    rank = scores.masked_fill(~candidates, float("-inf")).argsort(1, descending=True).argsort(1)
    return (rank < k[:, None]) & candidates


def test_importance_masking_is_the_cls_similarity_of_the_coarse_pass(config, batch):
    """The default masking is by importance (the paper's): at a near-zero temperature the masks are exactly the
    top-k motifs and words by cosine similarity to their stream's [CLS] state in the coarse pass."""
    assert config.motif_masking_strategy == config.word_masking_strategy == "importance"
    model = _model(FineMolTexForPreTraining, tiny_config(importance_temperature=1e-4, motif_mask_rate=0.4)).eval()
    motif_scores, word_scores = _coarse_importance(model, batch)
    motif_candidates = losses.motif_candidates(batch["motif_input_ids"], batch["motif_attention_mask"], config.num_motif_targets)
    word_candidates = losses.word_candidates(batch["input_ids"], batch["attention_mask"], config.text_special_token_ids)
    with torch.no_grad():
        out = model(**batch, mask_seed=0)
    assert torch.equal(out.motif_mask, _top_k(motif_candidates, motif_scores, 0.4))
    assert torch.equal(out.word_mask, _top_k(word_candidates, word_scores, config.word_mask_rate))


def test_importance_masking_prefers_cls_like_tokens_and_uniform_does_not(config):
    """Over many fixed-seed draws (default temperature), the masked words and motifs are more CLS-like than the
    maskable ones on average; uniform masking shows no preference. Counts are exact and specials never masked."""
    g = torch.Generator().manual_seed(0)
    molecules = [make_molecule(g, config, 8, 4, motif_ids=[4, 5, 6, 7]) for _ in range(32)]
    batch = collate_molecules(molecules, [random_text(g, 512, 12) for _ in range(32)])
    motif_candidates = losses.motif_candidates(batch["motif_input_ids"], batch["motif_attention_mask"], config.num_motif_targets)
    word_candidates = losses.word_candidates(batch["input_ids"], batch["attention_mask"], config.text_special_token_ids)
    gaps = {}
    for strategy in ("importance", "uniform"):
        model = _model(FineMolTexForPreTraining, tiny_config(motif_masking_strategy=strategy, word_masking_strategy=strategy,
                                                             importance_temperature=0.05)).eval()
        motif_scores, word_scores = _coarse_importance(model, batch)
        with torch.no_grad():
            outs = [model(**batch, mask_seed=s) for s in range(10)]
        motif_masks = torch.stack([o.motif_mask for o in outs])
        word_masks = torch.stack([o.word_mask for o in outs])
        assert (motif_masks.sum(2) == 1).all() and (word_masks.sum(2) == 2).all()  # round(0.2 * 4), round(0.2 * 12)
        assert not (motif_masks & ~motif_candidates).any() and not (word_masks & ~word_candidates).any()
        gaps[strategy] = [
            (scores.expand_as(masks)[masks].mean() - scores[candidates].mean()).item()
            for masks, scores, candidates in ((motif_masks, motif_scores, motif_candidates), (word_masks, word_scores, word_candidates))
        ]
    spread = [motif_scores[motif_candidates].std().item(), word_scores[word_candidates].std().item()]
    for gap, uniform_gap, std in zip(gaps["importance"], gaps["uniform"], spread):
        assert gap > 0.5 * std and abs(uniform_gap) < 0.25 * std, (gaps, spread)


def test_gradient_checkpointing_matches(config, batch):
    model = _model(FineMolTexForPreTraining, config)
    reference = model(**batch, mask_seed=0).loss
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()
    flagged = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False)]
    assert any(isinstance(m, modeling.FineMolTexTransformerLayer) for m in flagged)
    assert any(m.__class__.__name__ == "BertLayer" for m in flagged)
    loss = model(**batch, mask_seed=0).loss
    assert torch.allclose(loss, reference, atol=1e-5)
    loss.backward()
    assert model.finemoltex.fusion.motif_layers[0].attention.query.weight.grad is not None
    assert model.finemoltex.text_model.get_input_embeddings().weight.grad is not None


def test_bf16_autocast(config, batch):
    model = _model(FineMolTexForPreTraining, config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch, mask_seed=0)
    assert out.logits_per_graph.dtype == torch.float32
    for name in LOSS_NAMES:
        assert torch.isfinite(getattr(out, name)), name
    out.loss.backward()
    # without dropout, bf16 products (attention itself stays fp32 on the CPU) give the fp32 losses to ~1%
    model.eval()
    with torch.no_grad():
        exact = model(**batch, mask_seed=0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(**batch, mask_seed=0)
    for name in LOSS_NAMES:
        torch.testing.assert_close(getattr(half, name), getattr(exact, name), rtol=0.03, atol=0.03)


def test_cpu_dropout_mask_rate_scale_and_gradient():
    dropout = modeling.FineMolTexDropout(0.1)
    x = torch.full((1000, 1000), 2.0, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 0.002
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 / 0.9))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.9)
    torch.manual_seed(0)
    assert torch.equal(dropout(x), y)  # the default generator: seeded runs repeat
    assert not torch.equal(dropout(x), y)  # and a new mask per call
    # rows and columns are not correlated (four masks per 64-bit draw: neighbours come from one draw)
    assert abs(kept[:, 0::4].float().mean() - kept[:, 3::4].float().mean()) < 0.01
    dropout.eval()
    assert torch.equal(dropout(x), x)
    assert torch.equal(modeling.FineMolTexDropout(0.0)(x), x)
    assert not modeling.FineMolTexDropout(1.0)(x).any()


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("autocast", [False, True])
def test_edge_case_batches_give_finite_losses(config, autocast):
    g = torch.Generator().manual_seed(4)
    single_atom = make_molecule(g, config, 1, 1)
    single_motif = make_molecule(g, config, 5, 1)
    unk_only = make_molecule(g, config, 3, 2, motif_ids=[1, config.motif_vocab_size - 1])
    model = _model(FineMolTexForPreTraining, config)
    cases = {
        "one atom, one motif, batch of one": collate_molecules([single_atom], [random_text(g, 512, 3)]),
        "mixed": collate_molecules([single_atom, single_motif, unk_only], [random_text(g, 512, n) for n in (3, 0, 5)]),
        "no maskable motif": collate_molecules([unk_only, unk_only], [random_text(g, 512, 4)] * 2),
        "no maskable word": collate_molecules([single_motif], [[101, 102]]),
    }
    for name, batch in cases.items():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(**batch, mask_seed=0)
        for loss_name in LOSS_NAMES:
            assert torch.isfinite(getattr(out, loss_name)), (name, loss_name)
        out.loss.backward()
        if name == "no maskable motif":
            assert out.masked_motif_loss.item() == 0.0
        if name == "no maskable word":
            assert out.masked_lm_loss.item() == 0.0


def test_bad_batches_raise_clear_errors(config, batch):
    model = _model(FineMolTexForPreTraining, config)
    shorter_text = dict(batch, input_ids=batch["input_ids"][:-1], attention_mask=batch["attention_mask"][:-1])
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(**shorter_text)
    padded = batch["attention_mask"].clone()
    padded[2] = 0
    with pytest.raises(ValueError, match="all padding"):
        model(**dict(batch, attention_mask=padded))
    empty = select_molecules(batch, [])
    with pytest.raises(ValueError, match="Empty batch"):
        model(**empty)
    no_motif = batch["motif_attention_mask"].clone()
    no_motif[1, 1:] = 0
    with pytest.raises(ValueError, match="no motif"):
        model(**dict(batch, motif_attention_mask=no_motif))
    big_atom = batch["graph_atom_features"].clone()
    big_atom[0, 0] = 500
    with pytest.raises(ValueError, match="atom_feature_sizes"):
        model(**dict(batch, graph_atom_features=big_atom))
    cross = batch["motif_membership"].clone()
    cross[1, 0] = cross[1, -1]  # first atom (molecule 0) into the last molecule's motif
    with pytest.raises(ValueError, match="another molecule"):
        model(**dict(batch, motif_membership=cross))


# ----------------------------------------------------------------------------------------- save / load
def test_save_load_round_trip(config, batch, tmp_path):
    register_auto_classes()
    from transformers import AutoModel, AutoModelForPreTraining

    model = _model(FineMolTexForPreTraining, tiny_config(learnable_temperature=True)).eval()
    model.save_pretrained(tmp_path)
    assert {"configuration_finemoltex.py", "modeling_finemoltex.py", "losses_finemoltex.py"} <= {p.name for p in tmp_path.glob("*.py")}
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModel"] == "modeling_finemoltex.FineMolTexModel"
    assert auto_map["AutoModelForPreTraining"] == "modeling_finemoltex.FineMolTexForPreTraining"
    loaded = FineMolTexForPreTraining.from_pretrained(tmp_path).eval()
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys() and all(torch.equal(state[k], loaded_state[k]) for k in state)
    with torch.no_grad():
        a, b = model(**batch, mask_seed=0), loaded(**batch, mask_seed=0)
    for name in ("loss", "logits_per_graph", "masked_motif_logits", "mlm_logits"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    auto_pre = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert isinstance(auto_pre, FineMolTexForPreTraining)
    base = AutoModel.from_pretrained(tmp_path).eval()  # base model out of the pre-training checkpoint
    with torch.no_grad():
        assert torch.equal(base(**batch).graph_embeds, model.finemoltex(**batch).graph_embeds)


REMOTE_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, os, sys
    repo = os.path.realpath(sys.argv[1])
    # drop the checkout from the path (but not a virtual environment that happens to live inside it)
    sys.path[:] = [
        p for p in sys.path
        if p not in ("", ".") and not (os.path.realpath(p).startswith(repo) and "site-packages" not in p)
    ]

    class BlockPackage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "modeling_finemoltex" or name.startswith("modeling_finemoltex."):
                raise ImportError("modeling_finemoltex is blocked in this test")

    sys.meta_path.insert(0, BlockPackage())
    try:
        import modeling_finemoltex  # noqa: F401
        raise SystemExit("package still importable")
    except ImportError:
        pass
    import torch
    from transformers import AutoModel
    folder = sys.argv[2]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert model.__class__.__module__.startswith("transformers_modules"), model.__class__.__module__
    batch, expected = torch.load(os.path.join(folder, "batch.pt")), torch.load(os.path.join(folder, "expected.pt"))
    with torch.no_grad():
        out = model(**batch)
    # (thread counts may differ from the parent process: compare to float tolerance)
    assert torch.allclose(out.graph_embeds, expected["graph_embeds"], atol=1e-5)
    assert torch.allclose(out.text_embeds, expected["text_embeds"], atol=1e-5)
    print("REMOTE_OK", type(model).__name__)
    """
)


def test_remote_code_load_in_fresh_process(config, batch, tmp_path):
    model = _model(FineMolTexModel, config).eval()
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    with torch.no_grad():
        out = model(**batch)
    torch.save(batch, folder / "batch.pt")
    torch.save({"graph_embeds": out.graph_embeds, "text_embeds": out.text_embeds}, folder / "expected.pt")
    (tmp_path / "remote_check.py").write_text(REMOTE_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), PYTHONPATH="", TRANSFORMERS_VERBOSITY="error")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "remote_check.py"), str(REPO), str(folder)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert "REMOTE_OK FineMolTexModel" in result.stdout, result.stderr[-3000:]


def test_pretrained_text_weights_survive(tmp_path, batch):
    """The reference re-initialises SciBERT after loading it; here loaded text weights survive construction,
    post_init, save_pretrained and from_pretrained."""
    from transformers import BertConfig, BertModel

    base = tiny_config()
    torch.manual_seed(123)
    bert = BertModel(BertConfig(**base.text_config.to_dict()), add_pooling_layer=False)
    with torch.no_grad():
        for p in bert.parameters():
            p.add_(torch.randn_like(p))  # far from any init distribution
    bert.save_pretrained(tmp_path / "bert")
    reference = {k: v.clone() for k, v in bert.state_dict().items()}

    config = tiny_config(text_model_name_or_path=str(tmp_path / "bert"))
    model = FineMolTexForPreTraining(config)
    text_state = model.finemoltex.text_model.state_dict()
    assert all(torch.equal(text_state[k], reference[k]) for k in reference), "text weights re-initialised"
    model.save_pretrained(tmp_path / "finemoltex")
    loaded = FineMolTexForPreTraining.from_pretrained(tmp_path / "finemoltex")
    text_state = loaded.finemoltex.text_model.state_dict()
    assert all(torch.equal(text_state[k], reference[k]) for k in reference)
    # GIN init stays PyTorch-default-like (not normal(0.02)), so graph embeddings are not vanishingly small
    first_linear = model.finemoltex.graph_encoder.layers[0].mlp[0].weight
    assert first_linear.std() > 0.05


# ----------------------------------------------------------------------------------------- cached text states
def _encoder_states(model, batch):
    with torch.no_grad():
        return model.finemoltex.text_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state


@pytest.mark.parametrize("hide", [True, False])
def test_cached_text_states_give_the_encoder_path(batch, hide):
    """The coarse (retrieval) side of the cached path equals the encoder path; the encoder runs once (on the
    masked ids, `hide_masked_words`, the default) or never (False)."""
    model = _model(FineMolTexForPreTraining, tiny_config(hide_masked_words=hide)).eval()
    states = _encoder_states(model, batch)
    calls = []
    model.finemoltex.text_model.register_forward_hook(lambda module, args, kwargs, output: calls.append(kwargs["input_ids"]),
                                                      with_kwargs=True)
    with torch.no_grad():
        cached = model(**batch, text_encoder_states=states, mask_seed=3)
        if hide:  # one run, on the masked text (80/10/10: some chosen words stay as they were)
            changed = calls[0] != batch["input_ids"]
            assert len(calls) == 1 and changed.any() and not (changed & ~cached.word_mask).any()
        else:
            assert not calls
        calls.clear()
        plain = model(**batch, mask_seed=3)
        features = model.finemoltex.get_text_features(batch["input_ids"], batch["attention_mask"])
        half = model(**batch, text_encoder_states=states.half().float(), mask_seed=3)
    # the coarse (retrieval) side is the same computation: inference embeddings equal the cached training ones
    torch.testing.assert_close(cached.text_embeds, plain.text_embeds, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cached.text_embeds, features, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cached.contrastive_loss, plain.contrastive_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(half.text_embeds, features, rtol=0, atol=5e-3)  # float16 storage
    # masks and MLM targets: the original word ids at the masked positions
    assert torch.equal(cached.word_mask, plain.word_mask) and cached.word_mask.any()
    assert torch.equal(cached.mlm_labels, batch["input_ids"][cached.word_mask])


def test_cached_masked_word_state_never_reaches_its_prediction(batch):
    config = tiny_config(word_masking_scheme="mask")
    model = _model(FineMolTexForPreTraining, config).eval()
    states = _encoder_states(model, batch)
    word_mask = torch.zeros_like(batch["attention_mask"], dtype=torch.bool)
    word_mask[:, 2] = True
    poked = states.clone()
    poked[:, 2] += 100.0 * torch.randn_like(poked[:, 2])  # only the masked positions' own states change
    with torch.no_grad():
        a = model(**batch, text_encoder_states=states, word_mask=word_mask, mask_seed=0)
        b = model(**batch, text_encoder_states=poked, word_mask=word_mask, mask_seed=0)
    assert torch.equal(a.mlm_logits, b.mlm_logits) and torch.equal(a.masked_motif_logits, b.masked_motif_logits)
    assert not torch.allclose(a.text_embeds, b.text_embeds)  # ... while the unmasked (coarse) pass does see them


def test_cached_path_trains_the_mask_state_and_checks_shapes(batch):
    model = _model(FineMolTexForPreTraining, tiny_config(hide_masked_words=False))
    model.finemoltex.text_model.requires_grad_(False)
    states = _encoder_states(model, batch)
    out = model(**batch, text_encoder_states=states, mask_seed=0)
    out.loss.backward()
    assert model.text_state_mask_embedding.grad is not None and model.text_state_mask_embedding.grad.abs().sum() > 0
    assert model.finemoltex.graph_encoder.layers[0].mlp[0].weight.grad is not None
    with pytest.raises(ValueError, match="text_encoder_states"):
        model(**batch, text_encoder_states=states[:, :-1])
    bad = states.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="text_encoder_states has NaN"):
        model(**batch, text_encoder_states=bad)
    coarse = FineMolTexForPreTraining(tiny_config(masked_motif_weight=0.0, masked_lm_weight=0.0)).eval()
    coarse.load_state_dict(model.state_dict())
    coarse.finemoltex.text_model.register_forward_hook(lambda *args: pytest.fail("encoder ran"))
    with torch.no_grad():
        only = coarse(**batch, text_encoder_states=states)
    assert torch.isfinite(only.loss)


# ----------------------------------------------------------------------------------------- quiet loading
class _Reports:
    """Load reports transformers logs (after the logger's filters) while the block runs."""

    def __enter__(self):
        import logging

        self.messages = []
        outer = self

        class Handler(logging.Handler):
            def emit(self, record):
                if "LOAD REPORT" in record.getMessage():
                    outer.messages.append(record.getMessage())

        from transformers.utils import logging as hf_logging

        self.verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_warning()  # (the suite may run at error level, where no report is logged at all)
        self.handler = Handler()
        self.logger = logging.getLogger("transformers.modeling_utils")
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        from transformers.utils import logging as hf_logging

        self.logger.removeHandler(self.handler)
        hf_logging.set_verbosity(self.verbosity)


def test_expected_leftovers_print_no_load_report_but_others_still_do(config, batch, tmp_path):
    from transformers import BertConfig, BertModel

    pre = _model(FineMolTexForPreTraining, config)
    pre.save_pretrained(tmp_path / "pre")
    with _Reports() as reports:
        FineMolTexModel.from_pretrained(tmp_path / "pre")  # the pre-training heads are expected leftovers
    assert reports.messages == []
    # a text encoder checkpoint with BERT's pooler (never built here): no report either
    bert = BertModel(BertConfig(**{k: v for k, v in config.text_config.to_dict().items() if k in BertConfig().to_dict()}))
    bert.save_pretrained(tmp_path / "bert")
    with _Reports() as reports:
        FineMolTexModel(tiny_config(text_model_name_or_path=str(tmp_path / "bert")))
    assert reports.messages == []
    # anything else still reported: a weight the checkpoint lacks
    state = {k: v for k, v in pre.state_dict().items() if not k.startswith("finemoltex.graph_projection")}
    torch.save(state, tmp_path / "pre" / "pytorch_model.bin")
    (tmp_path / "pre" / "model.safetensors").unlink()
    with _Reports() as reports:
        FineMolTexModel.from_pretrained(tmp_path / "pre")
    assert len(reports.messages) == 1 and "graph_projection" in reports.messages[0]
