"""Pure statistics shared by the phase scripts (1, 1b, 2 and 3).

Everything here works on plain numbers, lists and numpy arrays: no file I/O, no model and no
grading. Answer equivalence, where needed (maj@k), is passed in as a callable. Every randomised
routine takes an explicit ``seed`` and draws from its own ``numpy.random.default_rng(seed)``, so
results are identical run to run.

Conventions
-----------
* A *correct matrix* is a ``problems x samples`` array of booleans (or 0/1): row ``i`` holds the
  graded samples of problem ``i``; column ``j`` is the ``j``-th sample run over all problems.
* Bootstrap resampling is always over problems (the first axis), because problems are the
  independent units; samples of one problem are correlated and travel together.
* Confidence levels are two-sided (0.95 means the 2.5 % and 97.5 % quantiles).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from scipy import stats as sps

# Float slack for comparisons of accuracies built from sums of 0/1 values (e.g. 0.3 - 0.1 >= 0.2).
_EPS = 1e-12


# --------------------------------------------------------------------------- proportions


def _z_value(confidence: float) -> float:
    """Two-sided standard-normal quantile for ``confidence`` (0.95 -> 1.959...)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (no continuity correction).

    Matches ``scipy.stats.binomtest(successes, n).proportion_ci(method='wilson')``.
    With ``n == 0`` nothing is known about the proportion, so the whole range ``(0.0, 1.0)``
    is returned (chosen over NaN so that summaries stay JSON- and plot-friendly).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    z = _z_value(confidence)
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # Exact 0 and 1 at the edges (the formula gives them up to rounding only).
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


def proportion_summary(correct: Sequence[bool] | np.ndarray, confidence: float = 0.95) -> dict:
    """``{n, n_correct, accuracy, ci_low, ci_high}`` for a flat list of graded outcomes.

    Accuracy of an empty list is NaN (there is no estimate); its CI is Wilson's ``(0, 1)``.
    """
    flags = np.asarray(correct, dtype=bool).ravel()
    n, k = int(flags.size), int(flags.sum())
    low, high = wilson_ci(k, n, confidence)
    accuracy = k / n if n else float("nan")
    return {"n": n, "n_correct": k, "accuracy": accuracy, "ci_low": low, "ci_high": high}


# --------------------------------------------------------------------------- bootstrap


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``n_resamples x n`` row indices drawn with replacement (one bootstrap sample per row)."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n))


