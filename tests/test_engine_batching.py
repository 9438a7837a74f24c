"""Continuous batching: rows that join a running batch compute exactly what they would alone,
in every KV layout; a compiled decode step that fails falls back to eager without losing rows."""

from __future__ import annotations

import logging
from collections import deque

import pytest
import torch

import utils
from engine.hf import batching, decode, scheduler
from utils import SamplingConfig

GREEDY = SamplingConfig()
SAMPLED = SamplingConfig(temperature=0.7, top_p=0.9)
MESSAGES = [f"What is {i} + {3 * i}?" + " Think step by step." * (i % 4) for i in range(9)]
LAYOUTS = ["growing", "static"]  # on CPU "static" is the slot layout, eager


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


@pytest.mark.parametrize("layout", LAYOUTS)
def test_refilled_rows_match_generate_at_every_budget(tiny_lm, prompts, seeds, layout):
    """Rows end at different steps and waiting prompts take their places: greedy output still
    equals HF generate for every prompt."""
    stops = [3, 30, 7, 12, 40, 5, 22, 9, 16]
    hook = stop_hook(stops)
    rollouts = scheduler.generate_rollouts(tiny_lm, prompts, 32, GREEDY, seeds, 3, progress=False,
                                       logits_hook=hook, kv_layout=layout)
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
def test_layouts_and_batch_sizes_agree(tiny_lm, prompts, seeds, sampling):
    """A row's tokens depend on neither its neighbours, the batch size, nor the cache layout;
    a sampled row that joins late uses its own step count for its noise."""
    hook = stop_hook([4, 25, 9, 14, 30, 6, 20, 11, 17])
    results = []
    for layout in LAYOUTS:
        for size in (1, 2, 4, 9):
            results.append(scheduler.generate_rollouts(tiny_lm, prompts, 24, sampling, seeds, size,
                                                   progress=False, logits_hook=hook,
                                                   kv_layout=layout))
    assert all(r == results[0] for r in results)


def test_one_running_batch_serves_all_prompts(tiny_lm, prompts, seeds, monkeypatch):
    """Finished rows are refilled inside one decode_batch call; on_batch sees every row once."""
    calls, delivered = [], []
    real = scheduler.decode_batch

    def counting(lm, batch, *args, **kwargs):
        calls.append(len(batch))
        return real(lm, batch, *args, **kwargs)

    monkeypatch.setattr(scheduler, "decode_batch", counting)
    rollouts = scheduler.generate_rollouts(tiny_lm, prompts, 16, GREEDY, seeds, 2, progress=False,
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
        waiting, got = deque(range(1, len(prompts))), {}
        feed = decode.RowFeed(
            lambda n: [(i, prompts[i], i) for i in
                       [waiting.popleft() for _ in range(min(n, len(waiting)))]],
            got.__setitem__, widest=30)
        decode.decode_batch(tiny_lm, prompts[:1], 6, GREEDY, [0], None, feed, [0],
                            kv_layout=layout)
        return [got[i] for i in range(len(prompts))]

    assert run("static") == run("growing")
    assert min(shifts) < 0 < max(shifts)


def oom_after_first_finished_row(monkeypatch):
    """The scheduler's first decode_batch raises CUDA OOM once its first row has finished."""
    real = scheduler.decode_batch
    state = {"failed": False}

    def flaky(lm, batch, max_new, sampling, row_seeds, hook, feed, ids, **kwargs):
        if state["failed"]:
            return real(lm, batch, max_new, sampling, row_seeds, hook, feed, ids, **kwargs)
        state["failed"] = True

        def finish_then_fail(row_id, rollout):
            feed_finish(row_id, rollout)
            raise torch.cuda.OutOfMemoryError("simulated")

        feed_finish = feed.finish
        broken = decode.RowFeed(feed.take, finish_then_fail, feed.widest)
        return real(lm, batch, max_new, sampling, row_seeds, hook, broken, ids, **kwargs)

    monkeypatch.setattr(scheduler, "decode_batch", flaky)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)


def test_out_of_memory_mid_run_keeps_finished_rows(tiny_lm, prompts, seeds, monkeypatch):
    """Rows finished before an OOM are kept; only the unfinished ones are decoded again."""
    oom_after_first_finished_row(monkeypatch)
    delivered = []
    rollouts = tiny_lm.generate_rollouts(prompts, 12, GREEDY, seeds, 4, progress=False,
                                       on_batch=lambda idx, rs: delivered.extend(idx))
    assert sorted(delivered) == list(range(len(prompts)))  # each row delivered exactly once
    monkeypatch.undo()
    assert rollouts == tiny_lm.generate_rollouts(prompts, 12, GREEDY, seeds, 4,
                                               progress=False)


def test_auto_batch_size_on_cpu(tiny_lm, prompts):
    assert tiny_lm.auto_batch_size(prompts, 64) == min(len(prompts),
                                                              scheduler.CPU_AUTO_BATCH)
    assert tiny_lm.auto_batch_size(prompts[:2], 64) == 2




def pretend_cuda_graphs(monkeypatch, compiled_call=None):
    """Make this CPU run take the compiled static path (``compiled_call`` stands in for
    torch.compile; None: the real one)."""
    monkeypatch.setattr(decode, "compile_supported", lambda lm: True)
    if compiled_call is not None:
        monkeypatch.setattr(batching, "_compiled_call", compiled_call)


