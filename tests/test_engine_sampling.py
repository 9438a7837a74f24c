"""The sampler: counter-based noise and the top-p shortcuts, checked against plain references.

The references here are written independently of the engine (the noise hash in numpy, the
nucleus by a full sort, the sample by a full-vocabulary argmax): the engine's fast paths must
draw exactly what they draw, so the study's sampled results cannot drift unnoticed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.hf import sampling as engine
from utils import SamplingConfig

GREEDY = SamplingConfig()
SAMPLED = SamplingConfig(temperature=0.7, top_p=0.9)
MASK32 = np.uint64(0xFFFFFFFF)


def pcg(x: np.ndarray) -> np.ndarray:
    """PCG-RXS-M-XS 32-bit output hash of uint64 values below 2**33."""
    x = (x * np.uint64(747796405) + np.uint64(2891336453)) & MASK32
    word = (((x >> ((x >> np.uint64(28)) + np.uint64(4))) ^ x) * np.uint64(277803737)) & MASK32
    return ((word >> np.uint64(22)) ^ word) & MASK32


def reference_noise(seeds, steps, vocab: int) -> torch.Tensor:
    """Gumbel noise [rows, vocab] of (row seed, row step, token id), hashed in numpy."""
    seeds = np.asarray(seeds, dtype=np.uint64)[:, None]
    steps = np.broadcast_to(np.asarray(steps, dtype=np.uint64), seeds.shape[:1])[:, None]
    tokens = np.arange(vocab, dtype=np.uint64)[None]
    state = pcg((seeds ^ pcg(steps)) & MASK32)
    bits = pcg(pcg(state ^ pcg(tokens + np.uint64(0x9E3779B9))))
    uniform = (torch.from_numpy(bits.astype(np.int64)).double() + 0.5) / 2.0**32
    return -torch.log(-torch.log(uniform))


def engine_noise(seeds: torch.Tensor, step, vocab: int) -> torch.Tensor:
    """The engine's noise for the whole vocabulary, from its primitives."""
    states = engine.row_states(seeds, step)
    return engine.token_noise(states[:, None], engine.vocab_hashes(vocab, seeds.device)[None])


def reference_nucleus(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """``logp`` with every token outside the top-p nucleus (full sort) set to -inf."""
    ordered, order = logp.sort(dim=-1, descending=True)
    mass_before = ordered.exp().cumsum(dim=-1) - ordered.exp()
    drop = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
    return logp.masked_fill(drop, float("-inf"))


def reference_sample(logits, sampling, seeds, step):
    """The sampler written plainly: full sort for top-p, noise for the whole vocabulary."""
    logp = torch.log_softmax(logits.double() / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        logp = reference_nucleus(logp, sampling.top_p)
    return (logp + reference_noise(seeds.numpy(), step, logits.shape[-1])).argmax(dim=-1)


def test_engine_noise_is_the_reference_noise():
    seeds = torch.tensor([0, 1, 2**32 - 1, 123456789])
    for step in (0, 7, torch.tensor([3, 0, 2048, 99])):
        steps = step.numpy() if isinstance(step, torch.Tensor) else step
        assert torch.equal(engine_noise(seeds, step, 4000),
                           reference_noise(seeds.numpy(), steps, 4000))


def test_gumbel_noise_is_uniformish_and_counter_based():
    seeds = torch.tensor([1, 2, 3])
    a, b = engine_noise(seeds, 5, 5000), engine_noise(seeds, 5, 5000)
    assert torch.equal(a, b)
    assert not torch.equal(a, engine_noise(seeds, 6, 5000))
    assert torch.isfinite(a).all()
    # Gumbel(0,1): mean = Euler-Mascheroni constant, variance = pi^2 / 6
    assert abs(a.mean().item() - 0.5772) < 0.03
    assert abs(a.var().item() - 1.6449) < 0.1


def test_per_row_steps_give_each_row_its_own_noise():
    seeds = torch.tensor([11, 12, 13])
    together = engine_noise(seeds, torch.tensor([0, 5, 9]), 300)
    for row, step in enumerate((0, 5, 9)):
        assert torch.equal(together[row], engine_noise(seeds[row:row + 1], step, 300)[0])


def test_top_p_restricts_to_nucleus():
    logits = torch.tensor([[5.0, 4.9, 0.0, -1.0, -2.0]])
    seen = {int(engine.choose_next_tokens(logits, SamplingConfig(1.0, 0.6),
                                          torch.tensor([s]), 0)) for s in range(200)}
    assert seen == {0, 1}
    assert int(engine.choose_next_tokens(logits, GREEDY, torch.tensor([0]), 0)) == 0


@pytest.mark.parametrize("temperature,top_p", [(0.7, 0.9), (1.0, 0.5), (0.7, 0.999)])
@pytest.mark.parametrize("spread", [0.05, 1.0, 8.0])
def test_nucleus_shortcut_matches_full_sort(temperature, top_p, spread):
    """The top-k shortcut keeps exactly the tokens a full-vocabulary sort keeps."""
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(6, 5000, dtype=torch.float64) * spread / temperature,
                             dim=-1)
    _, ids, inside = engine.nucleus_candidates(logp, top_p)
    kept = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, ids, inside)
    assert torch.equal(kept, torch.isfinite(reference_nucleus(logp, top_p)))


@pytest.mark.parametrize("spread", [0.05, 1.0, 4.0, 12.0])
@pytest.mark.parametrize("sampling", [SAMPLED, SamplingConfig(1.0, 0.5),
                                      SamplingConfig(0.7, 1.0)], ids=["p0.9", "p0.5", "p1"])
def test_fast_sampler_draws_what_the_plain_one_draws(spread, sampling):
    torch.manual_seed(1)
    logits = torch.randn(8, 3000) * spread
    logits[3] = float("-inf")
    logits[3, 17] = 0.0  # a forced token, as a logits hook makes it
    seeds = torch.arange(8) * 7919
    for step in (0, 9):
        steps = torch.full((8,), step)
        assert torch.equal(engine.choose_next_tokens(logits, sampling, seeds, steps),
                           reference_sample(logits, sampling, seeds, step))


def test_row_seed_is_stable_and_keyed():
    assert engine.row_seed(1, "p", 0) == engine.row_seed(1, "p", 0)
    assert len({engine.row_seed(1, "p", 0), engine.row_seed(2, "p", 0),
                engine.row_seed(1, "q", 0), engine.row_seed(1, "p", 1)}) == 4
    assert 0 <= engine.row_seed(1234, "gsm8k-0001", 3) < 2**32
