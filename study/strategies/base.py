"""Ways of spending test-time compute: where a new one plugs in.

A strategy takes the problems and the budgets of a phase and returns, for every budget, one
``BudgetOutcome`` per (problem, sample): the text the model produced under that budget and the
tokens it cost. The runner grades the outcomes into records and writes them; it does not know
how the text was obtained. Today's only strategy is ``PrefixTruncation``: generate once up to
the largest budget and read each budget off the prefix. Budget forcing (force an answer at B,
or force the model to keep thinking) and power sampling implement the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import utils
from config import StudyConfig
from study.data.problems import Problem
from study.strategies.rollouts import GenerationPlan, RolloutRows, collect_rollouts

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


@dataclass
class StrategyResult:
    outcomes: dict[int, list[BudgetOutcome]]  # budget -> outcomes in (problem, sample) order
    stats: dict = field(default_factory=dict)  # generation stats for the provenance block
    reused_from: str | None = None  # where reused rollouts came from, if any


class ComputeStrategy(Protocol):
    """The seam: ``run(problems)`` -> per-budget outcomes with the tokens they cost."""

    name: str

    def run(self, problems: list[Problem]) -> StrategyResult: ...


class PrefixTruncation:
    """One rollout per (problem, sample) up to the largest budget; budget B is its first B
    tokens — exactly what ``generate(max_new_tokens=B)`` returns (greedy; tested)."""

    name = "truncation"

    def __init__(self, cfg: StudyConfig, plan: GenerationPlan,
                 seed_rollouts: SeedRollouts | None = None):
        self.cfg, self.plan, self.seed_rollouts = cfg, plan, seed_rollouts

    def run(self, problems: list[Problem]) -> StrategyResult:
        seeds, reused_from = (self.seed_rollouts(problems) if self.seed_rollouts is not None
                              else (None, None))
        rollouts, stats = collect_rollouts(self.cfg, self.plan, problems, seeds)
        tokenizer = utils.load_tokenizer(self.cfg.model.name, self.cfg.paths.data_dir)
        outcomes = {b: self._at_budget(problems, rollouts, b, tokenizer)
                    for b in self.plan.budgets}
        return StrategyResult(outcomes, stats, reused_from)

    def _at_budget(self, problems: list[Problem], rollouts: RolloutRows, budget: int,
                   tokenizer) -> list[BudgetOutcome]:
        out = []
        for problem in problems:
            for sample in range(self.plan.samples):
                row = rollouts[(problem.problem_id, sample)]
                ids, cut = utils.Rollout(tuple(row["token_ids"]), row["eos"]).at_budget(budget)
                out.append(BudgetOutcome(problem, sample, utils.decode_text(tokenizer, ids),
                                         len(ids), cut, len(ids)))
        return out
