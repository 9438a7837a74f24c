"""Continuous batching: rows that join a running batch compute exactly what they would alone."""

from __future__ import annotations

from collections import deque

import pytest
import torch

from engine import batching
import utils
from config import SamplingConfig

GREEDY = SamplingConfig()
SAMPLED = SamplingConfig(temperature=0.7, top_p=0.9)
MESSAGES = [f"What is {i} + {3 * i}?" + " Think step by step." * (i % 4) for i in range(9)]
LAYOUTS = ["growing", "slots"]


@pytest.fixture()
def prompts(tiny_lm):
    return utils.chat_prompt_ids(tiny_lm.tokenizer, MESSAGES)


@pytest.fixture()
def seeds():
    return [utils.row_seed(3, f"p{i}", 0) for i in range(len(MESSAGES))]


def stop_hook(stops):
    """Force EOS at each row's own step (ids index ``stops``); EOS is impossible before."""
    table = torch.tensor(stops)

    def hook(rows, steps, logits):
        eos = 2
        logits[:, eos] = float("-inf")
        at_stop = steps + 1 >= table[rows]
        logits[at_stop] = float("-inf")
        logits[at_stop, eos] = 0.0
        return logits

    return hook


def with_layout(monkeypatch, layout):
    monkeypatch.setattr(utils, "KV_LAYOUT", layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_refilled_rows_match_generate_at_every_budget(tiny_lm, prompts, seeds, monkeypatch,
                                                      layout):
    """Rows end at different steps and waiting prompts take their places: greedy output still
    equals HF generate for every prompt."""
    with_layout(monkeypatch, layout)
    stops = [3, 30, 7, 12, 40, 5, 22, 9, 16]
    hook = stop_hook(stops)
    rollouts = utils.generate_rollouts(tiny_lm, prompts, 32, GREEDY, seeds, 3, progress=False,
                                       logits_hook=hook)
    for prompt, stop, rollout in zip(prompts, stops, rollouts):
        assert len(rollout.token_ids) == min(stop, 32) and rollout.eos == (stop <= 32)
        ids = torch.tensor([prompt])
        expected = tiny_lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=32, do_sample=False,
            eos_token_id=list(tiny_lm.eos_ids), pad_token_id=tiny_lm.pad_id,
            logits_processor=[_HFStop(stop, len(prompt))])
        assert list(rollout.token_ids) == expected[0, len(prompt):].tolist()


class _HFStop:
    """The same forced stop for HF generate (one row)."""

    def __init__(self, stop, width):
        self.hook, self.width = stop_hook([stop]), width

    def __call__(self, input_ids, scores):
        steps = torch.full((scores.shape[0],), input_ids.shape[1] - self.width)
        return self.hook(torch.zeros_like(steps), steps, scores)


