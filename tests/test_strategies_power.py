"""Power sampling (engine/power.py): the chain targets p^alpha (chi-square against the exact
distribution of a 3-token, length-3 toy model), its proposals are plain temperature sampling
with log-probs of a plain forward pass, it is seeded and batch-independent, and every proposed
token is counted."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

import utils
from engine.hf import scheduler
from engine.hf.power import continue_from, sample_segments

ALPHA = 4.0
SEQUENCES = list(itertools.product(range(3), repeat=3))


class TableLM(torch.nn.Module):
    """A deterministic 'language model': the next-token logits are a fixed table indexed by
    (position, previous token). It fills the KV cache with dummies so the engine's batch
    bookkeeping runs unchanged, and counts the logits rows it hands out."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        from transformers import LlamaConfig

        self.table = table
        self.config = LlamaConfig(vocab_size=3, hidden_size=8, intermediate_size=8,
                                  num_hidden_layers=1, num_attention_heads=1,
                                  num_key_value_heads=1)
        self.rows = 0

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=True,
                cache=None, logits_to_keep=0):
        batch, width = input_ids.shape
        if cache is not None:
            dummy = torch.zeros(batch, 1, width, 1)
            cache.update(dummy, dummy, 0)
        logits = self.table[position_ids.clamp(0, self.table.shape[0] - 1), input_ids]
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        self.rows += batch * logits.shape[1]
        return SimpleNamespace(logits=logits)


@pytest.fixture()
def toy():
    table = torch.rand(3, 3, 3, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2
    model = TableLM(table)
    # pad id 0 (a real token: padding is masked); EOS 99 is never produced
    return utils.HFEngine(model, SimpleNamespace(pad_token_id=0), torch.device("cpu"),
                             "fp32", "toy", (99,))


def exact_power_distribution(table: torch.Tensor, alpha: float) -> np.ndarray:
    """p(x)^alpha normalised over all 27 sequences, by brute force (prompt token 0)."""
    logp = torch.log_softmax(table.double(), dim=-1)
    scores = []
    for seq in SEQUENCES:
        prev, total = 0, 0.0
        for position, token in enumerate(seq):
            total += float(logp[position, prev, token])
            prev = token
        scores.append(alpha * total)
    weights = np.exp(np.array(scores) - max(scores))
    return weights / weights.sum()


def chi_square_p(rollouts, expected_share: np.ndarray) -> float:
    counts = np.zeros(len(SEQUENCES))
    for r in rollouts:
        counts[SEQUENCES.index(r.token_ids)] += 1
    expected = expected_share * len(rollouts)
    big = expected >= 5  # pool the rare sequences so every cell meets the usual rule
    observed = np.append(counts[big], counts[~big].sum())
    return float(stats.chisquare(observed, np.append(expected[big], expected[~big].sum())).pvalue)


def test_chain_converges_to_normalised_power_distribution(toy):
    chains = 1500
    target = exact_power_distribution(toy.model.table, ALPHA)
    mcmc = toy.power_sample([[0]] * chains, 3, utils.PowerSettings(ALPHA, 3, 10),
                              list(range(chains)), chains)
    assert chi_square_p(mcmc, target) > 1e-3
    # The test is decisive: the proposal alone (no MH step) is rejected by the same check.
    proposal = toy.power_sample([[0]] * chains, 3, utils.PowerSettings(ALPHA, 3, 0),
                                  list(range(chains)), chains)
    assert chi_square_p(proposal, target) < 1e-6


def test_tokens_proposed_counts_every_sampled_token(toy):
    toy.model.rows = 0
    settings = utils.PowerSettings(ALPHA, 3, 4)
    rollouts = toy.power_sample([[0]] * 50, 3, settings, list(range(50)), 16)
    # one logits row per sampled token: the model's own count is the reference
    assert sum(r.tokens_proposed for r in rollouts) == toy.model.rows
    for r in rollouts:
        assert r.proposals == 3 * 4 and 0 <= r.accepted <= r.proposals
        # 3 block extensions of one token, then 4 proposals of 1..L tokens after block L
        assert 3 + 4 * (1 + 1 + 1) <= r.tokens_proposed <= 3 + 4 * (1 + 2 + 3)


def test_segments_are_temperature_sampling_with_plain_forward_log_probs(tiny_lm):
    prompts = [[1, 2, 3, 4, 5], [9, 8, 7], [4, 4, 4, 4, 4, 4, 4]]
    seeds, limits = [11, 22, 33], [6, 3, 5]
    segments = sample_segments(tiny_lm, prompts, limits, seeds, ALPHA)
    plain = scheduler.generate_rollouts(tiny_lm, prompts, max(limits),
                                    utils.SamplingConfig(1 / ALPHA, 1.0), seeds, 3,
                                    progress=False, kv_layout="growing")
    for prompt, limit, seg, reference in zip(prompts, limits, segments, plain):
        tokens, logp, logq = seg.tokens, seg.logp, seg.logq
        assert tuple(tokens) == reference.token_ids[:limit]
        with torch.no_grad():
            logits = tiny_lm.model(torch.tensor([prompt + tokens])).logits[0].double()
        steps = logits[len(prompt) - 1:-1]
        index = torch.tensor(tokens)[:, None]
        want_p = torch.log_softmax(steps, -1).gather(-1, index)[:, 0]
        want_q = torch.log_softmax(ALPHA * steps, -1).gather(-1, index)[:, 0]
        assert np.allclose(logp, want_p.numpy(), atol=1e-4)
        assert np.allclose(logq, want_q.numpy(), atol=4e-4)
    # Continuing from a segment's own keys and values equals encoding the prefix afresh.
    starts = [p + seg.tokens for p, seg in zip(prompts, segments)]
    reused = continue_from(tiny_lm, starts, [seg.kv for seg in segments], [4, 4, 4], seeds,
                           ALPHA)
    fresh = sample_segments(tiny_lm, starts, [4, 4, 4], seeds, ALPHA)
    for a, b in zip(reused, fresh):
        assert a.tokens == b.tokens and np.allclose(a.logp, b.logp, atol=1e-4)


def test_seeded_reproducible_and_batch_independent(tiny_lm):
    prompts = [[1, 2, 3], [5, 6, 7, 8, 9], [2, 2], [7, 3, 1, 4]]
    seeds = [101, 202, 303, 404]
    settings = utils.PowerSettings(ALPHA, 3, 2)
    together = tiny_lm.power_sample(prompts, 9, settings, seeds, 4)
    again = tiny_lm.power_sample(prompts, 9, settings, seeds, 4)
    alone = [tiny_lm.power_sample([p], 9, settings, [s], 1)[0]
             for p, s in zip(prompts, seeds)]
    assert together == again == alone
    assert len({r.token_ids for r in together}) == len(prompts)
    other_seed = tiny_lm.power_sample(prompts[:1], 9, settings, [999], 1)[0]
    assert other_seed.token_ids != together[0].token_ids
    for r in together:
        assert len(r.token_ids) <= 9 and r.proposals == 3 * 2
        assert r.tokens_proposed >= len(r.token_ids) + r.proposals
