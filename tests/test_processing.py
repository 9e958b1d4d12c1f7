"""FineMolTexProcessor, the datasets path and the collator."""

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, AutoTokenizer

from modeling_finemoltex import FineMolTexDataCollator, FineMolTexGraphTokenizer, FineMolTexProcessor, MotifVocab

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CCO", "[Na+].[Cl-]", "c1ccc2ccccc2c1", "C"]
TEXTS = ["aspirin is an ester", "ethanol", "table salt", "naphthalene is aromatic", "methane"]


@pytest.fixture(scope="module")
def processor(text_tokenizer, chebi_pairs):
    vocab = MotifVocab.build([s for _, s, _ in chebi_pairs[:300]], target_min_frequency=10)
    return FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), text_tokenizer, max_text_length=64)


def test_batch_keys_shapes_and_offsets(processor):
    batch = processor(smiles=SMILES, text=TEXTS, return_tensors="pt")
    n_atoms = [13, 3, 2, 10, 1]
    assert batch["graph_atom_features"].shape == (sum(n_atoms), 2)
    assert batch["graph_batch"].tolist() == sum(([b] * n for b, n in enumerate(n_atoms)), [])
    ei = batch["graph_edge_index"]
    assert ei.shape[0] == 2 and ei.shape[1] == 2 * (13 + 2 + 0 + 11 + 0)
    assert torch.equal(batch["graph_batch"][ei[0]], batch["graph_batch"][ei[1]])  # edges stay in their molecule
    assert batch["graph_edge_features"].shape == (ei.shape[1], 2)
    ids, mask = batch["motif_input_ids"], batch["motif_attention_mask"]
    assert ids.shape == mask.shape == batch["motif_position_ids"].shape == (5, 9)
    assert (ids[:, 0] == processor.graph_tokenizer.cls_token_id).all()
    assert mask.sum(1).tolist() == [9, 3, 3, 3, 2]
    atom, slot = batch["motif_membership"]
    width = ids.shape[1]
    assert (mask.view(-1)[slot] == 1).all() and ((slot % width) > 0).all()
    assert torch.equal(batch["graph_batch"][atom], slot // width)  # atoms feed their own molecule's motifs
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["input_ids"].shape[0] == 5
    assert batch["kept_indices"] == [0, 1, 2, 3, 4]


def test_single_inputs_and_text_only(processor):
    one = processor(smiles="CCO", text="ethanol")
    assert one["motif_input_ids"].shape[0] == 1
    text_only = processor(text=["a", "b c d"])
    assert set(text_only) == {"input_ids", "attention_mask"}
    mol_only = processor(smiles=["CCO"])
    assert "input_ids" not in mol_only


def test_text_tokenizer_arguments_are_forwarded(processor, text_tokenizer):
    # as CLIPProcessor and friends: padding, truncation, max_length, ... go to the text tokenizer
    long_text = "aspirin " * 100
    batch = processor(smiles=SMILES[:2], text=[long_text, "ethanol"], padding="max_length", truncation=True,
                      max_length=32, return_tensors="pt")
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 32)
    assert batch["attention_mask"].sum(1).tolist() == [32, len(text_tokenizer("ethanol")["input_ids"])]
    assert batch["motif_input_ids"].shape[0] == 2
    default = processor(text=[long_text, "ethanol"])  # longest, truncated at the processor's max_text_length
    assert default["input_ids"].shape == (2, 64) and "token_type_ids" not in default
    torch.testing.assert_close(default["input_ids"][1, :3], batch["input_ids"][1, :3])
    assert processor(text=["ethanol", "a b c"], pad_to_multiple_of=16)["input_ids"].shape[1] == 16
    assert "token_type_ids" in processor(text=["ethanol"], return_token_type_ids=True)
    unpadded = processor(text=["ethanol", "a b c"], padding=False, return_tensors=None)
    assert [len(x) for x in unpadded["input_ids"]] == [3, 5]
    with pytest.raises(TypeError, match=r"\['paddin'\].*padding, truncation"):
        processor(text=["ethanol"], paddin=True)
    with pytest.raises(TypeError, match="padding_side"):  # the model reads [CLS] at position 0: right padding only
        processor(text=["ethanol"], padding_side="left")


def test_mismatched_lengths_and_nothing(processor):
    with pytest.raises(ValueError, match="2 SMILES but 1 texts"):
        processor(smiles=["C", "O"], text=["x"])
    with pytest.raises(ValueError):
        processor()


def test_ignore_errors_keeps_pairs_aligned(processor):
    batch = processor(smiles=["CCO", "C1CC", "C"], text=["ethanol", "broken", "methane"], ignore_errors=True)
    assert batch["kept_indices"] == [0, 2]
    expected = processor(smiles=["CCO", "C"], text=["ethanol", "methane"])
    for key in expected:
        if key != "kept_indices":
            assert torch.equal(batch[key], expected[key]), key
    with pytest.raises(ValueError, match="index 1"):
        processor(smiles=["CCO", "C1CC"], text=["a", "b"])


