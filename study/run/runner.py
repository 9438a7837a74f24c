"""Where tasks meet a compute strategy: run (or resume, or reuse) one generating phase.

The runner loads the problems, asks the strategy the config names
(``study.strategies.registry``) for per-budget outcomes, grades them into records
(``study.run.phase_run``), and writes one record file per budget plus the phase summary with
its provenance block. The summary is written last and marks the phase finished: a finished
phase with the same configuration is reused, not redone. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from config import StudyConfig
from study import shards, store
from study.data import subsets
from study.data.datasets import load_dataset
from study.run import sharding
from study.run.phase_run import PhaseOutput, PhaseRun, Summarize, graded_run
from study.strategies import registry
from study.strategies.base import ComputeStrategy, SeedRollouts
from study.strategies.rollouts import GenerationPlan, rollout_config


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
                        cfg.data.answer_kind, cfg.data.source,
                        subsets.subset_of(cfg.data))
    config = {**rollout_config(cfg, plan, data.problems), **registry.reading_keys(cfg)}
    answers = store.fingerprint([p.answer for p in data.problems])
    shard = shards.current(cfg)  # before any model loads: a rank picks its own GPU
    finished = check_finished(summary_path, config, plan.budgets, cfg.run.overwrite, answers)
    if finished is not None:
        return PhaseOutput(finished, reused=True)
    strategy = strategy or registry.strategy_for(cfg, plan, seed_rollouts)
    phase = PhaseRun(cfg, plan, data, config, answers, record_path, summary_path, summarize,
                     started)
    if shard is not None or cfg.run.merge:
        return sharding.run_sharded(phase, strategy, shard)
    return phase.write(graded_run(strategy, data.problems, plan.budgets))
