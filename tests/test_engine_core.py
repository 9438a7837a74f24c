"""The generation core: one rollout serves every budget, seeded sampling, EOS, OOM, precision."""

from __future__ import annotations

import pytest
import torch

import utils
from engine import loading
from engine.hf import scheduler
from utils import SamplingConfig

MESSAGES = ["What is 2+3?", "Calculate 4 * 7 + 2. Let's think step by step.", "hi",
            "A farmer has 12 cows and buys 5 more. How many cows?"]
GREEDY = SamplingConfig()
SAMPLED = SamplingConfig(temperature=0.7, top_p=0.9)


def hf_generate(lm, prompt, budget):
    ids = torch.tensor([prompt])
    out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget,
                            do_sample=False, eos_token_id=list(lm.eos_ids),
                            pad_token_id=lm.pad_id)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize("batch_size", [1, 4])
def test_one_rollout_equals_generate_at_every_budget(tiny_lm, batch_size):
    prompts = utils.chat_prompt_ids(tiny_lm.tokenizer, MESSAGES)
    rollouts = tiny_lm.generate_rollouts(prompts, 48, GREEDY, [0] * 4, batch_size,
                                       progress=False)
    for budget in (1, 7, 16, 33, 48):
        for prompt, rollout in zip(prompts, rollouts):
            ids, hit = rollout.at_budget(budget)
            assert list(ids) == hf_generate(tiny_lm, prompt, budget)
            assert hit  # a random model never says EOS in 48 tokens


def test_eos_ends_a_row_and_matches_generate(tiny_lm):
    """Make a token the model emits early into EOS: that row must stop there, like generate()."""
    prompts = utils.chat_prompt_ids(tiny_lm.tokenizer, MESSAGES)
    free = tiny_lm.generate_rollouts(prompts, 30, GREEDY, [0] * 4, 4, progress=False)
    stop_token = free[1].token_ids[5]
    lm = utils.HFEngine(tiny_lm.model, tiny_lm.tokenizer, tiny_lm.device, "fp32", "tiny",
                           (stop_token,))
    rollouts = lm.generate_rollouts(prompts, 30, GREEDY, [0] * 4, 4, progress=False)
    stopped = rollouts[1]
    assert stopped.eos and stopped.token_ids[-1] == stop_token
    assert len(stopped.token_ids) == free[1].token_ids.index(stop_token) + 1
    for prompt, rollout in zip(prompts, rollouts):
        assert list(rollout.token_ids) == hf_generate(lm, prompt, 30)
    ids, hit = stopped.at_budget(len(stopped.token_ids))
    assert not hit and ids == stopped.token_ids
    ids, hit = stopped.at_budget(len(stopped.token_ids) - 1)
    assert hit and len(ids) == len(stopped.token_ids) - 1


def test_sampling_independent_of_batch_order_and_neighbours(tiny_lm):
    prompts = utils.chat_prompt_ids(tiny_lm.tokenizer, MESSAGES)
    seeds = [utils.row_seed(7, f"p{i}", 0) for i in range(4)]
    together = tiny_lm.generate_rollouts(prompts, 24, SAMPLED, seeds, 4, progress=False)
    alone = [tiny_lm.generate_rollouts([p], 24, SAMPLED, [s], 1, progress=False)[0]
             for p, s in zip(prompts, seeds)]
    reversed_ = tiny_lm.generate_rollouts(prompts[::-1], 24, SAMPLED, seeds[::-1], 3,
                                        progress=False)[::-1]
    assert together == alone == reversed_
    greedy = tiny_lm.generate_rollouts(prompts, 24, GREEDY, seeds, 4, progress=False)
    assert together != greedy  # sampling really samples


def test_different_seeds_and_samples_give_different_draws(tiny_lm):
    prompt = utils.chat_prompt_ids(tiny_lm.tokenizer, MESSAGES[:1])
    draws = {tiny_lm.generate_rollouts(prompt, 12, SAMPLED, [utils.row_seed(1, "p", s)], 1,
                                     progress=False)[0].token_ids for s in range(4)}
    assert len(draws) == 4
    assert utils.row_seed(1, "p", 0) == utils.row_seed(1, "p", 0) != utils.row_seed(2, "p", 0)


