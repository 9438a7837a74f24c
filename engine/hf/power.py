"""Power sampling: Metropolis–Hastings over whole sequences, targeting p(x)^alpha.

A chain is grown in blocks. Each block is first extended by sampling from the proposal q (token
sampling at temperature 1/alpha); then ``mcmc_steps`` Metropolis–Hastings steps follow, each
picking a position i uniformly in the generated part, resampling the suffix from i (up to the
block's end or EOS) from q, and accepting with

    log r = alpha*sum log p(x') + sum log q(x) - alpha*sum log p(x) - sum log q(x') + log(n/n')

(sums over the resampled suffixes; n, n' the lengths of x and x'). The last term is 0 unless
EOS made the lengths differ; it is the ratio of the uniform position choices, without which
the kernel would not be reversible on sequences of unequal length. A chain that holds EOS
after a block's steps is finished, as in the reference implementation.

The log-probabilities of a proposal come from the forward passes that sample it. Every
proposed token is counted (``tokens_proposed``): that is what the method costs. A chain keeps
the keys and values of its current sequence, so a proposal from position i starts from that
cache cropped to i and feeds only its new tokens (nothing is encoded twice).

Randomness is counter-based like ``engine.hf.sampling``: segment c of a chain (c counts the block
extensions and proposals) samples with row seed ``row_states(chain seed, c)``, and the position
and acceptance draws are hashes of (chain seed, c). A chain therefore depends on neither the
batch it runs in nor its neighbours (up to float rounding of padded matmuls), and the same
seed gives the same chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engine.hf import batching
from engine.hf.sampling import (
    SamplingConfig,
    choose_next_tokens,
    hash_tokens,
    row_states,
    token_noise,
)

if TYPE_CHECKING:
    from engine.hf import LoadedModel

# Salts of the two uniform draws of an MH step (negative: never a token id's hash input).
_POSITION_SALT, _ACCEPT_SALT = -1, -2


@dataclass(frozen=True)
class PowerSettings:
    """The sampler's knobs (their defaults live in the study config)."""

    alpha: float  # target p^alpha; proposal temperature 1/alpha
    blocks: int  # the length budget is grown in this many blocks
    mcmc_steps: int  # MH steps after each block

    def block_ends(self, max_new_tokens: int) -> list[int]:
        """Length each block grows the chain to: ceil(max / blocks) tokens per block."""
        size = max(1, math.ceil(max_new_tokens / self.blocks))
        return list(range(size, max_new_tokens, size)) + [max_new_tokens]


@dataclass(frozen=True)
class PowerRollout:
    """The final state of one chain and what it cost."""

    token_ids: tuple[int, ...]
    eos: bool  # the chain ends at EOS
    tokens_proposed: int  # every token sampled: block extensions and all proposals
    proposals: int  # MH proposals made
    accepted: int  # of which accepted


# Keys and values of one row, per layer: [1, heads, columns, head dim] each (None: no columns).
RowKV = list[tuple[torch.Tensor, torch.Tensor]] | None


@dataclass
class _Chain:
    prompt: Sequence[int]
    seed: int
    tokens: list[int]
    logp: list[float]  # log p of each token (temperature 1)
    logq: list[float]  # log q of each token (temperature 1/alpha)
    kv: RowKV = None  # keys/values of (prompt + tokens)[:-1]: a proposal reuses its prefix
    eos: bool = False
    spent: int = 0
    proposals: int = 0
    accepted: int = 0


@dataclass
class Segment:
    """Tokens sampled from q after a start, their log p and log q, whether the last is EOS,
    and the keys/values of (start + tokens)[:-1] for the next proposal."""

    tokens: list[int]
    logp: list[float]
    logq: list[float]
    eos: bool = False
    kv: RowKV = None


PowerCallback = Callable[[list[int], list[PowerRollout]], None]


def uniform_draws(seeds: torch.Tensor, counter: int, salt: int) -> torch.Tensor:
    """One uniform in (0, 1) per chain for (seed, counter, salt): the Gumbel noise of
    ``engine.hf.sampling`` mapped back through its CDF, so it is the same hash family."""
    states = row_states(seeds, counter)
    gumbel = token_noise(states, hash_tokens(torch.tensor(salt, device=seeds.device)))
    return torch.exp(-torch.exp(-gumbel))


def _crop(kv: RowKV, columns: int) -> RowKV:
    if kv is None or columns <= 0:
        return None
    return [(k[:, :, :columns], v[:, :, :columns]) for k, v in kv]


def _row_kv(cache, mask: torch.Tensor, row: int) -> RowKV:
    """One row's keys and values (its unmasked columns) out of a batch cache."""
    # A row's columns are one run ending at the last column (``engine.hf.batching``); a copy, so
    # the batch's cache is freed once the batch is done.
    count = int(mask[row].sum())
    if not count:
        return None
    return [(layer.keys[row:row + 1, :, -count:].clone(),
             layer.values[row:row + 1, :, -count:].clone()) for layer in cache.layers]


