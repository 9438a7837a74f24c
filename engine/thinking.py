"""Thinking markers: where a reasoning model's thinking ends in its generated tokens.

Reasoning models (DeepSeek-R1 and its distills, QwQ, Qwen3 in thinking mode) think inside
``<think> ... </think>`` and answer after the closing marker. This module finds the markers a
tokenizer uses (an added token of its vocabulary, or a string its chat template writes) and,
for generated token ids, how many tokens came before the end-of-thinking marker and where the
answer starts. No torch here: only a tokenizer's ``encode``/``decode`` and vocabulary are read,
so the study can reason about markers before (or without) loading weights.

Nothing here knows a study or a budget: callers pass token ids, and a rollout's span read at a
budget is ``ThinkingSpan.at(n)`` (the first n tokens), so a rollout is searched once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# (start, end) pairs that reasoning models are known to use. DeepSeek-R1 (and its Qwen
# distills), QwQ-32B and Qwen3 all write <think> ... </think>; a new convention is one entry.
KNOWN_MARKERS: tuple[tuple[str, str], ...] = (("<think>", "</think>"),)


@dataclass(frozen=True)
class ThinkingMarkers:
    """The strings that open and close a model's thinking."""

    start: str
    end: str


@dataclass(frozen=True)
class ThinkingSpan:
    """Where thinking ends in some generated tokens."""

    thinking_tokens: int  # tokens before the end-of-thinking marker; all of them when unclosed
    closed: bool  # the whole end marker lies within the tokens
    answer_start: int  # index of the first token after the marker (== length when unclosed)

    def at(self, n: int) -> ThinkingSpan:
        """The span of the first ``n`` of these tokens (a budget's prefix of a rollout): the
        marker is within them exactly when it ends by token n."""
        if self.closed and self.answer_start <= n:
            return self
        return ThinkingSpan(n, False, n)


def _template_text(tokenizer) -> str:
    """The chat template as one string (some tokenizers hold several named templates)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        return "\n".join(str(t) for t in template.values())
    return str(template)


def _added_tokens(tokenizer) -> set[str]:
    getter = getattr(tokenizer, "get_added_vocab", None)
    return set(getter()) if callable(getter) else set()


def detect_markers(tokenizer) -> ThinkingMarkers | None:
    """The known marker pair one of whose markers is an added token of the tokenizer's
    vocabulary or appears in its chat template (R1's writes "<think>\n" to open the turn and
    strips "... </think>" from earlier turns); None for a model that does not think in them."""
    added, template = _added_tokens(tokenizer), _template_text(tokenizer)
    for start, end in KNOWN_MARKERS:
        if any(m in added or m in template for m in (start, end)):
            return ThinkingMarkers(start, end)
    return None


def marker_ids(tokenizer, text: str) -> tuple[int, ...]:
    """The token ids ``text`` encodes to on its own (an added token: its one id)."""
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def single_token_id(tokenizer, text: str) -> int | None:
    """The id of ``text`` when it is exactly one token (then an engine can stop on that id,
    e.g. vLLM's ``stop_token_ids``), else None (stop on the string instead)."""
    ids = marker_ids(tokenizer, text)
    return ids[0] if len(ids) == 1 else None


def _find(ids: Sequence[int], needle: Sequence[int]) -> int | None:
    """Index of the first occurrence of ``needle`` in ``ids``."""
    width = len(needle)
    if width == 0:
        return None
    first = needle[0]
    for i in range(len(ids) - width + 1):
        if ids[i] == first and tuple(ids[i:i + width]) == tuple(needle):
            return i
    return None


def _decoded(tokenizer, ids: Sequence[int]) -> str:
    # Special tokens kept: the search is over what the model wrote, marker pieces included.
    return tokenizer.decode(list(ids), skip_special_tokens=False)


def thinking_span(tokenizer, ids: Sequence[int], markers: ThinkingMarkers) -> ThinkingSpan:
    """Where ``markers.end`` first occurs in the generated ``ids``.

    An end marker that is an added token (as in R1, QwQ and Qwen3) is found by its id. Any
    other marker is searched first as its own token sequence, then, since BPE may merge its
    first or last piece with a neighbour ("." + "</" -> ".</", " " + "END" -> " END"), in the
    decoded text: the answer then starts after the shortest prefix whose text holds the
    marker, and the thinking is the longest prefix whose text ends before it.
    """
    ids = list(ids)
    needle = marker_ids(tokenizer, markers.end)
    at = _find(ids, needle)
    if at is not None:
        return ThinkingSpan(at, True, at + len(needle))
    if markers.end in _added_tokens(tokenizer):  # an added token is never merged with others
        return ThinkingSpan(len(ids), False, len(ids))
    text = _decoded(tokenizer, ids)
    pos = text.find(markers.end)
    if pos < 0:
        return ThinkingSpan(len(ids), False, len(ids))
    low, high = 1, len(ids)  # smallest prefix whose text holds the marker
    while low < high:
        mid = (low + high) // 2
        if markers.end in _decoded(tokenizer, ids[:mid]):
            high = mid
        else:
            low = mid + 1
    before = low - 1  # the marker's first token; walk back while its text reaches the marker
    while before > 0 and len(_decoded(tokenizer, ids[:before])) > pos:
        before -= 1
    return ThinkingSpan(before, True, low)
