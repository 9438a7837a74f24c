"""The HF engine (``--engine hf``): a transformers model decoded by this project's own loop.

``load`` returns an ``HFEngine``: the weights in eval mode, the tokenizer, the device, the
resolved precision and every EOS id, with the ``Engine`` methods run by the modules beside this
one (``scheduler`` for rollouts, ``branching`` for forced answers and scores, ``power``,
``lens``). It is the reference engine: it runs every feature (``engine.base.FEATURES``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.base import (
    BatchCallback,
    Branch,
    BranchAnswer,
    Engine,
    LoadRequest,
    Rollout,
    per_row,
)
from engine.hf import HFSettings
from engine.hub import cache_only
from engine.loading import (
    eos_token_ids,
    estimate_params_b,
    load_kwargs,
    load_tokenizer,
    model_location,
    offline_hint,
    pick_device,
    resolve_precision,
)
from engine.settings import ModelLoadError, SamplingConfig, resolve_model


@dataclass(eq=False)
class HFEngine(Engine):
    """A causal LM ready for generation, with what the decode loop needs to know about it."""

    model: torch.nn.Module
    tokenizer: Any
    device: torch.device
    precision: str  # the resolved precision: fp32 | bf16 | nf4 | int8
    model_name: str  # the alias or path it was loaded from
    eos_ids: tuple[int, ...] = field(default=())
    kv_layout: str = "auto"  # engine.settings.KV_LAYOUTS (see engine.hf.decode)
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()
    name = "hf"

    def generate_rollouts(self, prompts: Sequence[Sequence[int]],
                          max_new_tokens: int | Sequence[int], sampling: SamplingConfig,
                          seeds: Sequence[int], batch_size: int = 0,
                          on_batch: BatchCallback | None = None,
                          progress: bool = True) -> list[Rollout]:
        from engine.hf.scheduler import generate_rollouts

        budgets = per_row(max_new_tokens, len(prompts))
        if len(set(budgets)) <= 1:
            return generate_rollouts(self, prompts, max(budgets, default=0), sampling, seeds,
                                     batch_size, on_batch, progress, kv_layout=self.kv_layout)
        # Rows share one max_new_tokens in a batch: a hook ends each at its own budget with a
        # forced EOS, which is then cut (the row was stopped by its budget, not by the model).
        hook = budget_hook(budgets, self.eos_ids[0])

        def cut(indices: list[int], rollouts: list[Rollout]) -> list[Rollout]:
            return [_within(r, budgets[i]) for i, r in zip(indices, rollouts)]

        relay = None if on_batch is None else (lambda idx, got: on_batch(idx, cut(idx, got)))
        outs = generate_rollouts(self, prompts, max(budgets), sampling, seeds, batch_size,
                                 relay, progress, logits_hook=hook, kv_layout=self.kv_layout)
        return cut(list(range(len(prompts))), outs)

    def branch_answers(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                       cue_ids: Sequence[int], answer_tokens: int, batch_size: int = 16,
                       progress: bool = False) -> list[BranchAnswer]:
        from engine.hf.branching import branch_answers

        return branch_answers(self, sequences, branches, cue_ids, answer_tokens, batch_size,
                              progress)

    def branch_scores(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                      cue_ids: Sequence[int], candidates: Sequence[Sequence[Sequence[int]]],
                      batch_size: int = 16, progress: bool = False) -> list[list[float]]:
        from engine.hf.branching import branch_scores

        return branch_scores(self, sequences, branches, cue_ids, candidates, batch_size,
                             progress)

    def power_sample(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                     settings: Any, seeds: Sequence[int], batch_size: int,
                     on_batch: BatchCallback | None = None) -> list:
        from engine.hf.power import power_sample

        return power_sample(self, prompts, max_new_tokens, settings, seeds, batch_size,
                            on_batch)

    def logit_lens_kl(self, prompts: Sequence[Sequence[int]],
                      generated: Sequence[Sequence[int]], batch_size: int = 4) -> list:
        from engine.hf.lens import logit_lens_kl

        return logit_lens_kl(self, prompts, generated, batch_size)

    def auto_batch_size(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> int:
        from engine.hf.scheduler import auto_batch_size

        return auto_batch_size(self, prompts, max_new_tokens)

    def describe(self) -> str:
        """The GPU's name or the CPU's core count, and the precision."""
        if self.device.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name(self.device)} ({self.precision})"
        return f"cpu ({os.cpu_count()} cores, {self.precision})"


def budget_hook(room: Sequence[int], eos_id: int):
    """A logits hook forcing EOS on a row once it has used its own room."""
    limits = torch.tensor(list(room))

    def hook(rows: torch.Tensor, steps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        over = steps >= limits.to(steps.device)[rows]
        if bool(over.any()):
            logits = logits.clone()
            logits[over] = float("-inf")
            logits[over, eos_id] = 0.0
        return logits

    return hook


def _within(rollout: Rollout, budget: int) -> Rollout:
    if len(rollout.token_ids) > budget:  # the EOS the budget hook forced
        return Rollout(rollout.token_ids[:budget], False)
    return rollout


# ---------------------------------------------------------------- loading

# The last model loaded, by its load arguments. The phases that ``run_all.py`` runs in one
# process then share one load (SmolLM2-135M: about a second each; a 7B model: far more), and a
# process holds at most one model. Nothing of the engine changes a loaded model's weights.
_LAST_LOADED: dict[tuple, HFEngine] = {}


def load(request: LoadRequest, settings: HFSettings | None = None) -> HFEngine:
    """The registry's loader: ``load_model`` for a ``LoadRequest`` and the ``hf`` section."""
    settings = settings or HFSettings()
    lm = load_model(request.model, request.precision, request.data_dir, request.device,
                    request.num_layers, request.local_only)
    # the weights are shared; the decode settings are this request's own
    return HFEngine(lm.model, lm.tokenizer, lm.device, lm.precision, lm.model_name,
                    lm.eos_ids, settings.kv_layout, request.chat_template_kwargs)


