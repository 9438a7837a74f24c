"""The one typed schema of the results store: records and every summary.

Record files and summaries are plain JSON (the spec's schema); these TypedDicts say what each
holds, and every reader (console tables, the report, the figures, later phases) goes through
them instead of guessing keys. They describe the files as the phases write them today: a key
that is sometimes absent sits in a ``total=False`` part, and numbers that can be undefined (a
std of one run, an accuracy over no solutions) are ``None``, never NaN (``tables.finite``).

Per-budget blocks are keyed by the budget as a string (JSON object keys) and carry it again as
an int under ``"budget"``; ``tables.by_budget`` lists them in budget order. Keys named ``from``
(a Python keyword) force the functional TypedDict syntax for the step and window types.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Record(TypedDict):
    """One graded generation at one budget (a record file is a JSON list of these)."""

    problem_id: str  # stable id, e.g. "arith-s1234-0007"
    question: str
    ground_truth: str  # as the dataset gives it
    generated: str  # text decoded from exactly the tokens within the budget
    predicted: str | None  # flexible extraction (used for `correct`)
    predicted_strict: str | None  # strict extraction ("#### N", "answer is N", \boxed{})
    correct: bool
    correct_strict: bool
    tokens_used: int  # generated tokens within the budget (EOS counted)
    budget: int
    hit_budget: bool  # the budget cut the generation (no EOS within it)
    sample: int  # sample index (phase 1b: 0..k-1; else 0)
    # Reasoning models (study.strategies.reasoning); null for a model without thinking markers.
    thinking_tokens: int | None  # tokens before the end-of-thinking marker; all when it never came
    closed_thinking: bool | None  # the end-of-thinking marker came within the budget
    answer_present: bool | None  # an answer could be extracted from the graded text


RECORD_KEYS: tuple[str, ...] = tuple(Record.__annotations__)
# Keys added after record files existed: a file without them reads back with null there.
THINKING_KEYS: tuple[str, ...] = ("thinking_tokens", "closed_thinking", "answer_present")


class ForcedRecord(Record, total=False):
    """A record of a forced run (``--budget-mode force-end|force-continue``,
    study.strategies.forcing); truncation records have none of these keys."""

    budget_mode: str  # "force-end" or "force-continue"
    forced_answer: str  # text generated after the cue (what is graded)
    forced_continues: int  # continue strings inserted within the budget (force-end: 0)
    truncated_correct: bool  # the same tokens read the truncate way (no cue) were correct
    tokens_spent: int  # thinking (EOS dropped) + cue + answer tokens
    p_gold: float  # normalised probability of gold over the problem's solution set
    entropy_bits: float  # entropy of that distribution
    gold_rank: int  # 1 = gold is the most probable answer of the set


class ForcingRow(TypedDict):
    """Means over the records of one budget of a forced run (``continuous.budget_metrics``)."""

    budget: int
    n: int  # records with metrics
    p_gold: float | None
    p_gold_ci_low: float | None  # bootstrap over records
    p_gold_ci_high: float | None
    entropy_bits: float | None
    gold_rank: float | None
    truncate_accuracy: float  # the same rollouts read the truncate way
    forced_continues: float
    tokens_spent: float


class ForcingBlock(TypedDict):
    """``"forcing"`` in the summary of a forced phase (1, 1b or 3)."""

    budget_mode: str
    cue: str
    answer_tokens: int
    budgets: dict[str, ForcingRow]


class Forced(TypedDict, total=False):
    """What a forced run adds to the summaries of phases 1, 1b and 3."""

    forcing: ForcingBlock


class ThinkingRow(TypedDict):
    """The rollouts of one budget of a thinking model (``analysis.thinking.budget_rows``)."""

    budget: int
    n: int  # records (problems x samples)
    closed_thinking_rate: float  # share whose end-of-thinking marker came within the budget
    thinking_tokens: float  # mean tokens before the marker (all tokens when it never came)
    answer_present_rate: float  # share with an answer that could be extracted


class CardSamplingBlock(TypedDict):
    """The sampling the model's card recommends (``engine.settings.CardSampling``)."""

    temperature: float
    top_p: float
    top_k: int | None
    card: str


class ThinkingBlock(TypedDict):
    """``"thinking"`` in the summary of a phase run on a model with thinking markers."""

    markers: list[str]  # [start, end]
    graded: str  # truncation's graded text: "after-end-marker" or "whole-text"
    card_sampling: CardSamplingBlock | None  # the alias's card; None for other models
    budgets: dict[str, ThinkingRow]


