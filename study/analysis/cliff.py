"""Phase-3 analysis: where on a fine budget grid does accuracy climb fastest?

Pure functions over records: accuracy per budget, gain per token between neighbouring budgets
with paired bootstrap CIs over problems, the steepest steps, the narrowest window holding half of
the total gain, and whether any step is a cliff at all (``has_cliff``).
"""

from __future__ import annotations

import numpy as np

from config import StatisticsConfig
from study.analysis import stats
from study.schema import Record


def correct_matrix(records: list[Record]) -> np.ndarray:
    """problems x samples 0/1 matrix, problems in the order the records list them."""
    rows: dict[str, dict[int, bool]] = {}
    for record in records:
        rows.setdefault(record["problem_id"], {})[record["sample"]] = bool(record["correct"])
    return np.array([[row[s] for s in sorted(row)] for row in rows.values()], dtype=float)


def has_cliff(summary: dict) -> bool:
    """Whether some step's gain per token has a paired CI lying above 0. Without one, every
    step's rise is within what resampling the problems gives: there is no cliff to point at,
    however the steepest step and the half-gain window fall."""
    return any((g.get("ci_low") or 0.0) > 0 for g in summary.get("gains", []))


def summarize(by_budget: dict[int, list[Record]], st: StatisticsConfig, seed: int) -> dict:
    """Accuracy table, gain per token with bootstrap CIs, steepest steps, half-gain window."""
    budgets = sorted(by_budget)
    rows = {str(b): {"budget": b, **stats.budget_table_rows(by_budget[b], st.confidence)}
            for b in budgets}
    accuracy = {b: rows[str(b)]["accuracy"] for b in budgets}
    gains = stats.bootstrap_gain_per_token({b: correct_matrix(by_budget[b]) for b in budgets},
                                           n_resamples=st.bootstrap_resamples, seed=seed,
                                           confidence=st.confidence)
    total = accuracy[budgets[-1]] - accuracy[budgets[0]] if budgets else 0.0
    window = stats.half_gain_window(accuracy)
    return {
        "budgets": rows,
        "gains": gains,
        "steepest": stats.steepest_windows(gains, st.top_steepest),
        "total_gain": total,
        "half_gain_window": list(window) if window else None,
        "half_gain_window_gain": accuracy[window[1]] - accuracy[window[0]] if window else None,
        "bootstrap": {"resamples": st.bootstrap_resamples, "seed": seed, "unit": "problem",
                      "paired_across_budgets": True},
    }
