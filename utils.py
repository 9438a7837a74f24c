"""The one generation core: the public face of the ``engine`` package.

Study code (the phases, ``study/``) imports only this module. The engine knows no dataset,
grader or study config: callers load an engine and hand it token-id prompts.

- ``engine.base``: the ``Engine`` interface every engine implements (rollouts, forced answers,
  candidate scores, and power sampling / the logit lens where its capabilities say so), the
  registry of engines (``ENGINES``, ``load_engine``) and the types they exchange (``Rollout``,
  ``Branch``, ``BranchAnswer``, ``LoadRequest``).
- ``engine.hf``: the reference engine, this project's own decode loop (``engine.hf.model``),
  with batching, sampling by counter-based noise (a row's draws are a hash of its row seed, its
  own step and the token id, so they depend on neither batch size nor neighbours), branching,
  power sampling, depth truncation and the logit lens.
- ``engine.vllm``: vLLM in this process; ``engine.openai``: a client of OpenAI-compatible
  completions servers (vLLM's, SGLang's, ...). Each imports its library only when loading.
- ``engine.loading``: model names and aliases, device, the precision rule, tokenizer, chat
  template, EOS ids, SmolLM2's GGUF conversion.
- ``engine.thinking`` (torch-free): a tokenizer's thinking markers (``detect_markers``), their
  ids (``marker_ids``, ``single_token_id``) and where thinking ends in generated ids
  (``thinking_span``), for reasoning models that think inside ``<think> ... </think>``.

Key property: one rollout serves every budget. A (problem, sample) is decoded once up to the
largest budget M; the result at budget B <= M is ``rollout.at_budget(B)``, the first B tokens,
exactly what ``generate(max_new_tokens=B)`` returns under greedy decoding (tested).

Extending a rollout (forced-answer cues, continuation) needs no special support: build
``prompt_ids + rollout.token_ids[:B] + cue_ids`` and generate from it; ``branch_answers`` and
``branch_scores`` do it for many budgets at once (the HF engine encodes each sequence once and
branches from crops of its KV cache; the others rely on prefix caching).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Torch-free names: the config and the command-line checks use them before any model is wanted.
from engine.base import (
    ENGINES,
    BatchCallback,
    Branch,
    BranchAnswer,
    Engine,
    LoadRequest,
    RequestFailed,
    Rollout,
    check_engine,
    check_supports,
    load_engine,
)
from engine.hub import hub_unreachable, model_cache_only
from engine.settings import (
    KV_LAYOUTS,
    MODEL_ALIASES,
    PRECISIONS,
    CardSampling,
    ModelLoadError,
    ModelSpec,
    SamplingConfig,
    model_tag,
    resolve_model,
    row_seed,
)
from engine.thinking import (
    ThinkingMarkers,
    ThinkingSpan,
    detect_markers,
    marker_ids,
    single_token_id,
    thinking_span,
)

# Everything else is imported on first use (PEP 562), so that a command that fails on a bad flag
# or file does so in about a second instead of after importing torch and transformers.
_LAZY = {
    "engine.hf.branching": ("thinking_end_marker",),
    "engine.hf.decode": ("LogitsHook",),
    "engine.hf.depth": ("truncate_layers",),
    "engine.hf.lens": ("LensKL",),
    "engine.hf.model": ("HFEngine", "load_model"),
    "engine.hf.power": ("PowerRollout", "PowerSettings"),
    "engine.loading": ("chat_prompt_ids", "decode_text", "load_tokenizer", "model_depth",
                       "pick_device"),
    # imports vLLM itself only inside load_vllm (the HF path never imports it)
    "engine.vllm": ("shutdown_vllm",),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:  # what type checkers and readers see
    from engine.hf.branching import thinking_end_marker
    from engine.hf.decode import LogitsHook
    from engine.hf.depth import truncate_layers
    from engine.hf.lens import LensKL
    from engine.hf.model import HFEngine, load_model
    from engine.hf.power import PowerRollout, PowerSettings
    from engine.loading import (
        chat_prompt_ids,
        decode_text,
        load_tokenizer,
        model_depth,
        pick_device,
    )
    from engine.vllm import shutdown_vllm


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "ENGINES",
    "KV_LAYOUTS",
    "MODEL_ALIASES",
    "PRECISIONS",
    "BatchCallback",
    "Branch",
    "BranchAnswer",
    "Engine",
    "HFEngine",
    "CardSampling",
    "LensKL",
    "LoadRequest",
    "RequestFailed",
    "LogitsHook",
    "ModelLoadError",
    "ModelSpec",
    "PowerRollout",
    "PowerSettings",
    "Rollout",
    "SamplingConfig",
    "ThinkingMarkers",
    "ThinkingSpan",
    "chat_prompt_ids",
    "check_engine",
    "check_supports",
    "decode_text",
    "detect_markers",
    "hub_unreachable",
    "load_engine",
    "load_model",
    "load_tokenizer",
    "marker_ids",
    "model_cache_only",
    "model_depth",
    "model_tag",
    "pick_device",
    "resolve_model",
    "row_seed",
    "shutdown_vllm",
    "single_token_id",
    "thinking_end_marker",
    "thinking_span",
    "truncate_layers",
]