class Thinking(TypedDict, total=False):
    """What a thinking model adds to the summaries of phases 1, 1b and 3 (absent otherwise)."""

    thinking: ThinkingBlock


# ---------------------------------------------------------------- provenance (every summary)

class Provenance(TypedDict, total=False):
    """``store.provenance``: the base block, plus what each phase adds (generation stats for the
    generating phases, ``rules`` for the structure analysis). Only read, never required."""

    schema_version: int
    config: dict[str, Any]  # the resolved config of the run
    seed: int | None
    packages: dict[str, str | None]
    python: str
    platform: str
    git: str | None  # commit, "-dirty" appended when the tree had changes
    device: str | None
    wall_time_s: float
    written_at: str
    record_files: dict[str, str]  # file name -> sha256
    # generating phases (1, 1b, 3)
    fingerprint: str
    rollout_config: dict[str, Any]
    reused_rollouts_from: str | None
    rollouts_total: int
    rollouts_generated: int
    rollouts_resumed_or_reused: int
    generated_tokens: int
    generation_s: float
    tokens_per_s: float | None
    batch_size: int
    rules: str  # phase 3 structure
    shards: ShardProvenance  # a phase merged from shards (study.run.sharding)


class ShardProvenance(TypedDict):
    """How a merged phase was split: ``count`` shards, made by jobs of ``world_size`` processes."""

    count: int
    world_size: list[int]  # accelerate processes of the job that made each shard (1: none)
    files: dict[str, str]  # shard file name -> sha256


class ShardFile(TypedDict):
    """One shard of a generating phase (``results/shards/{summary}.shard{i}of{n}.json``):
    a header naming the shard and the configuration, then its graded records."""

    kind: str  # "shard"
    shard: str  # "i/n"
    index: int
    count: int
    fingerprint: str  # the phase's rollout fingerprint (the summary's), not the shard's own
    rollout_config: dict[str, Any]  # what the fingerprint covers (to name what changed)
    budgets: list[int]
    strategy: str
    world_size: int
    problem_ids: list[str]  # this shard's problems, in phase order
    wall_time_s: float
    tokens_spent: dict[str, int]
    stats: dict[str, Any]  # generation stats, as the provenance block reports them
    reused_rollouts_from: str | None
    records: dict[str, list[Record]]  # budget -> this shard's records, (problem, sample) order


# ---------------------------------------------------------------- phases 1 and 3: accuracy

class AccuracyRow(TypedDict):
    """Accuracy at one budget over n records (phase 1, and phase 3's fine grid)."""

    budget: int
    n: int
    n_correct: int
    accuracy: float
    ci_low: float  # Wilson 95 %
    ci_high: float
    accuracy_strict: float
    avg_tokens: float
    hit_budget_rate: float  # share cut by the budget


class Phase1Summary(Forced, Thinking):  # Forced: budget forcing; Thinking: markers
    """``results/phase1_combined_{model}.json``."""

    phase: str  # "phase1"
    model: str  # as given (alias, hub id or folder)
    dataset: str
    budgets: dict[str, AccuracyRow]
    saturation_budget: int | None  # smallest budget within the best budget's CI
    provenance: Provenance


# ---------------------------------------------------------------- phase 1b

class StochasticRow(TypedDict):
    """k samples per problem at one budget."""

    budget: int
    n_problems: int
    k: int
    mean_accuracy: float  # mean over the k sample runs
    std_accuracy: float | None  # spread over the k runs (None for k = 1)
    run_accuracies: list[float]  # accuracy of each sample run
    ci_low: float | None  # bootstrap over problems
    ci_high: float | None
    success_histogram: dict[str, int]  # "j/k" -> problems solved j times, in order
    pass_at_k: dict[str, float]  # "j" -> pass@j, j = 1..k
    pass_at_k_ci: dict[str, list[float | None]]
    maj_at_k: dict[str, float]
    maj_at_k_ci: dict[str, list[float | None]]
    accuracy_strict: float
    avg_tokens: float
    hit_budget_rate: float


_ComparisonBase = TypedDict("_ComparisonBase", {
    "from": int, "to": int,
    "mean_diff": float,  # mean per-problem success, high budget minus low
    "ci_low": float | None, "ci_high": float | None,  # paired bootstrap
    "p_value": float, "test": str,  # "mcnemar-exact" or "wilcoxon"
    "n": int, "is_plateau": bool, "verdict": str,
})


