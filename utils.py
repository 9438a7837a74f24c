"""The one generation core: the public face of the ``engine`` package.

Study code (the phases, ``study/``) imports only this module. The engine knows no dataset,
grader or study config: callers hand it token-id prompts and get back rollouts.

- ``engine.loading``: model names and aliases, device, the precision rule, HF / SmolLM2-GGUF
  loading, tokenizer, chat template, EOS ids.
- ``engine.sampling``: greedy or temperature/top-p choice with counter-based noise: a row's
  draws are a hash of (row seed, its own step, token id), where ``row_seed`` comes from
  (run seed, problem id, sample index), so they depend on neither batch size nor neighbours.
- ``engine.batching`` and ``engine.decode``: running batches over a growing or a static KV
  cache (``KV_LAYOUTS``; CUDA graphs on CUDA, with an eager fallback) and the decode loop.
- ``engine.depth`` and ``engine.lens``: keeping the first L decoder layers (``load_model(...,
  num_layers=L)``), and the logit lens (KL of each layer's read-out from the final one).
- ``engine.power``: power sampling, Metropolis–Hastings over whole sequences targeting
  p^alpha with token sampling at temperature 1/alpha as the proposal (``power_sample``).
- ``engine.vllm_engine``: the vLLM engine (``--engine vllm``, ``load_vllm``): the functions
  here hand a ``VllmModel`` to its own methods (``engine.external``), so callers do not care
  which engine loaded the model; vLLM is imported only when such a model is loaded.
- ``engine.thinking`` (torch-free): a tokenizer's thinking markers (``detect_markers``), their
  ids (``marker_ids``, ``single_token_id``) and where thinking ends in generated ids
  (``thinking_span``), for reasoning models that think inside ``<think> ... </think>``.
- ``engine.scheduler``: ``generate_rollouts``, which keeps the batch full (a finished row hands
  its place to the next waiting prompt), persists progress through ``on_batch`` and halves
  the batch on CUDA out-of-memory.

Key property: one rollout serves every budget. A (problem, sample) is decoded once up to the
largest budget M; the result at budget B <= M is ``rollout.at_budget(B)``, the first B tokens,
exactly what ``generate(max_new_tokens=B)`` returns under greedy decoding (tested).

Extending a rollout (forced-answer cues, continuation) needs no special support: build
``prompt_ids + rollout.token_ids[:B] + cue_ids`` and call ``generate_rollouts`` on it with a small
``max_new_tokens``; the prefix is not regenerated, only re-encoded in one forward pass.
``engine.branching`` (``branch_answers``, ``branch_scores``) does it for many budgets at once:
each sequence is encoded once and every budget's branch starts from a crop of that KV cache.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Torch-free names: the config and the command-line checks use them before any model is wanted.
from engine.hub import hub_unreachable, model_cache_only
from engine.settings import (
    ENGINES,
    KV_LAYOUTS,
    MODEL_ALIASES,
    PRECISIONS,
    CardSampling,
    ModelLoadError,
    ModelSpec,
    SamplingConfig,
    check_engine,
    check_supports,
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
    "engine.branching": ("Branch", "BranchAnswer", "branch_answers", "branch_scores",
                         "thinking_end_marker"),
    "engine.decode": ("LogitsHook", "Rollout"),
    "engine.depth": ("truncate_layers",),
    "engine.lens": ("LensKL", "logit_lens_kl"),
    "engine.loading": ("LoadedModel", "chat_prompt_ids", "decode_text", "device_description",
                       "load_model", "load_tokenizer", "model_depth", "pick_device"),
    "engine.power": ("PowerRollout", "PowerSettings", "power_sample"),
    "engine.scheduler": ("BatchCallback", "auto_batch_size", "generate_rollouts"),
    # imports vLLM itself only inside load_vllm (the HF path never imports it)
    "engine.vllm_engine": ("VllmModel", "VllmSettings", "load_vllm", "shutdown_vllm"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:  # what type checkers and readers see
    from engine.branching import (
        Branch,
        BranchAnswer,
        branch_answers,
        branch_scores,
        thinking_end_marker,
    )
    from engine.decode import LogitsHook, Rollout
    from engine.depth import truncate_layers
    from engine.lens import LensKL, logit_lens_kl
    from engine.loading import (
        LoadedModel,
        chat_prompt_ids,
        decode_text,
        device_description,
        load_model,
        load_tokenizer,
        model_depth,
        pick_device,
    )
    from engine.power import PowerRollout, PowerSettings, power_sample
    from engine.scheduler import BatchCallback, auto_batch_size, generate_rollouts
    from engine.vllm_engine import VllmModel, VllmSettings, load_vllm, shutdown_vllm


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
    "CardSampling",
    "LensKL",
    "LoadedModel",
    "LogitsHook",
    "ModelLoadError",
    "ModelSpec",
    "PowerRollout",
    "PowerSettings",
    "Rollout",
    "SamplingConfig",
    "ThinkingMarkers",
    "ThinkingSpan",
    "VllmModel",
    "VllmSettings",
    "auto_batch_size",
    "branch_answers",
    "branch_scores",
    "chat_prompt_ids",
    "check_engine",
    "check_supports",
    "decode_text",
    "detect_markers",
    "device_description",
    "generate_rollouts",
    "hub_unreachable",
    "load_model",
    "load_tokenizer",
    "load_vllm",
    "logit_lens_kl",
    "marker_ids",
    "model_depth",
    "model_cache_only",
    "model_tag",
    "power_sample",
    "pick_device",
    "resolve_model",
    "row_seed",
    "shutdown_vllm",
    "single_token_id",
    "thinking_end_marker",
    "thinking_span",
    "truncate_layers",
]
