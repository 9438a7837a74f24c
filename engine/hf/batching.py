"""Running batches for the generation core: rows join and leave while the batch decodes.

A batch holds one KV cache for all its rows. Rows are left-aligned to a shared write column:
every decode step appends one column, each row's own tokens sit in a contiguous run of columns
ending there, and a per-row attention mask hides everything else. Position ids are per row, so
where a row's keys sit in the cache does not change what it computes (up to float rounding
of differently padded matmuls). A finished row frees its place; a waiting prompt is prefilled
on its own and its keys and values are copied in, which keeps the batch full ("continuous
batching") instead of letting it shrink as rows finish.

Two layouts share that scheme:

- ``GrowingBatch`` (default): a ``DynamicCache`` that grows by one column per step and is
  trimmed when its leading columns are empty; finished rows are cut out of it. Best on CPU.
- ``SlotBatch`` (CUDA): a ``StaticCache`` with a fixed number of slots and columns, so the
  decode step has fixed shapes and can be compiled into CUDA graphs (``torch.compile``,
  mode ``reduce-overhead``). When the write column reaches the end, every row is shifted left.
  Uncompiled it runs anywhere (the tests use it on CPU). If compiling or capturing the step
  fails, the batch redoes that step eagerly and stays eager.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from engine.hf import LoadedModel

log = logging.getLogger("saturation")

# (row id, prompt token ids, row seed) of a prompt entering a batch
Row = tuple[int, Sequence[int], int]
# (row id, generated token ids, ended at EOS) of a row leaving it
Finished = tuple[int, list[int], bool]


def cache_argument_name(model: torch.nn.Module) -> str:
    """transformers >= 5.2x names the KV-cache argument ``cache``; older releases
    ``past_key_values``."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def left_padded(prompts: Sequence[Sequence[int]], pad_id: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask), both [rows, longest prompt], prompts aligned to the right."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


def prefill(lm: LoadedModel, prompts: Sequence[Sequence[int]]):
    """One forward pass over left-padded prompts: (DynamicCache, mask, next positions, logits)."""
    from transformers import DynamicCache

    ids, mask = left_padded(prompts, lm.pad_id, lm.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=lm.model.config)
    out = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                   logits_to_keep=1, **{cache_argument_name(lm.model): cache})
    return cache, mask, positions[:, -1] + 1, out.logits[:, -1, :]


def plain_layers(cache) -> bool:
    """True when every layer is a full-attention layer whose tensors we may rearrange."""
    from transformers.cache_utils import DynamicLayer, StaticLayer

    return all(type(layer) in (DynamicLayer, StaticLayer) for layer in cache.layers)


