# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""`FineMolTexPipeline`: molecule and text embeddings, and molecule <-> text ranking, as a transformers `Pipeline`.

    from transformers import pipeline
    pipe = pipeline("molecule-text-retrieval", model="path/or/repo", trust_remote_code=True)
    pipe(smiles=["CCO", "c1ccccc1O"])                                # molecule embeddings
    pipe(text="The molecule is a primary alcohol.")                  # text embedding
    pipe(smiles="CCO", candidate_texts=["an alcohol", "an arene"])    # rank texts for a molecule
    pipe(text="an aromatic alcohol", candidate_smiles=["CCO", "c1ccccc1O"], top_k=1)  # rank molecules for a text

Embeddings are the contrastive ones (`FineMolTexModel.get_graph_features` / `get_text_features`: L2-normalised,
no co-attention), computed in batches by `embed_molecules` / `embed_texts`; scores are their dot products, i.e.
cosine similarities in [-1, 1].

Bad items never fail the call: an unparsable SMILES (or one above the graph tokenizer's ``max_atoms``), an empty
text or one that is not valid Unicode (a lone surrogate) gets ``"error"`` (naming its index, the string cut for
display and RDKit's reason) in place of its result, and a bad candidate is listed under ``"invalid_candidates"``.
Misuse of the call itself (no inputs, unknown keys, a query without a matching candidate list) raises.
``max_seconds`` bounds a call's time: checked between batches, it raises `RequestTimeoutError` (a `TimeoutError`).

This file is copied into exported model folders as remote code: relative imports only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Sequence

import torch
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .retrieval_finemoltex import embed_molecules, embed_texts

#: Task name under which the pipeline is registered (and recorded in exported configs' ``custom_pipelines``).
PIPELINE_TASK = "molecule-text-retrieval"
#: Keys of a request (keyword arguments of `FineMolTexPipeline.__call__`, or of a dict passed as `inputs`).
REQUEST_KEYS = ("smiles", "text", "candidate_smiles", "candidate_texts")
DEFAULT_BATCH_SIZE = 64
_SHOWN_CHARS = 80


class RequestTimeoutError(TimeoutError):
    """A call ran past its ``max_seconds`` (checked between batches of molecules or texts)."""


def _shown(value: Any) -> str:
    """``repr(value)`` cut to about 80 characters for an error message."""
    text = repr(value[: _SHOWN_CHARS + 1] if isinstance(value, str) else value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 20] + "…"


def _unicode_problem(text: str) -> int | None:
    """Position of the first character that UTF-8 cannot encode (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return err.start
    return None

# mode -> (query kind, candidate kind); kind is "smiles" or "text"
_MODES = {
    "embed_molecules": ("smiles", None),
    "embed_texts": ("text", None),
    "rank_texts": ("smiles", "text"),
    "rank_molecules": ("text", "smiles"),
}


def _request_mode(request: dict) -> str:
    """Which of the four jobs a request asks for; `ValueError` saying what is wrong otherwise."""
    given = {key for key in REQUEST_KEYS if request.get(key) is not None}
    if given == {"smiles"}:
        return "embed_molecules"
    if given == {"text"}:
        return "embed_texts"
    if given == {"smiles", "candidate_texts"}:
        return "rank_texts"
    if given == {"text", "candidate_smiles"}:
        return "rank_molecules"
    raise ValueError(
        f"Cannot tell what to do with the fields {sorted(given) or 'none'}. Give `smiles` (molecule embeddings), "
        "`text` (text embeddings), `smiles` + `candidate_texts` (rank texts for each molecule) or `text` + "
        "`candidate_smiles` (rank molecules for each text)."
    )


def _as_items(value: Any, name: str) -> tuple[list, bool]:
    """A string or a list of items -> (items, whether a single string was given). Items are checked later, one by
    one, so that one bad item does not fail the others."""
    if isinstance(value, str):
        return [value], True
    if isinstance(value, (list, tuple)):
        return list(value), False
    raise TypeError(f"`{name}` must be a string or a list of strings, got {type(value).__name__}")


@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class FineMolTexPipeline(Pipeline):
    """Embeddings of molecules (SMILES) and texts, and ranking of texts for a molecule / molecules for a text.

    Built by ``pipeline("molecule-text-retrieval", model=..., trust_remote_code=True)`` (every folder the package
    saves carries this file and names it in ``custom_pipelines``, and transformers runs such a folder's own copy only
    when trusted; with the package imported, ``pipeline_class=FineMolTexPipeline`` uses the installed one) or directly as ``FineMolTexPipeline(model=model, processor=processor)``; the model is a
    `FineMolTexModel` (or anything with ``get_graph_features`` / ``get_text_features``, such as
    `FineMolTexForPreTraining`) and the processor a `FineMolTexProcessor`.

    Call with keywords (or one dict of them as ``inputs``; a list of such dicts gives a list of results):

    - ``smiles``: one SMILES or a list -> per molecule ``{"index", "smiles", "embedding"}`` (P floats,
      P = ``config.projection_dim``), or ``{"index", "smiles", "error"}``;
    - ``text``: one text or a list -> per text ``{"index", "text", "embedding"}`` or ``{"index", "text", "error"}``;
    - ``smiles`` + ``candidate_texts``: per molecule ``{"index", "smiles", "ranking", "invalid_candidates"}``, the
      ranking a list of ``{"index", "text", "score"}`` by decreasing score (index: position in
      ``candidate_texts``);
    - ``text`` + ``candidate_smiles``: per text ``{"index", "text", "ranking", "invalid_candidates"}``, the ranking
      a list of ``{"index", "smiles", "score"}``; unparsable candidates are left out of the ranking and listed
      (``{"index", "smiles", "error"}``) under ``invalid_candidates``.

    A single string as query gives one result dict, a list gives a list. Parameters: ``top_k`` (keep the best k
    candidates; default all), ``batch_size`` (molecules or texts per model call; default 64, or the
    ``batch_size`` given to ``pipeline(...)``), ``return_tensors`` (embeddings as float32 tensors of shape (P,)
    instead of lists).
    """

    # The processor (graph tokenizer + text tokenizer) is mandatory; nothing else is loaded.
    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None or not hasattr(self.processor, "graph_tokenizer"):
            raise ValueError(
                "FineMolTexPipeline needs the model's FineMolTexProcessor (graph tokenizer + text tokenizer): pass "
                "`processor=`, or a model folder/repo that holds processor_config.json and graph_tokenizer/."
            )
        towers = getattr(self.model, "finemoltex", self.model)  # FineMolTexForPreTraining keeps them inside
        if not all(hasattr(towers, m) for m in ("get_graph_features", "get_text_features")):
            raise TypeError(
                f"{type(self.model).__name__} has no get_graph_features/get_text_features; load the model with AutoModel."
            )
        # Each request is batched inside `_forward` (embed_molecules / embed_texts), so the DataLoader that
        # `Pipeline.__call__` builds for a list of requests must hand over one request at a time.
        self.embedding_batch_size = int(self._batch_size or DEFAULT_BATCH_SIZE)
        self._batch_size = None

    # ------------------------------------------------------------------------------------------------ call
    def __call__(
        self,
        inputs: dict | Sequence[dict] | None = None,
        *,
        smiles: str | Sequence[str] | None = None,
        text: str | Sequence[str] | None = None,
        candidate_smiles: Sequence[str] | None = None,
        candidate_texts: Sequence[str] | None = None,
        batch_size: int | None = None,
        **kwargs,
    ):
        """See the class docstring. ``inputs``: a request dict with the keys of `REQUEST_KEYS` (as the Inference
        Endpoints handler passes it), or a list of them."""
        keywords = {"smiles": smiles, "text": text, "candidate_smiles": candidate_smiles, "candidate_texts": candidate_texts}
        given = {k: v for k, v in keywords.items() if v is not None}
        if inputs is None:
            request = given
        elif isinstance(inputs, dict) or (isinstance(inputs, list) and inputs and all(isinstance(r, dict) for r in inputs)):
            if given:
                raise ValueError(f"Give the request either as `inputs` or as keywords, not both (got {sorted(given)}).")
            request = inputs
        else:
            # a bare string would be ambiguous: SMILES and text are both strings
            raise TypeError(
                f"`inputs` must be a request dict (keys {', '.join(REQUEST_KEYS)}) or a list of them, got "
                f"{type(inputs).__name__}; pass molecules as `smiles=` and texts as `text=`."
            )
        for one in request if isinstance(request, list) else [request]:
            unknown = sorted(set(one) - set(REQUEST_KEYS))
            if unknown:
                raise ValueError(f"Unknown request field(s) {unknown}; expected some of {list(REQUEST_KEYS)}.")
        # (`Pipeline.__call__` would take `batch_size` for its DataLoader: it sizes the model calls here instead)
        if batch_size is not None:
            kwargs["embedding_batch_size"] = batch_size
        return super().__call__(request, **kwargs)

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        embedding_batch_size: int | None = None,
        return_tensors: bool | None = None,
        max_seconds: float | None = None,
        **unknown,
    ):
        if unknown:
            raise TypeError(f"Unknown FineMolTexPipeline parameter(s): {sorted(unknown)}")
        forward, postprocess = {}, {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"`top_k` must be a positive integer, got {top_k!r}")
            postprocess["top_k"] = top_k
        if embedding_batch_size is not None:
            if isinstance(embedding_batch_size, bool) or not isinstance(embedding_batch_size, int) or embedding_batch_size < 1:
                raise ValueError(f"`batch_size` must be a positive integer, got {embedding_batch_size!r}")
            forward["batch_size"] = embedding_batch_size
        if return_tensors is not None:
            postprocess["return_tensors"] = bool(return_tensors)
        if max_seconds is not None:
            if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
                raise ValueError(f"`max_seconds` must be a positive number, got {max_seconds!r}")
            forward["max_seconds"] = float(max_seconds)
        return {}, forward, postprocess

    # ------------------------------------------------------------------------------------------------ steps
    def preprocess(self, request: dict) -> dict:
        """Check the request's shape: -> {"mode", "queries", "single", "candidates"} (items still unchecked)."""
        if not isinstance(request, dict):
            raise TypeError(f"A request must be a dict, got {type(request).__name__}")
        mode = _request_mode(request)
        query_kind, candidate_kind = _MODES[mode]
        queries, single = _as_items(request[query_kind], query_kind)
        candidates = None
        if candidate_kind is not None:
            name = f"candidate_{'texts' if candidate_kind == 'text' else 'smiles'}"
            candidates, lone = _as_items(request[name], name)
            if lone:
                raise TypeError(f"`{name}` must be a list (of candidates to rank), got a single string")
            if not candidates:
                raise ValueError(f"`{name}` is empty: nothing to rank")
        if not queries:
            raise ValueError(f"`{query_kind}` is an empty list")
        return {"mode": mode, "queries": queries, "single": single, "candidates": candidates}

    def _forward(self, model_inputs: dict, batch_size: int | None = None, max_seconds: float | None = None) -> dict:
        batch_size = batch_size or self.embedding_batch_size
        query_kind, candidate_kind = _MODES[model_inputs["mode"]]
        deadline = None if max_seconds is None else (time.monotonic() + max_seconds, max_seconds)
        out = dict(model_inputs)
        out["query_embeds"], out["query_rows"], out["query_errors"] = self._embed(
            query_kind, model_inputs["queries"], batch_size, deadline
        )
        if candidate_kind is not None:
            out["candidate_embeds"], out["candidate_rows"], out["candidate_errors"] = self._embed(
                candidate_kind, model_inputs["candidates"], batch_size, deadline
            )
        return out

    def postprocess(self, model_outputs: dict, top_k: int | None = None, return_tensors: bool = False):
        query_kind, candidate_kind = _MODES[model_outputs["mode"]]
        queries, rows, errors = model_outputs["queries"], model_outputs["query_rows"], model_outputs["query_errors"]
        embeds = model_outputs["query_embeds"]
        results = []
        if candidate_kind is None:
            for i, item in enumerate(queries):
                record = {"index": i, query_kind: item}
                if i in errors:
                    record["error"] = errors[i]
                else:
                    vector = embeds[rows[i]]
                    record["embedding"] = vector.clone() if return_tensors else vector.tolist()
                results.append(record)
        else:
            candidates = model_outputs["candidates"]
            candidate_rows, candidate_errors = model_outputs["candidate_rows"], model_outputs["candidate_errors"]
            invalid = [{"index": j, candidate_kind: candidates[j], "error": candidate_errors[j]} for j in sorted(candidate_errors)]
            valid = sorted(candidate_rows)  # candidate indices with an embedding
            candidate_matrix = model_outputs["candidate_embeds"]
            if valid:
                candidate_matrix = candidate_matrix[torch.as_tensor([candidate_rows[j] for j in valid])]
            keep = len(valid) if top_k is None else min(top_k, len(valid))
            for i, item in enumerate(queries):
                record = {"index": i, query_kind: item}
                if i in errors:
                    record["error"] = errors[i]
                    results.append(record)
                    continue
                ranking = []
                if valid:
                    scores = candidate_matrix @ embeds[rows[i]]  # cosine similarities (unit vectors)
                    # stable sort: equal scores keep the candidates' input order
                    order = sorted(range(len(valid)), key=lambda r: -float(scores[r]))[:keep]
                    ranking = [
                        {"index": valid[r], candidate_kind: candidates[valid[r]], "score": float(scores[r])} for r in order
                    ]
                record["ranking"] = ranking
                record["invalid_candidates"] = invalid
                results.append(record)
        return results[0] if model_outputs["single"] else results

    # ------------------------------------------------------------------------------------------------ helpers
    def _embed(
        self, kind: str, items: list, batch_size: int, deadline: tuple[float, float] | None = None
    ) -> tuple[torch.Tensor, dict[int, int], dict[int, str]]:
        """Embed the usable items: -> (embeddings (N_ok, P) float32, {item index: row}, {item index: error}).

        ``deadline``: (monotonic time, budget in seconds); checked before each batch of ``batch_size`` items, raising
        `RequestTimeoutError` once passed (a batch in progress finishes).
        """
        what = "SMILES" if kind == "smiles" else "text"
        errors: dict[int, str] = {}
        usable = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                errors[i] = f"{what} at index {i} must be a string, got {type(item).__name__}: {_shown(item)}"
            elif not item.strip():
                errors[i] = f"Empty {what} at index {i}: {_shown(item)}"
            elif kind == "text" and _unicode_problem(item) is not None:
                # (the fast tokenizer would fail the whole batch with a TypeError)
                errors[i] = (
                    f"Text at index {i} is not valid Unicode: a lone surrogate at position {_unicode_problem(item)} "
                    f"({_shown(item)})"
                )
            else:
                usable.append(i)
        parts, rows = [], {}
        for start in range(0, len(usable), batch_size):
            if deadline is not None and time.monotonic() > deadline[0]:
                raise RequestTimeoutError(
                    f"the request ran past its time budget of {deadline[1]:g} s with {len(usable) - start} of "
                    f"{len(usable)} {what} items still to embed; send fewer or smaller items per request"
                )
            chunk = usable[start : start + batch_size]
            strings = [items[i] for i in chunk]
            if kind == "smiles":
                with _quiet(embed_molecules.__module__):  # dropped SMILES are reported per item below, not logged
                    embeds, kept = embed_molecules(
                        self.model, self.processor, strings, batch_size=batch_size, device=self.device, progress=False,
                        ignore_errors=True,
                    )
                kept_items = [chunk[k] for k in kept]
                dropped = set(chunk) - set(kept_items)
                for i in chunk:
                    if i in dropped:
                        errors[i] = self._smiles_error(items[i], i)
            else:
                embeds = embed_texts(self.model, self.processor, strings, batch_size=batch_size, device=self.device, progress=False)
                kept_items = chunk
            for i in kept_items:
                rows[i] = len(rows)
            parts.append(embeds)
        if parts:
            embeds = torch.cat(parts)
        else:  # nothing usable: an empty (0, P) matrix, as the embedding functions give for no items
            embed = embed_molecules if kind == "smiles" else embed_texts
            embeds = embed(self.model, self.processor, [], batch_size=batch_size, device=self.device, progress=False)
            embeds = embeds[0] if isinstance(embeds, tuple) else embeds
        return embeds, rows, errors

    def _smiles_error(self, smiles: str, index: int) -> str:
        """The graph tokenizer's own message for a SMILES that `embed_molecules` dropped (names index, string and
        RDKit's reason)."""
        try:
            self.processor.graph_tokenizer.encode_molecule(smiles, index=index)
        except ValueError as err:
            return str(err)
        return f"SMILES at index {index} could not be encoded: {_shown(smiles)}"


def register_pipeline() -> None:
    """Register `FineMolTexPipeline` as the "molecule-text-retrieval" task (model class: AutoModel), so that
    ``pipeline("molecule-text-retrieval", model=folder)`` works for folders without ``custom_pipelines``."""
    PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=FineMolTexPipeline, pt_model=AutoModel, type="multimodal")


def custom_pipelines_entry() -> dict:
    """The ``custom_pipelines`` value of an exported config.json (what `Pipeline.save_pretrained` writes), so that
    ``pipeline(model=repo, trust_remote_code=True)`` finds this file in the repo."""
    return {
        PIPELINE_TASK: {
            "impl": f"{FineMolTexPipeline.__module__.split('.')[-1]}.{FineMolTexPipeline.__name__}",
            "pt": ["AutoModel"],
            "type": "multimodal",
        }
    }


__all__ = ["FineMolTexPipeline", "PIPELINE_TASK", "REQUEST_KEYS", "RequestTimeoutError", "custom_pipelines_entry", "register_pipeline"]
