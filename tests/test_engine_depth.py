"""Layer truncation and the logit lens on tiny random Llamas, against plain HF references."""

from __future__ import annotations

import copy

import pytest
import torch

import utils
from engine.hf.lens import logit_lens_kl
from engine.loading import eos_token_ids

PROMPTS = [[1, 17, 230, 5, 99], [1, 42, 7], [1, 3, 3, 3, 800, 12, 9]]


def llama(tokenizer, layers: int, seed: int = 0) -> torch.nn.Module:
    """A random Llama with ``layers`` decoder layers on the tokenizer's vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=1)
    return LlamaForCausalLM(config).eval()


def loaded(model, tokenizer) -> utils.HFEngine:
    return utils.HFEngine(model, tokenizer, torch.device("cpu"), "fp32", "tiny",
                             eos_token_ids(model, tokenizer))


def greedy(lm: utils.HFEngine, tokens: int = 24) -> list[tuple[int, ...]]:
    rollouts = lm.generate_rollouts(PROMPTS, tokens, utils.SamplingConfig(), [0] * 3, 2,
                                       progress=False)
    return [r.token_ids for r in rollouts]


@pytest.fixture(scope="module")
def deep(smol_tokenizer):
    return llama(smol_tokenizer, 4)


def test_truncating_to_all_layers_equals_full_model(deep, smol_tokenizer):
    cut = utils.truncate_layers(copy.deepcopy(deep), 4)
    assert greedy(loaded(cut, smol_tokenizer)) == greedy(loaded(deep, smol_tokenizer))


def test_truncation_equals_an_independent_shallow_model(deep, smol_tokenizer):
    """First 2 of 4 layers + norm + head == a fresh 2-layer Llama given the same weights."""
    from transformers import LlamaForCausalLM

    cut = utils.truncate_layers(copy.deepcopy(deep), 2)
    assert len(cut.model.layers) == cut.config.num_hidden_layers == 2
    shallow_config = copy.deepcopy(deep.config)
    shallow_config.num_hidden_layers = 2
    reference = LlamaForCausalLM(shallow_config).eval()
    missing, unexpected = reference.load_state_dict(deep.state_dict(), strict=False)
    assert not missing and all(".layers.2." in k or ".layers.3." in k for k in unexpected)
    ids = torch.tensor([PROMPTS[2]])
    with torch.no_grad():
        torch.testing.assert_close(cut(input_ids=ids).logits, reference(input_ids=ids).logits)
        full = deep(input_ids=ids).logits
    assert not torch.allclose(cut(input_ids=ids).logits, full)  # truncation changes the model
    ours = greedy(loaded(cut, smol_tokenizer))
    for prompt, tokens in zip(PROMPTS, ours):
        with torch.no_grad():
            out = reference.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False,
                                     eos_token_id=list(eos_token_ids(deep, smol_tokenizer)),
                                     pad_token_id=smol_tokenizer.pad_token_id)
        assert tuple(out[0, len(prompt):].tolist())[:len(tokens)] == tokens


def test_bad_depth_is_a_user_error(deep, tiny_model_dir, tmp_path):
    for bad in (0, 5):
        with pytest.raises(utils.ModelLoadError, match="--num-layers"):
            utils.truncate_layers(copy.deepcopy(deep), bad)
    lm = utils.load_model(str(tiny_model_dir), "fp32", tmp_path, "cpu", num_layers=1)
    assert len(lm.model.model.layers) == 1 and lm.model.config.num_hidden_layers == 1
    assert utils.model_depth(str(tiny_model_dir), tmp_path) == 2
    with pytest.raises(utils.ModelLoadError, match="2 decoder layers"):
        utils.load_model(str(tiny_model_dir), "fp32", tmp_path, "cpu", num_layers=3)


def direct_lens(model, prompt: list[int], generated: list[int]) -> torch.Tensor:
    """Hand loop: output_hidden_states, norm + head per layer, torch's kl_div. [layers, tokens]"""
    seq = torch.tensor([prompt + generated[:-1]])
    with torch.no_grad():
        out = model(input_ids=seq, output_hidden_states=True)
        final = torch.log_softmax(out.logits[0], -1)
        rows = []
        for layer in range(1, model.config.num_hidden_layers + 1):
            # HF's last hidden state is already normed: it is the final read-out itself.
            hidden = out.hidden_states[layer][0]
            logits = out.logits[0] if layer == model.config.num_hidden_layers else \
                model.lm_head(model.model.norm(hidden))
            kl = torch.nn.functional.kl_div(torch.log_softmax(logits, -1), final,
                                            log_target=True, reduction="none").sum(-1)
            rows.append(kl[len(prompt) - 1:])
    return torch.stack(rows)