def prompt_kv(lm: LoadedModel, prompts: Sequence[Sequence[int]]) -> list[RowKV]:
    """Keys and values of each prompt but its last token (one batched prefill)."""
    heads = [list(p[:-1]) for p in prompts]
    out: list[RowKV] = [None] * len(prompts)
    rows = [i for i, h in enumerate(heads) if h]
    if rows:
        cache, mask, _, _ = batching.prefill(lm, [heads[i] for i in rows])
        for j, i in enumerate(rows):
            out[i] = _row_kv(cache, mask, j)
    return out


def _seeded_batch(lm: LoadedModel, starts: Sequence[Sequence[int]], kvs: Sequence[RowKV],
                  seeds: Sequence[int], max_new_tokens: int) -> batching.GrowingBatch:
    """A running batch whose rows hold ``kvs`` (keys/values of start[:-1]) and are about to be
    fed their start's last token: no prefix is encoded again."""
    from transformers import DynamicCache

    widths = [0 if kv is None else kv[0][0].shape[2] for kv in kvs]
    if any(w != len(s) - 1 for w, s in zip(widths, starts)):
        raise ValueError("cached keys and values must cover each start but its last token")
    width = max(widths)
    cache = DynamicCache(config=lm.model.config)
    if not batching.plain_layers(cache):
        raise ValueError("power sampling reuses KV prefixes and needs full-attention layers")
    shapes = next((kv for kv in kvs if kv is not None), None)
    if width and shapes is not None:
        for layer_index, layer in enumerate(cache.layers):
            keys, values = [], []
            for kv in kvs:
                k, v = kv[layer_index] if kv is not None else (
                    shapes[layer_index][0][:, :, :0], shapes[layer_index][1][:, :, :0])
                keys.append(batching._pad_left(k, width))
                values.append(batching._pad_left(v, width))
            layer.update(torch.cat(keys), torch.cat(values))
    batch = batching.GrowingBatch(lm, len(starts), max_new_tokens)
    mask = torch.zeros((len(starts), width), dtype=torch.long, device=lm.device)
    for row, w in enumerate(widths):
        if w:
            mask[row, width - w:] = 1
    batch.cache, batch.mask, batch.mergeable = cache, mask, True
    positions = torch.tensor(widths, dtype=torch.long, device=lm.device)
    batch._add_rows([(i, s, seed) for i, (s, seed) in enumerate(zip(starts, seeds))], positions)
    batch.tokens = torch.tensor([s[-1] for s in starts], dtype=torch.long, device=lm.device)
    return batch


@torch.no_grad()
def continue_from(lm: LoadedModel, starts: Sequence[Sequence[int]], kvs: Sequence[RowKV],
                  limits: Sequence[int], seeds: Sequence[int], alpha: float) -> list[Segment]:
    """Sample each start's continuation from q (temperature 1/alpha) for up to ``limits[i]``
    tokens or EOS, in one batch; ``kvs[i]`` holds the keys/values of ``starts[i][:-1]``."""
    out = [Segment([], [], []) for _ in starts]
    rows = [i for i, n in enumerate(limits) if n > 0]
    if not rows:
        return out
    proposal = SamplingConfig(temperature=1.0 / alpha, top_p=1.0)
    batch = _seeded_batch(lm, [starts[i] for i in rows], [kvs[i] for i in rows],
                          [seeds[i] for i in rows], max(limits))
    eos = torch.tensor(lm.eos_ids, device=lm.device, dtype=torch.long)
    limit = torch.tensor([limits[i] for i in rows], device=lm.device, dtype=torch.long)
    logits = batch.decode_step()
    while True:
        logits = logits.float()  # what the plain decode loop samples from
        tokens = choose_next_tokens(logits, proposal, batch.seeds, batch.steps)
        wide = logits.double()
        logp = torch.log_softmax(wide, dim=-1).gather(-1, tokens[:, None])[:, 0]
        logq = torch.log_softmax(wide * alpha, dim=-1).gather(-1, tokens[:, None])[:, 0]
        ids = torch.tensor(batch.ids, device=lm.device)
        ended = torch.isin(tokens, eos)
        done = ended | (batch.steps + 1 >= limit[ids])
        for row, (j, token, lp, lq, stop, end) in enumerate(zip(
                batch.ids, tokens.tolist(), logp.tolist(), logq.tolist(), done.tolist(),
                ended.tolist())):
            seg = out[rows[j]]
            seg.tokens.append(token)
            seg.logp.append(lp)
            seg.logq.append(lq)
            if stop:
                seg.eos = end
                seg.kv = _row_kv(batch.cache, batch.mask, row)
        batch.steps, batch.tokens = batch.steps + 1, tokens
        if bool(done.any()):
            batch.release((~done).nonzero().squeeze(-1))
        if not batch.live:
            return out
        logits = batch.decode_step()


