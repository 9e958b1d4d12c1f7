"""Text-guided molecule editing: RDKit edit primitives on hand-checked molecules, the motif generator, the search
(determinism, pluggable generator), the model scorer with a tiny model, the MoleculeSTM/FineMolTex criteria on
hand-computed cases, the example script, and bad input."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import torch

import _model_fixtures  # noqa: F401  (single-threaded torch for tiny models)
from _examples import load_example
from conftest import SHARED_DATA
from modeling_finemoltex import FineMolTexConfig, FineMolTexGraphTokenizer, FineMolTexModel, FineMolTexProcessor, MotifVocab
from modeling_finemoltex.editing_finemoltex import (
    FineMolTexEditGenerator,
    FineMolTexEditProposal,
    FineMolTexEditScorer,
    FineMolTexModelScorer,
    FineMolTexMoleculeEditor,
    FineMolTexMotifEditGenerator,
    FineMolTexMotifLibrary,
    FineMolTexRandomScorer,
    edit_molecules,
    evaluate_edits,
    find_criterion,
    load_edit_criteria,
    write_edit_results,
)
from modeling_finemoltex.tokenization_finemoltex import (
    MoleculeParseError,
    apply_motif_edits,
    attachment_atoms,
    canonical_smiles,
    is_valid_smiles,
    molecule_descriptors,
    tanimoto_similarity,
)

PROMPTS = SHARED_DATA / "molecule_editing" / "prompts.json"


def canon(smiles: str) -> str:
    return canonical_smiles(smiles)


@pytest.fixture(scope="module")
def criteria():
    if not PROMPTS.is_file():
        pytest.skip(f"prompts file not found at {PROMPTS}")
    return load_edit_criteria(PROMPTS)


@pytest.fixture(scope="module")
def small_library():
    return FineMolTexMotifLibrary.from_smiles(["O", "Cl", "N", "C1=CC=CC=C1"])


@pytest.fixture(scope="module")
def sources(zinc_smiles):
    return random.Random(0).sample(zinc_smiles, 6)


# ------------------------------------------------------------------------------------------------ RDKit primitives
def test_remove_terminal_motif_restores_hydrogens():
    # toluene minus its methyl; N-methylpyrrole minus its methyl (aromatic N gets its H back); a bracket
    # stereocentre losing a neighbour gets a hydrogen and stops being a stereocentre
    assert apply_motif_edits("Cc1ccccc1", [([0], None, ())]) == ["c1ccccc1"]
    assert apply_motif_edits("Cn1cccc1", [([0], None, ())]) == [canon("c1cc[nH]c1")]
    assert apply_motif_edits("C[C@@H](N)O", [([2], None, ())]) == ["CCO"]


def test_attach_motif_products():
    products = apply_motif_edits(
        "c1ccccc1",
        [((), "O", ((0, 0),)), ((), "Cl", ((0, 0),)), ((), "C1=CC=CC=C1", ((0, 0),)), ((), "N", ((0, 0),))],
    )
    assert products == ["Oc1ccccc1", "Clc1ccccc1", canon("c1ccc(-c2ccccc2)cc1"), "Nc1ccccc1"]
    # a bracket atom ([nH]) gives up its explicit hydrogen (a methyl onto N: allowed by the valence rule only)
    assert apply_motif_edits("c1cc[nH]c1", [((), "C", ((3, 0),))], attachment="valence") == [canon("Cn1cccc1")]
    assert apply_motif_edits("c1cc[nH]c1", [((), "C", ((3, 0),))], attachment="brics") == [None]


def test_replace_motif_products():
    # chlorobenzene: Cl (atom 0) replaced by OH on the ring carbon it was bonded to
    assert apply_motif_edits("Clc1ccccc1", [([0], "O", ((1, 0),))]) == ["Oc1ccccc1"]
    # a linker replaced with two bonds: CH2 between two rings -> NH (diphenylamine)
    assert apply_motif_edits("c1ccc(Cc2ccccc2)cc1", [([4], "N", ((3, 0),))]) == [None]  # one bond for two anchors
    bonds = ((3, 0), (5, 0))
    assert apply_motif_edits("c1ccc(Cc2ccccc2)cc1", [([4], "N", bonds)]) == [None]  # one atom cannot take both
    assert apply_motif_edits("c1ccc(Cc2ccccc2)cc1", [([4], "CC", ((3, 0), (5, 1)))]) == [canon("c1ccc(CCc2ccccc2)cc1")]


def test_invalid_edits_give_none_never_a_bad_molecule():
    edits = [
        ((), "C", ((1, 0),)),  # quaternary carbon of neopentane has no hydrogen
        ((), "C", ((5, 0),)),  # atom index out of range
        ([1], None, ()),  # removing the centre disconnects the molecule
        ((), "C1CC", ((0, 0),)),  # unparsable fragment
    ]
    assert apply_motif_edits("CC(C)(C)C", edits) == [None, None, None, None]
    assert apply_motif_edits("C[NH3+]", [((), "C", ((1, 0),))]) == [None]  # charged atom
    with pytest.raises(MoleculeParseError, match="C1CC"):
        apply_motif_edits("C1CC", [])
    with pytest.raises(ValueError, match="attachment"):
        apply_motif_edits("CC", [], attachment="anything")


def test_attachment_rules_brics_versus_valence():
    edits = [((), "C", ((1, 0),)), ((), "O", ((1, 0),)), ((), "CC", ((1, 0),))]
    # BRICS: a single-atom substituent only onto carbon; a two-atom motif onto the amine N is a BRICS bond
    assert apply_motif_edits("CNC", edits, attachment="brics") == [None, None, "CCN(C)C"]
    # valence: any single bond with a carbon end (so no N-O)
    assert apply_motif_edits("CNC", edits, attachment="valence") == ["CN(C)C", None, "CCN(C)C"]
    # chain carbon to chain carbon is not a BRICS bond; ring to chain is
    assert apply_motif_edits("CCCC", [((), "C1=CC=CC=C1", ((1, 0),)), ((), "CC(C)C", ((1, 1),))]) == ["CCC(C)c1ccccc1", None]


def test_attachment_atoms_and_similarity():
    assert attachment_atoms("c1ccccc1") == [0]  # one symmetry class
    assert attachment_atoms("c1ccccc1", unique=False) == [0, 1, 2, 3, 4, 5]
    assert attachment_atoms("CC(C)(C)C") == [0]  # the quaternary carbon has no hydrogen
    sims = tanimoto_similarity("CCO", ["CCO", "c1ccccc1"])
    assert sims[0] == pytest.approx(1.0) and 0.0 <= sims[1] < 0.2


# ------------------------------------------------------------------------------------------------ generator
def test_motif_generator_enumerates_expected_edits(small_library):
    generator = FineMolTexMotifEditGenerator(small_library, max_candidates=1000)
    products = {p.smiles for p in generator.propose("Cc1ccccc1")}
    expected = {
        "c1ccccc1",  # remove the methyl motif
        "CC",  # remove the ring motif
        "Cc1ccccc1O", "Cc1cccc(O)c1", "Cc1ccc(O)cc1", "OCc1ccccc1",  # attach OH
        "Cc1ccc(Cl)cc1", "ClCc1ccccc1",  # attach Cl
        "Oc1ccccc1", "Clc1ccccc1", "Nc1ccccc1",  # replace the methyl
        "c1ccc(Cc2ccccc2)cc1",  # attach benzene to the methyl
    }
    assert expected <= products
    assert "Cc1ccccc1" not in products
    assert all(is_valid_smiles(s) and canon(s) == s for s in products)
    assert {p.operation for p in generator.propose("Cc1ccccc1")} == {"remove", "attach", "replace"}


def test_motif_generator_is_deterministic_and_order_independent(zinc_smiles):
    vocab = MotifVocab.build(zinc_smiles[:200])
    library = FineMolTexMotifLibrary.from_vocab(vocab, max_size=24)
    molecules = [canon(s) for s in zinc_smiles[200:206]]
    a = FineMolTexMotifEditGenerator(library, max_candidates=12, seed=3)
    b = FineMolTexMotifEditGenerator(library, max_candidates=12, seed=3)
    first = [a.propose(s) for s in molecules]
    second = [b.propose(s) for s in reversed(molecules)][::-1]
    assert first == second
    other = [FineMolTexMotifEditGenerator(library, max_candidates=12, seed=4).propose(s) for s in molecules]
    assert other != first  # the seed matters (12 of hundreds of possible edits)
    for props in first:
        assert 0 < len(props) <= 12
        assert len({p.smiles for p in props}) == len(props)
        assert all(is_valid_smiles(p.smiles) for p in props)


def test_library_leaves_out_unusable_motifs():
    library = FineMolTexMotifLibrary.from_smiles(["O", "[Na+]", "C1CC", "*C", "C.C", "C" * 20, "[HH]", "Cl"], max_atoms=12)
    assert library.smiles == ["O", "Cl"]
    with pytest.raises(ValueError, match="empty"):
        FineMolTexMotifLibrary.from_smiles(["[Na+]"])


# ------------------------------------------------------------------------------------------------ search
class ToyGenerator(FineMolTexEditGenerator):
    """Proposes a fixed list whatever the molecule, including an invalid SMILES and the source itself."""

    name = "toy"

    def __init__(self, proposals):
        self.proposals = proposals
        self.calls = []

    def propose(self, smiles, instruction=None):
        self.calls.append((smiles, instruction))
        return [FineMolTexEditProposal(s, "toy") for s in self.proposals + [smiles]]


class OxygenScorer(FineMolTexEditScorer):
    """Counts oxygens: a transparent stand-in for a text model ('more O' is the instruction)."""

    def text_similarity(self, smiles, instruction):
        return np.array([s.count("O") for s in smiles], dtype=np.float64)


def test_pluggable_generator_and_lambda():
    generator = ToyGenerator(["CCCO", "OCCO", "C1CC", "CCCC"])
    editor = FineMolTexMoleculeEditor(generator, OxygenScorer(), lambdas=[0.0, 100.0], beam_width=2, num_steps=1)
    out = editor.edit(["CCCC(C)C"], "more oxygen")
    result = out.results[0]
    assert generator.calls == [(canon("CCCC(C)C"), "more oxygen")]
    assert result.edits[0.0].smiles == "OCCO"  # the scorer alone
    assert result.edits[100.0].smiles == "CCCC"  # dominated by Tanimoto to the source
    assert result.edits[0.0].steps == ["toy"]
    assert out.num_invalid_proposals == 1  # C1CC dropped, never returned
    assert result.num_scored == 3  # CCCO, OCCO, CCCC; the source itself is never a candidate


class ScaledOxygenScorer(OxygenScorer):
    def __init__(self, factor):
        self.factor = factor

    def text_similarity(self, smiles, instruction):
        return self.factor * super().text_similarity(smiles, instruction) + 3.0


def test_zscore_text_scores_make_lambda_scale_free():
    def best(factor, text_scores):
        editor = FineMolTexMoleculeEditor(ToyGenerator(["CCCO", "OCCO", "CCCC"]), ScaledOxygenScorer(factor),
                                          lambdas=[1.0], num_steps=1, text_scores=text_scores)
        return editor.edit(["CCCC(C)C"], "more oxygen").results[0].edits[1.0]

    # raw: a scorer with tiny spread leaves the choice to Tanimoto, a wide one to the text
    assert best(0.001, "raw").smiles == "CCCC" and best(100.0, "raw").smiles == "OCCO"
    # zscore: the same choice and score whatever the scale and offset of the scorer
    small, large = best(0.001, "zscore"), best(100.0, "zscore")
    assert small.smiles == large.smiles and small.score == pytest.approx(large.score)
    assert large.text_similarity == pytest.approx(100.0 * large.smiles.count("O") + 3.0)  # reported raw
    with pytest.raises(ValueError, match="text_scores"):
        FineMolTexMoleculeEditor(ToyGenerator([]), OxygenScorer(), text_scores="rank")


def test_beam_search_two_steps_and_determinism(sources, small_library):
    def run(seed):
        generator = FineMolTexMotifEditGenerator(small_library, max_candidates=10, seed=seed)
        editor = FineMolTexMoleculeEditor(generator, FineMolTexRandomScorer(seed), lambdas=[0.0, 1.0], beam_width=2, num_steps=2)
        return editor.edit(sources, "This molecule contains hydroxyl groups.")

    a, b = run(0), run(0)
    assert [[(lam, e.smiles, e.score) for lam, e in r.edits.items()] for r in a.results] == [
        [(lam, e.smiles, e.score) for lam, e in r.edits.items()] for r in b.results
    ]
    two_step = [e for r in a.results for e in r.edits.values() if len(e.steps) == 2]
    assert two_step  # the search goes beyond one edit
    for r in a.results:
        for e in r.edits.values():
            assert is_valid_smiles(e.smiles) and e.smiles != r.canonical_source
            assert e.source_similarity == pytest.approx(tanimoto_similarity(r.canonical_source, [e.smiles])[0])


def test_random_scorer_ignores_text():
    scorer = FineMolTexRandomScorer(seed=1)
    x = scorer.text_similarity(["CCO", "CCN"], "soluble")
    assert np.array_equal(x, scorer.text_similarity(["CCO", "CCN"], "insoluble"))
    assert np.array_equal(x[::-1], scorer.text_similarity(["CCN", "CCO"], "soluble"))
    assert np.all((x >= -1) & (x < 1)) and x[0] != x[1]


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_input(small_library):
    editor = FineMolTexMoleculeEditor(FineMolTexMotifEditGenerator(small_library, max_candidates=8),
                                      FineMolTexRandomScorer(0), lambdas=[0.0], num_steps=1)
    out = editor.edit(["CCO", "C1CC", "[Na+]", "", "Cc1ccccc1"], "This molecule is soluble in water.")
    status = [r.status for r in out.results]
    assert status == ["edited", "invalid_source", "no_edit", "invalid_source", "edited"]
    assert out.num_invalid_sources == 2 and out.num_no_edit == 1
    assert "C1CC" in out.results[1].message
    assert out.results[2].edits == {0.0: None} and "no valid edit" in out.results[2].message
    for r in out.results:
        for e in r.edits.values():
            assert e is None or is_valid_smiles(e.smiles)
    for bad in ("", "   ", None):
        with pytest.raises(ValueError, match="Empty instruction"):
            editor.edit(["CCO"], bad)
    with pytest.raises(ValueError, match="index 1"):
        edit_molecules(["CCO"], ["This molecule is soluble in water.", " "], editor)


def test_unknown_instruction_is_edited_but_not_evaluable(small_library, criteria):
    editor = FineMolTexMoleculeEditor(FineMolTexMotifEditGenerator(small_library, max_candidates=8),
                                      FineMolTexRandomScorer(0), lambdas=[0.0], num_steps=1)
    result = edit_molecules(["CCO"], ["This molecule smells of roses."], editor, criteria)
    (row,) = result["rows"]
    assert row["evaluable"] is False and row["edited"] and is_valid_smiles(row["edited"])
    assert "success_loose" not in row and row["source_MolLogP"] == pytest.approx(molecule_descriptors("CCO")["MolLogP"])
    assert result["summary"][0]["hit_ratio_loose"] is None
    assert "not in the criteria file" in result["summary"][0]["reason"]
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        write_edit_results(result, "edits.txt")


# ------------------------------------------------------------------------------------------------ criteria
def test_property_criteria_by_hand(criteria):
    soluble = find_criterion("this molecule is  soluble in water.", criteria)  # case and spaces do not matter
    assert soluble.prompt_id == 101
    # MolLogP: hexane 2.59, 1-pentanol 1.17 (delta -1.42, beyond the strict 0.5), heptane 2.98
    assert soluble.holds("CCCCCC", "CCCCCO", "loose") and soluble.holds("CCCCCC", "CCCCCO", "strict")
    assert not soluble.holds("CCCCCC", "CCCCCCC", "loose")
    donors = find_criterion("This molecule has more hydrogen bond donors.", criteria)
    assert donors.holds("c1ccccc1", "Oc1ccccc1", "loose")  # 0 -> 1 donor
    assert not donors.holds("c1ccccc1", "Oc1ccccc1", "strict")  # strict needs more than 1 more
    assert donors.holds("c1ccccc1", "Nc1ccc(O)cc1", "strict")  # 0 -> 2
    both = find_criterion("This molecule is soluble in water and has high permeability.", criteria)
    assert both.prompt_id == 205
    assert not both.holds("CCCCCC", "CCCCCO", "loose")  # LogP down but TPSA up (0 -> 20.2)
    assert not both.holds("CCCCCCO", "CCCCO", "loose")  # LogP down, TPSA the same: not strictly lower
    assert both.holds("CCCCOC(=O)C", "CCOC", "loose") is True  # LogP 1.4 -> 0.6, TPSA 26.3 -> 9.2


def test_similarity_and_motif_criteria_by_hand(criteria):
    penicillin = find_criterion("This molecule looks like Penicillin.", criteria)
    reference = penicillin.reference_smiles
    assert penicillin.holds("CCCC", reference) and not penicillin.holds(reference, "CCCC")
    assert penicillin.holds("CCCC", reference, "strict") is None  # no strict threshold for similarity
    amino = find_criterion("This molecule has amino groups.", criteria)
    assert amino.holds("Cc1ccccc1", "NCc1ccccc1") and not amino.holds("Cc1ccccc1", "NC(=O)c1ccccc1")
    hydroxyl = find_criterion("This molecule contains hydroxyl groups.", criteria)
    assert hydroxyl.fragment_counters == ["fr_Al_OH", "fr_phenol"]
    assert hydroxyl.holds("CC", "CCO") and hydroxyl.holds("c1ccccc1", "Oc1ccccc1")
    assert not hydroxyl.holds("CC", "CC(=O)O")  # a carboxylic acid is not a hydroxyl group here
    chloride = find_criterion("This molecule is chloride.", criteria)
    assert chloride.holds("CC", "CCCl") and not chloride.holds("CC", "CCBr")
    for text in ("This molecule has high bioavailability.", criteria_text_401(criteria)):
        c = find_criterion(text, criteria)
        assert not c.evaluable and c.holds("CC", "CCO") is None


def criteria_text_401(criteria):
    return next(c.text for c in criteria.values() if c.prompt_id == 401)


def test_evaluate_edits_any_lambda_and_exclusion(criteria):
    benzene = find_criterion("This molecule contains benzene.", criteria)

    class FixedGenerator(FineMolTexEditGenerator):
        table = {"CCCCCCCC": ["CCCCCCCCc1ccccc1", "CCO"], canon("Cc1ccccc1"): ["c1ccccc1"], "CC": ["CCO"]}

        def propose(self, smiles, instruction=None):
            return [FineMolTexEditProposal(s, "fixed") for s in self.table.get(smiles, [])]

    class PreferO(FineMolTexEditScorer):
        def text_similarity(self, smiles, instruction):
            return np.array([float("O" in s) for s in smiles])

    editor = FineMolTexMoleculeEditor(FixedGenerator(), PreferO(), lambdas=[0.0, 10.0], num_steps=1)
    out = editor.edit(["CCCCCCCC", "Cc1ccccc1", "CC", "C1C"], benzene.text)
    ev = evaluate_edits(out, benzene)
    # toluene already has benzene: excluded; octane: lambda 0 picks ethanol (miss), lambda 10 picks the more similar
    # octylbenzene (Tanimoto 0.40 against 0.27; a hit) -> a hit; CC -> CCO: a miss; C1C is invalid and not counted
    assert (ev.num_sources, ev.num_excluded, ev.hits_loose) == (2, 1, 1)
    assert ev.hit_ratio_loose == pytest.approx(50.0) and ev.hit_ratio_strict is None
    assert ev.per_source == {0: {"loose": True, "strict": None}, 2: {"loose": False, "strict": None}}
    not_evaluable = evaluate_edits(out, find_criterion("This molecule has low toxicity.", criteria))
    assert not not_evaluable.evaluable and not_evaluable.hit_ratio_loose is None


# ------------------------------------------------------------------------------------------------ model scorer
@pytest.fixture(scope="module")
def processor(zinc_smiles, text_tokenizer):
    vocab = MotifVocab.build(zinc_smiles[:300], target_min_frequency=5)
    return FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), text_tokenizer, max_text_length=64)


@pytest.fixture(scope="module")
def model(processor):
    vocab = processor.graph_tokenizer.motif_vocab
    config = FineMolTexConfig.from_preset(
        "tiny", motif_vocab_size=len(vocab), num_motif_targets=max(vocab.num_targets, 1), max_motif_positions=512,
        text_config={"vocab_size": len(processor.tokenizer)},
    )
    torch.manual_seed(0)
    return FineMolTexModel(config).eval()


def test_benchmark_paired_bootstrap_of_group_differences():
    bench = load_example("bench_editing", folder="benchmarks")
    rng = np.random.default_rng(0)
    nan = float("nan")
    coin = rng.random((3, 200)) < 0.4
    hits = {
        "random": {1: coin[0].astype(float), 2: coin[1].astype(float)},
        "full": {1: coin[0].astype(float), 2: np.where(np.arange(200) < 20, nan, 1.0)},  # 20 sources not counted
        "contrastive": {1: coin[2].astype(float), 2: coin[1].astype(float)},
    }
    pairs = [("full", "random"), ("contrastive", "random")]
    out = bench.paired_bootstrap(hits, pairs, {"one": [1], "both": [1, 2]}, num_samples=500, seed=0)
    same = out["one"]["full - random"]  # identical hits: no difference, whatever the resample
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0}
    both = out["both"]["full - random"]  # prompt 2: 100% (of 180 counted) vs 40%, prompt 1 the same: half of that
    assert both["difference"] == pytest.approx((100.0 - 100.0 * coin[1].mean()) / 2)
    assert both["low"] < both["difference"] < both["high"] and both["high"] - both["low"] < 10
    independent = out["one"]["contrastive - random"]  # two independent 40% coins: an interval of several points
    assert independent["low"] < independent["difference"] < independent["high"]
    assert 8 < independent["high"] - independent["low"] < 30
    assert out == bench.paired_bootstrap(hits, pairs, {"one": [1], "both": [1, 2]}, num_samples=500, seed=0)


def test_model_scorer_matches_direct_cosine_and_caches(model, processor, sources):
    scorer = FineMolTexModelScorer(model, processor, batch_size=4)
    text = "This molecule is soluble in water."
    smiles = [canon(s) for s in sources]
    sims = scorer.text_similarity(smiles, text)
    with torch.no_grad():
        batch = processor(smiles=smiles, return_tensors="pt")
        graph = model.get_graph_features(**{k: v for k, v in batch.items() if k.startswith(("graph_", "motif_"))})
        words = processor(text=[text], return_tensors="pt")
        words = model.get_text_features(input_ids=words["input_ids"], attention_mask=words["attention_mask"])
    np.testing.assert_allclose(sims, (graph @ words[0]).double().numpy(), atol=1e-5)
    assert scorer.num_embedded == len(smiles)
    again = scorer.text_similarity(list(reversed(smiles)), text)
    assert scorer.num_embedded == len(smiles)  # cached
    np.testing.assert_allclose(again, sims[::-1], atol=1e-6)
    other = scorer.text_similarity(smiles, "This molecule contains benzene.")
    assert not np.allclose(other, sims)  # the text matters


def test_editor_with_model_scorer_end_to_end(model, processor, sources, criteria):
    library = FineMolTexMotifLibrary.from_vocab(processor.graph_tokenizer.motif_vocab, max_size=16)
    editor = FineMolTexMoleculeEditor(FineMolTexMotifEditGenerator(library, max_candidates=8),
                                      FineMolTexModelScorer(model, processor, batch_size=16), lambdas=[0.0, 1.0], num_steps=2)
    text = "This molecule is insoluble in water."
    out = editor.edit(sources, text)
    ev = evaluate_edits(out, find_criterion(text, criteria))
    assert ev.evaluable and ev.num_sources == len(sources) and 0.0 <= ev.hit_ratio_loose <= 100.0
    for r in out.results:
        assert r.status == "edited"
        best = r.edits[0.0]
        assert is_valid_smiles(best.smiles)
        assert best.score == pytest.approx(best.text_similarity)


# ------------------------------------------------------------------------------------------------ example
def _load_example():
    return load_example("edit_molecules")


def test_example_script(tmp_path, model, processor, sources, criteria):
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    smiles_file = tmp_path / "in.smi"
    smiles_file.write_text("smiles\n" + "\n".join(sources[:3] + ["not_a_smiles"]) + "\n")
    example = _load_example()
    common = ["--input_file", str(smiles_file), "--model_name_or_path", str(tmp_path / "model"),
              "--criteria_file", str(PROMPTS), "--num_steps", "1", "--max_candidates", "6", "--lambdas", "0", "1"]
    result = example.main(common + ["--output_file", str(tmp_path / "out.json"),
                                    "--instructions", "This molecule has amino groups.", "Make it purple."])
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(result["summary"]))
    amino, purple = saved["summary"]
    assert amino["evaluable"] and amino["num_invalid_sources"] == 1 and amino["prompt_id"] == 501
    assert not purple["evaluable"] and purple["hit_ratio_loose"] is None
    rows = saved["rows"]
    assert len(rows) == 2 * (3 * 2 + 1)  # per instruction: 3 molecules x 2 lambdas + the invalid one
    invalid = [r for r in rows if r["status"] == "invalid_source"]
    assert len(invalid) == 2 and all(r["source"] == "not_a_smiles" and r["edited"] is None for r in invalid)
    edited = [r for r in rows if r["status"] == "edited"]
    assert all(is_valid_smiles(r["edited"]) for r in edited)
    assert all("source_matches[[NX3;H2,H1;!$(NC=O)]]" in r for r in edited if r["prompt_id"] == 501)
    # CSV, random scorer without a model
    example.main(["--input_file", str(smiles_file), "--output_file", str(tmp_path / "out.csv"), "--scorer", "random",
                  "--num_steps", "1", "--max_candidates", "4", "--instructions", "This molecule is soluble in water."])
    with open(tmp_path / "out.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 3 * 3 + 1 and {r["status"] for r in csv_rows} == {"edited", "invalid_source"}
    with pytest.raises(ValueError, match="Empty instruction at index 0"):
        example.main(common + ["--output_file", str(tmp_path / "x.json"), "--instructions", "  "])