def test_empty_text_is_rejected(processor):
    with pytest.raises(ValueError, match="row 1"):
        processor(smiles=["C", "O"], text=["methane", "  "])


def test_save_and_auto_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "graph_tokenizer" / "motif_vocab.json").is_file()
    again = AutoProcessor.from_pretrained(tmp_path)
    assert type(again) is FineMolTexProcessor
    assert type(again.graph_tokenizer) is FineMolTexGraphTokenizer  # not the text tokenizer in disguise
    assert type(again.tokenizer) is type(processor.tokenizer)
    assert again.max_text_length == 64
    a = processor(smiles=SMILES, text=TEXTS)
    b = again(smiles=SMILES, text=TEXTS)
    for key in a:
        if key != "kept_indices":
            assert torch.equal(a[key], b[key]), key
    # the folder's top-level tokenizer is the text tokenizer, as users expect from AutoTokenizer
    assert type(AutoTokenizer.from_pretrained(tmp_path)) is type(processor.tokenizer)


def test_text_tokenizer_cannot_pose_as_graph_tokenizer(text_tokenizer):
    with pytest.raises(TypeError, match="FineMolTexGraphTokenizer"):
        FineMolTexProcessor(text_tokenizer, text_tokenizer)


def test_missing_graph_tokenizer_folder_fails_loudly(processor, tmp_path):
    import shutil

    processor.save_pretrained(tmp_path)
    shutil.rmtree(tmp_path / "graph_tokenizer")
    with pytest.raises((TypeError, OSError, ValueError)):
        AutoProcessor.from_pretrained(tmp_path)


@pytest.mark.parametrize("num_proc", [None, 2])
def test_datasets_map_matches_direct_call(processor, num_proc, tmp_path):
    from datasets import Dataset

    smiles = SMILES + ["C1CC"]  # one bad row, dropped and reported
    texts = TEXTS + ["broken"]
    ds = Dataset.from_dict({"smiles": smiles, "text": texts, "cid": list(range(len(smiles)))})
    mapped, dropped = processor.tokenize_dataset(ds, keep_columns=["cid"], num_proc=num_proc, batch_size=2)
    assert dropped == [5]
    assert mapped["cid"] == [0, 1, 2, 3, 4]
    assert mapped["length"] == [len(x) for x in mapped["input_ids"]]
    collator = processor.data_collator(pad_to_multiple_of=None)
    from_arrow = collator([mapped[i] for i in range(len(mapped))])
    direct = processor(smiles=SMILES, text=TEXTS)
    for key in direct:
        if key != "kept_indices":
            assert torch.equal(from_arrow[key], direct[key]), key
    assert torch.equal(from_arrow["cid"], torch.arange(5))


@pytest.mark.parametrize("bad, error_class, expected", [
    ({"smiles": "C1CC"}, "MoleculeParseError", r"^Invalid SMILES at dataset row 5: 'C1CC'"),
    ({"smiles": "C" * 1001}, "MoleculeTooLargeError", r"^SMILES at dataset row 5 has 1,001 atoms"),
    ({"text": "  "}, "ValueError", r"^Empty or missing text at dataset row 5: "),
])
def test_tokenize_dataset_errors_name_the_dataset_row(processor, bad, error_class, expected):
    # with batch_size=2 the bad row is position 1 of its map batch: the error said "index 1" / "row 1"
    from datasets import Dataset

    smiles, texts = SMILES + ["CCO", "CCN"], TEXTS + ["ethanol", "ethylamine"]
    smiles[5], texts[5] = bad.get("smiles", smiles[5]), bad.get("text", texts[5])
    ds = Dataset.from_dict({"smiles": smiles, "text": texts})
    with pytest.raises(ValueError, match=expected) as caught:
        processor.tokenize_dataset(ds, num_proc=None, batch_size=2, ignore_errors=False, load_from_cache_file=False)
    assert type(caught.value).__name__ == error_class  # the exception class is kept

def test_collator_pads_to_multiple_and_passes_labels(processor):
    rows = [processor.encode(s, t) for s, t in zip(SMILES, TEXTS)]
    for i, row in enumerate(rows):
        row["labels"] = [1.0, None][i % 2]
    batch = FineMolTexDataCollator.from_processor(processor, pad_to_multiple_of=8)(rows)
    assert batch["input_ids"].shape[1] % 8 == 0
    assert batch["attention_mask"].sum().item() == sum(len(r["input_ids"]) for r in rows)
    assert torch.isnan(batch["labels"][1]) and batch["labels"][0] == 1.0


def test_empty_batch(processor):
    batch = processor(smiles=[], text=[])
    assert batch["graph_atom_features"].shape == (0, 2)
    assert batch["motif_input_ids"].shape[0] == 0
