"""Which compute strategy a run's config asks for: the one table the runner reads.

The runner imports this module and none of the strategies, so a new strategy is a module in
``study.strategies`` plus one entry in ``STRATEGIES`` (and, if it adds config keys that change
its records, an entry in ``reading_keys``).
"""

from __future__ import annotations

from config import StudyConfig
from study.strategies import forcing, reasoning
from study.strategies.base import ComputeStrategy, SeedRollouts
from study.strategies.forcing import ForceContinue, ForceEnd
from study.strategies.power import PowerSampling
from study.strategies.rollouts import GenerationPlan
from study.strategies.truncation import PrefixTruncation

# Strategy name (as written in provenance blocks and shard files) -> its class. Every class is
# built as ``cls(cfg, plan, seed_rollouts)``.
STRATEGIES: dict[str, type] = {
    cls.name: cls for cls in (PrefixTruncation, ForceEnd, ForceContinue, PowerSampling)
}


def strategy_name(cfg: StudyConfig) -> str:
    """The strategy the config selects: power sampling under ``--decoding power`` (whatever the
    budget mode), else the budget mode's (``truncate`` is prefix truncation)."""
    if cfg.generation.decoding == "power":
        return PowerSampling.name
    mode = cfg.forcing.budget_mode
    return PrefixTruncation.name if mode == "truncate" else mode


def strategy_for(cfg: StudyConfig, plan: GenerationPlan,
                 seed_rollouts: SeedRollouts | None = None) -> ComputeStrategy:
    """The configured strategy for one phase's plan (``seed_rollouts``: another phase's
    rollouts that a rollout-based strategy may take instead of generating)."""
    return STRATEGIES[strategy_name(cfg)](cfg, plan, seed_rollouts)


def reading_keys(cfg: StudyConfig) -> dict:
    """Config keys that change a phase's records without changing its rollouts (they join the
    summary's fingerprint): budget forcing's cue and answer length, the thinking markers and
    reading when set; none otherwise."""
    return {**forcing.reading_keys(cfg), **reasoning.reading_keys(cfg)}


def summary_block(cfg: StudyConfig, by_budget: dict[int, list[dict]]) -> dict:
    """Strategy-specific keys of a phase summary: ``{"forcing": ...}`` for a forced run,
    ``{"thinking": ...}`` for a model with thinking markers."""
    return {**forcing.summary_block(cfg, by_budget), **reasoning.summary_block(cfg, by_budget)}
