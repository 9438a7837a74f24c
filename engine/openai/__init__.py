"""The served engine (``--engine openai``): a client of OpenAI-compatible completions servers.

Modules: this one (the settings section and ``load``), ``client`` (``ServedModel``, the
requests and how answers are read), ``http`` (concurrency and retries), ``probe``.

The model runs elsewhere (``vllm serve`` on a GPU node, SGLang, a router in front of several);
this module only speaks HTTP. Exact tokens both ways: prompts go out as token ids made by the
project's own tokenizer and chat template (the very ids the HF engine decodes from), and the
generated tokens come back as ids (vLLM's ``return_token_ids``; older servers: ``logprobs``
with ``return_tokens_as_token_ids``). Nothing is decoded and re-encoded on the way, so budget B
is the first B ids, as on every engine.

- Force-end and continuation are new prompts (prompt + rollout[:B] + cue ids); the server's
  prefix cache does the sharing. Candidate scores are one token per request, restricted to that
  token (``allowed_token_ids``): the raw log-probability, as in ``engine.vllm``.
- Every request carries its row's seed and its own budget, so rollouts depend on neither the
  concurrency nor the order in which answers arrive; ``on_batch`` gets each as it arrives.
- ``load`` probes the server before anything is written (``engine.openai.probe``).
- Faults: connection errors, timeouts, 429 and 5xx are retried (tenacity: jittered exponential
  backoff, a bounded number of tries); any other 4xx is one line naming what the server refused.
  A request that fails for good raises ``RequestFailed``: never an empty answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.base import LoadRequest
from engine.settings import ModelLoadError, knob, resolve_model

if TYPE_CHECKING:
    from engine.openai.client import ServedModel


@dataclass(frozen=True)
class OpenAISettings:
    """The served engine's knobs (config section ``openai``). The API key is never here: only
    the name of the environment variable that holds it."""

    base_url: tuple[str, ...] = knob((), flag="--base-url",
                                     help="openai: one or more server URLs ending in /v1 "
                                     "(e.g. http://127.0.0.1:8000/v1); each request goes to "
                                     "the one with the fewest in flight")
    # None: the name `vllm serve` gives a model by default (an alias's hub id; else --model).
    served_model: str | None = knob(None, flag="--served-model",
                                    help="openai: the model name the server serves (default: "
                                    "the model's hub id, or --model as given)")
    api_key_env: str | None = knob(None, flag="--api-key-env",
                                   help="openai: name of the environment variable holding "
                                   "the API key (the key itself is never written anywhere)")
    # 16 in flight keeps a vLLM server's continuous batch full on a CPU; raise it on a GPU.
    max_concurrency: int = knob(16, flag="--max-concurrency",
                                help="openai: requests in flight per server URL")
    # A 2k-token rollout of a 32B model can take minutes on a busy server.
    request_timeout: float = knob(600.0, flag="--request-timeout",
                                  help="openai: seconds one request may take")
    # Tries after the first for connection errors, timeouts, 429 and 5xx; about a minute of
    # backoff in all at the default, enough for a router to fail over.
    max_retries: int = knob(5, flag="--max-retries",
                            help="openai: retries of a request after a connection error, a "
                            "timeout, 429 or 5xx (jittered exponential backoff)")


# ---------------------------------------------------------------- loading


def default_served_name(model: str) -> str:
    """What ``vllm serve MODEL`` calls a model unless told: the hub id or path it was given."""
    spec = resolve_model(model)
    return spec.path if spec.source == "hub" else model


def load(request: LoadRequest, settings: OpenAISettings | None = None) -> ServedModel:
    """The registry's loader: the local tokenizer, then the probe of every server URL."""
    settings = settings or OpenAISettings()
    if not settings.base_url:
        raise ModelLoadError("--engine openai needs --base-url URL (the server's address "
                             "ending in /v1, e.g. http://127.0.0.1:8000/v1)")
    if request.num_layers is not None:
        raise ModelLoadError("--num-layers cuts a local model; a served model cannot be cut")
    api_key = None
    if settings.api_key_env:
        api_key = os.environ.get(settings.api_key_env)
        if not api_key:
            raise ModelLoadError(f"--api-key-env {settings.api_key_env}: that environment "
                                 "variable is not set; export it with the server's key")
    from types import SimpleNamespace

    from engine.loading import eos_token_ids, load_tokenizer, model_location
    from engine.openai.client import ServedModel
    from engine.openai.probe import probe

    tokenizer = load_tokenizer(request.model, request.data_dir, request.local_only)
    try:
        from transformers import GenerationConfig

        location = model_location(resolve_model(request.model), request.data_dir)
        generation = GenerationConfig.from_pretrained(location,
                                                      local_files_only=bool(request.local_only))
    except OSError:  # no generation config: the tokenizer's EOS alone
        generation = None
    urls = tuple(u.rstrip("/") for u in settings.base_url)
    model = ServedModel(tokenizer, eos_token_ids(SimpleNamespace(generation_config=generation),
                                                 tokenizer),
                        request.model, settings.served_model or default_served_name(
                            request.model), urls, settings,
                        chat_template_kwargs=request.chat_template_kwargs, api_key=api_key)
    found = probe(model)
    model.server, model.token_mode = found.server, found.token_mode
    return model