def test_out_of_memory_halves_the_batch(tiny_lm, monkeypatch):
    prompts = utils.chat_prompt_ids(tiny_lm.tokenizer, MESSAGES)
    real = scheduler.decode_batch
    sizes = []

    def flaky(lm, batch, *args, **kwargs):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(lm, batch, *args, **kwargs)

    monkeypatch.setattr(scheduler, "decode_batch", flaky)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    done = []
    rollouts = tiny_lm.generate_rollouts(prompts, 8, GREEDY, [0] * 4, 4,
                                       on_batch=lambda idx, r: done.extend(idx), progress=False)
    assert sizes[:3] == [4, 2, 1] and len(rollouts) == 4 and sorted(done) == [0, 1, 2, 3]
    monkeypatch.setattr(scheduler, "decode_batch", real)
    assert rollouts == tiny_lm.generate_rollouts(prompts, 8, GREEDY, [0] * 4, 4,
                                               progress=False)


def test_prefix_can_be_extended_without_regenerating(tiny_lm):
    """A later budget mode appends a cue to prompt + prefix and generates a few tokens."""
    prompt = utils.chat_prompt_ids(tiny_lm.tokenizer, MESSAGES[:1])[0]
    full = tiny_lm.generate_rollouts([prompt], 20, GREEDY, [0], 1, progress=False)[0]
    prefix, _ = full.at_budget(12)
    more = tiny_lm.generate_rollouts([prompt + list(prefix)], 8, GREEDY, [0], 1,
                                   progress=False)[0]
    assert list(prefix) + list(more.token_ids) == list(full.token_ids)


@pytest.mark.parametrize("precision,device,params_b,total,expected", [
    ("auto", "cpu", 1.5, None, "fp32"),
    ("auto", "cuda", 1.5, 16e9, "bf16"),
    ("auto", "cuda", 7.6, 16e9, "nf4"),
    ("auto", "cuda", 7.6, 80e9, "bf16"),
    ("bf16", "cpu", 1.5, None, "bf16"),
    ("nf4", "cuda", 0.1, 16e9, "nf4"),
])
def test_precision_rule(precision, device, params_b, total, expected):
    dev = torch.device(device)
    assert loading.resolve_precision(precision, dev, params_b, total) == expected


def test_quantised_precision_on_cpu_is_a_clear_error():
    with pytest.raises(utils.ModelLoadError, match="needs a CUDA GPU"):
        loading.resolve_precision("nf4", torch.device("cpu"), 1.5)


def test_rollout_at_budget_counts_eos_inside_budget():
    rollout = utils.Rollout((5, 6, 2), eos=True)
    assert rollout.at_budget(3) == ((5, 6, 2), False)
    assert rollout.at_budget(10) == ((5, 6, 2), False)
    assert rollout.at_budget(2) == ((5, 6), True)
    assert utils.Rollout((5, 6, 7), eos=False).at_budget(3) == ((5, 6, 7), True)


def test_model_names_resolve_or_fail_clearly(tmp_path):
    assert utils.resolve_model("qwen-7b") is utils.MODEL_ALIASES["qwen-7b"]
    hub = utils.resolve_model("Org/Some-Model")
    assert (hub.source, hub.path, hub.alias) == ("hub", "Org/Some-Model", "Org--Some-Model")
    assert utils.resolve_model(str(tmp_path)).alias == utils.model_tag(str(tmp_path))
    assert utils.model_tag("smollm2-135m") == "smollm2-135m"
    with pytest.raises(utils.ModelLoadError, match="unknown model 'gpt-9'"):
        utils.resolve_model("gpt-9")


def test_public_face_exports_the_engine_api():
    for name in utils.__all__:
        assert getattr(utils, name) is not None
    assert utils.PRECISIONS == ("auto", "nf4", "int8", "bf16", "fp32")
    assert utils.KV_LAYOUTS == ("auto", "static", "growing")
    lm = utils.HFEngine(None, None, torch.device("cpu"), "fp32", "x", (2,))
    assert isinstance(lm, utils.Engine) and lm.describe().startswith("cpu (")
    assert lm.provenance() == {"engine": "hf", "device": lm.describe()}


def test_unknown_kv_layout_is_refused(tiny_lm):
    with pytest.raises(ValueError, match="kv_layout 'slots'"):
        scheduler.generate_rollouts(tiny_lm, [[1, 2]], 4, GREEDY, [0], 1, progress=False,
                                    kv_layout="slots")