def _percentile_interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """Equal-tailed percentile interval of bootstrap draws (NaN draws are ignored)."""
    _z_value(confidence)  # validates the level
    alpha = 1.0 - confidence
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[Any] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(values)``, resampling the first axis.

    ``values`` is either 1-D (one value per problem) or 2-D (``problems x samples``): in the
    2-D case whole problem rows are resampled and ``statistic`` receives the resampled matrix
    (``np.mean`` then gives the pooled accuracy). Empty input gives ``(nan, nan)``.
    """
    data = np.asarray(values, dtype=float)
    if data.ndim == 0:
        raise ValueError("values must be at least 1-D")
    n = data.shape[0]
    if n == 0:
        return float("nan"), float("nan")
    indices = _resample_indices(n, n_resamples, seed)
    draws = np.fromiter((statistic(data[row]) for row in indices), dtype=float, count=len(indices))
    return _percentile_interval(draws, confidence)


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


def _as_correct_matrix(correct_matrix: Sequence[Sequence[bool]] | np.ndarray) -> np.ndarray:
    """Validate and convert to a 2-D float array (problems x samples)."""
    matrix = np.asarray(correct_matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"correct_matrix must be 2-D (problems x samples), got {matrix.ndim}-D")
    return matrix


def mean_pass_at_k(correct_matrix: Sequence[Sequence[bool]] | np.ndarray, k: int) -> float:
    """Mean over problems of :func:`pass_at_k` (``n`` = number of samples per problem)."""
    matrix = _as_correct_matrix(correct_matrix)
    if matrix.shape[0] == 0:
        return float("nan")
    n = matrix.shape[1]
    counts = matrix.sum(axis=1).astype(int)
    return float(np.mean([pass_at_k(n, int(c), k) for c in counts]))


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
) -> float:
    """maj@k accuracy: majority vote over the first ``k`` samples of each problem.

    A problem counts as solved when its majority answer satisfies ``equivalent(pred, gold)``;
    a problem with no extracted answer among its first ``k`` samples counts as wrong. With
    ``group_equivalent`` (default) votes are pooled over answers that ``equivalent`` deems the
    same (so "0.5" and "1/2" vote together); otherwise only identical strings pool.
    """
    if len(answers_matrix) != len(gold):
        raise ValueError(f"{len(answers_matrix)} answer rows but {len(gold)} gold answers")
    if not answers_matrix:
        return float("nan")
    same = equivalent if group_equivalent else None
    solved = 0
    for row, truth in zip(answers_matrix, gold, strict=True):
        if not 1 <= k <= len(row):
            raise ValueError(f"k={k} out of range for a problem with {len(row)} samples")
        vote = majority_vote(row[:k], same)
        solved += vote is not None and bool(equivalent(vote, truth))
    return solved / len(gold)


# --------------------------------------------------------------------------- run variability


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


def per_problem_success(correct_matrix: Sequence[Sequence[bool]] | np.ndarray) -> np.ndarray:
    """Fraction of samples each problem got right (row means of the correct matrix)."""
    return _as_correct_matrix(correct_matrix).mean(axis=1)


def success_rate_histogram(
    correct_matrix: Sequence[Sequence[bool]] | np.ndarray,
) -> dict[str, int]:
    """How many problems were solved 0/k, 1/k, ..., k/k times; keys like ``"3/5"``, in order."""
    matrix = _as_correct_matrix(correct_matrix)
    k = matrix.shape[1]
    counts = np.bincount(matrix.sum(axis=1).astype(int), minlength=k + 1)
    return {f"{i}/{k}": int(counts[i]) for i in range(k + 1)}


# --------------------------------------------------------------------------- paired comparison


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _mcnemar_exact_p(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar p-value: two-sided binomial test on the discordant pairs."""
    b_only = int(np.sum((a == 0) & (b == 1)))
    a_only = int(np.sum((a == 1) & (b == 0)))
    if b_only + a_only == 0:
        return 1.0, b_only, a_only
    return float(sps.binomtest(b_only, b_only + a_only, 0.5).pvalue), b_only, a_only


