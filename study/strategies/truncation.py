"""Prefix truncation, the study's baseline strategy: one rollout to the largest budget, read at
every smaller budget."""

from __future__ import annotations

import utils
from config import StudyConfig
from study.data.problems import Problem
from study.strategies import reasoning
from study.strategies.base import BudgetOutcome, SeedRollouts, StrategyResult
from study.strategies.rollouts import GenerationPlan, RolloutRows, collect_rollouts


class PrefixTruncation:
    """One rollout per (problem, sample) up to the largest budget; budget B is its first B
    tokens — exactly what ``generate(max_new_tokens=B)`` returns (greedy; tested). A thinking
    model's answer is read after its end-of-thinking marker (``strategies.reasoning``)."""

    name = "truncation"

    def __init__(self, cfg: StudyConfig, plan: GenerationPlan,
                 seed_rollouts: SeedRollouts | None = None):
        self.cfg, self.plan, self.seed_rollouts = cfg, plan, seed_rollouts

    def run(self, problems: list[Problem]) -> StrategyResult:
        seeds, reused_from = (self.seed_rollouts(problems) if self.seed_rollouts is not None
                              else (None, None))
        rollouts, stats = collect_rollouts(self.cfg, self.plan, problems, seeds)
        tokenizer = utils.load_tokenizer(self.cfg.model.name, self.cfg.paths.data_dir)
        thinking = reasoning.reader(self.cfg, tokenizer)
        spans = {(p.problem_id, s): thinking.span(rollouts[(p.problem_id, s)]["token_ids"])
                 for p in problems for s in range(self.plan.samples)}
        outcomes = {b: self._at_budget(problems, rollouts, b, tokenizer, thinking, spans)
                    for b in self.plan.budgets}
        return StrategyResult(outcomes, stats, reused_from)

    def _at_budget(self, problems: list[Problem], rollouts: RolloutRows, budget: int,
                   tokenizer, thinking: reasoning.ThinkingReader,
                   spans: dict) -> list[BudgetOutcome]:
        out = []
        for problem in problems:
            for sample in range(self.plan.samples):
                key = (problem.problem_id, sample)
                row = rollouts[key]
                ids, cut = utils.Rollout(tuple(row["token_ids"]), row["eos"]).at_budget(budget)
                # a thinking model's span at this budget, and its answer after the end marker
                span = None if spans[key] is None else spans[key].at(len(ids))
                out.append(BudgetOutcome(problem, sample, utils.decode_text(tokenizer, ids),
                                         len(ids), cut, len(ids),
                                         answer_text=thinking.answer_text(ids, span),
                                         thinking=span))
        return out
