# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Custom handler for Hugging Face Inference Endpoints (copied to the root of an exported repo as ``handler.py``).

The endpoint calls ``EndpointHandler(path)`` once with the repository folder, then ``handler(data)`` per request
with the request's JSON body. This file stands alone (it is imported as a top-level module on the endpoint): it
loads the repo's own `FineMolTexPipeline` through ``pipeline(model=path, trust_remote_code=True)``.

Request::

    {"inputs": {"smiles": "CCO" | ["CCO", ...]},                                  # molecule embeddings
     "inputs": {"text": "..." | ["...", ...]},                                     # text embeddings
     "inputs": {"smiles": ..., "candidate_texts": ["...", ...]},                   # rank texts for each molecule
     "inputs": {"text": ..., "candidate_smiles": ["CCO", ...]},                    # rank molecules for each text
     "parameters": {"top_k": 5}}                                                    # optional

Response: ``{"results": ...}`` (the pipeline's output: a dict for a single query string, a list for a list; an
unparsable SMILES or an empty text gets an ``"error"`` entry in place of its result), or, for a request that
cannot be served, ``{"errors": [{"field": "inputs.smiles[2]", "message": "..."}, ...]}`` listing every problem
found. The handler never raises.

Limits (environment variables of the endpoint): ``FINEMOLTEX_MAX_BATCH_SIZE`` (molecules + texts per request,
default 256), ``FINEMOLTEX_MAX_STRING_LENGTH`` (characters per SMILES or text, default 20000),
``FINEMOLTEX_MAX_REQUEST_ATOMS`` (atoms written in all SMILES of a request, counted from the strings before any
parsing, default 25000) and ``FINEMOLTEX_MAX_REQUEST_SECONDS`` (time budget of one request, default 60; checked
between batches of molecules or texts, so a batch in progress finishes). Each molecule is also capped by the graph
tokenizer's ``max_atoms`` (default 1000): a larger one gets an ``"error"`` entry. A request over the atom budget is
refused before any work; one over the time budget is stopped with an error.

Errors never echo unbounded input: keys and values are cut to about 80 characters, and at most 20 problems are
listed. The handler runs the repository's own code (``trust_remote_code``), so it loads only a local folder; set
``FINEMOLTEX_ALLOW_HUB_CODE=1`` (or ``allow_hub_code=True``) to load a Hub repo id and run its code.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

logger = logging.getLogger(__name__)

REQUEST_FIELDS = ("smiles", "text", "candidate_smiles", "candidate_texts")
PARAMETERS = ("top_k",)
# the field combinations the pipeline serves (query field, candidate field or None)
JOBS = {
    frozenset({"smiles"}): "molecule embeddings",
    frozenset({"text"}): "text embeddings",
    frozenset({"smiles", "candidate_texts"}): "texts ranked for each molecule",
    frozenset({"text", "candidate_smiles"}): "molecules ranked for each text",
}
DEFAULT_MAX_BATCH_SIZE = 256
DEFAULT_MAX_STRING_LENGTH = 20_000
DEFAULT_MAX_REQUEST_ATOMS = 25_000
DEFAULT_MAX_REQUEST_SECONDS = 60
MAX_ERRORS = 20  # problems listed per response (a request with a million unknown keys gets a short answer)
_SHOWN_CHARS = 80
# one atom written in a SMILES: the same rule as chemistry_finemoltex.count_atoms (this file stands alone)
_WRITTEN_ATOM = re.compile(r"\[[^\[\]]*\]|Cl|Br|[BCNOPSFIbcnops*]")  # linear: a bracket stops at "[" too


def count_atoms(smiles: str) -> int:
    """Atoms written in a SMILES string (bracket atoms, organic-subset atoms, ``*``), from the text alone."""
    return len(_WRITTEN_ATOM.findall(smiles))


def _clip(text: str, limit: int = _SHOWN_CHARS) -> str:
    """``text`` cut to about ``limit`` characters for an error message (the client's input must not come back whole)."""
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit - 20]}… ({len(text):,} characters)"


