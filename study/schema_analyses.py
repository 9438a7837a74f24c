"""The typed schema of the study's analyses: solution structure (phase 3), curve fits and
emergence (phase 1), the cross-run comparison, the depth sweep, the logit lens and the
compute-matched comparison (phase 4). Records, provenance and the phase summaries are in
``study.schema``; together the two modules are the one schema.
"""

from __future__ import annotations

from typing import Any, TypedDict

from study.schema import AccuracyRow, Provenance

# ---------------------------------------------------------------- phase 3: solution structure

class Proportion(TypedDict):
    n: int
    n_correct: int
    accuracy: float | None  # None over no solutions
    ci_low: float
    ci_high: float


class StructureMetrics(TypedDict):
    """The structure of a set of graded solutions (one budget, or one length group)."""

    n: int
    accuracy: float | None
    avg_tokens: float | None
    tokens_per_phase: dict[str, float | None]  # setup / computation / verification
    token_share_per_phase: dict[str, float | None]
    verification_share: float | None  # solutions with a verification phase
    avg_steps: float | None
    avg_operations: float | None
    arith_steps_checked: int
    arith_errors: int
    arith_error_rate: float | None
    with_verification: Proportion
    without_verification: Proportion


class StructureRow(StructureMetrics):
    budget: int
    source: str  # "phase3", or "phase1" with --include-phase1


class LengthGroup(StructureMetrics):
    """Solutions below / inside / above the cliff window, by their own length."""

    length: str  # e.g. "49..64"
    accuracy_at_window_start: float | None
    accuracy_at_window_end: float | None
    gain_share: float | None  # share of the window's accuracy gain


CliffWindow = TypedDict("CliffWindow", {
    "from": int, "to": int,
    "chosen_by": str,  # "half_gain_window" or "steepest_step"
    "measured_at_budget": int,  # the budget whose solutions are grouped
})


class StructureSummary(TypedDict):
    """``results/phase3_structure_analysis_{model}.json``."""

    phase: str  # "phase3_structure"
    model: str
    dataset: str | None
    token_counter: str
    budgets: dict[str, StructureRow]
    window: CliffWindow | None
    groups: dict[str, LengthGroup] | None  # "below" / "inside" / "above"
    phase1_note: str | None  # why phase-1 budgets were not added (--include-phase1)
    provenance: Provenance


# ---------------------------------------------------------------- phase 1: fits and emergence

class FittedModel(TypedDict):
    """One curve of ``study.analysis.fits`` (its parameters are named there)."""

    params: dict[str, float]  # x0 = log2 of the smallest budget, and the model's own
    log_likelihood: float  # Bernoulli, over every per-problem outcome
    n_params: int
    aic: float
    bic: float


class CurveFits(TypedDict):
    n_problems: int
    samples: int  # outcomes per problem and budget
    n_outcomes: int  # N of the BIC
    models: dict[str, FittedModel]  # "log-linear", "piecewise", "saturating", "constant"
    best: str  # lowest BIC
    best_aic: str  # lowest AIC
    flat: bool  # the constant is best: no budget dependence, so no breakpoint and no level
    breakpoint: float | None  # budget (tokens) of the piecewise fit's breakpoint; None if flat
    breakpoint_ci: list[float] | None  # bootstrap over problems, in tokens; None: see the note
    breakpoint_ci_note: str | None  # why there is no interval (no spread, nothing identified)
    saturation_level: float | None  # the saturating fit's asymptote; None if flat
    bootstrap_resamples: int


WindowGain = TypedDict("WindowGain", {
    "from": int, "to": int,
    "gain": float,  # mean per-problem gain over the window
    "from_jumping": float, "from_gradual": float,  # its two parts (sum to gain)
    "jumping_share": float | None,  # from_jumping / gain; None when gain <= 0
})


class EmergentProblem(TypedDict):
    problem_id: str
    trajectory: list[float]  # the metric at each budget
    breakthroughness: float  # seed 001's default form
    breakthroughness_bigbench: float
    skew: float | None
    jumps: bool


class EmergenceBlock(TypedDict):
    metric: str  # "correct", "success rate" or "p_gold"
    budgets: list[int]
    problems: list[EmergentProblem]
    top: list[str]  # most emergent problem ids, most first
    n_jumping: int
    share_jumping: float | None
    window_gain: WindowGain | None
    rule: str  # what counts as a jump


class ScalingSummary(TypedDict):
    """``results/phase1_scaling_{model}.json`` (``study.analysis.scaling``)."""

    phase: str  # "phase1_scaling"
    model: str
    dataset: str
    budgets: dict[str, AccuracyRow]  # phase 1's, so the fits can be drawn over the curve
    fits: CurveFits | None  # None with fewer than three budgets
    cliff_window: list[int] | None  # phase 1's half-gain window [from, to]
    emergence: dict[str, EmergenceBlock]  # by metric
    analysis: dict[str, Any]  # settings and the phase-1 fingerprint it was computed from
    provenance: Provenance


