"""Comparisons of paired measurements: the same problems at two budgets, accuracy along a
budget grid, and two raters labelling the same items.

* two budgets: :func:`paired_difference` (bootstrap CI of the mean difference plus an exact
  McNemar or a Wilcoxon test) and :func:`plateau_verdict`;
* a budget grid: gain per token (with a paired bootstrap), the steepest windows, the narrowest
  window holding half the gain, the saturation budget;
* two raters: the confusion table and Cohen's kappa.

Pure numbers in, numbers out. Resample counts, confidence levels, the plateau criterion and
the number of windows listed come from ``config.StatisticsConfig`` through the caller, so no
default for them is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from study.analysis.intervals import bootstrap_ci, percentile_interval, resample_indices

# Float slack for comparisons of accuracies built from sums of 0/1 values (e.g. 0.3 - 0.1 >= 0.2).
_EPS = 1e-12


# --------------------------------------------------------------------------- two budgets


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _mcnemar_exact_p(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar p-value: two-sided binomial test on the discordant pairs."""
    b_only = int(np.sum((a == 0) & (b == 1)))
    a_only = int(np.sum((a == 1) & (b == 0)))
    if b_only + a_only == 0:
        return 1.0, b_only, a_only
    from scipy import stats as sps  # imported on first use: slow to import

    return float(sps.binomtest(b_only, b_only + a_only, 0.5).pvalue), b_only, a_only


def _wilcoxon_p(diff: np.ndarray) -> float:
    """Wilcoxon signed-rank p-value, zero differences dropped; all-zero differences -> 1.0."""
    if not np.any(diff != 0):
        return 1.0
    from scipy import stats as sps

    return float(sps.wilcoxon(diff, zero_method="wilcox").pvalue)


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
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
    ci_low, ci_high = bootstrap_ci(diff, np.mean, n_resamples=n_resamples,
                                   confidence=confidence, seed=seed)
    result: dict[str, Any] = {"mean_diff": float(diff.mean()), "ci_low": ci_low, "ci_high": ci_high}
    if _is_binary(x) and _is_binary(y):
        p_value, b_only, a_only = _mcnemar_exact_p(x, y)
        result.update(p_value=p_value, test="mcnemar-exact", b_only=b_only, a_only=a_only)
    else:
        result.update(p_value=_wilcoxon_p(diff), test="wilcoxon")
    result["n"] = int(x.size)
    return result


def plateau_verdict(diff: dict, min_effect: float, alpha: float) -> tuple[bool, str]:
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
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
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
    indices = resample_indices(sizes.pop(), n_resamples, seed)
    boot_acc = {b: v[indices].mean(axis=1) for b, v in per_problem.items()}
    for row in rows:
        draws = (boot_acc[row["to"]] - boot_acc[row["from"]]) / (row["to"] - row["from"])
        row["ci_low"], row["ci_high"] = percentile_interval(draws, confidence)
    return rows


def _per_problem_values(values: np.ndarray | Sequence[Any]) -> np.ndarray:
    """1-D per-problem values; a 2-D problems x samples matrix becomes its row means."""
    data = np.asarray(values, dtype=float)
    if data.ndim == 2:
        return data.mean(axis=1)
    if data.ndim != 1:
        raise ValueError(f"expected 1-D or 2-D per-problem data, got {data.ndim}-D")
    return data


def steepest_windows(gains: list[dict], top: int) -> list[dict]:
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