def _wilcoxon_p(diff: np.ndarray) -> float:
    """Wilcoxon signed-rank p-value, zero differences dropped; all-zero differences -> 1.0."""
    if not np.any(diff != 0):
        return 1.0
    return float(sps.wilcoxon(diff, zero_method="wilcox").pvalue)


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Compare two per-problem arrays on the same problems (e.g. budget B1 vs B2).

    Returns ``mean_diff`` (mean of ``b - a``), its percentile-bootstrap CI (``ci_low``,
    ``ci_high``; problems resampled), a paired two-sided ``p_value`` with the ``test`` used,
    and ``n``. When both arrays are 0/1 the test is the exact McNemar test (binomial test on
    the discordant pairs; ``b_only``/``a_only`` count them); otherwise the Wilcoxon
    signed-rank test with zero differences dropped (all-zero differences give p = 1.0).
    """
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired arrays differ in length: {x.size} vs {y.size}")
    if x.size == 0:
        raise ValueError("paired_difference needs at least one problem")
    diff = y - x
    ci_low, ci_high = bootstrap_ci(diff, np.mean, n_resamples, confidence, seed)
    result: dict[str, Any] = {"mean_diff": float(diff.mean()), "ci_low": ci_low, "ci_high": ci_high}
    if _is_binary(x) and _is_binary(y):
        p_value, b_only, a_only = _mcnemar_exact_p(x, y)
        result.update(p_value=p_value, test="mcnemar-exact", b_only=b_only, a_only=a_only)
    else:
        result.update(p_value=_wilcoxon_p(diff), test="wilcoxon")
    result["n"] = int(x.size)
    return result


def plateau_verdict(diff: dict, min_effect: float = 0.02, alpha: float = 0.05) -> tuple[bool, str]:
    """Decide whether the step between two budgets is a genuine plateau.

    ``diff`` is a :func:`paired_difference` result. The step is a plateau when either
    (a) the whole CI of the mean difference lies inside ``[-min_effect, +min_effect]``
        (equivalence: any real change is smaller than ``min_effect``), or
    (b) the paired test is not significant (``p >= alpha``) and ``|mean_diff| < min_effect``
        (no detectable change and the observed one is practically small).
    Missing/NaN numbers never satisfy a criterion. Returns ``(is_plateau, reason)``.
    """
    keys = ("mean_diff", "ci_low", "ci_high", "p_value")
    mean_diff, low, high, p = (float(diff.get(key, float("nan"))) for key in keys)
    numbers = (
        f"mean diff {mean_diff:+.4f}, CI [{low:+.4f}, {high:+.4f}], "
        f"p={p:.4g} ({diff.get('test', '?')}), min effect {min_effect}, alpha {alpha}"
    )
    if -min_effect <= low and high <= min_effect:
        return True, f"plateau: CI within +/-{min_effect}; {numbers}"
    if p >= alpha and abs(mean_diff) < min_effect:
        return True, f"plateau: p >= {alpha} and |mean diff| < {min_effect}; {numbers}"
    return False, f"not a plateau: neither criterion holds; {numbers}"


# --------------------------------------------------------------------------- budget curves


def gain_per_token(acc_by_budget: dict[int, float]) -> list[dict]:
    """Accuracy gain between consecutive budgets (ascending) and that gain per extra token."""
    budgets = sorted(acc_by_budget)
    rows = []
    for lo, hi in pairwise(budgets):
        gain = float(acc_by_budget[hi] - acc_by_budget[lo])
        rows.append({"from": lo, "to": hi, "gain": gain, "gain_per_token": gain / (hi - lo)})
    return rows


def bootstrap_gain_per_token(
    correct_by_budget: dict[int, np.ndarray],
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[dict]:
    """:func:`gain_per_token` with percentile-bootstrap CIs (``ci_low``/``ci_high`` on the
    gain per token).

    Each array holds the same problems in the same order: 1-D per-problem correctness, or 2-D
    ``problems x samples`` (reduced to per-problem success rates). Resampling is paired: one
    set of resampled problem indices is shared by all budgets, so budget-to-budget correlation
    is kept.
    """
    budgets = sorted(correct_by_budget)
    per_problem = {b: _per_problem_values(correct_by_budget[b]) for b in budgets}
    sizes = {v.size for v in per_problem.values()}
    if len(sizes) > 1:
        raise ValueError(f"budgets hold different numbers of problems: {sorted(sizes)}")
    rows = gain_per_token({b: float(np.mean(v)) for b, v in per_problem.items()})
    if not rows or not sizes or 0 in sizes:
        return rows
    indices = _resample_indices(sizes.pop(), n_resamples, seed)
    boot_acc = {b: v[indices].mean(axis=1) for b, v in per_problem.items()}
    for row in rows:
        draws = (boot_acc[row["to"]] - boot_acc[row["from"]]) / (row["to"] - row["from"])
        row["ci_low"], row["ci_high"] = _percentile_interval(draws, confidence)
    return rows


def _per_problem_values(values: np.ndarray | Sequence[Any]) -> np.ndarray:
    """1-D per-problem values; a 2-D problems x samples matrix becomes its row means."""
    data = np.asarray(values, dtype=float)
    if data.ndim == 2:
        return data.mean(axis=1)
    if data.ndim != 1:
        raise ValueError(f"expected 1-D or 2-D per-problem data, got {data.ndim}-D")
    return data


def steepest_windows(gains: list[dict], top: int = 3) -> list[dict]:
    """The ``top`` windows with the largest gain per token (ties: earlier window first)."""
    ranked = sorted(gains, key=lambda row: (-row["gain_per_token"], row["from"]))
    return [dict(row) for row in ranked[:top]]


def half_gain_window(acc_by_budget: dict[int, float]) -> tuple[int, int] | None:
    """Narrowest span of grid budgets ``[b_i, b_j]`` that holds at least half the total gain.

    Total gain is ``acc[max budget] - acc[min budget]``; the window qualifies when
    ``acc[b_j] - acc[b_i] >= total / 2``. Narrowest means fewest tokens ``b_j - b_i``; ties
    go to the larger gain, then the earlier window. ``None`` when the total gain is <= 0.
    """
    budgets = sorted(acc_by_budget)
    if len(budgets) < 2:
        return None
    total = acc_by_budget[budgets[-1]] - acc_by_budget[budgets[0]]
    if total <= 0:
        return None
    best: tuple[float, float, int] | None = None  # (width, -gain, start) -> smaller is better
    window: tuple[int, int] | None = None
    for i, lo in enumerate(budgets):
        for hi in budgets[i + 1 :]:
            gain = acc_by_budget[hi] - acc_by_budget[lo]
            key = (hi - lo, -round(gain, 12), lo)  # rounding: float noise must not break ties
            if gain >= total / 2.0 - _EPS and (best is None or key < best):
                best, window = key, (lo, hi)
    return window


def saturation_budget(acc_by_budget: dict[int, tuple[float, float, float]]) -> int | None:
    """Smallest budget whose accuracy is statistically indistinguishable from the best.

    Values are ``(accuracy, ci_low, ci_high)``. The best budget is the one with the highest
    accuracy (ties: the smallest such budget); the result is the smallest budget ``b`` with
    ``acc_b >= ci_low`` of the best, i.e. whose point estimate lies inside the best budget's
    CI. ``None`` for an empty table.
    """
    if not acc_by_budget:
        return None
    budgets = sorted(acc_by_budget)
    best = max(budgets, key=lambda b: acc_by_budget[b][0])  # first maximum = smallest budget
    floor = acc_by_budget[best][1]
    return next(b for b in budgets if acc_by_budget[b][0] >= floor - _EPS)


# --------------------------------------------------------------------------- agreement


def confusion_table(labels_a: Sequence[str], labels_b: Sequence[str]) -> dict[str, dict[str, int]]:
    """Counts ``table[a_label][b_label]`` over paired labels; every label seen by either rater
    appears as both a row and a column (sorted), zeros included."""
    if len(labels_a) != len(labels_b):
        raise ValueError(f"label lists differ in length: {len(labels_a)} vs {len(labels_b)}")
    categories = sorted(set(labels_a) | set(labels_b))
    table = {row: {col: 0 for col in categories} for row in categories}
    for a, b in zip(labels_a, labels_b, strict=True):
        table[a][b] += 1
    return table


def cohens_kappa(labels_a: Sequence[str], labels_b: Sequence[str]) -> float:
    """Cohen's kappa ``(po - pe) / (1 - pe)`` between two raters over the same items.

    Edge cases: no items -> NaN. When the expected agreement ``pe`` is 1 (both raters used one
    and the same label throughout) kappa is 0/0; we return 1.0 if observed agreement is 1, else
    0.0.
    """
    table = confusion_table(labels_a, labels_b)
    n = len(labels_a)
    if n == 0:
        return float("nan")
    counts = np.array([[table[r][c] for c in table] for r in table], dtype=float)
    observed = float(np.trace(counts)) / n
    expected = float(np.sum(counts.sum(axis=1) * counts.sum(axis=0))) / (n * n)
    if expected >= 1.0 - _EPS:
        return 1.0 if observed >= 1.0 - _EPS else 0.0
    return (observed - expected) / (1.0 - expected)
