"""Budget forcing (seed 001, s1): an answer forced at every budget, from one rollout.

``--budget-mode`` picks how the answer at budget B is read:

- ``truncate`` (default, seed 000): the first B tokens of the rollout, graded as they are
  (``strategies.PrefixTruncation``).
- ``force-end``: the first B tokens (or up to the rollout's EOS, dropped), then the cue
  (end-of-thinking marker first when the chat template has one, then ``--cue``), then up to
  ``--answer-tokens`` greedy tokens; that answer is graded. The rollouts are exactly
  truncation's (same log, same tokens). Each rollout is encoded once and every budget's answer
  is a short batched branch off a crop of its KV cache (``Engine.branch_answers``).
- ``force-continue``: rollouts in which an EOS before the budget is replaced by
  ``--continue-string`` (at most ``--max-continues`` times, ``study.strategies.forcing_rollouts``),
  then force-end at each budget.

Both force modes add the continuous metrics (``study.analysis.continuous``): every distinct answer
seen for a problem, plus gold, is scored teacher-forced after each budget's cue.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import utils
from config import StudyConfig
from study import store
from study.analysis import continuous
from study.data.problems import Problem
from study.errors import ConfigError
from study.grading import grader, numeric
from study.strategies import reasoning
from study.strategies.base import BudgetOutcome, SeedRollouts, StrategyResult
from study.strategies.rollouts import (
    GenerationPlan,
    RolloutRows,
    collect_rollouts,
    engine_stats,
    load_study_model,
    resumable,
    rollout_tag,
)


def forced(cfg: StudyConfig) -> bool:
    return cfg.forcing.budget_mode != "truncate"


def reading_keys(cfg: StudyConfig) -> dict:
    """What, besides the rollouts, decides a forced phase's records (its summary fingerprint);
    nothing for truncation, so its fingerprints stay as they were."""
    if not forced(cfg):
        return {}
    return {"budget_mode": cfg.forcing.budget_mode, "cue": cfg.forcing.cue,
            "answer_tokens": cfg.forcing.answer_tokens}


def cue_text(cfg: StudyConfig, tokenizer) -> str:
    """The cue appended at a budget: the run's end-of-thinking marker first, if any
    (``reasoning.markers``: --thinking-markers, else the tokenizer's or template's)."""
    markers = reasoning.markers(cfg, tokenizer)
    return (markers.end if markers is not None else "") + cfg.forcing.cue


def summary_block(cfg: StudyConfig, by_budget: dict[int, list[dict]]) -> dict:
    """``{"forcing": ForcingBlock}`` for a forced phase's summary; {} for truncation."""
    if not forced(cfg):
        return {}
    s = cfg.statistics
    rows = {}
    for budget, records in by_budget.items():
        n = len(records) or 1
        rows[str(budget)] = {
            "budget": budget,
            **continuous.budget_metrics(records, s.bootstrap_resamples, s.confidence, cfg.seed),
            "truncate_accuracy": sum(r.get("truncated_correct", False) for r in records) / n,
            "forced_continues": sum(r.get("forced_continues", 0) for r in records) / n,
            "tokens_spent": sum(r.get("tokens_spent", 0) for r in records) / n,
        }
    return {"forcing": {"budget_mode": cfg.forcing.budget_mode, "cue": cfg.forcing.cue,
                        "answer_tokens": cfg.forcing.answer_tokens, "budgets": rows}}


class ForceEnd:
    """Truncation's rollouts; at each budget, a forced answer after the cue, graded."""

    name = "force-end"

    def __init__(self, cfg: StudyConfig, plan: GenerationPlan,
                 seed_rollouts: SeedRollouts | None = None):
        if not cfg.forcing.cue:
            raise ConfigError("--cue: the cue is empty; give a text such as 'Final answer:'")
        self.cfg, self.plan, self.seed_rollouts = cfg, plan, seed_rollouts

    def rollouts(self, problems: list[Problem]) -> tuple[RolloutRows, dict, str | None]:
        seeds, reused_from = (self.seed_rollouts(problems) if self.seed_rollouts is not None
                              else (None, None))
        rollouts, stats = collect_rollouts(self.cfg, self.plan, problems, seeds)
        return rollouts, stats, reused_from

    def run(self, problems: list[Problem]) -> StrategyResult:
        rollouts, stats, reused_from = self.rollouts(problems)
        cfg = self.cfg
        lm = load_study_model(cfg, stats)
        if not stats.get("device"):
            stats.update(engine_stats(lm))
        keys = [(p, s) for p in problems for s in range(self.plan.samples)]
        prompts = lm.prompt_ids([p.prompt for p, _ in keys])
        rows = [rollouts[(p.problem_id, s)] for p, s in keys]
        thinking = reasoning.reader(cfg, lm.tokenizer)
        spans = [thinking.span(row["token_ids"]) for row in rows]  # once per rollout
        cue = lm.tokenizer(cue_text(cfg, lm.tokenizer), add_special_tokens=False)["input_ids"]
        forcer = _Forcer(lm, prompts, rows, cue, cfg.model.batch_size or 16,
                         progress=not cfg.run.quiet)
        started = time.perf_counter()
        log_path = store.rollouts_path(cfg.paths.results_dir, self.plan.phase, rollout_tag(cfg))
        with resumable(log_path, lambda: len(rollouts)):  # forced answers are made again
            answers = forcer.answers(self.plan.budgets, cfg.forcing.answer_tokens)
            scores = forcer.scores(keys, answers)
        stats["forcing_s"] = round(time.perf_counter() - started, 3)
        outcomes = {b: [] for b in self.plan.budgets}
        for i, (problem, sample) in enumerate(keys):
            for budget in self.plan.budgets:
                outcomes[budget].append(self._outcome(lm, forcer, i, problem, sample, budget,
                                                      answers, scores, thinking, spans[i]))
        stats["forced_branches"] = len(forcer.branches)
        stats["forced_answer_tokens"] = sum(len(a.token_ids) for a in answers.values())
        return StrategyResult(outcomes, stats, reused_from)

    def _outcome(self, lm, forcer: _Forcer, i: int, problem: Problem, sample: int,
                 budget: int, answers: dict, scores: dict, reader: reasoning.ThinkingReader,
                 span: utils.ThinkingSpan | None) -> BudgetOutcome:
        ids, cut, thinking = forcer.thinking(i, budget)
        span = None if span is None else span.at(len(ids))  # the model's own thinking, at B
        answer = answers[(i, len(thinking))]
        answer_text = utils.decode_text(lm.tokenizer, answer.token_ids)
        text = utils.decode_text(lm.tokenizer, [*thinking, *forcer.cue, *answer.token_ids])
        continued = sum(1 for at in forcer.rows[i].get("continued_at", ()) if at < budget)
        # the truncation reading of the very same tokens, for the paired comparison
        plain_text = reader.answer_text(ids, span)
        plain = grader.grade(utils.decode_text(lm.tokenizer, ids) if plain_text is None
                             else plain_text, problem.answer, problem.answer_kind)
        extra = {"budget_mode": self.cfg.forcing.budget_mode, "forced_answer": answer_text,
                 "forced_continues": continued, "truncated_correct": plain.correct,
                 "tokens_spent": len(thinking) + len(forcer.cue) + len(answer.token_ids),
                 **scores[(i, len(thinking))]}
        return BudgetOutcome(problem, sample, text, len(ids), cut, extra["tokens_spent"],
                             answer_text=answer_text, extra=extra, thinking=span)


