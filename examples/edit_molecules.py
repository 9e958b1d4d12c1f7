#!/usr/bin/env python
"""Text-guided molecule editing at the motif level with a FineMolTex model.

    python examples/edit_molecules.py --model_name_or_path path/to/finemoltex \\
        --input_file molecules.smi --instructions "This molecule is soluble in water." \\
        --criteria_file ../shared/data/molecule_editing/prompts.json --output_file edits.json

Each molecule of ``--input_file`` (one SMILES per line) is edited towards each instruction by beam search over
motif edits (remove a terminal motif, attach or replace a motif from the model's motif vocabulary), scored by the
model's text–molecule similarity plus lambda x Tanimoto similarity to the source, once per ``--lambdas`` value (see
`modeling_finemoltex.editing_finemoltex`). The output (``.json`` or ``.csv``) has one row per molecule and lambda:
the edited SMILES, its scores, the properties the instruction is about before and after, and, for instructions in
``--criteria_file``, whether the edit succeeds (loose and strict). Invalid input SMILES are reported and counted,
never edited; instructions the criteria file does not know are edited and marked not evaluable.

``--scorer random`` ignores the text (a baseline); it needs no model (the motif library then comes from
``--motif_vocab_file`` or from the input molecules).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import modeling_finemoltex  # noqa: E402,F401  (registers the Auto classes)
from modeling_finemoltex.arguments_finemoltex import parse_script_arguments, run_script  # noqa: E402
from modeling_finemoltex.editing_finemoltex import (  # noqa: E402
    FineMolTexModelScorer,
    FineMolTexMoleculeEditor,
    FineMolTexMotifEditGenerator,
    FineMolTexMotifLibrary,
    FineMolTexRandomScorer,
    edit_molecules,
    load_edit_criteria,
    read_smiles_file,
    write_edit_results,
)
from modeling_finemoltex.tokenization_finemoltex import MotifVocab  # noqa: E402

logger = logging.getLogger("edit_molecules")


@dataclass
class EditArguments:
    input_file: str = field(metadata={"help": "Molecules to edit: one SMILES per line."})
    output_file: str = field(metadata={"help": "Where to write the edits (.json or .csv)."})
    instructions: list[str] = field(default_factory=list, metadata={"help": "Edit instructions (texts)."})
    instructions_file: str | None = field(default=None, metadata={"help": "More instructions, one per line."})
    model_name_or_path: str | None = field(default=None, metadata={"help": "A saved FineMolTex folder (model + processor)."})
    scorer: str = field(default="model", metadata={"help": "model: the model's similarity; random: ignores the text.", "choices": ["model", "random"]})
    criteria_file: str | None = field(default=None, metadata={"help": "prompts.json with success criteria (optional)."})
    motif_vocab_file: str | None = field(default=None, metadata={"help": "Motif vocabulary for the library (default: the model's)."})
    lambdas: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0], metadata={"help": "Weights of the Tanimoto similarity to the source."})
    beam_width: int = field(default=3, metadata={"help": "Candidates kept after each edit step (beam search)."})
    num_steps: int = field(default=2, metadata={"help": "Edits in a row at most."})
    max_candidates: int = field(default=48, metadata={"help": "Candidate edits drawn per molecule and step."})
    library_size: int = field(default=48, metadata={"help": "Most frequent motifs of the vocabulary used as library."})
    max_motif_atoms: int = field(default=12, metadata={"help": "Largest library motif (heavy atoms)."})
    attachment: str = field(default="brics", metadata={"help": "Which new bonds are allowed.", "choices": ["brics", "valence"]})
    text_scores: str = field(
        default="raw",
        metadata={"help": "raw: similarity as it is; zscore: standardised per source (lambda independent of the scorer's scale).",
                  "choices": ["raw", "zscore"]},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the candidate draws (and of --scorer random)."})
    batch_size: int = field(default=128, metadata={"help": "Molecules per forward pass of the scorer."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda ... (default: cuda if available)."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 autocast on CUDA."})


def build_editor(args: EditArguments, smiles: list[str]) -> FineMolTexMoleculeEditor:
    """Scorer, motif library and generator from the arguments."""
    vocab = MotifVocab.load(args.motif_vocab_file) if args.motif_vocab_file else None
    if args.scorer == "model":
        if not args.model_name_or_path:
            raise ValueError("--scorer model needs --model_name_or_path (or use --scorer random).")
        import torch

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        scorer = FineMolTexModelScorer.from_pretrained(args.model_name_or_path, batch_size=args.batch_size, device=device, bf16=args.bf16)
        vocab = vocab or scorer.processor.graph_tokenizer.motif_vocab
    else:
        scorer = FineMolTexRandomScorer(seed=args.seed)
    if vocab is None or not vocab.motifs:
        logger.info("No motif vocabulary given: counting the motifs of the input molecules.")
        vocab = MotifVocab.build(smiles)
    library = FineMolTexMotifLibrary.from_vocab(vocab, max_size=args.library_size, max_atoms=args.max_motif_atoms)
    generator = FineMolTexMotifEditGenerator(
        library, max_candidates=args.max_candidates, attachment=args.attachment, seed=args.seed
    )
    return FineMolTexMoleculeEditor(
        generator, scorer, lambdas=args.lambdas, beam_width=args.beam_width, num_steps=args.num_steps, text_scores=args.text_scores
    )


def main(args=None) -> dict:
    """Run from the command line or with a list of arguments; returns what was written (rows and summary)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (edit_args,) = parse_script_arguments(EditArguments, args, description=__doc__)
    instructions = list(edit_args.instructions)
    if edit_args.instructions_file:
        with open(edit_args.instructions_file, encoding="utf-8") as f:
            instructions += [line.rstrip("\n") for line in f if line.strip()]
    if not instructions:
        raise ValueError("No instruction: pass --instructions TEXT [TEXT ...] or --instructions_file.")
    for k, text in enumerate(instructions):  # before loading anything
        if not text.strip():
            raise ValueError(f"Empty instruction at index {k}: {text!r}")
    smiles = read_smiles_file(edit_args.input_file)
    criteria = load_edit_criteria(edit_args.criteria_file) if edit_args.criteria_file else None
    editor = build_editor(edit_args, smiles)
    result = edit_molecules(smiles, instructions, editor, criteria)
    path = write_edit_results(result, edit_args.output_file, settings=asdict(edit_args))
    for s in result["summary"]:
        logger.info(
            "%r: %d molecules (%d invalid, %d without edit); hit ratio loose %s, strict %s",
            s["instruction"], s["num_sources"], s["num_invalid_sources"], s["num_no_edit"],
            "n/a" if s["hit_ratio_loose"] is None else f"{s['hit_ratio_loose']:.1f}%",
            "n/a" if s["hit_ratio_strict"] is None else f"{s['hit_ratio_strict']:.1f}%",
        )
    logger.info("Wrote %s", path)
    print(json.dumps(result["summary"], indent=1))
    return result


if __name__ == "__main__":
    run_script(main)
