"""One generating phase as it is written: its graded run, its summary and the files it writes.

Shared by the single-process path (``study.run.runner``) and the shard merge
(``study.run.sharding``), so both write the very same files. Nothing here chooses a strategy
or loads a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import utils
from config import StudyConfig
from study import store
from study.data.datasets import LoadedDataset
from study.data.problems import Problem
from study.grading import grader
from study.schema import Record
from study.strategies import registry
from study.strategies.base import BudgetOutcome, ComputeStrategy
from study.strategies.rollouts import GenerationPlan

Summarize = Callable[[dict[int, list[Record]]], dict]


@dataclass
class PhaseOutput:
    summary: dict
    reused: bool  # True when a finished phase with the same config was found and reused


def graded_record(outcome: BudgetOutcome, budget: int) -> Record:
    """An outcome graded against its problem's answer, in the record schema's key order."""
    problem = outcome.problem
    graded = outcome.text if outcome.answer_text is None else outcome.answer_text
    grade = grader.grade(graded, problem.answer, problem.answer_kind)
    thinking = outcome.thinking  # None: a model without thinking markers (null fields)
    return {
        "problem_id": problem.problem_id, "question": problem.question,
        "ground_truth": problem.answer, "generated": outcome.text,
        "predicted": grade.predicted, "predicted_strict": grade.predicted_strict,
        "correct": grade.correct, "correct_strict": grade.correct_strict,
        "tokens_used": outcome.tokens_used, "budget": budget, "hit_budget": outcome.hit_budget,
        "sample": outcome.sample,
        "thinking_tokens": None if thinking is None else thinking.thinking_tokens,
        "closed_thinking": None if thinking is None else thinking.closed,
        "answer_present": None if thinking is None else grade.predicted is not None,
        **outcome.extra,
    }


@dataclass
class GradedRun:
    """A strategy's outcomes graded into records, with what the provenance block reports."""

    by_budget: dict[int, list[Record]]  # budget -> records in (problem, sample) order
    tokens_spent: dict[str, int]  # budget -> generated tokens its outcomes cost
    stats: dict  # generation stats (``device`` among them)
    reused_from: str | None
    strategy: str


def graded_run(strategy: ComputeStrategy, problems: list[Problem],
               budgets: tuple[int, ...]) -> GradedRun:
    """Run the strategy on ``problems`` and grade every outcome."""
    result = strategy.run(problems)
    by_budget = {b: [graded_record(o, b) for o in result.outcomes[b]] for b in budgets}
    spent = {str(b): sum(o.tokens_spent for o in result.outcomes[b]) for b in budgets}
    return GradedRun(by_budget, spent, result.stats, result.reused_from, strategy.name)


@dataclass
class PhaseRun:
    """One generating phase being run: what it needs to write its files (shared by the
    single-process path and the shard merge, so both write the very same files)."""

    cfg: StudyConfig
    plan: GenerationPlan
    data: LoadedDataset
    config: dict  # rollout_config over every problem of the phase
    answers: str  # fingerprint of the gold answers the records were graded against
    record_path: Callable[[int], Path]
    summary_path: Path
    summarize: Summarize
    started: float  # perf_counter at the start

    def summary(self, run: GradedRun, record_files: list[Path], extra: dict | None = None,
                wall_time_s: float | None = None) -> dict:
        """The phase summary of ``run`` with its provenance block (nothing is written)."""
        stats, cfg = dict(run.stats), self.cfg
        summary = {"phase": self.plan.phase, "model": cfg.model.name,
                   "dataset": cfg.data.dataset, **self.summarize(run.by_budget),
                   **registry.summary_block(cfg, run.by_budget)}
        wall = time.perf_counter() - self.started if wall_time_s is None else wall_time_s
        summary["provenance"] = store.provenance(
            cfg.to_dict(), seed=cfg.seed, wall_time_s=wall,
            device=stats.pop("device", None), record_files=record_files,
            extra={"fingerprint": store.fingerprint(self.config), "rollout_config": self.config,
                   "dataset": self.data.info, "answers": self.answers,
                   "budgets": list(self.plan.budgets), "strategy": run.strategy,
                   "tokens_spent": run.tokens_spent, "reused_rollouts_from": run.reused_from,
                   "num_layers": cfg.model.num_layers,
                   "model_layers": utils.model_depth(cfg.model.name, cfg.paths.data_dir),
                   **stats, **(extra or {})},
        )
        return summary

    def write(self, run: GradedRun, extra: dict | None = None,
              wall_time_s: float | None = None) -> PhaseOutput:
        """Write one record file per budget, then the summary (last: it marks the phase done)."""
        paths = [self.record_path(b) for b in self.plan.budgets]
        for budget, path in zip(self.plan.budgets, paths):
            store.write_json(path, run.by_budget[budget])
        summary = self.summary(run, paths, extra, wall_time_s)
        store.write_json(self.summary_path, summary)
        return PhaseOutput(summary, reused=False)
