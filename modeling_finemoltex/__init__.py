# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""FineMolTex for Hugging Face transformers: molecular graph–text pre-training with motif–word alignment.

Importing the package registers ``model_type="finemoltex"`` with ``AutoConfig``, ``AutoModel``,
``AutoModelForPreTraining``, ``AutoTokenizer`` (the graph tokenizer) and ``AutoProcessor``, and the
``"molecule-text-retrieval"`` pipeline task (`FineMolTexPipeline`).
"""

from transformers import AutoProcessor, AutoTokenizer

from .chemistry_finemoltex import MoleculeParseError
from .configuration_finemoltex import FineMolTexConfig
from .editing_finemoltex import (
    FineMolTexEditCandidate,
    FineMolTexEditCriterion,
    FineMolTexEditEvaluation,
    FineMolTexEditGenerator,
    FineMolTexEditOutput,
    FineMolTexEditProposal,
    FineMolTexEditResult,
    FineMolTexEditScorer,
    FineMolTexModelScorer,
    FineMolTexMoleculeEditor,
    FineMolTexMotifEditGenerator,
    FineMolTexMotifLibrary,
    FineMolTexRandomScorer,
    edit_molecules,
    evaluate_edits,
    load_edit_criteria,
)
from .evaluation_finemoltex import cross_modal_dependence
from .features_finemoltex import FEATURE_SETS, feature_sizes
from .graph_checkpoints_finemoltex import GINCheckpointReport, load_gin_checkpoint
from .graph_pretraining_finemoltex import FineMolTexAttributeMaskingOutput, FineMolTexGraphForAttributeMasking
from .modeling_finemoltex import (
    FineMolTexForMoleculePropertyPrediction,
    FineMolTexForPreTraining,
    FineMolTexModel,
    FineMolTexPreTrainedModel,
    register_auto_classes,
)
from .motifs_finemoltex import MotifDecomposition
from .pipeline_finemoltex import PIPELINE_TASK, FineMolTexPipeline, register_pipeline
from .processing_finemoltex import FineMolTexDataCollator, FineMolTexProcessor
from .retrieval_finemoltex import embed_molecules, embed_texts, evaluate_retrieval
from .tokenization_finemoltex import FineMolTexGraphTokenizer, MotifVocab, collate_graphs

__version__ = "0.1.0.dev0"


def _register() -> None:
    register_auto_classes()
    # The graph tokenizer must resolve by class name, or AutoTokenizer (and so AutoProcessor) silently
    # hands back the text tokenizer in its place.
    AutoTokenizer.register(FineMolTexConfig, slow_tokenizer_class=FineMolTexGraphTokenizer, exist_ok=True)
    AutoProcessor.register(FineMolTexConfig, FineMolTexProcessor, exist_ok=True)
    register_pipeline()


_register()

__all__ = [
    "FEATURE_SETS",
    "FineMolTexAttributeMaskingOutput",
    "FineMolTexConfig",
    "FineMolTexDataCollator",
    "FineMolTexEditCandidate",
    "FineMolTexEditCriterion",
    "FineMolTexEditEvaluation",
    "FineMolTexEditGenerator",
    "FineMolTexEditOutput",
    "FineMolTexEditProposal",
    "FineMolTexEditResult",
    "FineMolTexEditScorer",
    "FineMolTexForMoleculePropertyPrediction",
    "FineMolTexForPreTraining",
    "FineMolTexGraphForAttributeMasking",
    "FineMolTexGraphTokenizer",
    "FineMolTexModel",
    "FineMolTexModelScorer",
    "FineMolTexMoleculeEditor",
    "FineMolTexMotifEditGenerator",
    "FineMolTexMotifLibrary",
    "FineMolTexPipeline",
    "FineMolTexPreTrainedModel",
    "FineMolTexProcessor",
    "FineMolTexRandomScorer",
    "GINCheckpointReport",
    "MoleculeParseError",
    "MotifDecomposition",
    "MotifVocab",
    "PIPELINE_TASK",
    "collate_graphs",
    "cross_modal_dependence",
    "edit_molecules",
    "embed_molecules",
    "embed_texts",
    "evaluate_edits",
    "evaluate_retrieval",
    "feature_sizes",
    "load_edit_criteria",
    "load_gin_checkpoint",
]