class ForceContinue(ForceEnd):
    """Rollouts whose early EOS is replaced by the continue string; then force-end."""

    name = "force-continue"

    def __init__(self, cfg: StudyConfig, plan: GenerationPlan,
                 seed_rollouts: SeedRollouts | None = None):
        utils.check_supports(cfg.model.engine, "force-continue")  # before any model is loaded
        super().__init__(cfg, plan, seed_rollouts)

    def rollouts(self, problems: list[Problem]) -> tuple[RolloutRows, dict, str | None]:
        from study.strategies.forcing_rollouts import collect_continued

        seeds, reused_from = (self.seed_rollouts(problems) if self.seed_rollouts is not None
                              else (None, None))
        rollouts, stats = collect_continued(self.cfg, self.plan, problems, seeds)
        return rollouts, stats, reused_from


class _Forcer:
    """The forced answers and candidate scores of one phase's rollouts at its budgets."""

    def __init__(self, lm, prompts: list[list[int]], rows: list[dict], cue: list[int],
                 batch_size: int, progress: bool = False):
        self.lm, self.prompts, self.rows, self.cue = lm, prompts, rows, cue
        self.batch_size, self.progress = batch_size, progress
        self.branches: list[tuple[int, int]] = []  # (row, thinking tokens), distinct

    def thinking(self, i: int, budget: int) -> tuple[tuple[int, ...], bool, tuple[int, ...]]:
        """(tokens within the budget, cut by it, the thinking the cue follows: EOS dropped)."""
        row = self.rows[i]
        ids, cut = utils.Rollout(tuple(row["token_ids"]), row["eos"]).at_budget(budget)
        return ids, cut, (ids if cut or not row["eos"] else ids[:-1])

    def answers(self, budgets: Sequence[int], answer_tokens: int) -> dict:
        """(row, thinking length) -> BranchAnswer; budgets past a row's EOS share one branch."""
        wanted = {(i, len(self.thinking(i, b)[2])) for i in range(len(self.rows))
                  for b in budgets}
        self.branches = sorted(wanted)
        got = self.lm.branch_answers(self._sequences(), self._engine_branches(), self.cue,
                                     answer_tokens, self.batch_size, self.progress)
        return dict(zip(self.branches, got))

    def scores(self, keys: list[tuple[Problem, int]], answers: dict) -> dict:
        """(row, thinking length) -> p_gold, entropy_bits, gold_rank over the problem's
        solution set (every answer it got at any budget or sample, plus gold)."""
        tok = self.lm.tokenizer
        seen: dict[str, list[str | None]] = {}
        for (i, _), answer in answers.items():
            problem = keys[i][0]
            text = utils.decode_text(tok, answer.token_ids)
            seen.setdefault(problem.problem_id, []).append(
                grader.grade(text, problem.answer, problem.answer_kind).predicted)
        sets = {}
        for problem, _ in keys:
            gold = gold_text(problem)
            sets[problem.problem_id] = continuous.solution_set(
                seen.get(problem.problem_id, []), gold,
                lambda a, p=problem: grader.is_equivalent(a, p.answer, p.answer_kind))
        candidates = [[tok(" " + c, add_special_tokens=False)["input_ids"]
                       for c in sets[keys[i][0].problem_id]] for i, _ in self.branches]
        logps = self.lm.branch_scores(self._sequences(), self._engine_branches(), self.cue,
                                      candidates, self.batch_size, self.progress)
        return {b: continuous.metrics(lp, 0) for b, lp in zip(self.branches, logps)}

    def _sequences(self) -> list[list[int]]:
        return [p + list(r["token_ids"]) for p, r in zip(self.prompts, self.rows)]

    def _engine_branches(self) -> list[utils.Branch]:
        return [utils.Branch(i, len(self.prompts[i]) + n) for i, n in self.branches]


def gold_text(problem: Problem) -> str:
    """The gold answer as the model would write it after the cue (numbers normalised)."""
    if problem.answer_kind == "numeric":
        return numeric.parse_gold(problem.answer)
    return problem.answer.strip()