@pytest.mark.parametrize("sampling", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_layouts_and_batch_sizes_agree(tiny_lm, prompts, seeds, monkeypatch, sampling):
    """A row's tokens depend on neither its neighbours, the batch size, nor the cache layout;
    a sampled row that joins late uses its own step count for its noise."""
    hook = stop_hook([4, 25, 9, 14, 30, 6, 20, 11, 17])
    results = []
    for layout in LAYOUTS:
        with_layout(monkeypatch, layout)
        for size in (1, 2, 4, 9):
            results.append(utils.generate_rollouts(tiny_lm, prompts, 24, sampling, seeds, size,
                                                   progress=False, logits_hook=hook))
    assert all(r == results[0] for r in results)


def test_one_running_batch_serves_all_prompts(tiny_lm, prompts, seeds, monkeypatch):
    """Finished rows are refilled inside one decode_batch call; on_batch sees every row once."""
    calls, delivered = [], []
    real = utils.decode_batch

    def counting(lm, batch, *args):
        calls.append(len(batch))
        return real(lm, batch, *args)

    monkeypatch.setattr(utils, "decode_batch", counting)
    rollouts = utils.generate_rollouts(
        tiny_lm, prompts, 16, GREEDY, seeds, 2, progress=False,
        on_batch=lambda idx, rs: delivered.extend(zip(idx, rs)),
        logits_hook=stop_hook([2, 16, 5, 9, 3, 12, 7, 4, 10]))
    assert calls == [2]
    assert sorted(i for i, _ in delivered) == list(range(len(prompts)))
    assert all(rollouts[i] == r for i, r in delivered)


def test_slot_batch_shifts_both_ways_without_changing_results(tiny_lm, monkeypatch):
    """A slot batch with no spare columns must shift rows left (full) and right (a wider
    prompt joins); outputs stay those of the growing layout."""
    prompts = [list(range(5, 5 + n)) for n in (3, 4, 6, 9, 13, 20, 30)]
    shifts = []
    real_shift = batching.SlotBatch._shift

    def spy(self, offset):
        shifts.append(offset)
        return real_shift(self, offset)

    monkeypatch.setattr(batching.SlotBatch, "_shift", spy)
    monkeypatch.setattr(batching, "slot_capacity", lambda widest, budget: widest + budget)

    def run(layout):
        with_layout(monkeypatch, layout)
        waiting, got = deque(range(1, len(prompts))), {}
        feed = utils.RowFeed(
            lambda n: [(i, prompts[i], i) for i in
                       [waiting.popleft() for _ in range(min(n, len(waiting)))]],
            got.__setitem__, widest=30)
        utils.decode_batch(tiny_lm, prompts[:1], 6, GREEDY, [0], None, feed, [0])
        return [got[i] for i in range(len(prompts))]

    assert run("slots") == run("growing")
    assert min(shifts) < 0 < max(shifts)


def test_out_of_memory_mid_run_keeps_finished_rows(tiny_lm, prompts, seeds, monkeypatch):
    """Rows finished before an OOM are kept; only the unfinished ones are decoded again."""
    real = utils.decode_batch
    state = {"failed": False}

    def flaky(lm, batch, max_new, sampling, row_seeds, hook, feed, ids):
        if state["failed"]:
            return real(lm, batch, max_new, sampling, row_seeds, hook, feed, ids)
        state["failed"] = True

        def finish_then_fail(row_id, rollout):
            feed_finish(row_id, rollout)
            raise torch.cuda.OutOfMemoryError("simulated")

        feed_finish = feed.finish
        broken = utils.RowFeed(feed.take, finish_then_fail, feed.widest)
        return real(lm, batch, max_new, sampling, row_seeds, hook, broken, ids)

    monkeypatch.setattr(utils, "decode_batch", flaky)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    delivered = []
    rollouts = utils.generate_rollouts(tiny_lm, prompts, 12, GREEDY, seeds, 4, progress=False,
                                       on_batch=lambda idx, rs: delivered.extend(idx))
    assert sorted(delivered) == list(range(len(prompts)))  # each row delivered exactly once
    monkeypatch.setattr(utils, "decode_batch", real)
    assert rollouts == utils.generate_rollouts(tiny_lm, prompts, 12, GREEDY, seeds, 4,
                                               progress=False)


@pytest.mark.parametrize("temperature,top_p", [(0.7, 0.9), (1.0, 0.5), (0.7, 0.999)])
@pytest.mark.parametrize("spread", [0.05, 1.0, 8.0])
def test_nucleus_shortcut_matches_full_sort(temperature, top_p, spread):
    """The top-k shortcut keeps exactly the tokens a full-vocabulary sort keeps."""
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(6, 5000, dtype=torch.float64) * spread / temperature,
                             dim=-1)
    ordered, order = logp.sort(dim=-1, descending=True)
    mass_before = ordered.exp().cumsum(dim=-1) - ordered.exp()
    drop = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
    assert torch.equal(utils._nucleus(logp, top_p), logp.masked_fill(drop, float("-inf")))


def test_per_row_steps_give_each_row_its_own_noise():
    seeds = torch.tensor([11, 12, 13])
    together = utils.gumbel_noise(seeds, torch.tensor([0, 5, 9]), 300)
    for row, step in enumerate((0, 5, 9)):
        assert torch.equal(together[row], utils.gumbel_noise(seeds[row:row + 1], step, 300)[0])


def test_auto_batch_size_on_cpu(tiny_lm, prompts):
    assert utils.auto_batch_size(tiny_lm, prompts, 64) == min(len(prompts),
                                                              utils.CPU_AUTO_BATCH)
    assert utils.auto_batch_size(tiny_lm, prompts[:2], 64) == 2


def reference_sample(logits, sampling, seeds, step):
    """The sampler written plainly: full sort for top-p, noise for the whole vocabulary."""
    logp = torch.log_softmax(logits.double() / sampling.temperature, dim=-1)
    ordered, order = logp.sort(dim=-1, descending=True)
    mass_before = ordered.exp().cumsum(dim=-1) - ordered.exp()
    drop = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, order,
                                                            mass_before >= sampling.top_p)
    logp = logp.masked_fill(drop, float("-inf"))
    return (logp + utils.gumbel_noise(seeds, step, logits.shape[-1])).argmax(dim=-1)


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
        assert torch.equal(utils.choose_next_tokens(logits, sampling, seeds, steps),
                           reference_sample(logits, sampling, seeds, step))


@pytest.mark.slow
def test_compiled_slot_layout_matches_growing(tiny_lm, prompts, seeds, monkeypatch):
    """The layout CUDA uses, compiled with torch.compile (inductor on CPU, ~20 s): same tokens.
    On CUDA it also captures CUDA graphs, which this CPU test cannot exercise."""
    hook = stop_hook([4, 25, 9, 14, 30, 6, 20, 11, 17])
    results = []
    for layout in ("growing", "slots-compiled"):
        with_layout(monkeypatch, layout)
        results.append(utils.generate_rollouts(tiny_lm, prompts, 24, GREEDY, seeds, 4,
                                               progress=False, logits_hook=hook))
    assert results[0] == results[1]
