"""Pure statistics shared by the phase scripts (1, 1b, 2 and 3): the one import for callers.

This module holds the sampling statistics (pass@k, majority vote and maj@k, run-to-run
variability) and re-exports the rest, so ``from study import stats`` reaches every routine:

* ``study.analysis.intervals``: Wilson and bootstrap confidence intervals;
* ``study.analysis.comparisons``: paired budget comparisons, the plateau verdict, budget-curve
  statistics (gain per token, steepest and half-gain windows, saturation) and rater agreement.

Everything works on plain numbers, lists and numpy arrays: no file I/O, no model and no
grading. Answer equivalence, where needed (maj@k), is passed in as a callable. Randomised
routines take an explicit ``seed``, and the resample count and confidence level are required
arguments whose one source is ``config.StatisticsConfig``.

A *correct matrix* is a ``problems x samples`` array of booleans (or 0/1): row ``i`` holds the
graded samples of problem ``i``; column ``j`` is the ``j``-th sample run over all problems.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from study.analysis.comparisons import (
    bootstrap_gain_per_token,
    cohens_kappa,
    confusion_table,
    gain_per_token,
    half_gain_window,
    paired_difference,
    plateau_verdict,
    saturation_budget,
    steepest_windows,
)
from study.analysis.intervals import bootstrap_ci, proportion_summary, wilson_ci
from study.grading import majority
from study.schema import Record

__all__ = [
    "bootstrap_ci",
    "bootstrap_gain_per_token",
    "cohens_kappa",
    "confusion_table",
    "gain_per_token",
    "half_gain_window",
    "maj_at_k",
    "majority_vote",
    "mean_std_over_runs",
    "paired_difference",
    "pass_at_k",
    "per_sample_run_accuracy",
    "plateau_verdict",
    "proportion_summary",
    "saturation_budget",
    "steepest_windows",
    "success_rate_histogram",
    "wilson_ci",
]


# --------------------------------------------------------------------------- pass@k / maj@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate ``1 - C(n-c, k) / C(n, k)`` for ``c`` correct out of ``n``.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which never forms the huge binomials.
    """
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0  # every k-subset contains a correct sample
    factors = 1.0 - k / np.arange(n - c + 1, n + 1, dtype=float)
    return float(1.0 - np.prod(factors))


def majority_vote(
    answers: Sequence[str | None], same: Callable[[str, str], bool] | None = None
) -> str | None:
    """Most frequent non-None answer; ``None`` when every answer is None (or the list is empty).

    Answers are grouped by exact string, or by ``same(representative, answer)`` when given
    (the first answer of a group is its representative). Ties go to the group whose first
    member appears earliest in ``answers``, so the result is deterministic.
    """
    representatives: list[str] = []
    counts: list[int] = []
    for answer in answers:
        if answer is None:
            continue
        for i, rep in enumerate(representatives):
            if answer == rep or (same is not None and same(rep, answer)):
                counts[i] += 1
                break
        else:
            representatives.append(answer)
            counts.append(1)
    if not counts:
        return None
    # max() returns the first maximal index, i.e. the earliest-seen group on ties.
    best = max(range(len(counts)), key=counts.__getitem__)
    return representatives[best]


def maj_at_k(
    answers_matrix: Sequence[Sequence[str | None]],
    gold: Sequence[str],
    k: int,
    equivalent: Callable[[str, str], bool],
    group_equivalent: bool = True,
    seed: int = 0,
) -> float:
    """maj@k accuracy: per problem, the majority vote averaged over every k-subset of its
    samples (``study.grading.majority``: exact for few subsets, seeded sampling otherwise; ties
    split evenly among the tied answers), then the mean over problems. maj@1 equals pass@1.

    A problem counts as solved in a subset when its majority answer satisfies
    ``equivalent(pred, gold)``; a subset with no extracted answer counts as wrong. With
    ``group_equivalent`` (default) votes are pooled over answers that ``equivalent`` deems the
    same (so "0.5" and "1/2" vote together); otherwise only identical strings pool.
    """
    if len(answers_matrix) != len(gold):
        raise ValueError(f"{len(answers_matrix)} answer rows but {len(gold)} gold answers")
    if not answers_matrix:
        return float("nan")
    per_problem = majority.maj_at_k_per_problem(answers_matrix, gold, k, equivalent,
                                                group_equivalent, seed)
    return float(per_problem.mean())


# --------------------------------------------------------------------------- run variability


def _as_correct_matrix(correct_matrix: Sequence[Sequence[bool]] | np.ndarray) -> np.ndarray:
    """Validate and convert to a 2-D float array (problems x samples)."""
    matrix = np.asarray(correct_matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"correct_matrix must be 2-D (problems x samples), got {matrix.ndim}-D")
    return matrix


def per_sample_run_accuracy(correct_matrix: Sequence[Sequence[bool]] | np.ndarray) -> np.ndarray:
    """Accuracy of each sample run (column means of the correct matrix)."""
    return _as_correct_matrix(correct_matrix).mean(axis=0)


def mean_std_over_runs(
    correct_matrix: Sequence[Sequence[bool]] | np.ndarray,
) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the per-run accuracies.

    This is the "Avg Success / Std Dev" pair of phase 1b. With a single run the spread is
    undefined and the std is NaN.
    """
    runs = per_sample_run_accuracy(correct_matrix)
    if runs.size == 0:
        return float("nan"), float("nan")
    std = float(np.std(runs, ddof=1)) if runs.size > 1 else float("nan")
    return float(np.mean(runs)), std


def success_rate_histogram(
    correct_matrix: Sequence[Sequence[bool]] | np.ndarray,
) -> dict[str, int]:
    """How many problems were solved 0/k, 1/k, ..., k/k times; keys like ``"3/5"``, in order."""
    matrix = _as_correct_matrix(correct_matrix)
    k = matrix.shape[1]
    counts = np.bincount(matrix.sum(axis=1).astype(int), minlength=k + 1)
    return {f"{i}/{k}": int(counts[i]) for i in range(k + 1)}


def budget_table_rows(records: list[Record], confidence: float) -> dict:
    """Per-budget numbers shared by phases 1 and 3: accuracy (Wilson CI), tokens, cut rate."""
    n = len(records)
    n_correct = sum(r["correct"] for r in records)
    low, high = wilson_ci(n_correct, n, confidence)
    return {
        "n": n, "n_correct": n_correct, "accuracy": n_correct / n if n else 0.0,
        "ci_low": low, "ci_high": high,
        "accuracy_strict": sum(r["correct_strict"] for r in records) / n if n else 0.0,
        "avg_tokens": sum(r["tokens_used"] for r in records) / n if n else 0.0,
        "hit_budget_rate": sum(r["hit_budget"] for r in records) / n if n else 0.0,
    }
