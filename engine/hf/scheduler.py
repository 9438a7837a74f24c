"""The rollout scheduler: every prompt once, through one full running batch, OOM-safe.

``generate_rollouts`` feeds prompts (longest first) into ``decode.decode_batch``, collects the
rollouts as rows finish, hands them to the caller in groups so progress can be persisted, and
shows a progress bar. On CUDA out-of-memory it halves the batch and retries only the rows not
yet finished.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from engine.base import BatchCallback, progress_bar
from engine.hf import batching
from engine.hf.decode import KVPlan, LogitsHook, Rollout, RowFeed, decode_batch
from engine.hf.sampling import SamplingConfig

if TYPE_CHECKING:
    from engine.hf import LoadedModel

log = logging.getLogger("saturation")

# Batch size chosen when none is given: on CPU larger batches stop paying off early (measured
# with bench/); on CUDA the batch fills free memory up to this many rows.
CPU_AUTO_BATCH = 16
MAX_AUTO_BATCH = 256
# float64 sampling temporaries per vocabulary entry and row (log-probs, noise, masks...)
_SAMPLING_BYTES_PER_LOGIT = 64


def generate_rollouts(lm: LoadedModel, prompts: Sequence[Sequence[int]],
                      max_new_tokens: int, sampling: SamplingConfig, seeds: Sequence[int],
                      batch_size: int, on_batch: BatchCallback | None = None, progress: bool = True,
                      logits_hook: LogitsHook | None = None,
                      kv_layout: str = "auto") -> list[Rollout]:
    """Generate every prompt once up to ``max_new_tokens``; returns rollouts in input order.

    ``batch_size`` rows decode together (<= 0: ``auto_batch_size``); a row that ends is
    replaced by the next waiting prompt (longest prompts first, so an out-of-memory shows up
    early). ``on_batch(indices, rollouts)`` receives finished rollouts in groups of about
    ``batch_size`` so the caller can persist progress. On CUDA out-of-memory the batch is
    halved and the unfinished rows are retried. ``logits_hook`` sees indices into ``prompts``
    as row ids. ``kv_layout`` is one of ``decode.KV_LAYOUTS``.
    """
    if len(prompts) != len(seeds):
        raise ValueError("one seed per prompt is required")
    plan = KVPlan(lm, kv_layout)  # one plan per run: a failed compile is not retried
    size = batch_size if batch_size > 0 else auto_batch_size(lm, prompts, max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    sink = _RolloutSink(len(prompts), on_batch, size, progress_bar(len(prompts), progress))
    waiting = deque(order)

    def take(count: int) -> list[batching.Row]:
        picked = [waiting.popleft() for _ in range(min(count, len(waiting)))]
        return [(i, prompts[i], seeds[i]) for i in picked]

    feed = RowFeed(take, sink.add, max((len(p) for p in prompts), default=0))
    while waiting:
        first = take(size)
        try:
            decode_batch(lm, [p for _, p, _ in first], max_new_tokens, sampling,
                         [s for _, _, s in first], logits_hook, feed, [i for i, _, _ in first],
                         kv_layout=plan)
            continue
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
        # outside the handler, so the failed batch's tensors are no longer referenced
        size = max(1, size // 2)
        torch.cuda.empty_cache()
        log.warning("CUDA out of memory: retrying with batch size %d", size)
        waiting = deque(i for i in order if sink.results[i] is None)
    return sink.close()


def auto_batch_size(lm: LoadedModel, prompts: Sequence[Sequence[int]],
                    max_new_tokens: int) -> int:
    """Rows to decode together: what fits in 85 % of free GPU memory (KV cache, sampling,
    the first prefill), at most ``MAX_AUTO_BATCH``; ``CPU_AUTO_BATCH`` on CPU."""
    count = max(1, len(prompts))
    if lm.device.type != "cuda":
        return min(count, CPU_AUTO_BATCH)
    config = lm.model.config.get_text_config(decoder=True)
    widest = max((len(p) for p in prompts), default=1)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", heads)
    per_token = 2 * config.num_hidden_layers * kv_heads * head_dim * 2  # K and V in bf16
    inter = getattr(config, "intermediate_size", 4 * config.hidden_size)
    prefill = widest * (3 * inter + 6 * config.hidden_size + heads * widest) * 2
    per_row = (per_token * batching.slot_capacity(widest, max_new_tokens) + prefill
               + config.vocab_size * _SAMPLING_BYTES_PER_LOGIT)
    free, _ = torch.cuda.mem_get_info(lm.device)
    rows = min(count, MAX_AUTO_BATCH, max(1, int(0.85 * free // per_row)))
    return rows - rows % 8 if rows >= 8 else rows


class _RolloutSink:
    """Collects rollouts as rows finish; hands them to ``on_batch`` in groups; shows progress."""

    def __init__(self, total: int, on_batch: BatchCallback | None, group: int, bar):
        self.results: list[Rollout | None] = [None] * total
        self.on_batch, self.group, self.bar = on_batch, group, bar
        self.pending: list[int] = []
        self.produced, self.started = 0, time.perf_counter()

    def add(self, index: int, rollout: Rollout) -> None:
        self.results[index] = rollout
        self.pending.append(index)
        self.produced += len(rollout.token_ids)
        if self.bar is not None:
            self.bar.update(1)
            rate = self.produced / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix(tok_s=f"{rate:.0f}", refresh=False)
        if len(self.pending) >= self.group:
            self.flush()

    def flush(self) -> None:
        if self.pending and self.on_batch is not None:
            self.on_batch(self.pending, [self.results[i] for i in self.pending])
        self.pending = []

    def close(self) -> list[Rollout]:
        self.flush()
        if self.bar is not None:
            self.bar.close()
        return [r for r in self.results if r is not None]
