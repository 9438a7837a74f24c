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
- ``engine.scheduler``: ``generate_rollouts``, which keeps the batch full (a finished row hands
  its place to the next waiting prompt), persists progress through ``on_batch`` and halves
  the batch on CUDA out-of-memory.

Key property: one rollout serves every budget. A (problem, sample) is decoded once up to the
largest budget M; the result at budget B <= M is ``rollout.at_budget(B)``, the first B tokens,
exactly what ``generate(max_new_tokens=B)`` returns under greedy decoding (tested).

Extending a rollout (forced-answer cues, continuation) needs no special support: build
``prompt_ids + rollout.token_ids[:B] + cue_ids`` and call ``generate_rollouts`` on it with a small
``max_new_tokens``; the prefix is not regenerated, only re-encoded in one forward pass.
"""

from __future__ import annotations

from engine.decode import KV_LAYOUTS, LogitsHook, Rollout
from engine.loading import (
    MODEL_ALIASES,
    PRECISIONS,
    LoadedModel,
    ModelLoadError,
    ModelSpec,
    chat_prompt_ids,
    decode_text,
    device_description,
    load_model,
    load_tokenizer,
    model_tag,
    pick_device,
    resolve_model,
)
from engine.sampling import SamplingConfig, row_seed
from engine.scheduler import BatchCallback, auto_batch_size, generate_rollouts

__all__ = [
    "KV_LAYOUTS",
    "MODEL_ALIASES",
    "PRECISIONS",
    "BatchCallback",
    "LoadedModel",
    "LogitsHook",
    "ModelLoadError",
    "ModelSpec",
    "Rollout",
    "SamplingConfig",
    "auto_batch_size",
    "chat_prompt_ids",
    "decode_text",
    "device_description",
    "generate_rollouts",
    "load_model",
    "load_tokenizer",
    "model_tag",
    "pick_device",
    "resolve_model",
    "row_seed",
]
