"""Thinking markers (engine.thinking) and the reasoning-model aliases (engine.settings).

Hand-built token ids on real tokenizers: the SmolLM2 one (no markers) and the same with
<think> and </think> added as special tokens (``thinking_tokenizer``, conftest).
"""

from __future__ import annotations

import copy

import pytest

import utils
from engine.hf import branching
from engine.settings import MODEL_ALIASES
from engine.thinking import ThinkingMarkers, ThinkingSpan, detect_markers, thinking_span

THINK = ThinkingMarkers("<think>", "</think>")


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


# ---------------------------------------------------------------- detection

def test_markers_are_read_from_added_tokens_or_the_template(smol_tokenizer, thinking_tokenizer):
    assert detect_markers(smol_tokenizer) is None  # SmolLM2 does not think in markers
    assert detect_markers(thinking_tokenizer) == THINK
    # Only in the vocabulary (no template mentions them), or only in the template (as text).
    vocab_only = copy.deepcopy(thinking_tokenizer)
    vocab_only.chat_template = smol_tokenizer.chat_template
    assert detect_markers(vocab_only) == THINK
    template_only = copy.deepcopy(smol_tokenizer)
    for written in ("{{ '<think>\\n' }}", "</think>"):  # either marker is enough
        template_only.chat_template = smol_tokenizer.chat_template + written
        assert detect_markers(template_only) == THINK
    # The forced cue's marker (engine.hf.branching) now asks the same question.
    assert branching.thinking_end_marker(smol_tokenizer) is None
    assert branching.thinking_end_marker(vocab_only) == "</think>"


def test_single_token_ids(smol_tokenizer, thinking_tokenizer):
    end_id = thinking_tokenizer.get_added_vocab()["</think>"]
    assert utils.single_token_id(thinking_tokenizer, "</think>") == end_id
    assert utils.marker_ids(thinking_tokenizer, "</think>") == (end_id,)
    assert utils.single_token_id(smol_tokenizer, "</think>") is None  # "</" "think" ">"


# ---------------------------------------------------------------- spans and budgets

def test_span_of_a_special_end_marker_and_its_budget_prefixes(thinking_tokenizer):
    tok = thinking_tokenizer
    thought, answer = ids_of(tok, "<think>\n3 + 4 is 7."), ids_of(tok, "\n\nThe answer is 7.")
    end = tok.get_added_vocab()["</think>"]
    rollout = thought + [end] + answer
    span = thinking_span(tok, rollout, THINK)
    assert span == ThinkingSpan(len(thought), True, len(thought) + 1)
    assert utils.decode_text(tok, rollout[span.answer_start:]) == "\n\nThe answer is 7."
    # At a budget: closed once the marker is wholly inside it, all tokens are thinking before.
    assert span.at(len(rollout)) == span
    assert span.at(len(thought) + 1) == span
    assert span.at(len(thought)) == ThinkingSpan(len(thought), False, len(thought))
    assert span.at(3) == ThinkingSpan(3, False, 3)
    never = thinking_span(tok, thought + answer, THINK)  # the marker never came
    assert never == ThinkingSpan(len(thought + answer), False, len(thought + answer))


def test_span_of_a_multi_token_marker_merged_with_its_neighbours(smol_tokenizer):
    tok = smol_tokenizer
    # "</think>" as plain text: three tokens, found as a token sequence.
    ids = ids_of(tok, "hmm 3+4=7.</think>\n\nThe answer is 7")
    span = thinking_span(tok, ids, THINK)
    assert span.closed and utils.decode_text(tok, ids[span.answer_start:]) == \
        "\n\nThe answer is 7"
    assert utils.decode_text(tok, ids[:span.thinking_tokens]) == "hmm 3+4=7."
    # "END" alone is one token, but " END" in context is another: found in the decoded text.
    markers = ThinkingMarkers("BEGIN", "END")
    ids = ids_of(tok, "so the END is 42")
    assert utils.marker_ids(tok, "END")[0] not in ids  # merged with its space
    span = thinking_span(tok, ids, markers)
    assert span.closed
    assert utils.decode_text(tok, ids[:span.thinking_tokens]) == "so the"
    assert utils.decode_text(tok, ids[span.answer_start:]) == " is 42"
    assert not thinking_span(tok, ids_of(tok, "no marker here"), markers).closed


# ---------------------------------------------------------------- aliases, as their cards say

REASONING = {
    # alias: (hub id, template switches, top-k); every card: temperature 0.6, top-p 0.95
    "deepseek-r1-distill-qwen-1.5b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", {}, None),
    "deepseek-r1-distill-qwen-7b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", {}, None),
    "deepseek-r1-distill-qwen-14b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", {}, None),
    "deepseek-r1-distill-qwen-32b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", {}, None),
    "qwq-32b": ("Qwen/QwQ-32B", {}, 40),
    "qwen3-1.7b": ("Qwen/Qwen3-1.7B", {"enable_thinking": True}, 20),
    "qwen3-4b": ("Qwen/Qwen3-4B", {"enable_thinking": True}, 20),
    "qwen3-8b": ("Qwen/Qwen3-8B", {"enable_thinking": True}, 20),
}


@pytest.mark.parametrize("alias", sorted(REASONING))
def test_reasoning_aliases(alias):
    hub_id, switches, top_k = REASONING[alias]
    spec = utils.resolve_model(alias)
    assert (spec.path, spec.source, spec.thinking_markers) == (hub_id, "hub",
                                                               ("<think>", "</think>"))
    assert spec.chat_template_kwargs == switches
    card = spec.sampling
    assert (card.temperature, card.top_p, card.top_k) == (0.6, 0.95, top_k)
    assert card.card == f"https://huggingface.co/{hub_id}"
    assert spec.approx_params_b > 1  # the auto precision rule needs a size
    assert utils.model_tag(alias) == alias


def test_other_aliases_do_not_think():
    for alias, spec in MODEL_ALIASES.items():
        if alias not in REASONING:
            assert spec.thinking_markers is None and spec.sampling is None
            assert spec.chat_template_kwargs == {}