@pytest.mark.parametrize("layout,cuda_graphs,expected", [
    ("auto", False, (batching.GrowingBatch, False)),
    ("growing", False, (batching.GrowingBatch, False)),
    ("static", False, (batching.SlotBatch, False)),
    ("auto", True, (batching.SlotBatch, True)),
    ("static", True, (batching.SlotBatch, True)),
    ("growing", True, (batching.GrowingBatch, False)),
])
def test_kv_layout_picks_the_batch(tiny_lm, monkeypatch, layout, cuda_graphs, expected):
    if cuda_graphs:
        pretend_cuda_graphs(monkeypatch, lambda model: model.__call__)
    batch = decode.new_running_batch(tiny_lm, 2, 8, 16, layout)
    compiled = isinstance(batch, batching.SlotBatch) and batch.forward is not tiny_lm.model
    assert (type(batch), compiled) == expected


def broken_compile(calls, fail_at):
    """A stand-in for torch.compile whose call number ``fail_at`` fails midway: it runs the
    real forward (writing the KV cache, advancing its counters) and then raises."""

    def compile_(model):
        def call(**inputs):
            calls.append(1)
            out = model(**inputs)
            if len(calls) >= fail_at:
                raise RuntimeError("simulated CUDA graph capture failure")
            return out

        return call

    return compile_


@pytest.mark.parametrize("fail_at", [1, 3])
@pytest.mark.parametrize("sampling", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_failed_compile_falls_back_to_eager(tiny_lm, prompts, seeds, monkeypatch, caplog,
                                            fail_at, sampling):
    """Compiling or capturing fails at the first or a later step: one warning, and the run
    finishes eagerly with the eager result; every row is delivered once."""
    hook = stop_hook([4, 25, 9, 14, 30, 6, 20, 11, 17])
    eager = scheduler.generate_rollouts(tiny_lm, prompts, 24, sampling, seeds, 3, progress=False,
                                    logits_hook=hook, kv_layout="static")
    calls, delivered = [], []
    pretend_cuda_graphs(monkeypatch, broken_compile(calls, fail_at))
    with caplog.at_level(logging.WARNING, logger="saturation"):
        got = scheduler.generate_rollouts(tiny_lm, prompts, 24, sampling, seeds, 3, progress=False,
                                      logits_hook=hook, kv_layout="auto",
                                      on_batch=lambda idx, rs: delivered.extend(idx))
    assert got == eager
    assert len(calls) == fail_at  # the compiled step is not tried again after it failed
    assert sorted(delivered) == list(range(len(prompts)))
    warnings = [r for r in caplog.records if "continuing eagerly" in r.getMessage()]
    assert len(warnings) == 1 and "simulated CUDA graph" in warnings[0].getMessage()


def test_compile_refused_up_front_and_oom_retry_warn_once(tiny_lm, prompts, seeds, monkeypatch,
                                                           caplog):
    """torch.compile itself raising is a failure too; after an OOM retry the run's new batch
    starts eager and does not warn again."""
    def refuse(model):
        raise RuntimeError("dynamo unsupported here")

    eager = scheduler.generate_rollouts(tiny_lm, prompts, 12, GREEDY, seeds, 4, progress=False,
                                    kv_layout="static")
    pretend_cuda_graphs(monkeypatch, refuse)
    oom_after_first_finished_row(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="saturation"):
        got = tiny_lm.generate_rollouts(prompts, 12, GREEDY, seeds, 4, progress=False)
    assert got == eager
    messages = [r.getMessage() for r in caplog.records]
    assert sum("continuing eagerly" in m for m in messages) == 1
    assert any("out of memory" in m for m in messages)


def test_out_of_memory_in_the_compiled_step_is_not_a_compile_failure(tiny_lm, prompts, seeds,
                                                                      monkeypatch):
    def out_of_memory(model):
        def call(**inputs):
            raise torch.cuda.OutOfMemoryError("simulated")

        return call

    pretend_cuda_graphs(monkeypatch, out_of_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        decode.decode_batch(tiny_lm, prompts[:2], 4, GREEDY, seeds[:2], kv_layout="auto")


@pytest.mark.slow
def test_compiled_slot_layout_matches_growing(tiny_lm, prompts, seeds, monkeypatch, caplog):
    """The layout CUDA uses, compiled with torch.compile (inductor on CPU, ~20 s): same tokens,
    no fallback. On CUDA it also captures CUDA graphs, which this CPU test cannot exercise."""
    hook = stop_hook([4, 25, 9, 14, 30, 6, 20, 11, 17])
    growing = scheduler.generate_rollouts(tiny_lm, prompts, 24, GREEDY, seeds, 4, progress=False,
                                      logits_hook=hook, kv_layout="growing")
    pretend_cuda_graphs(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="saturation"):
        compiled = scheduler.generate_rollouts(tiny_lm, prompts, 24, GREEDY, seeds, 4,
                                           progress=False, logits_hook=hook, kv_layout="auto")
    assert compiled == growing
    assert not [r for r in caplog.records if "eagerly" in r.getMessage()]