def load_model(model: str, precision: str, data_dir: Path, device: str | None = None,
               num_layers: int | None = None, local_only: bool | None = None) -> HFEngine:
    """Load an alias, hub id or local folder at the resolved precision, in eval mode; the same
    arguments again return the model already loaded.

    ``num_layers``: keep only the first L decoder layers (``engine.hf.depth``); None keeps all.
    ``local_only``: the answer of ``engine.hub.model_cache_only`` when the caller already asked
    (None: ask here).
    """
    key = (model, precision, str(Path(data_dir).resolve()), device, num_layers)
    if key not in _LAST_LOADED:
        _LAST_LOADED.clear()  # free the previous model's memory before loading another
        _LAST_LOADED[key] = _load_model(model, precision, data_dir, device, num_layers,
                                        local_only)
    return _LAST_LOADED[key]


def _load_model(model: str, precision: str, data_dir: Path, device: str | None,
                num_layers: int | None, local_only: bool | None) -> HFEngine:
    from engine.hf.depth import truncate_layers

    spec = resolve_model(model)
    location = model_location(spec, data_dir)
    if local_only is None:
        local_only = cache_only(location)  # before importing transformers: fail fast offline
    from transformers import AutoConfig, AutoModelForCausalLM

    dev = pick_device(device)
    tokenizer = load_tokenizer(model, data_dir, local_only)
    try:
        params_b = spec.approx_params_b or estimate_params_b(
            AutoConfig.from_pretrained(location, local_files_only=local_only))
        resolved = resolve_precision(precision, dev, params_b)
        lm = AutoModelForCausalLM.from_pretrained(location, local_files_only=local_only,
                                                  **load_kwargs(resolved, dev))
    except OSError as exc:
        raise ModelLoadError(offline_hint(location, exc)) from exc
    if num_layers is not None:
        truncate_layers(lm, num_layers)
    if resolved in ("fp32", "bf16"):
        lm = lm.to(dev)  # quantised weights were placed by device_map already
    lm.eval()
    return HFEngine(lm, tokenizer, dev, resolved, model, eos_token_ids(lm, tokenizer))
