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
proposed token is counted (``tokens_proposed``): that is what the method costs.

Randomness is counter-based like ``engine.sampling``: segment c of a chain (c counts the block
extensions and proposals) samples with row seed ``row_states(chain seed, c)``, and the position
and acceptance draws are hashes of (chain seed, c). A chain therefore depends on neither the
batch it runs in nor its neighbours (up to float rounding of padded matmuls), and the same
seed gives the same chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from engine import batching
from engine.loading import LoadedModel
from engine.sampling import (
    SamplingConfig,
    choose_next_tokens,
    hash_tokens,
    row_states,
    token_noise,
)

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


@dataclass
class _Chain:
    prompt: Sequence[int]
    seed: int
    tokens: list[int]
    logp: list[float]  # log p of each token (temperature 1)
    logq: list[float]  # log q of each token (temperature 1/alpha)
    eos: bool = False
    spent: int = 0
    proposals: int = 0
    accepted: int = 0


# (token ids, log p, log q, ended at EOS) of one sampled segment
Segment = tuple[list[int], list[float], list[float], bool]
PowerCallback = Callable[[list[int], list[PowerRollout]], None]


def uniform_draws(seeds: torch.Tensor, counter: int, salt: int) -> torch.Tensor:
    """One uniform in (0, 1) per chain for (seed, counter, salt): the Gumbel noise of
    ``engine.sampling`` mapped back through its CDF, so it is the same hash family."""
    states = row_states(seeds, counter)
    gumbel = token_noise(states, hash_tokens(torch.tensor(salt, device=seeds.device)))
    return torch.exp(-torch.exp(-gumbel))


@torch.no_grad()
def sample_segments(lm: LoadedModel, prompts: Sequence[Sequence[int]], limits: Sequence[int],
                    seeds: Sequence[int], alpha: float) -> list[Segment]:
    """Sample each prompt's continuation from q (temperature 1/alpha) for up to ``limits[i]``
    tokens or EOS, in one batch; returns the tokens with their log p and log q."""
    out: list[Segment] = [([], [], [], False) for _ in prompts]
    rows = [(i, p, s) for i, (p, s, n) in enumerate(zip(prompts, seeds, limits)) if n > 0]
    if not rows:
        return out
    proposal = SamplingConfig(temperature=1.0 / alpha, top_p=1.0)
    batch = batching.GrowingBatch(lm, len(rows), max(limits))
    eos = torch.tensor(lm.eos_ids, device=lm.device, dtype=torch.long)
    limit = torch.tensor(list(limits), device=lm.device, dtype=torch.long)
    logits = batch.advance(rows)
    while True:
        logits = logits.float()  # what the plain decode loop samples from
        tokens = choose_next_tokens(logits, proposal, batch.seeds, batch.steps)
        wide = logits.double()
        logp = torch.log_softmax(wide, dim=-1).gather(-1, tokens[:, None])[:, 0]
        logq = torch.log_softmax(wide * alpha, dim=-1).gather(-1, tokens[:, None])[:, 0]
        ids = torch.tensor(batch.ids, device=lm.device)
        ended = torch.isin(tokens, eos)
        done = ended | (batch.steps + 1 >= limit[ids])
        for row, token, lp, lq, stop in zip(batch.ids, tokens.tolist(), logp.tolist(),
                                            logq.tolist(), ended.tolist()):
            out[row][0].append(token)
            out[row][1].append(lp)
            out[row][2].append(lq)
            if stop:
                out[row] = (*out[row][:3], True)
        batch.steps, batch.tokens = batch.steps + 1, tokens
        if bool(done.any()):
            batch.release((~done).nonzero().squeeze(-1))
        if not batch.live:
            return out
        logits = batch.decode_step()


def _run_chains(lm: LoadedModel, chains: list[_Chain], max_new_tokens: int,
                settings: PowerSettings) -> None:
    """Advance a group of chains in lockstep through every block and MH step."""
    seeds = torch.tensor([c.seed for c in chains], dtype=torch.long, device=lm.device)
    counter = 0
    live = list(range(len(chains)))
    for end in settings.block_ends(max_new_tokens):
        live = [i for i in live if not chains[i].eos]
        if not live:
            return
        grow = [end - len(chains[i].tokens) for i in live]
        segments = _segments(lm, [chains[i] for i in live], [len(chains[i].tokens) for i in live],
                             grow, seeds[live], counter, settings.alpha)
        for i, seg in zip(live, segments):
            chain = chains[i]
            chain.tokens += seg[0]
            chain.logp += seg[1]
            chain.logq += seg[2]
            chain.eos = seg[3]
            chain.spent += len(seg[0])
        counter += 1
        for _ in range(settings.mcmc_steps):
            _mh_step(lm, [chains[i] for i in live], seeds[live], counter, end, settings.alpha)
            counter += 1


def _segments(lm: LoadedModel, chains: list[_Chain], starts: list[int], limits: list[int],
              seeds: torch.Tensor, counter: int, alpha: float) -> list[Segment]:
    """Continue each chain from ``starts[i]`` for up to ``limits[i]`` tokens (segment
    ``counter``)."""
    segment_seeds = row_states(seeds, counter).tolist()
    prompts = [[*c.prompt, *c.tokens[:s]] for c, s in zip(chains, starts)]
    return sample_segments(lm, prompts, limits, segment_seeds, alpha)


def _mh_step(lm: LoadedModel, chains: list[_Chain], seeds: torch.Tensor, counter: int,
             end: int, alpha: float) -> None:
    """One Metropolis–Hastings step of every chain: propose a new suffix, accept or keep."""
    lengths = [len(c.tokens) for c in chains]
    picks = uniform_draws(seeds, counter, _POSITION_SALT).tolist()
    accept_u = uniform_draws(seeds, counter, _ACCEPT_SALT).tolist()
    starts = [min(int(u * n), n - 1) for u, n in zip(picks, lengths)]
    segments = _segments(lm, chains, starts, [end - s for s in starts], seeds, counter, alpha)
    for chain, start, seg, u in zip(chains, starts, segments, accept_u):
        new_tokens, new_logp, new_logq, new_eos = seg
        chain.spent += len(new_tokens)
        chain.proposals += 1
        n_old, n_new = len(chain.tokens), start + len(new_tokens)
        log_r = (alpha * sum(new_logp) + sum(chain.logq[start:])
                 - alpha * sum(chain.logp[start:]) - sum(new_logq)
                 + math.log(n_old) - math.log(n_new))
        if math.log(u) < log_r:
            chain.tokens[start:] = new_tokens
            chain.logp[start:] = new_logp
            chain.logq[start:] = new_logq
            chain.eos = new_eos
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
