"""Short branches off one encoded sequence: forced answers and teacher-forced scores.

A rollout serves every budget as a prefix. To force an answer at several budgets B1 < B2 < ...
of one rollout, the sequence (prompt + rollout) is encoded ONCE, in one forward pass; each
branch then starts from a copy of that KV cache cropped to its own prefix, is fed the cue
(teacher-forced) and decodes a few greedy tokens. Branches of any rows are batched together:
each branch's cropped keys are right-aligned in a shared cache and a per-row attention mask and
per-row position ids hide the padding (the same scheme as ``engine.hf.batching``), so where a branch
sits in the batch does not change what it computes (up to float rounding).

``branch_scores`` uses the same branches to score given continuations: the summed
log-probability of each candidate's tokens after the cue, all candidates of all branches
batched, one forward pass each.

Nothing here knows a dataset or a budget: callers pass token ids and prefix lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from engine.base import Branch, BranchAnswer, progress_bar
from engine.hf.batching import cache_argument_name, plain_layers
from engine.settings import ModelLoadError

if TYPE_CHECKING:
    from engine.hf import LoadedModel
from engine.thinking import KNOWN_MARKERS, detect_markers

# Markers that close a reasoning section (Qwen3, DeepSeek-R1): engine.thinking owns the list.
THINKING_END_MARKERS = tuple(end for _, end in KNOWN_MARKERS)


def thinking_end_marker(tokenizer) -> str | None:
    """The end-of-thinking marker the tokenizer or its chat template uses, if any (forced cues
    start with it); ``engine.thinking.detect_markers`` decides."""
    markers = detect_markers(tokenizer)
    return markers.end if markers is not None else None


@torch.no_grad()
def branch_answers(lm: LoadedModel, sequences: Sequence[Sequence[int]],
                   branches: Sequence[Branch], cue_ids: Sequence[int], answer_tokens: int,
                   batch_size: int = 16, progress: bool = False) -> list[BranchAnswer]:
    """For each branch: ``sequences[row][:prefix_len] + cue_ids``, then up to ``answer_tokens``
    greedy tokens (stopping at EOS). Each sequence is encoded once, to its longest branch."""
    if not cue_ids:
        raise ValueError("the cue must have at least one token")
    out: list[BranchAnswer | None] = [None] * len(branches)
    bar = progress_bar(len(branches), progress, "forcing answers", "branch")
    prefixes: dict[int, list[tuple[torch.Tensor, ...]]] = {}
    longest = _longest_prefix(branches)
    for group in _groups(sequences, branches, batch_size):
        prefixes = _encode_rows(lm, sequences, {branches[i].row for i in group}, longest,
                                prefixes)
        cache, mask, positions = _branch_cache(lm, prefixes, [branches[i] for i in group])
        step_ids = torch.tensor([list(cue_ids)] * len(group), device=lm.device)
        eos = torch.tensor(lm.eos_ids, device=lm.device)
        generated = torch.zeros((len(group), 0), dtype=torch.long, device=lm.device)
        for _ in range(answer_tokens):
            logits, mask, positions = _forward(lm, cache, mask, positions, step_ids)
            step_ids = logits[:, -1, :].float().argmax(dim=-1, keepdim=True)
            generated = torch.cat([generated, step_ids], dim=1)
            if bool(torch.isin(generated, eos).any(dim=1).all()):
                break  # every branch has ended; later tokens would be cut anyway
        for slot, index in enumerate(group):
            out[index] = _until_eos(generated[slot].tolist(), lm.eos_ids)
        if bar is not None:
            bar.update(len(group))
    if bar is not None:
        bar.close()
    return out  # type: ignore[return-value]


@torch.no_grad()
def branch_scores(lm: LoadedModel, sequences: Sequence[Sequence[int]],
                  branches: Sequence[Branch], cue_ids: Sequence[int],
                  candidates: Sequence[Sequence[Sequence[int]]],
                  batch_size: int = 16, progress: bool = False) -> list[list[float]]:
    """Summed log-probability (natural log) of each candidate continuation after each branch's
    prefix + cue, teacher-forced: ``candidates[k]`` are branch k's candidates (token ids)."""
    pairs = [(k, c) for k, cands in enumerate(candidates) for c in range(len(cands))]
    scores: list[list[float]] = [[0.0] * len(c) for c in candidates]
    if any(len(candidates[k][c]) == 0 for k, c in pairs):
        raise ValueError("every candidate needs at least one token")
    pair_branches = [branches[k] for k, _ in pairs]
    bar = progress_bar(len(pairs), progress, "scoring answers", "answer")
    prefixes: dict[int, list[tuple[torch.Tensor, ...]]] = {}
    longest = _longest_prefix(pair_branches)
    for group in _groups(sequences, pair_branches, batch_size):
        chosen = [pair_branches[i] for i in group]
        prefixes = _encode_rows(lm, sequences, {b.row for b in chosen}, longest, prefixes)
        cache, mask, positions = _branch_cache(lm, prefixes, chosen)
        tails = [list(cue_ids) + list(candidates[pairs[i][0]][pairs[i][1]]) for i in group]
        width = max(len(t) for t in tails)
        # Right padding: under causal attention the pads come after every real token and
        # change nothing they compute; their own logits are ignored.
        ids = torch.tensor([t + [lm.pad_id] * (width - len(t)) for t in tails],
                           device=lm.device)
        logits, _, _ = _forward(lm, cache, mask, positions, ids)
        logp = torch.log_softmax(logits.float(), dim=-1)
        for slot, index in enumerate(group):
            k, c = pairs[index]
            cand = list(candidates[k][c])
            start = len(cue_ids) - 1  # logits at the cue's last token predict the first one
            rows = torch.arange(start, start + len(cand), device=lm.device)
            target = torch.tensor(cand, device=lm.device)
            scores[k][c] = float(logp[slot, rows, target].sum())
        if bar is not None:
            bar.update(len(group))
    if bar is not None:
        bar.close()
    return scores


