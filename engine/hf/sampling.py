"""Choosing the next token: greedy argmax, or temperature / top-p sampling with counter noise.

Sampling noise is counter-based: the Gumbel noise for row r at step t and token v is a hash of
(row seed, t, v), where the row seed comes from (run seed, problem id, sample index). A row's
draws therefore depend on neither batch size, order nor neighbours, and a row that joined a
running batch late uses its own step count. The Gumbel-max trick turns that noise into a
sample: argmax(log p + noise) is distributed as p.

Every path (full vocabulary, nucleus candidates only, forced tokens only) computes a token's
noise with the one formula in ``token_noise``, so the fast paths draw exactly what a plain
full-vocabulary sampler draws (the tests hold an independent reference).
"""

from __future__ import annotations

import functools

import torch

from engine.settings import SamplingConfig, row_seed  # noqa: F401  (torch-free; re-exported)

_MASK32 = 0xFFFFFFFF
# Candidate counts tried before a full sort of the vocabulary: real models' nuclei are small.
NUCLEUS_CANDIDATES = (128, 1024)


# ---------------------------------------------------------------- the noise


def _pcg_hash(x: torch.Tensor) -> torch.Tensor:
    """PCG-RXS-M-XS 32-bit hash on int64 tensors (values stay < 2**62, so no overflow)."""
    x = (x * 747796405 + 2891336453) & _MASK32
    word = (((x >> ((x >> 28) + 4)) ^ x) * 277803737) & _MASK32
    return ((word >> 22) ^ word) & _MASK32


def row_states(row_seeds: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    """The (row, step) half of the noise hash; ``step`` is one int or each row's own step."""
    steps = torch.as_tensor(step, dtype=torch.long, device=row_seeds.device)
    return _pcg_hash((row_seeds.long() ^ _pcg_hash(steps)) & _MASK32)


def hash_tokens(token_ids: torch.Tensor) -> torch.Tensor:
    """The per-token half of the noise hash."""
    return _pcg_hash(token_ids.long() + 0x9E3779B9)


@functools.lru_cache(maxsize=8)
def vocab_hashes(vocab: int, device: torch.device) -> torch.Tensor:
    """``hash_tokens`` of the whole vocabulary: the same at every step, so computed once."""
    return hash_tokens(torch.arange(vocab, device=device, dtype=torch.long))


def token_noise(states: torch.Tensor, token_hashes: torch.Tensor) -> torch.Tensor:
    """Gumbel(0, 1) noise (float64) of (row state, token hash); shapes broadcast. The one
    formula every sampling path uses."""
    bits = _pcg_hash(_pcg_hash(states ^ token_hashes))
    uniform = (bits.double() + 0.5) / 4294967296.0  # strictly inside (0, 1)
    return -torch.log(-torch.log(uniform))


# ---------------------------------------------------------------- choosing


def choose_next_tokens(logits: torch.Tensor, sampling: SamplingConfig, row_seeds: torch.Tensor,
                       step: int | torch.Tensor) -> torch.Tensor:
    """Greedy argmax, or a temperature/top-p sample via the Gumbel-max trick with row noise."""
    if sampling.greedy:
        return logits.argmax(dim=-1)
    logp = torch.log_softmax(logits.double() / sampling.temperature, dim=-1)
    states = row_states(row_seeds, step)
    if sampling.top_p < 1.0:
        values, ids, inside = nucleus_candidates(logp, sampling.top_p)
        if ids.shape[-1] < logp.shape[-1]:
            return _gumbel_argmax_among(values, ids, inside, states)
        logp = _masked_outside(logp, ids, inside)
    return _gumbel_argmax(logp, states)


def nucleus_candidates(logp: torch.Tensor, top_p: float):
    """The most probable tokens, sorted: (log-probs, token ids, in-nucleus flags) [rows, k].

    The nucleus is the smallest most-probable set whose mass reaches ``top_p``. It is looked
    for among the top 128, then 1024 tokens, and only then in a full sort; every try gives the
    same set as the full sort whenever the set fits in it for every row.
    """
    vocab = logp.shape[-1]
    peak = float(logp.max(dim=-1).values.exp().min())  # the flattest row's top probability
    for count in (*NUCLEUS_CANDIDATES, vocab):
        if count < vocab and count * peak < top_p:
            continue  # some row is too flat for its nucleus to fit in `count` tokens
        if count < vocab:
            values, ids = logp.topk(count, dim=-1)
        else:
            values, ids = logp.sort(dim=-1, descending=True)
        probs = values.exp()
        mass_before = probs.cumsum(dim=-1) - probs
        if count == vocab or bool((mass_before[:, -1] + probs[:, -1] >= top_p).all()):
            return values, ids, mass_before < top_p
    raise AssertionError("unreachable: the full sort always returns")


def _masked_outside(logp: torch.Tensor, ids: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    keep = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, ids, inside)
    return logp.masked_fill(~keep, float("-inf"))


def _gumbel_argmax_among(values: torch.Tensor, ids: torch.Tensor, inside: torch.Tensor,
                         states: torch.Tensor) -> torch.Tensor:
    """argmax over the vocabulary of logp + noise, computed on the nucleus candidates only.

    The noise of a token is the same as on the full vocabulary; ties go to the lowest token
    id, as a full-vocabulary argmax would give them.
    """
    noise = token_noise(states[:, None], hash_tokens(ids))  # for these ids only
    scores = torch.where(inside, values + noise, float("-inf"))
    best = scores.max(dim=-1, keepdim=True).values
    return torch.where(scores == best, ids, torch.iinfo(torch.long).max).min(dim=-1).values


def _gumbel_argmax(logp: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """argmax(logp + noise); the noise is only computed where ``logp`` is finite when that is
    a small share of the vocabulary (forced tokens) — same result, less work."""
    tokens = vocab_hashes(logp.shape[-1], logp.device)
    kept = torch.isfinite(logp)
    if 4 * int(kept.sum()) >= kept.numel():
        return (logp + token_noise(states[:, None], tokens[None])).argmax(-1)
    rows, cols = kept.nonzero(as_tuple=True)
    scores = torch.full_like(logp, float("-inf"))
    noise = token_noise(states[rows], tokens[cols])
    scores[rows, cols] = logp[rows, cols] + noise
    return scores.argmax(dim=-1)
