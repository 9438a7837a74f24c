"""Confidence intervals: Wilson for one proportion, the percentile bootstrap over problems.

Pure numbers in, numbers out (no I/O, no model). The confidence level, resample count and seed
are always passed in by the caller: their one source is ``config.StatisticsConfig`` (and the
study seed), so no default is written here. Levels are two-sided (0.95 means the 2.5 % and
97.5 % quantiles). Bootstrap resampling is over problems (the first axis), because problems are
the independent units; samples of one problem are correlated and travel together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _z_value(confidence: float) -> float:
    """Two-sided standard-normal quantile for ``confidence`` (0.95 -> 1.959...)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    from scipy import stats as sps  # imported on first use: slow to import

    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def wilson_ci(successes: int, n: int, confidence: float) -> tuple[float, float]:
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


def proportion_summary(correct: Sequence[bool] | np.ndarray, confidence: float) -> dict:
    """``{n, n_correct, accuracy, ci_low, ci_high}`` for a flat list of graded outcomes.

    Accuracy of an empty list is NaN (there is no estimate); its CI is Wilson's ``(0, 1)``.
    """
    flags = np.asarray(correct, dtype=bool).ravel()
    n, k = int(flags.size), int(flags.sum())
    low, high = wilson_ci(k, n, confidence)
    accuracy = k / n if n else float("nan")
    return {"n": n, "n_correct": k, "accuracy": accuracy, "ci_low": low, "ci_high": high}


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``n_resamples x n`` row indices drawn with replacement (one bootstrap sample per row).

    Every randomised routine draws from its own ``default_rng(seed)``, so results are
    identical run to run and do not depend on what else ran before.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n))


def percentile_interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """Equal-tailed percentile interval of bootstrap draws (NaN draws are ignored)."""
    _z_value(confidence)  # validates the level
    alpha = 1.0 - confidence
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def degenerate_note(draws: np.ndarray, show: Callable[[float], str],
                    what: str = "the statistic") -> str | None:
    """Why bootstrap draws give no interval, or None when they spread.

    A percentile interval of draws that are all one value prints as [x, x] and reads as a tight
    estimate, yet it only says that resampling the problems never moved the statistic (e.g. a
    breakpoint put at the first grid point by every flat resample). A NaN draw is a resample
    that does not identify ``what``; ``show`` formats the one value for the note.
    """
    draws = np.asarray(draws, dtype=float)
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return f"no interval: no resample identifies {what}"
    if np.any(finite != finite[0]):
        return None
    value = show(float(finite[0]))
    if finite.size == draws.size:
        return f"no interval: no spread, all {draws.size} resamples give {value}"
    return (f"no interval: no spread, the {finite.size} of {draws.size} resamples that "
            f"identify {what} all give {value}")


def bootstrap_ci(
    values: Sequence[Any] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
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
    indices = resample_indices(n, n_resamples, seed)
    draws = np.fromiter((statistic(data[row]) for row in indices), dtype=float, count=len(indices))
    return percentile_interval(draws, confidence)