# ---------------------------------------------------------------- compare.py

class ComparedRun(TypedDict):
    label: str  # model (precision when set), for legends
    model: str
    dataset: str | None
    results_dir: str
    best_fit: str | None
    flat: bool  # the constant fit is best: breakpoint and saturation_level are None
    breakpoint: float | None
    saturation_level: float | None
    top: list[str]  # most emergent problems


class RunPair(TypedDict):
    a: str  # "label · dataset"
    b: str
    dataset: str | None
    spearman: float | None  # of default breakthroughness over the common problems
    n_common: int
    shared_top: list[str]  # problems in both runs' top lists
    top_k: int


class ComparisonSummary(TypedDict):
    """``results/comparison.json`` (compare.py)."""

    runs: list[ComparedRun]
    pairs: list[RunPair]  # every two runs on the same dataset
    figure: list[str]
    provenance: Provenance


# ---------------------------------------------------------------- depth: layer truncation

class DepthRow(AccuracyRow):
    """Accuracy of the model cut after ``layers`` decoder layers, at one budget."""

    layers: int


class DepthBudget(TypedDict):
    budget: int
    depths: dict[str, DepthRow]  # keyed by the number of layers kept
    critical_depth: int | None  # fewest layers within the best depth's CI (saturation rule)


class DepthRun(TypedDict):
    """Where one depth's records came from (``results/depth_run_{model}-L{n}.json``)."""

    layers: int
    summary_file: str
    reused: bool  # a finished run of this depth was reused
    wall_time_s: float
    generated_tokens: int | None
    tokens_per_s: float | None
    reused_rollouts_from: str | None  # phase-1 rollouts of the same depth, when taken


class DepthSummary(TypedDict):
    """``results/depth_summary_{model}.json``."""

    phase: str  # "depth"
    model: str
    dataset: str
    model_layers: int  # decoder layers of the whole model
    layers: list[int]  # depths run
    budgets: dict[str, DepthBudget]
    runs: dict[str, DepthRun]
    provenance: Provenance


# ---------------------------------------------------------------- the logit lens

class LensRow(TypedDict):
    """KL(final || layer) averaged over the first ``budget`` generated tokens of the sample."""

    budget: int
    n_rollouts: int
    n_tokens: int  # generated tokens averaged over (pooled across rollouts)
    kl: list[float]  # nats; entry l-1 is layer l, the last is the final layer (0)
    steepest_drop: list[int] | None  # [l-1, l] where KL falls most; None for a 1-layer model


class LensSummary(TypedDict):
    """``results/lens_summary_{model}.json``."""

    phase: str  # "lens"
    model: str
    dataset: str
    source: str  # the rollout log sampled
    model_layers: int
    n_rollouts: int  # sampled (seeded) from the log
    problem_ids: list[str]
    budgets: dict[str, LensRow]
    provenance: Provenance


# ---------------------------------------------------------------- phase 4: compute-matched

class ComputePoint(TypedDict):
    """One strategy at one setting: accuracy against mean tokens spent per problem."""

    strategy: str  # "truncation", a budget mode ("force-end"), "majority", "pass", "power"
    label: str  # the series it belongs to, e.g. "maj@k, B=256"
    budget: int  # the token budget of each chain
    k: int  # chains per problem (maj@k / pass@k: k; else 1)
    accuracy: float
    ci_low: float | None  # 95 %: Wilson (single chains), bootstrap over problems (the rest)
    ci_high: float | None
    tokens_per_problem: float  # mean tokens spent per problem (power: every proposed token)
    tokens_used: float  # mean answer length of one chain
    oracle: bool  # pass@k: needs to know which sample is right; left off the frontier
    pareto: bool  # on the Pareto frontier of the non-oracle points


class PowerBudgetRow(TypedDict):
    """Power sampling at one budget, over the compared problems."""

    budget: int
    chains: int
    samples: int  # chains per problem
    accuracy: float  # mean over chains
    ci_low: float | None
    ci_high: float | None
    tokens_per_chain: float  # every proposed token
    tokens_used: float  # length of the final chain
    proposals: int
    acceptance_rate: float | None
    cost_ratio: float | None  # tokens_per_chain / tokens_used


class ComputeSummary(TypedDict):
    """``results/phase4_compute_{model}.json``."""

    phase: str  # "phase4_compute"
    model: str
    dataset: str
    n_problems: int  # problems every strategy was scored on
    strategies: dict[str, str]  # strategy -> the results file(s) it was read from
    points: list[ComputePoint]
    budgets: dict[str, PowerBudgetRow]  # power sampling per budget
    power_settings: dict[str, Any]  # alpha, blocks, mcmc_steps
    provenance: Provenance