def _shown(value: Any) -> str:
    """``repr(value)`` cut for an error message."""
    return _clip(repr(value))


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (what a client sent)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def validate_request(
    data: Any, max_batch_size: int, max_string_length: int, max_request_atoms: int | None = None
) -> tuple[dict, dict, list[dict]]:
    """Check a request body: -> (inputs for the pipeline, parameters, errors). Errors are
    ``{"field": path, "message": text}``, every problem found (not only the first; at most `MAX_ERRORS`, then one
    saying how many more); when there are any, the request must not be run. ``max_request_atoms`` caps the atoms of
    all SMILES together (`count_atoms`; None: no cap)."""
    errors: list[dict] = []
    dropped = 0

    def error(field: str, message: str) -> None:
        nonlocal dropped
        if len(errors) < MAX_ERRORS:
            errors.append({"field": _clip(field, 2 * _SHOWN_CHARS), "message": message})
        else:
            dropped += 1

    if not isinstance(data, dict):
        error("", f"the request body must be a JSON object with an `inputs` object, got {_json_type(data)}")
        return {}, {}, errors
    unknown = sorted(set(data) - {"inputs", "parameters"})
    for key in unknown:
        error(key, "unknown top-level field; expected `inputs` and optionally `parameters`")
    inputs = data.get("inputs")
    if inputs is None:
        error("inputs", f"missing; send an object with some of {list(REQUEST_FIELDS)}")
        inputs = {}
    elif not isinstance(inputs, dict):
        error("inputs", f"must be an object with some of {list(REQUEST_FIELDS)}, got {_json_type(inputs)}")
        inputs = {}

    request: dict = {}
    count = atoms = 0
    for key, value in inputs.items():
        field = f"inputs.{key}"
        if key not in REQUEST_FIELDS:
            error(field, f"unknown field; expected some of {list(REQUEST_FIELDS)}")
            continue
        is_candidates = key.startswith("candidate_")
        if isinstance(value, str) and not is_candidates:
            items = [value]
        elif isinstance(value, list):
            items = value
            if not items:
                error(field, "is an empty list")
        else:
            expected = "an array of strings" if is_candidates else "a string or an array of strings"
            error(field, f"must be {expected}, got {_json_type(value)}")
            continue
        good = True
        for i, item in enumerate(items):
            where = f"{field}[{i}]" if isinstance(value, list) else field
            if not isinstance(item, str):
                error(where, f"must be a string, got {_json_type(item)}")
                good = False
            elif len(item) > max_string_length:
                error(where, f"is {len(item)} characters long; the limit is {max_string_length}")
                good = False
            elif key.endswith("smiles"):
                atoms += count_atoms(item)
        count += len(items)
        if good:
            request[key] = value

    given = frozenset(k for k in inputs if k in REQUEST_FIELDS) if isinstance(inputs, dict) else frozenset()
    if given and given not in JOBS:
        jobs = "; ".join(f"{' + '.join(sorted(k))}: {v}" for k, v in JOBS.items())
        error("inputs", f"cannot serve the combination {sorted(given)}; valid combinations are {jobs}")
    elif not given and isinstance(data.get("inputs"), dict):
        error("inputs", f"has none of the fields {list(REQUEST_FIELDS)}")
    if count > max_batch_size:
        error("inputs", f"holds {count} molecules and texts; the limit per request is {max_batch_size}")
    if max_request_atoms is not None and atoms > max_request_atoms:
        error("inputs", f"holds {atoms:,} atoms in its SMILES; the limit per request is {max_request_atoms:,} "
                        "(FINEMOLTEX_MAX_REQUEST_ATOMS): send fewer or smaller molecules per request")

    parameters = data.get("parameters")
    clean_parameters: dict = {}
    if parameters is not None:
        if not isinstance(parameters, dict):
            error("parameters", f"must be an object, got {_json_type(parameters)}")
        else:
            for key, value in parameters.items():
                if key not in PARAMETERS:
                    error(f"parameters.{key}", f"unknown parameter; expected some of {list(PARAMETERS)}")
                elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    error(f"parameters.{key}", f"must be a positive integer, got {_shown(value)}")
                else:
                    clean_parameters[key] = value
            if "top_k" in clean_parameters and not any(k.startswith("candidate_") for k in given):
                error("parameters.top_k", "only applies to rankings (requests with candidate_smiles or candidate_texts)")
    if dropped:
        errors.append({"field": "", "message": f"… and {dropped} more problems not listed"})
    return request, clean_parameters, errors


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"environment variable {name} must be a positive integer, got {value!r}")
    return number


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


