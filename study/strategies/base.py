"""Ways of spending test-time compute: where a new one plugs in.

A strategy takes the problems and the budgets of a phase and returns, for every budget, one
``BudgetOutcome`` per (problem, sample): the text the model produced under that budget and the
tokens it cost. The runner grades the outcomes into records and writes them; it does not know
how the text was obtained. The strategies (``truncation``, ``forcing``, ``power``) implement
this protocol, and ``registry`` picks the one a run's config names: a new strategy is one
module here and one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import utils
from study.data.problems import Problem
from study.strategies.rollouts import RolloutRows

# Rollouts another phase already made, and where from: (rows, "<path> (k of n rollouts)").
SeedRollouts = Callable[[list[Problem]], tuple[RolloutRows, str | None]]


@dataclass(frozen=True)
class BudgetOutcome:
    """What one (problem, sample) produced under one budget."""

    problem: Problem
    sample: int
    text: str  # decoded answer text within the budget
    tokens_used: int  # answer tokens within the budget (EOS counted)
    hit_budget: bool  # the budget cut the answer (no EOS within it)
    tokens_spent: int  # generated tokens this outcome cost (truncation: == tokens_used)
    # Budget forcing (study.strategies.forcing): the text graded instead of ``text`` (the forced
    # answer), and record fields appended after the standard ones (schema.ForcedRecord).
    answer_text: str | None = None
    extra: dict = field(default_factory=dict)
    # A thinking model's span within the budget (study.strategies.reasoning); None without
    # thinking markers, and the record's thinking fields are then null.
    thinking: utils.ThinkingSpan | None = None


@dataclass
class StrategyResult:
    outcomes: dict[int, list[BudgetOutcome]]  # budget -> outcomes in (problem, sample) order
    stats: dict = field(default_factory=dict)  # generation stats for the provenance block
    reused_from: str | None = None  # where reused rollouts came from, if any


class ComputeStrategy(Protocol):
    """The seam: ``run(problems)`` -> per-budget outcomes with the tokens they cost."""

    name: str

    def run(self, problems: list[Problem]) -> StrategyResult: ...
