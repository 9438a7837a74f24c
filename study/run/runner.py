"""Where tasks meet a compute strategy: run (or resume, or reuse) one generating phase.

The runner loads the problems, asks a strategy (``study.strategies.base``) for per-budget outcomes,
grades them into records, and writes one record file per budget plus the phase summary with its
provenance block. The summary is written last and marks the phase finished: a finished phase
with the same configuration is reused, not redone. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import utils
from config import StudyConfig
from study import store
from study.analysis import stats
from study.data.datasets import LoadedDataset, load_dataset
from study.data.problems import Problem
from study.grading import grader
from study.run import sharding
from study.schema import Record
from study.strategies import forcing
from study.strategies.base import (
    BudgetOutcome,
    ComputeStrategy,
    PrefixTruncation,
    SeedRollouts,
)
from study.strategies.power import PowerSampling
from study.strategies.rollouts import GenerationPlan, rollout_config

Summarize = Callable[[dict[int, list[Record]]], dict]


@dataclass
class PhaseOutput:
    summary: dict
    reused: bool  # True when a finished phase with the same config was found and reused


def sampling(temperature: float, top_p: float) -> utils.SamplingConfig:
    """Decoding settings; top-p means nothing under greedy decoding, so it is recorded as 1."""
    return utils.SamplingConfig(temperature, top_p if temperature > 0 else 1.0)


def plan_for(cfg: StudyConfig, phase: str) -> GenerationPlan:
    """The generation plan of a generating phase ("phase1", "phase1b" or "phase3")."""
    greedy_curve = sampling(cfg.generation.temperature, cfg.generation.top_p)
    if phase == "phase1":
        return GenerationPlan(phase, cfg.phase1.budgets, 1, cfg.data.num_samples, greedy_curve)
    if phase == "phase1b":
        s = cfg.phase1b
        return GenerationPlan(phase, s.budgets, s.samples, s.num_samples or cfg.data.num_samples,
                              sampling(s.temperature, s.top_p))
    if phase == "phase3":
        return GenerationPlan(phase, cfg.phase3.budgets, 1, cfg.data.num_samples, greedy_curve)
    raise KeyError(f"{phase} is not a generating phase")


def check_finished(summary_path: Path, config: dict, budgets: tuple[int, ...],
                   overwrite: bool, answers: str | None = None) -> dict | None:
    """The finished summary when it matches this config; error when it was made under another.

    Same rollouts but other budgets (up to the same largest one), or other gold answers (a gold
    fixed since, fingerprint ``answers``), returns None: the records are then re-derived from the
    stored rollouts without generating.
    """
    if overwrite or not summary_path.exists():
        return None
    summary = store.read_json(summary_path)
    old = summary.get("provenance", {})
    if old.get("fingerprint") == store.fingerprint(config):
        same = old.get("budgets") == list(budgets) and old.get("answers") == answers
        return summary if same else None
    raise store.ResultsError(
        f"{summary_path}: finished results from a different configuration "
        f"({store.describe_diff(old.get('rollout_config', {}), config)}); "
        "re-run with the original flags, or pass --overwrite to replace them"
    )


def graded_record(outcome: BudgetOutcome, budget: int) -> Record:
    """An outcome graded against its problem's answer, in the record schema's key order."""
    problem = outcome.problem
    graded = outcome.text if outcome.answer_text is None else outcome.answer_text
    grade = grader.grade(graded, problem.answer, problem.answer_kind)
    return {
        "problem_id": problem.problem_id, "question": problem.question,
        "ground_truth": problem.answer, "generated": outcome.text,
        "predicted": grade.predicted, "predicted_strict": grade.predicted_strict,
        "correct": grade.correct, "correct_strict": grade.correct_strict,
        "tokens_used": outcome.tokens_used, "budget": budget, "hit_budget": outcome.hit_budget,
        "sample": outcome.sample, **outcome.extra,
    }


def run_budget_phase(cfg: StudyConfig, plan: GenerationPlan, record_path: Callable[[int], Path],
                     summary_path: Path, summarize: Summarize,
                     strategy: ComputeStrategy | None = None,
                     seed_rollouts: SeedRollouts | None = None) -> PhaseOutput:
    """Run (or resume, or reuse) one budget phase and write its record files and summary.

    ``strategy`` defaults to prefix truncation of rollouts (``seed_rollouts`` may supply some).
    With ``--shard``/``--merge`` or under ``accelerate launch``, ``study.run.sharding`` runs this
    process's share of the problems and merges the shards into the same files.
    """
    started = time.perf_counter()
    data = load_dataset(cfg.data.dataset, plan.num_samples, cfg.seed, cfg.paths.data_dir,
                        cfg.data.answer_kind, cfg.data.source)
    config = {**rollout_config(cfg, plan, data.problems), **forcing.reading_keys(cfg)}
    answers = store.fingerprint([p.answer for p in data.problems])
    shard = sharding.current(cfg)  # before any model loads: a rank picks its own GPU
    finished = check_finished(summary_path, config, plan.budgets, cfg.run.overwrite, answers)
    if finished is not None:
        return PhaseOutput(finished, reused=True)
    if strategy is None and cfg.generation.decoding == "power":
        strategy = PowerSampling(cfg, plan)
    strategy = (strategy or forcing.strategy_for(cfg, plan, seed_rollouts)
                or PrefixTruncation(cfg, plan, seed_rollouts))
    phase = PhaseRun(cfg, plan, data, config, answers, record_path, summary_path, summarize,
                     started)
    if shard is not None or cfg.run.merge:
        return sharding.run_sharded(phase, strategy, shard)
    return phase.write(graded_run(strategy, data.problems, plan.budgets))


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
                   **forcing.summary_block(cfg, run.by_budget)}
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


def budget_table_rows(records: list[Record], confidence: float) -> dict:
    """Per-budget numbers shared by phases 1 and 3: accuracy (Wilson CI), tokens, cut rate."""
    n = len(records)
    n_correct = sum(r["correct"] for r in records)
    low, high = stats.wilson_ci(n_correct, n, confidence)
    return {
        "n": n, "n_correct": n_correct, "accuracy": n_correct / n if n else 0.0,
        "ci_low": low, "ci_high": high,
        "accuracy_strict": sum(r["correct_strict"] for r in records) / n if n else 0.0,
        "avg_tokens": sum(r["tokens_used"] for r in records) / n if n else 0.0,
        "hit_budget_rate": sum(r["hit_budget"] for r in records) / n if n else 0.0,
    }
