# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Reaching the Hugging Face Hub when a name is not a local folder: fail in one line, at once, when it cannot be.

Without a network, ``from_pretrained("user/model")`` retries for about a minute and then raises a message of several
lines. `from_pretrained_kwargs` probes the Hub's endpoint once per process (a TCP connection, no request, 3 s at
most) and, when it is offline (``HF_HUB_OFFLINE``) or out of reach, asks for the local cache only
(``local_files_only=True``): a cached copy loads at once, anything else fails at once. `load_error` turns the
failure into one line that says which of the cases it was.

No RDKit here, and nothing that a saved model folder imports.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlsplit

#: seconds the reachability probe waits for a connection
PROBE_TIMEOUT = 3.0


def hub_offline() -> bool:
    """True when the Hub must not be reached: ``HF_HUB_OFFLINE`` as huggingface_hub read it at import, or as set now."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return bool(constants.HF_HUB_OFFLINE) or flag


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@functools.lru_cache(maxsize=8)
def _reachable(endpoint: str, timeout: float) -> bool:
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:  # no route, name not resolved, refused, timed out
        return False


def hub_reachable(timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the Hub's endpoint opens within ``timeout`` seconds (remembered per process)."""
    return _reachable(hub_endpoint(), float(timeout))


def hub_access(name_or_path: str | os.PathLike) -> str:
    """How ``from_pretrained(name_or_path)`` would get its files: ``"local"`` (a folder), ``"offline"``
    (``HF_HUB_OFFLINE`` is set), ``"no network"`` (the Hub cannot be reached) or ``"hub"``."""
    if os.path.isdir(os.fspath(name_or_path)):
        return "local"
    if hub_offline():
        return "offline"
    return "hub" if hub_reachable() else "no network"


def from_pretrained_kwargs(name_or_path: str | os.PathLike, model: bool = False) -> dict:
    """Keyword arguments for ``from_pretrained(name_or_path, ...)``: the local cache only when the Hub is offline
    or out of reach (no retries), nothing otherwise. ``model``: for a model class, whose search for a peft adapter
    config ignores ``local_files_only`` unless it is also given in ``adapter_kwargs`` (transformers 5.x)."""
    if hub_access(name_or_path) not in ("offline", "no network"):
        return {}
    return {"local_files_only": True, **({"adapter_kwargs": {"local_files_only": True}} if model else {})}


#: Names of the exception classes of a connection that could not be made (httpx, requests, huggingface_hub).
_NETWORK_ERRORS = frozenset({"TransportError", "NetworkError", "ConnectError", "TimeoutException", "ConnectionError",
                             "ConnectTimeout", "OfflineModeIsEnabled"})


def is_network_error(err: BaseException) -> bool:
    """True for a failure to reach a server (no route, DNS, timeout, offline mode), from whichever HTTP library
    huggingface_hub uses; False for answers the server gave (401, 404, ...)."""
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(err).__mro__)


def load_error(what: str, name_or_path: str | os.PathLike, err: BaseException, hint: str = "") -> OSError:
    """One line saying why ``what`` could not be loaded from ``name_or_path``: a broken local folder, the Hub offline
    or out of reach (and no cached copy), or the Hub's own answer. ``hint``: what to pass instead."""
    name = os.fspath(name_or_path)
    cause = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    access = hub_access(name)
    if access == "local":
        message = f"Could not load {what} from the folder {name}: {cause}"
    elif access == "offline":
        message = (f"Could not load {what} {name!r}: it is not a local folder, and the Hub is offline (HF_HUB_OFFLINE=1) "
                   "with no cached copy")
    elif access == "no network":
        message = (f"Could not load {what} {name!r}: it is not a local folder, and there is no network (the Hugging "
                   f"Face Hub at {hub_endpoint()} cannot be reached) and no cached copy")
    else:
        message = f"Could not load {what} {name!r} from the Hugging Face Hub: {cause}"
    return OSError(f"{message}.{' ' + hint if hint else ''}")


__all__ = ["PROBE_TIMEOUT", "from_pretrained_kwargs", "hub_access", "hub_endpoint", "hub_offline", "hub_reachable",
           "is_network_error", "load_error"]
