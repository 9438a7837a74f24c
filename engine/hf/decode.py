"""The decode loop: one running batch, its KV-cache layout, and the rollouts it produces.

``decode_batch`` runs one batch until it and its feed are empty: each step every live row
gets a token (``sampling.choose_next_tokens``), rows that end leave, waiting prompts join.
Which KV layout holds the batch is chosen here (``KV_LAYOUTS``):

- ``auto``: a static cache decoded through CUDA graphs (``torch.compile``) on CUDA with
  bf16/fp32 weights; a growing cache elsewhere (CPU, nf4/int8).
- ``static``: the static cache everywhere; compiled where CUDA graphs are possible, else eager.
- ``growing``: the growing cache (``DynamicCache``) everywhere.

If compiling or capturing the compiled step fails, the run warns once and goes on eagerly on
the same static cache: rows already decoded are kept, and later batches of the run start eager.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engine.base import Rollout
from engine.hf import batching
from engine.hf.sampling import SamplingConfig, choose_next_tokens
from engine.settings import KV_LAYOUTS, ModelLoadError

if TYPE_CHECKING:
    from engine.hf import LoadedModel

log = logging.getLogger("saturation")

# logits_hook(row ids, each row's step, logits [rows, vocab]) -> logits, applied before choosing
LogitsHook = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# A running batch takes waiting prompts once this share of its rows is free (or it is empty):
# prefilling a few prompts together is cheaper than one at every step.
REFILL_FREE_SHARE = 0.125


@dataclass
class RowFeed:
    """Prompts waiting for a place in a running batch, and where finished rollouts go.

    ``take(n)`` hands out up to n ``(row id, prompt ids, seed)``; ``finish(row id, rollout)``
    receives each rollout as soon as its row ends.
    """

    take: Callable[[int], list[batching.Row]]
    finish: Callable[[int, Rollout], None]
    widest: int = 0  # longest prompt the feed may hand out (fixed-size layouts reserve it)


def compile_supported(lm: LoadedModel) -> bool:
    """CUDA graphs need CUDA, and the compiled step plain float weights (not bitsandbytes')."""
    return lm.device.type == "cuda" and lm.precision in ("bf16", "fp32")


class KVPlan:
    """The KV layout one run uses for all its batches: static or growing, compiled or eager.

    It remembers a failed compile, so that a run warns once and its later batches (after an
    out-of-memory retry, say) start eager instead of failing to compile again.
    """

    def __init__(self, lm: LoadedModel, kv_layout: str = "auto"):
        if kv_layout not in KV_LAYOUTS:
            raise ValueError(f"kv_layout {kv_layout!r} is not one of {', '.join(KV_LAYOUTS)}")
        slots = batching.slots_supported()
        if kv_layout == "static" and not slots:
            raise ModelLoadError("--kv-layout static needs transformers' StaticCache internals "
                                 "(transformers 5.x); use --kv-layout growing or auto")
        compiled = compile_supported(lm) and slots
        self.layout = kv_layout
        self.static = kv_layout == "static" or (kv_layout == "auto" and compiled)
        self.compiled = self.static and compiled

    def new_batch(self, lm: LoadedModel, slots: int, max_new_tokens: int,
                  widest_prompt: int) -> batching.RunningBatch:
        """An empty running batch in this layout."""
        if not self.static:
            return batching.GrowingBatch(lm, slots, max_new_tokens)
        return batching.SlotBatch(lm, slots, max_new_tokens, widest_prompt,
                                  compiled=self.compiled, on_compile_error=self.compile_failed)

    def compile_failed(self, exc: Exception) -> None:
        """Called by a compiled batch that has just switched itself to eager decoding."""
        if self.compiled:
            log.warning("compiling the CUDA-graph decode step failed (%s: %s); continuing "
                        "eagerly on the static KV cache (--kv-layout growing avoids compiling)",
                        type(exc).__name__, exc)
        self.compiled = False


def new_running_batch(lm: LoadedModel, slots: int, max_new_tokens: int, widest_prompt: int,
                      kv_layout: str | KVPlan = "auto") -> batching.RunningBatch:
    """An empty running batch in ``kv_layout`` (one of ``KV_LAYOUTS``, or a run's plan)."""
    plan = kv_layout if isinstance(kv_layout, KVPlan) else KVPlan(lm, kv_layout)
    return plan.new_batch(lm, slots, max_new_tokens, widest_prompt)


@torch.no_grad()  # not inference_mode: tensors of a compiled static cache must stay ordinary
def decode_batch(lm: LoadedModel, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 sampling: SamplingConfig, seeds: Sequence[int],
                 logits_hook: LogitsHook | None = None, feed: RowFeed | None = None,
                 row_ids: Sequence[int] | None = None,
                 kv_layout: str | KVPlan = "auto") -> list[Rollout]:
    """Decode ``prompts`` as one batch of ``len(prompts)`` rows and return their rollouts.

    With a ``feed``, a row that ends hands its place to the next waiting prompt, until the feed
    is empty; every rollout (refilled rows' included) goes to ``feed.finish``. Row ids (default
    0..n-1) name rows in the feed and in ``logits_hook``; a row's step counts its own tokens.
    """
    ids = list(row_ids) if row_ids is not None else list(range(len(prompts)))
    rows = list(zip(ids, prompts, seeds))
    done: dict[int, Rollout] = {}
    if max_new_tokens <= 0:
        return [Rollout((), False) for _ in rows]
    widest = max([len(p) for p in prompts] + [feed.widest if feed is not None else 0])
    batch = new_running_batch(lm, len(rows), max_new_tokens, widest, kv_layout)
    threshold = max(1, round(REFILL_FREE_SHARE * len(rows)))
    logits = batch.advance(rows)
    while True:
        tokens = _next_tokens(batch, logits, sampling, logits_hook)
        for row_id, token_ids, eos in batch.record(tokens):
            done[row_id] = Rollout(tuple(token_ids), eos)
            if feed is not None:
                feed.finish(row_id, done[row_id])
        want = batch.free if batch.free >= threshold or not batch.live else 0
        joining = feed.take(want) if feed is not None and want else []
        if not batch.live and not joining:
            return [done[i] for i in ids]
        logits = batch.advance(joining)


def _next_tokens(batch: batching.RunningBatch, logits: torch.Tensor, sampling: SamplingConfig,
                 logits_hook: LogitsHook | None) -> torch.Tensor:
    """Each live row's next token; noise and the hook use the row's own step count."""
    logits = logits.float()
    if logits_hook is not None:
        rows = torch.tensor(batch.ids, dtype=torch.long, device=logits.device)
        logits = logits_hook(rows, batch.steps, logits)
    return choose_next_tokens(logits, sampling, batch.seeds, batch.steps)
