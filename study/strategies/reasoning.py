"""Reasoning models on the study's side: chat-template switches, thinking markers, and reading
a thinking model's tokens at a budget.

A reasoning model thinks inside ``<think> ... </think>`` and answers after it. For such a model
(one with thinking markers: ``markers``) every record says how many tokens it thought, whether
it closed its thinking within the budget, and whether an answer could be read
(``schema.Record``); under truncation its answer is read only after the end-of-thinking marker
(``--grade-whole-text`` reads the whole text again). A model without markers is read exactly as
before, and its records carry null in those fields.

Markers come from, in this order: ``--thinking-markers START END`` (``none``: the model has
none), the tokenizer or its chat template (``engine.thinking.detect_markers``), the alias's
declaration (``engine.settings.MODEL_ALIASES``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import utils
from config import StudyConfig
from study.analysis import thinking
from study.errors import ConfigError

NO_MARKERS = "none"  # --thinking-markers none: a model that does not think in markers


def check(cfg: StudyConfig) -> None:
    """ConfigError for --thinking-markers that are neither START END nor ``none``."""
    given = cfg.thinking.markers
    if given is None or list(given) == [NO_MARKERS]:
        return
    if len(given) != 2 or not all(m.strip() for m in given) or given[0] == given[1]:
        raise ConfigError(f"--thinking-markers {' '.join(given)}: give two different markers, "
                          "START END (e.g. --thinking-markers '<think>' '</think>'), or none")


def template_kwargs(cfg: StudyConfig) -> dict[str, Any]:
    """The chat template's switches: the alias's own (Qwen3: enable_thinking), then the
    user's ``--chat-template-kwargs`` over them."""
    return {**utils.resolve_model(cfg.model.name).chat_template_kwargs,
            **cfg.model.chat_template_kwargs}


def chat_prompts(cfg: StudyConfig, tokenizer, messages: Sequence[str]) -> list[list[int]]:
    """Prompt token ids of ``messages`` under the chat template with this run's switches."""
    return utils.chat_prompt_ids(tokenizer, messages, template_kwargs(cfg) or None)


def markers(cfg: StudyConfig, tokenizer) -> utils.ThinkingMarkers | None:
    """The run's thinking markers (see the module docstring), None for a model without."""
    given = cfg.thinking.markers
    if given is not None:
        return None if list(given) == [NO_MARKERS] else utils.ThinkingMarkers(*given)
    found = utils.detect_markers(tokenizer)
    if found is not None:
        return found
    declared = utils.resolve_model(cfg.model.name).thinking_markers
    return utils.ThinkingMarkers(*declared) if declared else None


@lru_cache(maxsize=4)
def _tokenizer(model: str, data_dir: str):
    return utils.load_tokenizer(model, data_dir)


def run_markers(cfg: StudyConfig) -> utils.ThinkingMarkers | None:
    """``markers`` with the run's own tokenizer (loaded once per process, and only when the
    markers are not given)."""
    if cfg.thinking.markers is not None:
        return markers(cfg, None)
    return markers(cfg, _tokenizer(cfg.model.name, str(cfg.paths.data_dir)))


@dataclass(frozen=True)
class ThinkingReader:
    """How one run reads its generated tokens: where thinking ends, and the text graded."""

    tokenizer: Any
    markers: utils.ThinkingMarkers | None
    whole_text: bool = False  # --grade-whole-text

    def span(self, ids: Sequence[int]) -> utils.ThinkingSpan | None:
        """Where thinking ends in a whole rollout (None: no markers); ``.at(n)`` of it reads
        the first n tokens, so each rollout is searched once for all its budgets."""
        if self.markers is None:
            return None
        return utils.thinking_span(self.tokenizer, ids, self.markers)

    def answer_text(self, ids: Sequence[int], span: utils.ThinkingSpan | None) -> str | None:
        """What truncation grades instead of the whole text: the tokens after the end marker
        (nothing while thinking is open); None (grade the whole text) without markers or under
        --grade-whole-text."""
        if span is None or self.whole_text:
            return None
        if not span.closed:
            return ""
        return utils.decode_text(self.tokenizer, list(ids)[span.answer_start:])


def reader(cfg: StudyConfig, tokenizer) -> ThinkingReader:
    return ThinkingReader(tokenizer, markers(cfg, tokenizer), cfg.thinking.grade_whole_text)


def reading_keys(cfg: StudyConfig) -> dict:
    """What of the thinking section changes a phase's records (joins the summary fingerprint
    only when set, so existing fingerprints stay valid)."""
    keys: dict = {}
    if cfg.thinking.markers is not None:
        keys["thinking_markers"] = list(cfg.thinking.markers)
    if cfg.thinking.grade_whole_text:
        keys["grade_whole_text"] = True
    return keys


def template_keys(cfg: StudyConfig) -> dict:
    """The chat template's switches in the rollout config (they change the prompt tokens);
    nothing when there are none, so existing fingerprints stay valid."""
    switches = template_kwargs(cfg)
    return {"chat_template_kwargs": dict(sorted(switches.items()))} if switches else {}


def summary_block(cfg: StudyConfig, by_budget: dict[int, list[dict]]) -> dict:
    """``{"thinking": ThinkingBlock}`` for a phase run on a model with thinking markers (the
    share of rollouts that closed their thinking, per budget); {} for any other model."""
    rows = thinking.budget_rows(by_budget)
    if not rows:
        return {}
    found = run_markers(cfg)
    card = utils.resolve_model(cfg.model.name).sampling
    return {"thinking": {
        "markers": [found.start, found.end] if found is not None else [],
        "graded": "whole-text" if cfg.thinking.grade_whole_text else "after-end-marker",
        "card_sampling": dataclasses.asdict(card) if card is not None else None,
        "budgets": rows}}