class RunningBatch:
    """Per-row bookkeeping shared by the layouts; rows are kept in the cache's row order."""

    def __init__(self, lm: LoadedModel, slots: int, max_new_tokens: int):
        self.lm, self.slots, self.max_new_tokens = lm, slots, max_new_tokens
        self.cache_kw = cache_argument_name(lm.model)
        self.eos = torch.tensor(lm.eos_ids, device=lm.device)
        self.ids: list[int] = []
        self.generated: list[list[int]] = []
        empty = torch.zeros(0, dtype=torch.long, device=lm.device)
        self.steps = self.seeds = self.positions = self.tokens = empty

    @property
    def live(self) -> int:
        return len(self.ids)

    @property
    def free(self) -> int:
        return self.slots - self.live

    def record(self, tokens: torch.Tensor) -> list[Finished]:
        """Append each live row's new token; rows at EOS or at the budget leave the batch."""
        ended = torch.isin(tokens, self.eos)
        done = ended | (self.steps + 1 >= self.max_new_tokens)
        finished = []
        for row, (token, stop, eos) in enumerate(zip(tokens.tolist(), done.tolist(),
                                                     ended.tolist())):
            self.generated[row].append(token)
            if stop:
                finished.append((self.ids[row], self.generated[row], eos))
        self.steps, self.tokens = self.steps + 1, tokens
        if finished:
            self.release((~done).nonzero().squeeze(-1))
        return finished

    def advance(self, joining: Sequence[Row]) -> torch.Tensor:
        """Next-token logits of every live row (in row order) after ``joining`` rows joined."""
        parts = [self.decode_step()] if self.live else []
        if joining:
            parts.append(self.join(joining))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _add_rows(self, joining: Sequence[Row], positions: torch.Tensor) -> None:
        device = self.lm.device
        self.ids += [row_id for row_id, _, _ in joining]
        self.generated += [[] for _ in joining]
        zeros = torch.zeros(len(joining), dtype=torch.long, device=device)
        seeds = torch.tensor([seed for _, _, seed in joining], dtype=torch.long, device=device)
        self.steps = torch.cat([self.steps, zeros])
        self.seeds = torch.cat([self.seeds, seeds])
        self.positions = torch.cat([self.positions, positions])
        self.tokens = torch.cat([self.tokens, zeros])

    def _keep_rows(self, keep: torch.Tensor) -> None:
        kept = keep.tolist()
        self.ids = [self.ids[i] for i in kept]
        self.generated = [self.generated[i] for i in kept]
        self.steps, self.seeds = self.steps[keep], self.seeds[keep]
        self.positions, self.tokens = self.positions[keep], self.tokens[keep]

    # the layouts implement these
    def decode_step(self) -> torch.Tensor:
        raise NotImplementedError

    def join(self, joining: Sequence[Row]) -> torch.Tensor:
        raise NotImplementedError

    def release(self, keep: torch.Tensor) -> None:
        raise NotImplementedError


class GrowingBatch(RunningBatch):
    """Rows in a ``DynamicCache``: finished rows are cut out, joining rows appended."""

    def __init__(self, lm: LoadedModel, slots: int, max_new_tokens: int):
        super().__init__(lm, slots, max_new_tokens)
        self.cache = None
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=lm.device)
        self.mergeable = True  # cleared for caches with sliding-window or other special layers

    @property
    def free(self) -> int:
        # Without merging, new rows can only start a fresh batch once this one has drained.
        if not self.mergeable and self.live:
            return 0
        return self.slots - self.live

    def decode_step(self) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.live, 1))], dim=-1)
        out = self.lm.model(input_ids=self.tokens[:, None], attention_mask=self.mask,
                            position_ids=self.positions[:, None], use_cache=True,
                            **{self.cache_kw: self.cache})
        self.positions = self.positions + 1
        return out.logits[:, -1, :]

    def join(self, joining: Sequence[Row]) -> torch.Tensor:
        cache, mask, positions, logits = prefill(self.lm, [prompt for _, prompt, _ in joining])
        if self.cache is None:
            self.cache, self.mask = cache, mask
            self.mergeable = plain_layers(cache)
        else:
            self._merge(cache, mask)
        self._add_rows(joining, positions)
        return logits

    def _merge(self, cache, mask: torch.Tensor) -> None:
        """Append ``cache``'s rows below ours, left-padding the narrower one with empty columns."""
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            mine.values = torch.cat([_pad_left(mine.values, width),
                                     _pad_left(theirs.values, width)])
        self.mask = torch.cat([_pad_left(self.mask, width), _pad_left(mask, width)])

    def release(self, keep: torch.Tensor) -> None:
        self._keep_rows(keep)
        if not self.live:
            self.cache, self.mask = None, self.mask[:0, :0]
            return
        self.cache.batch_select_indices(keep)
        self.mask = self.mask[keep]
        # Columns no remaining row uses (the longest prompts that just left) cost attention
        # time at every later step: drop them.
        lead = int(self.mask.any(dim=0).int().argmax())
        if lead and self.mergeable:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, lead:], layer.values[:, :, lead:]
            self.mask = self.mask[:, lead:]


