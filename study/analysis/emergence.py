"""Per-problem emergence: which problems jump as the budget grows, and how much of a curve's rise
they carry (seed 001's scores; definitions in shared/reference/FACTS.md). Pure numbers.

A trajectory y_1..y_K is one problem's metric at the K budgets in increasing order: correct (0/1)
with one sample, the success rate with several, or p(gold) when the records carry it.
With Δ_k = y_{k+1} - y_k and n = K - 1:

* breakthroughness B = L · I / D clipped to [0, 100] (NaN -> 0), where
  I = sign(argmax y - argmin y) · (max y - min y) (first occurrences);
  default form: D = (mean_k |Δ_k|^{1/2})², L = 1/n²; BIG-bench form: D = sqrt(median Δ²), L = 1.
  In the default form a rise made in one step scores 1, the same rise in two equal steps 1/2,
  in n equal steps 1/n; a fall scores 0.
* skew S = adjusted Fisher-Pearson skewness of Δ (scipy.stats.skew(Δ, bias=False)); needs n > 2
  and Δ not all equal (else None).

A problem *jumps* when its default breakthroughness exceeds ``JUMP_BREAKTHROUGH`` (its rise is
more concentrated than two equal steps) and it rises by at least ``JUMP_RISE``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

JUMP_BREAKTHROUGH = 0.5  # two equal steps score exactly 0.5: a jump is sharper than that
JUMP_RISE = 0.5  # and lifts the problem by at least half: one flip of a 0/1 trajectory


def _rise(y: np.ndarray) -> float:
    """I_y: the range, signed by whether the maximum comes after the minimum."""
    return float(np.sign(np.argmax(y) - np.argmin(y)) * (y.max() - y.min()))


def breakthroughness(y: Sequence[float], form: str = "default") -> float:
    """B of one trajectory, in seed 001's default form or its BIG-bench form."""
    y = np.asarray(y, dtype=float)
    delta = np.diff(y)
    n = len(delta)
    if n == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        if form == "default":
            value = (1 / n ** 2) * _rise(y) / np.mean(np.sqrt(np.abs(delta))) ** 2
        elif form == "bigbench":
            value = _rise(y) / np.sqrt(np.median(delta ** 2))
        else:
            raise ValueError(f"unknown form {form!r}; expected default or bigbench")
    return 0.0 if np.isnan(value) else float(np.clip(value, 0.0, 100.0))


def skew(y: Sequence[float]) -> float | None:
    """Skewness of the steps (bias-corrected); None with fewer than 3 steps or equal steps."""
    delta = np.diff(np.asarray(y, dtype=float))
    if len(delta) <= 2 or np.allclose(delta, delta[0]):
        return None
    from scipy import stats as sps  # imported on first use: slow to import

    value = float(sps.skew(delta, bias=False))
    return value if np.isfinite(value) else None


def jumps(y: Sequence[float]) -> bool:
    y = np.asarray(y, dtype=float)
    return breakthroughness(y) > JUMP_BREAKTHROUGH and _rise(y) >= JUMP_RISE


def score_problems(ids: Sequence[str], trajectories: np.ndarray) -> list[dict]:
    """Every problem's trajectory and scores, in input order."""
    return [{"problem_id": pid, "trajectory": [float(v) for v in y],
             "breakthroughness": breakthroughness(y),
             "breakthroughness_bigbench": breakthroughness(y, "bigbench"),
             "skew": skew(y), "jumps": jumps(y)}
            for pid, y in zip(ids, np.asarray(trajectories, dtype=float))]


def top_emergent(problems: list[dict], k: int) -> list[str]:
    """Ids of the k problems with the highest default breakthroughness among those that rise
    (ties: BIG-bench form, then the larger rise, then the id)."""
    rising = [p for p in problems if _rise(np.array(p["trajectory"])) > 0]
    ranked = sorted(rising, key=lambda p: (-p["breakthroughness"],
                                           -p["breakthroughness_bigbench"],
                                           -_rise(np.array(p["trajectory"])), p["problem_id"]))
    return [p["problem_id"] for p in ranked[:k]]


def window_gain(problems: list[dict], budgets: Sequence[int],
                window: tuple[int, int] | None) -> dict | None:
    """The mean gain over the window [from, to] split into problems that jump and the rest."""
    if window is None or not problems:
        return None
    lo, hi = list(budgets).index(window[0]), list(budgets).index(window[1])
    gains = np.array([p["trajectory"][hi] - p["trajectory"][lo] for p in problems])
    jumping = np.array([p["jumps"] for p in problems])
    total = float(gains.mean())
    from_jumps = float(gains[jumping].sum() / len(gains))
    return {"from": int(window[0]), "to": int(window[1]), "gain": total,
            "from_jumping": from_jumps, "from_gradual": total - from_jumps,
            "jumping_share": from_jumps / total if total > 0 else None}


def summarize(ids: Sequence[str], budgets: Sequence[int], trajectories: np.ndarray,
              metric: str, top_k: int, window: tuple[int, int] | None) -> dict:
    """One metric's emergence block: per-problem scores, the top-k, the share that jumps and the
    window's gain split by jumping vs gradual problems."""
    problems = score_problems(ids, trajectories)
    return {"metric": metric, "budgets": [int(b) for b in budgets], "problems": problems,
            "top": top_emergent(problems, top_k),
            "n_jumping": sum(p["jumps"] for p in problems),
            "share_jumping": float(np.mean([p["jumps"] for p in problems])) if problems else None,
            "window_gain": window_gain(problems, budgets, window),
            "rule": f"jumps: breakthroughness > {JUMP_BREAKTHROUGH} and rise >= {JUMP_RISE}"}


def rank_agreement(a: dict[str, float], b: dict[str, float]) -> tuple[float | None, int]:
    """Spearman correlation of two runs' scores over their common problems, and how many."""
    common = sorted(set(a) & set(b))
    if len(common) < 3 or len({a[i] for i in common}) < 2 or len({b[i] for i in common}) < 2:
        return None, len(common)  # too few problems, or one run scores them all the same
    from scipy import stats as sps

    rho = sps.spearmanr([a[i] for i in common], [b[i] for i in common]).statistic
    return (float(rho) if np.isfinite(rho) else None), len(common)