def test_logit_lens_matches_a_direct_computation(deep, smol_tokenizer):
    lm = loaded(deep, smol_tokenizer)
    generated = [list(g) for g in greedy(lm, 12)]
    generated[1] = generated[1][:5]  # unequal lengths exercise the padding
    lens = logit_lens_kl(lm, PROMPTS, generated, batch_size=2, chunk_tokens=4)
    for prompt, gen, result in zip(PROMPTS, generated, lens):
        assert result.per_token.shape == (4, len(gen))
        reference = direct_lens(deep, prompt, gen).numpy()
        assert abs(result.per_token - reference).max() < 1e-4
        assert abs(result.per_token[-1]).max() < 1e-6  # KL at the last layer is 0
        assert (result.per_token[:-1] > 1e-4).all()  # earlier layers do differ
        assert result.mean(3) == pytest.approx(reference[:, :3].mean(axis=1), abs=1e-4)


def test_lens_at_layer_l_is_the_truncated_models_distance(deep, smol_tokenizer):
    """The lens at layer 2 equals KL(full || the model truncated to 2 layers)."""
    lm = loaded(deep, smol_tokenizer)
    gen = list(greedy(lm, 8)[0])
    lens = lm.logit_lens_kl(PROMPTS[:1], [gen])[0]
    seq = torch.tensor([PROMPTS[0] + gen[:-1]])
    cut = utils.truncate_layers(copy.deepcopy(deep), 2)
    with torch.no_grad():
        full = torch.log_softmax(deep(input_ids=seq).logits[0], -1)
        part = torch.log_softmax(cut(input_ids=seq).logits[0], -1)
    kl = (full.exp() * (full - part)).sum(-1)[len(PROMPTS[0]) - 1:]
    assert abs(lens.per_token[1] - kl.numpy()).max() < 1e-4


@pytest.mark.slow
def test_smollm2_cut_and_lens_agree_on_the_real_model():
    """SmolLM2 (30 layers): all 30 kept == the full model token for token; the lens at layer 18
    is KL(full || the model loaded with num_layers=18); the lens at layer 30 is 0."""
    from config import REPO_ROOT

    data = REPO_ROOT / "data"
    full = utils.load_model("smollm2-135m", "fp32", data, "cpu")
    same = utils.load_model("smollm2-135m", "fp32", data, "cpu", num_layers=30)
    cut = utils.load_model("smollm2-135m", "fp32", data, "cpu", num_layers=18)
    assert utils.model_depth("smollm2-135m", data) == 30 and len(cut.model.model.layers) == 18
    prompts = utils.chat_prompt_ids(full.tokenizer, ["What is 12 + 7?", "Compute 3 * 4 - 5."])
    run = [lm.generate_rollouts(prompts, 24, utils.SamplingConfig(), [0, 0], 2,
                                   progress=False) for lm in (full, same)]
    assert [r.token_ids for r in run[0]] == [r.token_ids for r in run[1]]
    gen = list(run[0][0].token_ids)
    lens = full.logit_lens_kl(prompts[:1], [gen])[0]
    seq = torch.tensor([prompts[0] + gen[:-1]])
    with torch.no_grad():
        p = torch.log_softmax(full.model(input_ids=seq).logits[0], -1)
        q = torch.log_softmax(cut.model(input_ids=seq).logits[0], -1)
    kl = (p.exp() * (p - q)).sum(-1)[len(prompts[0]) - 1:].numpy()
    assert abs(lens.per_token[17] - kl).max() < 1e-3 * max(1.0, kl.max())
    assert abs(lens.per_token[-1]).max() < 1e-5 and lens.mean()[0] > lens.mean()[-2]