def sample_segments(lm: LoadedModel, prompts: Sequence[Sequence[int]], limits: Sequence[int],
                    seeds: Sequence[int], alpha: float) -> list[Segment]:
    """``continue_from`` fresh prompts (their keys and values computed here)."""
    return continue_from(lm, prompts, prompt_kv(lm, prompts), limits, seeds, alpha)


def _run_chains(lm: LoadedModel, chains: list[_Chain], max_new_tokens: int,
                settings: PowerSettings) -> None:
    """Advance a group of chains in lockstep through every block and MH step."""
    seeds = torch.tensor([c.seed for c in chains], dtype=torch.long, device=lm.device)
    for chain, kv in zip(chains, prompt_kv(lm, [c.prompt for c in chains])):
        chain.kv = kv
    counter = 0
    live = list(range(len(chains)))
    for end in settings.block_ends(max_new_tokens):
        live = [i for i in live if not chains[i].eos]
        if not live:
            return
        group = [chains[i] for i in live]
        segments = _segments(lm, group, [len(c.tokens) for c in group],
                             [end - len(c.tokens) for c in group], seeds[live], counter,
                             settings.alpha)
        for chain, seg in zip(group, segments):
            chain.tokens += seg.tokens
            chain.logp += seg.logp
            chain.logq += seg.logq
            chain.eos, chain.kv = seg.eos, seg.kv
            chain.spent += len(seg.tokens)
        counter += 1
        for _ in range(settings.mcmc_steps):
            _mh_step(lm, group, seeds[live], counter, end, settings.alpha)
            counter += 1


def _segments(lm: LoadedModel, chains: list[_Chain], starts: list[int], limits: list[int],
              seeds: torch.Tensor, counter: int, alpha: float) -> list[Segment]:
    """Continue each chain from its first ``starts[i]`` tokens for up to ``limits[i]`` tokens
    (segment ``counter``), reusing the chain's keys and values of that prefix."""
    segment_seeds = row_states(seeds, counter).tolist()
    prefixes = [[*c.prompt, *c.tokens[:s]] for c, s in zip(chains, starts)]
    kvs = [_crop(c.kv, len(p) - 1) for c, p in zip(chains, prefixes)]
    return continue_from(lm, prefixes, kvs, limits, segment_seeds, alpha)


def _mh_step(lm: LoadedModel, chains: list[_Chain], seeds: torch.Tensor, counter: int,
             end: int, alpha: float) -> None:
    """One Metropolis–Hastings step of every chain: propose a new suffix, accept or keep."""
    lengths = [len(c.tokens) for c in chains]
    picks = uniform_draws(seeds, counter, _POSITION_SALT).tolist()
    accept_u = uniform_draws(seeds, counter, _ACCEPT_SALT).tolist()
    starts = [min(int(u * n), n - 1) for u, n in zip(picks, lengths)]
    segments = _segments(lm, chains, starts, [end - s for s in starts], seeds, counter, alpha)
    for chain, start, seg, u in zip(chains, starts, segments, accept_u):
        chain.spent += len(seg.tokens)
        chain.proposals += 1
        n_old, n_new = len(chain.tokens), start + len(seg.tokens)
        log_r = (alpha * sum(seg.logp) + sum(chain.logq[start:])
                 - alpha * sum(chain.logp[start:]) - sum(seg.logq)
                 + math.log(n_old) - math.log(n_new))
        if math.log(u) < log_r:
            chain.tokens[start:] = seg.tokens
            chain.logp[start:] = seg.logp
            chain.logq[start:] = seg.logq
            chain.eos, chain.kv = seg.eos, seg.kv
            chain.accepted += 1


def power_sample(lm: LoadedModel, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 settings: PowerSettings, seeds: Sequence[int], batch_size: int,
                 on_batch: PowerCallback | None = None) -> list[PowerRollout]:
    """One power-sampling chain per prompt, up to ``max_new_tokens``; in input order.

    Chains run in groups of ``batch_size`` (in lockstep within a group);
    ``on_batch(indices, rollouts)`` receives each group as it finishes, so a caller can
    persist progress.
    """
    if len(prompts) != len(seeds):
        raise ValueError("one seed per prompt is required")
    if settings.alpha <= 0 or settings.blocks < 1 or settings.mcmc_steps < 0:
        raise ValueError(f"invalid power-sampling settings {settings}")
    results: list[PowerRollout | None] = [None] * len(prompts)
    size = max(1, batch_size)
    for first in range(0, len(prompts), size):
        indices = list(range(first, min(first + size, len(prompts))))
        chains = [_Chain(prompts[i], int(seeds[i]), [], [], []) for i in indices]
        if max_new_tokens > 0:
            _run_chains(lm, chains, max_new_tokens, settings)
        group = [PowerRollout(tuple(c.tokens), c.eos, c.spent, c.proposals, c.accepted)
                 for c in chains]
        for i, rollout in zip(indices, group):
            results[i] = rollout
        if on_batch is not None:
            on_batch(indices, group)
    return [r for r in results if r is not None]