# ---------------------------------------------------------------- internals


def _groups(sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
            batch_size: int) -> list[list[int]]:
    """Branch indices in groups of at most ``batch_size``; a row's branches stay in one group
    unless they alone exceed it, so each row is encoded once (per group it appears in)."""
    if any(not 0 < b.prefix_len <= len(sequences[b.row]) for b in branches):
        raise ValueError("a branch's prefix must be 1..len(sequence) tokens")
    size = max(1, batch_size)
    by_row: dict[int, list[int]] = {}
    for i in sorted(range(len(branches)), key=lambda i: (branches[i].row, branches[i].prefix_len)):
        by_row.setdefault(branches[i].row, []).append(i)
    groups: list[list[int]] = []
    current: list[int] = []
    for members in by_row.values():
        if current and len(current) + len(members) > size:
            groups.append(current)
            current = []
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            if current and len(current) + len(chunk) > size:
                groups.append(current)
                current = []
            current += chunk
    return groups + ([current] if current else [])


def _encode_rows(lm: LoadedModel, sequences: Sequence[Sequence[int]], rows: set[int],
                 longest: dict[int, int], previous: dict[int, list[tuple[torch.Tensor, ...]]],
                 ) -> dict[int, list[tuple[torch.Tensor, ...]]]:
    """These rows encoded up to ``longest[row]``, their longest branch over every group: per
    row, the (keys, values) of every layer, [1, heads, length, dim]. A row in ``previous`` (the
    last group's encodings: a row with many branches spans consecutive groups) is taken from
    there, not encoded again; branches crop their first prefix_len positions."""
    from transformers import DynamicCache

    encoded = {}
    for row in sorted(rows):
        if row in previous:
            encoded[row] = previous[row]
            continue
        cache = DynamicCache(config=lm.model.config)
        ids = torch.tensor([list(sequences[row][:longest[row]])], device=lm.device)
        lm.model(input_ids=ids, use_cache=True, logits_to_keep=1,
                 **{cache_argument_name(lm.model): cache})
        if not plain_layers(cache):
            raise ModelLoadError("forced answers need full-attention KV layers; this model has "
                                 "sliding-window or other special layers")
        encoded[row] = [(layer.keys, layer.values) for layer in cache.layers]
    return encoded


def _longest_prefix(branches: Sequence[Branch]) -> dict[int, int]:
    """row -> its longest branch prefix."""
    longest: dict[int, int] = {}
    for b in branches:
        longest[b.row] = max(longest.get(b.row, 0), b.prefix_len)
    return longest


def _branch_cache(lm: LoadedModel, encoded: dict[int, list[tuple[torch.Tensor, ...]]],
                  branches: Sequence[Branch]):
    """A batch cache holding each branch's cropped prefix, right-aligned: (cache, mask, next
    positions)."""
    from transformers import DynamicCache

    width = max(b.prefix_len for b in branches)
    cache = DynamicCache(config=lm.model.config)
    layers = len(next(iter(encoded.values())))
    for layer in range(layers):
        keys, values = encoded[branches[0].row][layer]
        shape = (len(branches), keys.shape[1], width, keys.shape[3])
        k_all, v_all = keys.new_zeros(shape), values.new_zeros(shape)
        for slot, b in enumerate(branches):
            keys, values = encoded[b.row][layer]
            k_all[slot, :, width - b.prefix_len:] = keys[0, :, :b.prefix_len]
            v_all[slot, :, width - b.prefix_len:] = values[0, :, :b.prefix_len]
        cache.update(k_all, v_all, layer)
    mask = torch.zeros((len(branches), width), dtype=torch.long, device=lm.device)
    for slot, b in enumerate(branches):
        mask[slot, width - b.prefix_len:] = 1
    positions = torch.tensor([b.prefix_len for b in branches], device=lm.device)
    return cache, mask, positions


def _forward(lm: LoadedModel, cache, mask: torch.Tensor, positions: torch.Tensor,
             ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Feed ``ids`` [rows, n] after the cache; returns (logits [rows, n, vocab], mask, next
    positions)."""
    n = ids.shape[1]
    mask = torch.cat([mask, mask.new_ones((mask.shape[0], n))], dim=1)
    pos = positions[:, None] + torch.arange(n, device=ids.device)[None]
    out = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                   **{cache_argument_name(lm.model): cache})
    return out.logits, mask, positions + n


def _until_eos(tokens: list[int], eos_ids: Sequence[int]) -> BranchAnswer:
    for i, token in enumerate(tokens):
        if token in eos_ids:
            return BranchAnswer(tuple(tokens[:i + 1]), True)
    return BranchAnswer(tuple(tokens), False)
