"""Power sampling as a way of spending compute (``--decoding power``).

How chains map to budgets: one independent chain per (problem, sample, budget), grown to at
most B tokens (``Engine.power_sample``). Budget B's outcome is that chain's final state, and it
costs every token the chain proposed — its block extensions and all its MH proposals — so
``tokens_spent`` is far above ``tokens_used``. Reading smaller budgets off a longer chain, as
prefix truncation does, would not be a sample of p^alpha at the smaller length.

Each budget's chains are appended to ``results/rollouts/{phase}_{model}-power_budget{B}.jsonl``
as groups finish (with their proposal and acceptance counts), so a killed run resumes.
"""

from __future__ import annotations

import time

import utils
from config import StudyConfig
from study import store
from study.data.problems import Problem
from study.errors import ConfigError
from study.strategies import reasoning
from study.strategies.base import BudgetOutcome, SeedRollouts, StrategyResult
from study.strategies.rollouts import (
    GenerationPlan,
    RolloutRows,
    engine_stats,
    load_study_model,
    open_log,
    rollout_config,
)


def settings(cfg: StudyConfig) -> utils.PowerSettings:
    """The engine's settings from the config (ConfigError when they make no sense)."""
    p = cfg.power
    if p.alpha <= 0:
        raise ConfigError(f"--power-alpha {p.alpha}: must be > 0 (4 is the usual choice)")
    return utils.PowerSettings(alpha=p.alpha, blocks=p.blocks, mcmc_steps=p.mcmc_steps)


def acceptance_rate(rows: list[dict]) -> float | None:
    """Accepted / proposed MH moves over stored chains (None when none was proposed)."""
    proposed = sum(r["proposals"] for r in rows)
    return sum(r["accepted"] for r in rows) / proposed if proposed else None


class PowerSampling:
    """One power-sampling chain per (problem, sample) at every budget of the plan."""

    name = "power"

    def __init__(self, cfg: StudyConfig, plan: GenerationPlan,
                 seed_rollouts: SeedRollouts | None = None):
        # ``seed_rollouts`` is part of the strategies' common signature; a chain is never
        # another phase's rollout (different target distribution), so it is not used.
        del seed_rollouts
        utils.check_supports(cfg.model.engine, "power")  # before any model is loaded
        self.cfg, self.plan, self.settings = cfg, plan, settings(cfg)
        self._lm: utils.Engine | None = None  # loaded on the first chain to generate

    def run(self, problems: list[Problem]) -> StrategyResult:
        stats: dict = {"power": {"alpha": self.settings.alpha, "blocks": self.settings.blocks,
                                 "mcmc_steps": self.settings.mcmc_steps, "budgets": {}},
                       "rollouts_total": 0, "rollouts_generated": 0, "generated_tokens": 0,
                       "generation_s": 0.0, "device": None, "batch_size": self.cfg.model.batch_size}
        tokenizer = utils.load_tokenizer(self.cfg.model.name, self.cfg.paths.data_dir)
        thinking = reasoning.reader(self.cfg, tokenizer)
        outcomes: dict[int, list[BudgetOutcome]] = {}
        for budget in self.plan.budgets:
            rows = self._chains(problems, budget, stats)
            outcomes[budget] = [self._outcome(p, s, rows[(p.problem_id, s)], budget, tokenizer,
                                              thinking)
                                for p in problems for s in range(self.plan.samples)]
            chains = [rows[(p.problem_id, s)] for p in problems for s in range(self.plan.samples)]
            stats["power"]["budgets"][str(budget)] = {
                "chains": len(chains), "proposals": sum(r["proposals"] for r in chains),
                "accepted": sum(r["accepted"] for r in chains),
                "acceptance_rate": acceptance_rate(chains),
                "tokens_proposed": sum(r["tokens_proposed"] for r in chains)}
        stats["rollouts_resumed_or_reused"] = stats["rollouts_total"] - stats["rollouts_generated"]
        done = stats["generation_s"]
        stats["tokens_per_s"] = round(stats["generated_tokens"] / done, 1) if done else None
        stats["generation_s"] = round(done, 3)
        return StrategyResult(outcomes, stats)

    @staticmethod
    def _outcome(problem: Problem, sample: int, row: dict, budget: int, tokenizer,
                 thinking: reasoning.ThinkingReader) -> BudgetOutcome:
        ids = tuple(row["token_ids"])
        span = thinking.span(ids)  # a chain is read whole, as truncation reads a rollout
        return BudgetOutcome(problem, sample, utils.decode_text(tokenizer, ids), len(ids),
                             not row["eos"], row["tokens_proposed"],
                             answer_text=thinking.answer_text(ids, span), thinking=span)

    def _chains(self, problems: list[Problem], budget: int, stats: dict) -> RolloutRows:
        """Every chain of one budget, generating only those not in its log yet."""
        cfg = self.cfg
        config = {**rollout_config(cfg, self.plan, problems), "max_new_tokens": budget}
        whole = store.power_rollouts_path(cfg.paths.results_dir, self.plan.phase, cfg.model_tag,
                                          budget)
        log = open_log(cfg, whole, "power_rollouts", config)
        done = log.load()
        wanted = [(p, s) for p in problems for s in range(self.plan.samples)]
        pending = [(p, s) for p, s in wanted if (p.problem_id, s) not in done]
        stats["rollouts_total"] += len(wanted)
        stats["rollouts_generated"] += len(pending)
        if not pending:
            return done
        if self._lm is None:
            self._lm = load_study_model(cfg, stats)
        lm = self._lm
        stats.update(engine_stats(lm))
        log.start()
        prompts = lm.prompt_ids([p.prompt for p, _ in pending])
        seeds = [utils.row_seed(cfg.seed, p.problem_id, s) for p, s in pending]
        size = cfg.model.batch_size or lm.auto_batch_size(prompts, budget)
        stats["batch_size"] = size

        def persist(indices: list[int], rollouts: list[utils.PowerRollout]) -> None:
            rows = [{"problem_id": pending[i][0].problem_id, "sample": pending[i][1],
                     "token_ids": list(r.token_ids), "eos": r.eos,
                     "prompt_len": len(prompts[i]), "tokens_proposed": r.tokens_proposed,
                     "proposals": r.proposals, "accepted": r.accepted}
                    for i, r in zip(indices, rollouts)]
            log.append(rows)
            done.update({(row["problem_id"], row["sample"]): row for row in rows})
            if not cfg.run.quiet:
                print(f"power sampling, budget {budget}: {len(done)}/{len(wanted)} chains, "
                      f"acceptance {acceptance_rate(rows) or 0:.0%} in the last group",
                      flush=True)

        started = time.perf_counter()
        rollouts = lm.power_sample(prompts, budget, self.settings, seeds, size, on_batch=persist)
        stats["generation_s"] += time.perf_counter() - started
        stats["generated_tokens"] += sum(r.tokens_proposed for r in rollouts)
        return done
