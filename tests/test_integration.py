"""Processor and model together on real molecule-text pairs."""

import torch

from modeling_finemoltex import (
    FineMolTexConfig,
    FineMolTexForPreTraining,
    FineMolTexGraphTokenizer,
    FineMolTexProcessor,
    MotifVocab,
)


def _tiny(vocab, text_tokenizer, **overrides):
    return FineMolTexConfig.from_preset(
        "tiny",
        motif_vocab_size=len(vocab),
        num_motif_targets=vocab.num_targets,
        max_motif_positions=128,
        text_config={"vocab_size": text_tokenizer.vocab_size, "max_position_embeddings": 128},
        text_mask_token_id=text_tokenizer.mask_token_id,
        text_special_token_ids=sorted(set(text_tokenizer.all_special_ids)),
        hidden_dropout_prob=0.0,
        attention_dropout_prob=0.0,
        gnn_dropout=0.0,
        **overrides,
    )


def test_tiny_model_overfits_sixteen_real_chebi_pairs(chebi_pairs, text_tokenizer):
    torch.manual_seed(0)
    pairs = chebi_pairs[:16]
    smiles, texts = [s for _, s, _ in pairs], [t for _, _, t in pairs]
    vocab = MotifVocab.build([s for _, s, _ in chebi_pairs[:400]], target_min_frequency=5)
    graph = FineMolTexGraphTokenizer.from_vocab(vocab, max_motifs=127)
    processor = FineMolTexProcessor(graph, text_tokenizer, max_text_length=64)
    batch = dict(processor(smiles=smiles, text=texts))
    batch.pop("kept_indices")
    model = FineMolTexForPreTraining(_tiny(vocab, text_tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    reached = None
    for step in range(150):
        out = model(**batch, return_loss=True)
        assert torch.isfinite(out.loss), step
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        if out.contrastive_accuracy.item() == 1.0:
            reached = step
            break
    assert reached is not None, f"contrastive accuracy {out.contrastive_accuracy.item()} after 150 steps"
    for part in (out.contrastive_loss, out.masked_motif_loss, out.masked_lm_loss):
        assert torch.isfinite(part) and part > 0
