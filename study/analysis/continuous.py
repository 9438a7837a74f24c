"""Continuous metrics of forced answers (seed 001): how much probability the gold answer gets.

Accuracy at a budget is 0 or 1 per problem; these metrics say how close the model was. For
each problem, the solution set S holds every distinct (normalised) answer the model gave at any
budget or sample, plus the gold answer. At each forced ending every candidate in S is scored by
the summed log-probability of its tokens after the cue (``Engine.branch_scores``); then

    p~_i = (p_i + 1e-10) / sum_j (p_j + 1e-10)    over S,
    p_gold = p~[gold],   entropy_bits = -sum p~ log2 p~,   gold_rank = 1 + #{i: p~_i > p~_gold}.

Pure: no model, no files. Summaries average over records with a bootstrap CI on p_gold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from study.analysis import stats

EPSILON = 1e-10  # seed 001's smoothing: a candidate with probability 0 still counts


def solution_set(answers: Iterable[str | None], gold: str,
                 same_as_gold: Callable[[str], bool]) -> list[str]:
    """Gold first, then every distinct answer (in first-seen order) that is not the gold one;
    None (no answer found) is skipped."""
    out = [gold]
    for answer in answers:
        if answer is None or answer in out or same_as_gold(answer):
            continue
        out.append(answer)
    return out


def normalised(logps: Sequence[float]) -> list[float]:
    """p~ over the candidates from their log-probabilities (a candidate's p may underflow to 0:
    EPSILON keeps the set's distribution defined)."""
    smoothed = [math.exp(lp) + EPSILON for lp in logps]
    total = sum(smoothed)
    return [p / total for p in smoothed]


def entropy_bits(probs: Sequence[float]) -> float:
    return -sum(p * math.log2(p) for p in probs if p > 0)


def rank_of(probs: Sequence[float], index: int) -> int:
    """1 = the most probable; ties share the better rank."""
    return 1 + sum(p > probs[index] for p in probs)


def metrics(logps: Sequence[float], gold_index: int = 0) -> dict:
    """``p_gold``, ``entropy_bits`` and ``gold_rank`` of one forced ending."""
    probs = normalised(logps)
    return {"p_gold": probs[gold_index], "entropy_bits": entropy_bits(probs),
            "gold_rank": rank_of(probs, gold_index)}


def budget_metrics(records: Sequence[dict], n_resamples: int, confidence: float,
                   seed: int) -> dict:
    """Means over the records of one budget; p_gold with a bootstrap CI (resampling records).
    Records without the metrics (truncation) give None everywhere."""
    scored = [r for r in records if r.get("p_gold") is not None]
    if not scored:
        return {"n": 0, "p_gold": None, "p_gold_ci_low": None, "p_gold_ci_high": None,
                "entropy_bits": None, "gold_rank": None}
    p_gold = [r["p_gold"] for r in scored]
    low, high = stats.bootstrap_ci(p_gold, n_resamples=n_resamples, confidence=confidence,
                                   seed=seed)
    n = len(scored)
    return {"n": n, "p_gold": sum(p_gold) / n, "p_gold_ci_low": low, "p_gold_ci_high": high,
            "entropy_bits": sum(r["entropy_bits"] for r in scored) / n,
            "gold_rank": sum(r["gold_rank"] for r in scored) / n}