class BudgetComparison(_ComparisonBase, total=False):
    """Consecutive budgets compared problem by problem (discordant counts: McNemar only)."""

    b_only: int
    a_only: int


class PlateauSettings(TypedDict):
    bootstrap_resamples: int
    min_effect: float
    alpha: float
    confidence: float
    seed: int
    maj_at_k: str  # how maj@k was estimated (plateau.MAJ_METHOD)


class Phase1bSummary(Forced, Thinking):  # Forced: budget forcing; Thinking: markers
    """``results/phase1b_summary_{model}.json``."""

    phase: str  # "phase1b"
    model: str
    dataset: str
    samples: int  # k
    budgets: dict[str, StochasticRow]
    comparisons: list[BudgetComparison]
    criterion: str
    verdict: str  # one line: "PLATEAU GENUINE over ..." / "PLATEAU NOT CONFIRMED ..."
    analysis: PlateauSettings
    provenance: Provenance


# ---------------------------------------------------------------- phase 2

class Share(TypedDict):
    """Counts of labels and their percent of ``n`` (None when n is 0)."""

    n: int
    counts: dict[str, int]
    pct: dict[str, float | None]  # percent, one decimal


class ErrorTypeBlock(Share):
    by_annotator: dict[str, Share]  # "human" / "auto"


class Unrecoverable(TypedDict):
    n: int
    count: int  # rows labelled recoverable=no
    pct: float | None


class UnrecoverableSummary(Unrecoverable):
    by_budget: dict[str, Unrecoverable]
    by_error_type: dict[str, Unrecoverable]


class PersistentProblem(TypedDict):
    problem_id: str
    types: dict[str, str]  # budget -> error type
    same: bool


class PersistentErrors(TypedDict):
    n_problems: int  # annotated at more than one budget
    same_type: int
    changed_type: int
    same_type_pct: float | None
    wrong_at_several_budgets_in_results: int
    problems: list[PersistentProblem]


class EvolutionPair(TypedDict):
    from_budget: int
    to_budget: int
    matrix: dict[str, dict[str, int]]  # type at from_budget -> state at to_budget


class Evolution(TypedDict):
    states: list[str]  # the error types, "fixed", "unsampled"
    pairs: list[EvolutionPair]
    total: dict[str, dict[str, int]]


class _AgreementBase(TypedDict):
    n: int  # human rows
    kappa: float | None
    observed_agreement: float | None
    confusion: dict[str, dict[str, int]]  # suggestion -> human label
    note: str


class SuggestionAgreement(_AgreementBase, total=False):
    n_with_suggestion: int  # only when there are human rows


class Phase2Summary(TypedDict):
    """``results/phase2_error_analysis_{model}.json`` (see annotations/SCHEMA.md)."""

    phase: str  # "phase2"
    model: str  # the model tag
    budgets: list[int]  # annotated budgets
    label_sources: dict[str, int]  # annotator -> rows
    errors_in_results: dict[str, int]  # wrong answers per budget in phase 1
    error_types: dict[str, ErrorTypeBlock]
    recoverable: dict[str, Share]  # per budget, and "all"
    unrecoverable: UnrecoverableSummary
    persistent_errors: PersistentErrors
    evolution: Evolution
    suggestion_agreement: SuggestionAgreement
    files: dict[str, str]  # budget -> TSV path
    provenance: Provenance


# ---------------------------------------------------------------- phase 3: the cliff

_GainBase = TypedDict("_GainBase", {"from": int, "to": int, "gain": float,
                                    "gain_per_token": float})


class GainStep(_GainBase, total=False):
    """Accuracy gain between consecutive grid budgets; the CI (on the gain per token) is absent
    when there was nothing to resample."""

    ci_low: float
    ci_high: float


class BootstrapSettings(TypedDict):
    resamples: int
    seed: int
    unit: str  # "problem"
    paired_across_budgets: bool


class CliffSummary(Forced, Thinking):  # Forced: budget forcing; Thinking: markers
    """``results/phase3_cliff_summary_{model}.json``."""

    phase: str  # "phase3"
    model: str
    dataset: str
    budgets: dict[str, AccuracyRow]
    gains: list[GainStep]
    steepest: list[GainStep]  # largest gain per token first
    total_gain: float
    half_gain_window: list[int] | None  # [from, to]; None when accuracy does not rise
    half_gain_window_gain: float | None
    bootstrap: BootstrapSettings
    provenance: Provenance