class EndpointHandler:
    """Inference Endpoints entry point: ``EndpointHandler(path)(data) -> dict`` (module docstring).

    Args:
        path: the model repository folder (the endpoint passes it). It must be a local folder: the handler runs the
            folder's own code (``trust_remote_code=True``), and a Hub repo id would run that repo's code.
        max_batch_size / max_string_length / max_request_atoms / max_request_seconds: request limits (default: the
            environment variables of the module docstring, else 256 items, 20,000 characters, 25,000 atoms, 60 s).
        device: where the model runs (default: the first GPU if there is one, else the CPU).
        allow_hub_code: load ``path`` even when it is not a local folder (a Hub repo id), running its code; also
            ``FINEMOLTEX_ALLOW_HUB_CODE=1``.
        pipeline: an already built `FineMolTexPipeline` to serve instead of loading ``path`` (tests, embedding).
    """

    def __init__(
        self,
        path: str = "",
        max_batch_size: int | None = None,
        max_string_length: int | None = None,
        device=None,
        max_request_atoms: int | None = None,
        max_request_seconds: float | None = None,
        allow_hub_code: bool = False,
        pipeline=None,
    ):
        self.max_batch_size = max_batch_size or _env_int("FINEMOLTEX_MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE)
        self.max_string_length = max_string_length or _env_int("FINEMOLTEX_MAX_STRING_LENGTH", DEFAULT_MAX_STRING_LENGTH)
        self.max_request_atoms = max_request_atoms or _env_int("FINEMOLTEX_MAX_REQUEST_ATOMS", DEFAULT_MAX_REQUEST_ATOMS)
        self.max_request_seconds = max_request_seconds or _env_int("FINEMOLTEX_MAX_REQUEST_SECONDS", DEFAULT_MAX_REQUEST_SECONDS)
        if pipeline is not None:
            self.pipeline = pipeline
            return
        path = path or "."
        if not os.path.isdir(path) and not (allow_hub_code or _env_flag("FINEMOLTEX_ALLOW_HUB_CODE")):
            raise ValueError(
                f"{_clip(path)} is not a local folder. The handler runs the model folder's own code "
                "(trust_remote_code=True), so it loads only local folders; pass allow_hub_code=True or set "
                "FINEMOLTEX_ALLOW_HUB_CODE=1 to load a Hub repo and run its code."
            )
        import torch
        from transformers import pipeline as make_pipeline

        if device is None:
            device = 0 if torch.cuda.is_available() else -1
        # the task comes from `custom_pipelines` in the repo's config.json
        self.pipeline = make_pipeline(model=path, trust_remote_code=True, device=device)

    def __call__(self, data: dict) -> dict:
        try:
            request, parameters, errors = validate_request(
                data, self.max_batch_size, self.max_string_length, self.max_request_atoms
            )
        except Exception as err:  # a validator bug must still answer with JSON
            logger.exception("request validation failed")
            return {"errors": [{"field": "", "message": _clip(f"could not read the request: {type(err).__name__}: {err}", 500)}]}
        if errors:
            return {"errors": errors}
        try:
            return {"results": self.pipeline(request, max_seconds=self.max_request_seconds, **parameters)}
        except TimeoutError as err:  # the pipeline's time budget (checked between batches)
            return {"errors": [{"field": "inputs", "message": _clip(str(err), 500)}]}
        except Exception as err:  # never crash the endpoint worker; say what went wrong
            logger.exception("FineMolTex pipeline failed")
            message = f"the model could not serve this request: {type(err).__name__}: {err}"
            return {"errors": [{"field": "", "message": _clip(message, 500)}]}


__all__ = ["EndpointHandler", "count_atoms", "validate_request"]
