"""Hostile input (issue 16): bounded work per molecule and per request, no silent truncation, errors that name the
real cause. Each reproducer of the issue is a test here; crashes are checked in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from rdkit import Chem

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from conftest import REPO
from modeling_finemoltex import (
    FineMolTexConfig,
    FineMolTexGraphTokenizer,
    FineMolTexModel,
    FineMolTexPipeline,
    FineMolTexProcessor,
    MoleculeParseError,
    MotifVocab,
)
from modeling_finemoltex import chemistry_finemoltex as chemmod
from modeling_finemoltex import handler as handler_module
from modeling_finemoltex import motifs_finemoltex as motifmod
from modeling_finemoltex import tokenization_finemoltex as tokmod
from modeling_finemoltex.configuration_finemoltex import UnknownConfigKeysError
from modeling_finemoltex.tokenization_finemoltex import DEFAULT_MAX_ATOMS, MoleculeTooLargeError, count_atoms

CHAIN_20K = "C" * 20000
RING_10K = "C1" + "C" * 9998 + "C1"


@pytest.fixture(scope="module")
def tok():
    return FineMolTexGraphTokenizer()


def _run_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------------ 1, 2: per-molecule bound
def test_20000_atom_chain_is_refused_not_a_segfault():
    # RDKit's recursive SMILES writer overflows the C stack on this chain (signal 11): run it where a crash is visible
    result = _run_python(f"""
        from modeling_finemoltex import FineMolTexGraphTokenizer
        try:
            FineMolTexGraphTokenizer().decompose("C" * 20000)
        except ValueError as err:
            print("REFUSED", type(err).__name__, err)
    """)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "REFUSED MoleculeTooLargeError" in result.stdout and "20,000 atoms" in result.stdout


def test_atom_limit_is_checked_before_rdkit_parses(tok, monkeypatch):
    def no_rdkit(*args, **kwargs):
        raise AssertionError("RDKit was called on an over-limit molecule")

    monkeypatch.setattr(chemmod.Chem, "MolFromSmiles", no_rdkit)
    for smiles in (CHAIN_20K, RING_10K):
        started = time.perf_counter()
        with pytest.raises(MoleculeTooLargeError, match=r"limit of 1,000 \(max_atoms\)"):
            tok.decompose(smiles, index=4)
        assert time.perf_counter() - started < 1.0


def test_over_limit_molecules_are_per_item_errors(tok):
    errors = {}
    columns, kept = tok.encode_batch(["CCO", RING_10K, "c1ccccc1"], ignore_errors=True, errors=errors)
    assert kept == [0, 2] and len(columns["motif_ids"]) == 2
    assert "index 1" in errors[1] and "10,000 atoms" in errors[1]
    assert len(errors[1]) < 400  # the 10,002-character SMILES is not echoed whole
    assert tok.decompose_batch(["CCO", CHAIN_20K], ignore_errors=True)[1] is None
    with pytest.raises(MoleculeTooLargeError, match="index 1"):
        tok.encode_batch(["CCO", CHAIN_20K])


def test_max_atoms_is_configurable_and_saved(tmp_path):
    small = FineMolTexGraphTokenizer(max_atoms=5)
    assert small.decompose("CCCCC").motifs
    with pytest.raises(MoleculeTooLargeError, match="6 atoms"):
        small.decompose("CCCCCC")
    small.save_pretrained(tmp_path)
    assert FineMolTexGraphTokenizer.from_pretrained(tmp_path).max_atoms == 5
    assert FineMolTexGraphTokenizer(max_atoms=None).decompose("C" * 1500).motifs  # the documented opt-out
    assert FineMolTexGraphTokenizer().max_atoms == DEFAULT_MAX_ATOMS == 1000
    with pytest.raises(ValueError, match="max_atoms"):
        FineMolTexGraphTokenizer(max_atoms=0)


def test_count_atoms_equals_rdkit_on_real_molecules(chebi_pairs, zinc_smiles):
    smiles = [s for _, s, _ in chebi_pairs[:1500]] + zinc_smiles[:1500]
    checked = 0
    for s in smiles:
        if "[H" in s or "[2H" in s or "[3H" in s:  # explicit hydrogens count in the string, RDKit removes them
            continue
        mol = Chem.MolFromSmiles(s)
        if mol is not None:
            assert count_atoms(s) == mol.GetNumAtoms(), s
            checked += 1
    assert checked > 2500
    assert count_atoms("[Na+].[Cl-]") == 2 and count_atoms("ClCBr") == 3 and count_atoms("c1ccccc1*") == 7
    assert handler_module.count_atoms("ClC(Br)[Hg]c1ccncc1") == tokmod.count_atoms("ClC(Br)[Hg]c1ccncc1") == 10


# ------------------------------------------------------------------------------------ 3: ring merge
def _merge_reference(rings):
    """The merge loop as it was (restarting its pair scan after every merge): the definition to keep."""
    rings = [set(r) for r in rings]
    merged = True
    while merged:
        merged = False
        for x in range(len(rings)):
            for y in range(x + 1, len(rings)):
                if len(rings[x] & rings[y]) > 2:
                    rings[x] |= rings.pop(y)
                    merged = True
                    break
            if merged:
                break
    return sorted(sorted(r) for r in rings)


def _merge_new(rings, n):
    return sorted(sorted(r) for r in motifmod._merge_bridged_rings(rings, n))


def test_ring_merge_equals_the_definition_on_bridged_molecules():
    # cubane, adamantane, a cage, norbornane, camphor, a cascade where a merged group meets a third ring
    for smiles in ("C12C3C4C1C5C2C3C45", "C1C2CC3CC1CC(C2)C3", "C1CC2CCC1CC2", "C1CC2CC1C=C2", "CC1(C)C2CCC1(C)C(=O)C2",
                   "C12C3C4C5C1C6C2C3C4C56", "c1cc2ccc3cccc4ccc(c1)c2c34"):
        mol = Chem.MolFromSmiles(smiles)
        rings = [list(r) for r in Chem.GetSymmSSSR(mol)]
        assert _merge_new(rings, mol.GetNumAtoms()) == _merge_reference(rings), smiles


def test_ring_merge_is_not_cubic():
    # 700 bicyclo[2.2.2]octane units (1,400 SSSR rings, pairs sharing 4 atoms): 55.6 s with the restarted scan
    rings = []
    for u in range(700):
        a = 8 * u
        b1, b2, x = a, a + 1, [a + k for k in range(2, 8)]
        rings.append([b1, x[0], x[1], b2, x[2], x[3]])
        rings.append([b1, x[0], x[1], b2, x[4], x[5]])
    started = time.perf_counter()
    merged = motifmod._merge_bridged_rings(rings, 5600)
    assert time.perf_counter() - started < 2.0
    assert len(merged) == 700 and all(len(g) == 8 for g in merged)


def test_bicyclooctane_chain_decomposes_in_seconds(tok):
    smiles = "C12CCC(CC1)(CC2)" * 120  # 960 atoms, junction-tree path: one motif per unit plus the joining bonds
    started = time.perf_counter()
    dec = tok.decompose(smiles)
    assert time.perf_counter() - started < 10.0
    assert dec.method == "junction_tree" and sum(1 for m in dec.motif_atoms if len(m) == 8) == 120


def test_rdkit_failure_inside_decomposition_names_the_molecule(monkeypatch):
    # an RDKit error while decomposing one molecule is an error for that item, not the batch
    def fails(*args):
        raise RuntimeError("Too many rings open at once")

    monkeypatch.setattr(motifmod, "_canonical_copy", fails)
    tok = FineMolTexGraphTokenizer()
    cage = "C12CCC(CC1)(CC2)" * 3  # junction-tree path
    errors = {}
    columns, kept = tok.encode_batch(["CCCCOCCN", cage], ignore_errors=True, errors=errors)
    assert kept == [0] and "index 1" in errors[1] and "could not be decomposed" in errors[1]
    assert "Too many rings open at once" in errors[1]
    with pytest.raises(MoleculeParseError, match="index 1"):
        tok.decompose_batch(["CCCCOCCN", cage])


@pytest.mark.parametrize("smiles", ["Cc1ccccc1", "C12CCC(CC1)(CC2)" * 3, "OC1CCC(N)CC1C", "CCO"])
def test_each_molecule_is_parsed_once(monkeypatch, smiles):
    # the junction-tree path orders a copy of the parsed molecule canonically instead of writing and re-parsing it
    parsed = []
    parse = Chem.MolFromSmiles

    def counting(text, *args, **kwargs):
        parsed.append(text)
        return parse(text, *args, **kwargs)

    monkeypatch.setattr(Chem, "MolFromSmiles", counting)
    motifmod._KEKULE_CACHE.clear()
    FineMolTexGraphTokenizer().decompose(smiles)
    atoms = tokmod.count_atoms(smiles)
    assert [t for t in parsed if tokmod.count_atoms(t) >= atoms] == [smiles]


def test_rank_order_fallback_is_canonical_too(monkeypatch):
    # where RDKit cannot write the molecule (the cage below), its canonical ranks order the copy: still the same
    # motifs however the SMILES is written
    def refuse(*args):
        raise ValueError("Too many rings open at once. SMILES cannot be generated.")

    tok = FineMolTexGraphTokenizer()
    smiles = ["C12CCC(CC1)(CC2)" * 3, "Cc1ccc2ccccc2c1CCN", "OC1CCC(N)CC1C"]
    written = [tok.decompose(s) for s in smiles]
    monkeypatch.setattr(motifmod, "_output_order", refuse)
    for s, reference in zip(smiles, written):
        mol = Chem.MolFromSmiles(s)
        for seed in range(3):
            Chem.rdBase.SeedRandomNumberGenerator(seed)
            other = tok.decompose(Chem.MolToSmiles(mol, doRandom=True, canonical=False))
            assert other.motifs == reference.motifs and other.edges == reference.edges, s


def test_cage_beyond_the_old_round_trip_decomposes():
    # 5,600 atoms: RDKit cannot write this cage chain as SMILES (too many ring closures open at once), which failed
    # the molecule before; its canonical ranks order the copy instead (~7 s; beyond the default max_atoms)
    dec = FineMolTexGraphTokenizer(max_atoms=None).decompose("C12CCC(CC1)(CC2)" * 700)
    assert dec.method == "junction_tree" and sum(1 for m in dec.motif_atoms if len(m) == 8) == 700


# ------------------------------------------------------------------------------------ 5: no silent truncation
@pytest.mark.parametrize("smiles, position", [("CC O", 2), ("C C", 1), ("CC\nNN", 2), ("CCÖ", 2), ("CCO\x00", 3),
                                              ("C\tC", 1), ("CC\u00a0O", 2), ("CCO |$;;$|", 3)])
def test_smiles_must_be_the_whole_string(tok, smiles, position):
    with pytest.raises(MoleculeParseError, match=f"at position {position}"):
        tok.decompose(smiles)
    batch = tok.decompose_batch(["CCO", smiles], ignore_errors=True)
    assert batch[1] is None


def test_surrounding_whitespace_is_still_fine(tok):
    assert tok.decompose("  CCO\n").motifs == tok.decompose("CCO").motifs


# ------------------------------------------------------------------------------------ 6: lone surrogates
def test_lone_surrogate_is_one_item_error(tok, processor):
    bad = "C\ud800C"
    errors = {}
    _, kept = tok.encode_batch(["CCO", bad], ignore_errors=True, errors=errors)
    assert kept == [0] and "index 1" in errors[1]
    assert tok.decompose_batch([bad, "CCO"], ignore_errors=True)[0] is None
    assert processor(smiles=["CCO", bad], ignore_errors=True)["kept_indices"] == [0]
    with pytest.raises(ValueError, match="row 1.*not valid Unicode"):
        processor(smiles=["CCO", "CC"], text=["ethanol", "bad \ud800 text"])


def test_long_bad_smiles_is_not_echoed_whole(tok):
    with pytest.raises(MoleculeParseError) as err:
        tok.decompose("C1" * 5000 + "(")
    assert len(str(err.value)) < 400 and "10,001 characters" in str(err.value)


# ------------------------------------------------------------------------------------ 7: load errors
@pytest.fixture(scope="module")
def processor(text_tokenizer):
    vocab = MotifVocab.build(["CCO", "c1ccccc1O", "CC(=O)O", "CCN", "C1CCCCC1"], target_min_frequency=1)
    return FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), text_tokenizer, max_text_length=32)


@pytest.fixture(scope="module")
def saved(processor, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "ok"
    processor.save_pretrained(folder)
    return folder


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "name, mutate, expected",
    [
        ("checksum", lambda d: _edit_json(d / "graph_tokenizer" / "motif_vocab.json",
                                          lambda v: v["motifs"][0].__setitem__(1, 999)), "checksum mismatch"),
        ("bad_json", lambda d: (d / "graph_tokenizer" / "motif_vocab.json").write_text("{oops"), "motif_vocab.json is empty or not valid JSON"),
        ("no_motifs", lambda d: _edit_json(d / "graph_tokenizer" / "motif_vocab.json", lambda v: v.pop("motifs")), "field 'motifs' is missing"),
        ("no_targets", lambda d: _edit_json(d / "graph_tokenizer" / "motif_vocab.json", lambda v: v.pop("num_targets")), "field 'num_targets' is missing"),
        ("feature_set", lambda d: _edit_json(d / "graph_tokenizer" / "tokenizer_config.json",
                                             lambda c: c.__setitem__("feature_set", "fancy")), "Unknown feature_set 'fancy'"),
        ("half_written", lambda d: (d / "tokenizer.json").write_text(""), "tokenizer.json is empty or not valid JSON"),
    ],
)
def test_processor_load_errors_name_the_real_cause(saved, tmp_path, name, mutate, expected):
    from transformers import AutoProcessor

    folder = tmp_path / name
    shutil.copytree(saved, folder)
    mutate(folder)
    with pytest.raises((ValueError, OSError)) as err:
        AutoProcessor.from_pretrained(folder)
    message = str(err.value)
    assert expected in message and str(folder) in message
    assert "BertTokenizer" not in message  # not the sub-folder fallback's misleading complaint


def test_misspelt_config_key_is_refused(tmp_path):
    config = FineMolTexConfig.from_preset("tiny")
    config.save_pretrained(tmp_path)
    assert FineMolTexConfig.from_pretrained(tmp_path).gnn_hidden_size == config.gnn_hidden_size
    _edit_json(tmp_path / "config.json", lambda c: c.__setitem__("gnn_hidden_sise", 7))
    with pytest.raises(UnknownConfigKeysError, match=r"'gnn_hidden_sise' \(did you mean 'gnn_hidden_size'\?\)") as err:
        FineMolTexConfig.from_pretrained(tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(UnknownConfigKeysError):
        FineMolTexConfig.from_dict({**config.to_dict(), "gnn_hidden_sise": 7})


# ------------------------------------------------------------------------------------ 4, 6, 10: the handler
@pytest.fixture(scope="module")
def pipe(processor):
    vocab = processor.graph_tokenizer.motif_vocab
    config = FineMolTexConfig.from_preset("tiny", motif_vocab_size=len(vocab), num_motif_targets=max(vocab.num_targets, 1),
                                          max_motif_positions=512, text_config={"vocab_size": len(processor.tokenizer)})
    torch.manual_seed(0)
    return FineMolTexPipeline(model=FineMolTexModel(config).eval(), processor=processor, device="cpu")


@pytest.fixture()
def handler(pipe):
    return handler_module.EndpointHandler(pipeline=pipe, max_batch_size=256, max_string_length=20000,
                                          max_request_atoms=25000, max_request_seconds=60)


def test_handler_refuses_over_budget_requests_before_any_work(handler, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the pipeline ran")

    monkeypatch.setattr(handler, "pipeline", no_work)
    chains = ["C" * 900] * 40  # 36,000 atoms: each molecule is within max_atoms, the request is not
    response = handler({"inputs": {"smiles": chains}})
    assert response["errors"][0]["field"] == "inputs" and "36,000 atoms" in response["errors"][0]["message"]
    response = handler({"inputs": {"text": "x", "candidate_smiles": chains}})
    assert "36,000 atoms" in response["errors"][0]["message"]


def test_handler_answers_each_hostile_item_and_keeps_the_rest(handler):
    items = ["CCO", "CC O", "C\ud800C", CHAIN_20K, "c1ccccc1O"]
    started = time.perf_counter()
    results = handler({"inputs": {"smiles": items}})["results"]
    assert time.perf_counter() - started < 30
    assert ["embedding" in r for r in results] == [True, False, False, False, True]
    assert "position 2" in results[1]["error"] and "index 2" in results[2]["error"]
    assert "max_atoms" in results[3]["error"] and len(results[3]["error"]) < 400
    texts = handler({"inputs": {"text": ["an alcohol", "lone \ud800 surrogate"]}})["results"]
    assert "embedding" in texts[0] and "not valid Unicode" in texts[1]["error"]


def test_handler_time_budget_gives_a_structured_error(pipe):
    handler = handler_module.EndpointHandler(pipeline=pipe, max_request_seconds=1)
    original = pipe._embed

    def slow_embed(kind, items, batch_size, deadline=None):
        time.sleep(1.2)  # as if earlier batches had taken the whole budget
        return original(kind, items, batch_size, deadline)

    pipe._embed = slow_embed
    try:
        response = handler({"inputs": {"smiles": ["CCO"] * 5, "candidate_texts": ["a", "b"]}})
    finally:
        del pipe._embed
    assert "results" not in response
    assert response["errors"][0]["field"] == "inputs" and "time budget of 1 s" in response["errors"][0]["message"]
    assert "embedding" in handler({"inputs": {"smiles": "CCO"}})["results"]  # the budget is per request


def test_handler_errors_do_not_echo_unbounded_input(handler):
    huge = "k" * 1_000_000
    response = handler({"inputs": {huge: "CCO", "smiles": "CCO"}, "parameters": {"top_k": [1] * 100_000}})
    assert len(json.dumps(response)) < 2000
    many = handler({"inputs": {f"key{i}": 1 for i in range(10_000)}})
    assert len(many["errors"]) <= handler_module.MAX_ERRORS + 1 and "more problems" in many["errors"][-1]["message"]


def test_handler_loads_only_local_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("FINEMOLTEX_ALLOW_HUB_CODE", raising=False)
    with pytest.raises(ValueError, match="not a local folder.*FINEMOLTEX_ALLOW_HUB_CODE"):
        handler_module.EndpointHandler("someone/finemoltex-with-surprises")


# ------------------------------------------------------------------------------------ memory per request
def test_batch_methods_hold_a_bounded_number_of_atoms(tok, monkeypatch):
    smiles = ["CCO", "c1ccccc1O", "not smiles", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]", "C1CC2CCC1CC2"] * 3
    whole_errors, sliced_errors = {}, {}
    whole = tok.encode_batch(smiles, ignore_errors=True, errors=whole_errors)
    whole_motifs = [d and d.motifs for d in tok.decompose_batch(smiles, ignore_errors=True)]
    assert len(list(chemmod._atom_chunks(smiles))) == 1 and len(list(chemmod._atom_chunks(smiles, budget=10))) > 5
    monkeypatch.setattr(chemmod, "_PARSE_ATOM_BUDGET", 10)
    monkeypatch.setattr(chemmod._atom_chunks, "__defaults__", (10,))
    sliced = tok.encode_batch(smiles, ignore_errors=True, errors=sliced_errors)
    assert sliced == whole and sliced_errors == whole_errors and sorted(whole_errors) == [2, 8, 14]
    assert [d and d.motifs for d in tok.decompose_batch(smiles, ignore_errors=True)] == whole_motifs
    with pytest.raises(MoleculeParseError, match="index 2"):  # indices stay global across slices
        tok.encode_batch(smiles)


def test_many_large_rings_do_not_pile_up_in_memory():
    # a parsed 1,000-atom ring holds ~40 MB in RDKit: 25 of them held at once took 1.1 GB more
    result = _run_python("""
        import resource
        from modeling_finemoltex import FineMolTexGraphTokenizer
        tok = FineMolTexGraphTokenizer()
        tok.decompose("C1CCCCC1")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        columns, kept = tok.encode_batch(["C1" + "C" * 998 + "C1"] * 25)
        print("GROWTH_MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, len(kept))
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    growth, kept = result.stdout.split("GROWTH_MB")[1].split()
    assert int(kept) == 25 and float(growth) < 500, growth


def test_atom_counting_is_linear_on_unclosed_brackets():
    # "[" * 20000 made the bracket pattern backtrack quadratically: 4 s for one request of garbage
    for count in (tokmod.count_atoms, handler_module.count_atoms):
        started = time.perf_counter()
        assert count("[" * 20000) == 0 and count("[C" * 10000) == 10000 and count("[C]" * 3) == 3
        assert time.perf_counter() - started < 0.5


# ------------------------------------------------------------------------------ 7: truncated weights file
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from _model_fixtures import tiny_config
    from modeling_finemoltex import FineMolTexForPreTraining

    folder = tmp_path_factory.mktemp("tiny_checkpoint")
    FineMolTexForPreTraining(tiny_config()).save_pretrained(folder)
    return folder


def test_truncated_weights_file_is_named(tiny_checkpoint, tmp_path):
    from safetensors import SafetensorError
    from transformers import AutoModel

    from modeling_finemoltex import FineMolTexForPreTraining

    folder = tmp_path / "cut"
    shutil.copytree(tiny_checkpoint, folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    for load in (FineMolTexForPreTraining.from_pretrained, AutoModel.from_pretrained):
        with pytest.raises(SafetensorError) as caught:  # same exception class as safetensors' own
            load(str(folder))
        message = str(caught.value)
        assert str(weights) in message and "truncated or half-written" in message, message
        assert "deserializing header" in message  # safetensors' own reason is kept


def test_weights_reader_errors_on_an_intact_file_are_not_rewritten(tiny_checkpoint, monkeypatch):
    # a header-like error while the weights file is fine must not be blamed on the file
    from transformers import PreTrainedModel

    from modeling_finemoltex import FineMolTexForPreTraining

    original = ValueError("bad header in some other input")

    def fail(cls, *args, **kwargs):
        raise original

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(fail))
    with pytest.raises(ValueError) as caught:
        FineMolTexForPreTraining.from_pretrained(str(tiny_checkpoint))
    assert caught.value is original