def _pad_left(x: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the sequence axis (dim 2 of keys/values, dim 1 of a mask) on the left."""
    axis = 2 if x.dim() == 4 else 1
    missing = width - x.shape[axis]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[axis] = missing
    return torch.cat([x.new_zeros(shape), x], dim=axis)


class SlotBatch(RunningBatch):
    """Rows in fixed slots of a ``StaticCache``: every decode step has the same shapes.

    ``slots`` rows x ``capacity`` columns are allocated once. All slots decode at every step
    (an empty slot attends only to its own column, so its garbage stays finite and harmless);
    the step can therefore be captured in CUDA graphs. Joining rows are prefilled eagerly and
    copied into free slots. When the write column reaches the end, all rows shift left by the
    columns no live row uses; ``capacity`` leaves room for the widest prompt plus the budget,
    so a shift always frees columns.
    """

    def __init__(self, lm: LoadedModel, slots: int, max_new_tokens: int, widest_prompt: int,
                 compiled: bool = False,
                 on_compile_error: Callable[[Exception], None] | None = None):
        super().__init__(lm, slots, max_new_tokens)
        self.capacity = slot_capacity(widest_prompt, max_new_tokens)
        self.cache = _static_cache(lm, slots, self.capacity)
        self.column = 0  # where the next decode step writes, for every slot
        self._set_column(widest_prompt)
        device = lm.device
        self.mask = torch.zeros((slots, self.capacity), dtype=torch.long, device=device)
        self.slot_of_row = torch.zeros(0, dtype=torch.long, device=device)
        self.in_use = [False] * slots
        self.on_compile_error = on_compile_error or _warn_compile_error
        self.forward = lm.model
        if compiled:
            try:
                self.forward = _compiled_call(lm.model)
            except Exception as exc:  # torch.compile itself refused (platform, version...)
                self._fall_back(exc)

    def decode_step(self) -> torch.Tensor:
        if self.column >= self.capacity:
            self._shift(-self._unused_lead())
        self.mask[:, self.column] = 1  # live rows see their new token; empty slots only it
        ids = torch.full((self.slots,), self.lm.pad_id, dtype=torch.long, device=self.lm.device)
        ids[self.slot_of_row] = self.tokens
        positions = torch.zeros_like(ids)
        positions[self.slot_of_row] = self.positions
        inputs = {"input_ids": ids[:, None], "attention_mask": self.mask,
                  "position_ids": positions[:, None], "use_cache": True,
                  self.cache_kw: self.cache}
        if self.forward is self.lm.model:
            out = self.forward(**inputs)
        else:
            out = self._compiled_step(inputs)
        self.column += 1
        self.positions = self.positions + 1
        return out.logits[self.slot_of_row, -1, :]  # a copy: graph outputs get overwritten

    def _compiled_step(self, inputs: dict) -> object:
        """The compiled forward; if compiling or capturing it fails, the eager one (and from
        then on).

        Compilation and CUDA-graph capture happen lazily in the first calls, so any step may
        be the one that fails. A failed step can have written some layers' keys and values at
        the write column and advanced their counters; the eager step rewrites that column in
        every layer before reading it, once the counters are reset.
        """
        try:
            return self.forward(**inputs)
        except torch.cuda.OutOfMemoryError:
            raise  # not a compile problem: the scheduler retries with a smaller batch
        except Exception as exc:
            self._fall_back(exc)
        self._set_column(self.column)
        return self.forward(**inputs)

    def _fall_back(self, exc: Exception) -> None:
        self.forward = self.lm.model
        self.on_compile_error(exc)

    def join(self, joining: Sequence[Row]) -> torch.Tensor:
        cache, mask, positions, logits = prefill(self.lm, [prompt for _, prompt, _ in joining])
        width = mask.shape[1]
        if width + self.max_new_tokens - 1 > self.capacity:
            raise ValueError(f"a {width}-token prompt does not fit a batch sized for shorter "
                             "ones; pass the widest prompt first")
        if self.column < width:
            self._shift(width - self.column)
        slots = [i for i, used in enumerate(self.in_use) if not used][:len(joining)]
        for slot in slots:
            self.in_use[slot] = True
        index = torch.tensor(slots, dtype=torch.long, device=self.lm.device)
        start = self.column - width
        valid = mask.bool()[:, None, :, None]
        for mine, theirs in zip(self.cache.layers, cache.layers):
            # padding columns may hold NaN from fully masked rows; NaN * 0 is NaN in attention
            mine.keys[index, :, start:self.column] = torch.where(valid, theirs.keys, 0)
            mine.values[index, :, start:self.column] = torch.where(valid, theirs.values, 0)
        self.mask[index] = 0
        self.mask[index, start:self.column] = mask
        self.slot_of_row = torch.cat([self.slot_of_row, index])
        self._add_rows(joining, positions)
        return logits

    def release(self, keep: torch.Tensor) -> None:
        kept = set(keep.tolist())
        for row, slot in enumerate(self.slot_of_row.tolist()):
            if row not in kept:
                self.in_use[slot] = False
                self.mask[slot] = 0
        self.slot_of_row = self.slot_of_row[keep]
        self._keep_rows(keep)

    def _unused_lead(self) -> int:
        """Columns before the first one any live row uses (all of them when none is live)."""
        if not self.live:
            return self.column
        rows = self.mask[self.slot_of_row, :self.column].bool()
        return int(rows.any(dim=0).int().argmax())

    def _shift(self, offset: int) -> None:
        """Move every slot's columns by ``offset`` (negative: left) and the write column too."""
        if offset == 0:
            return
        keep = self.capacity - abs(offset)
        src, dst = (slice(-offset, None), slice(0, keep)) if offset < 0 else \
            (slice(0, keep), slice(offset, None))
        for layer in self.cache.layers:
            for tensor in (layer.keys, layer.values):
                tensor[:, :, dst] = tensor[:, :, src].clone()
        self.mask[:, dst] = self.mask[:, src].clone()
        vacated = slice(keep, None) if offset < 0 else slice(0, offset)
        self.mask[:, vacated] = 0
        self._set_column(self.column + offset)

    def _set_column(self, column: int) -> None:
        self.column = column
        for layer in self.cache.layers:
            layer.cumulative_length.fill_(column)  # in place: the tensor has a static address


def slots_supported() -> bool:
    """The slot layout drives transformers' StaticCache internals (5.x): check they exist."""
    from transformers import StaticCache
    from transformers.cache_utils import StaticLayer

    return (hasattr(StaticCache, "early_initialization")
            and "cumulative_length" in getattr(StaticLayer, "__annotations__", {}))


def slot_capacity(widest_prompt: int, max_new_tokens: int) -> int:
    """Columns of a slot batch: the longest row plus slack, so shifts stay rare; x 64."""
    slack = max(64, max_new_tokens // 4)
    need = widest_prompt + max_new_tokens + slack
    return -(-need // 64) * 64


def _static_cache(lm: LoadedModel, slots: int, capacity: int):
    from transformers import StaticCache

    config = lm.model.config.get_text_config(decoder=True)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    cache = StaticCache(config=config, max_cache_len=capacity)
    dtype = next(p.dtype for p in lm.model.parameters() if p.is_floating_point())
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        dtype = torch.bfloat16  # quantised weights compute in bf16
    cache.early_initialization(slots, getattr(config, "num_key_value_heads", heads), head_dim,
                               dtype, lm.device)
    return cache


def _compiled_call(model: torch.nn.Module):
    """The model's forward compiled by transformers (inductor, CUDA graphs on CUDA)."""
    return model.get_compiled_call(None)


def _warn_compile_error(exc: Exception) -> None:
    log.warning("compiling the decode step failed (%s: %s); decoding eagerly",
                type(exc).__name__, exc)
