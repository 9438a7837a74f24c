"""Phase-1b analysis: is an accuracy plateau real or sampling noise?

Pure functions over k-sample records: run-to-run spread, per-problem success distribution,
pass@k and maj@k with bootstrap CIs, paired comparisons of consecutive budgets, and a one-line
verdict under an explicit plateau criterion (thresholds from ``config.StatisticsConfig``).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from config import StatisticsConfig
from study.analysis import stats
from study.errors import ResultsError
from study.grading import grader, majority
from study.schema import Record
from study.tables import finite


def _number(value: float | None) -> float | None:
    """NaN (e.g. the std of a single run) becomes None so the summary stays strict JSON."""
    return finite(value if value is None else float(value))


# How maj@k is estimated; a summary made another way (first k samples) is re-analysed from its
# stored records on the next run, without generating.
MAJ_METHOD = "all k-subsets, ties split evenly"


def group_by_problem(records: list[Record]) -> list[list[Record]]:
    """Records as rows of samples (problem order kept, samples sorted); every row must hold
    samples 0..k-1 for one common k."""
    rows: dict[str, list[Record]] = {}
    for record in records:
        rows.setdefault(record["problem_id"], []).append(record)
    grouped = [sorted(row, key=lambda r: r["sample"]) for row in rows.values()]
    k = len(grouped[0]) if grouped else 0
    for row in grouped:
        if [r["sample"] for r in row] != list(range(k)):
            raise ResultsError(f"problem {row[0]['problem_id']}: samples "
                               f"{[r['sample'] for r in row]}, expected 0..{k - 1}")
    return grouped


def _ci(values: np.ndarray, st: StatisticsConfig, seed: int) -> list[float | None]:
    draws = stats.bootstrap_ci(values, np.mean, n_resamples=st.bootstrap_resamples,
                               confidence=st.confidence, seed=seed)
    return [_number(x) for x in draws]


def budget_summary(records: list[Record], st: StatisticsConfig, seed: int,
                   kind: str = "numeric") -> dict:
    """Run-to-run spread, per-problem success distribution, pass@k and maj@k at one budget.

    ``kind`` is the dataset's answer kind: votes are grouped and checked by its grader's rule
    (records do not carry it)."""
    rows = group_by_problem(records)
    correct = np.array([[r["correct"] for r in row] for row in rows], dtype=float)
    k = correct.shape[1]
    mean, std = stats.mean_std_over_runs(correct)
    ci_low, ci_high = _ci(correct, st, seed)
    pass_rows = {j: np.array([stats.pass_at_k(k, int(c), j) for c in correct.sum(axis=1)])
                 for j in range(1, k + 1)}
    # maj@j of each problem (averaged over its j-subsets), so one vector gives value and CI.
    answers = [[r["predicted"] for r in row] for row in rows]
    gold = [row[0]["ground_truth"] for row in rows]
    def equivalent(a: str, b: str) -> bool:
        return grader.is_equivalent(a, b, kind)

    maj_rows = {j: majority.maj_at_k_per_problem(answers, gold, j, equivalent, seed=seed)
                for j in range(1, k + 1)}
    return {
        "budget": records[0]["budget"], "n_problems": len(rows), "k": k,
        "mean_accuracy": float(mean), "std_accuracy": _number(std),
        "run_accuracies": stats.per_sample_run_accuracy(correct).tolist(),
        "ci_low": ci_low, "ci_high": ci_high,
        "success_histogram": stats.success_rate_histogram(correct),
        "pass_at_k": {str(j): float(v.mean()) for j, v in pass_rows.items()},
        "pass_at_k_ci": {str(j): _ci(v, st, seed) for j, v in pass_rows.items()},
        "maj_at_k": {str(j): float(v.mean()) for j, v in maj_rows.items()},
        "maj_at_k_ci": {str(j): _ci(v, st, seed) for j, v in maj_rows.items()},
        "accuracy_strict": float(np.mean([r["correct_strict"] for r in records])),
        "avg_tokens": float(np.mean([r["tokens_used"] for r in records])),
        "hit_budget_rate": float(np.mean([r["hit_budget"] for r in records])),
    }


def problem_success_rates(records: list[Record]) -> tuple[list[str], np.ndarray]:
    """Problem ids and the share of each problem's samples graded correct."""
    rows = group_by_problem(records)
    return [row[0]["problem_id"] for row in rows], np.array(
        [np.mean([r["correct"] for r in row]) for row in rows])


def compare_budgets(low: list[Record], high: list[Record], st: StatisticsConfig,
                    seed: int) -> dict:
    """Paired comparison of per-problem success rates (high budget minus low) with a verdict."""
    ids_low, rates_low = problem_success_rates(low)
    ids_high, rates_high = problem_success_rates(high)
    if ids_low != ids_high:
        raise ResultsError("budgets hold different problems; cannot pair them")
    diff = stats.paired_difference(rates_low, rates_high, n_resamples=st.bootstrap_resamples,
                                   seed=seed, confidence=st.confidence)
    is_plateau, reason = stats.plateau_verdict(diff, st.min_effect, st.alpha)
    return {"from": low[0]["budget"], "to": high[0]["budget"], **diff,
            "ci_low": _number(diff["ci_low"]), "ci_high": _number(diff["ci_high"]),
            "is_plateau": is_plateau, "verdict": reason}


def plateau_criterion(st: StatisticsConfig) -> str:
    pp = f"{100 * st.min_effect:g} pp"
    return (f"a step is a plateau when the {st.confidence:.0%} bootstrap CI of the mean "
            f"per-problem difference lies within +/-{pp}, or the paired test has "
            f"p >= {st.alpha} and |difference| < {pp}")


def overall_verdict(comparisons: list[dict], st: StatisticsConfig) -> str:
    """One line: is the plateau genuine over the whole budget range, and by what criterion."""
    if not comparisons:
        return "no verdict: the plateau check needs at least two budgets"
    steps = "; ".join(f"{c['from']}->{c['to']}: {100 * c['mean_diff']:+.1f} pp, "
                      f"p={c['p_value']:.3g}" for c in comparisons)
    span = f"{comparisons[0]['from']}-{comparisons[-1]['to']} tokens"
    if all(c["is_plateau"] for c in comparisons):
        head = f"PLATEAU GENUINE over {span}"
    else:
        moving = ", ".join(f"{c['from']}->{c['to']}" for c in comparisons if not c["is_plateau"])
        head = f"PLATEAU NOT CONFIRMED over {span} (accuracy still moves at {moving})"
    return f"{head} [{steps}]; criterion: {plateau_criterion(st)}"


def analysis_settings(st: StatisticsConfig, seed: int, kind: str = "numeric") -> dict:
    """The settings the summary was computed under (a change re-analyses stored records); the
    answer kind only when not numeric, so earlier numeric summaries stay valid."""
    return {"bootstrap_resamples": st.bootstrap_resamples, "min_effect": st.min_effect,
            "alpha": st.alpha, "confidence": st.confidence, "seed": seed,
            "maj_at_k": MAJ_METHOD, **({"answer_kind": kind} if kind != "numeric" else {})}


def summarize(by_budget: dict[int, list[Record]], st: StatisticsConfig, seed: int,
              kind: str = "numeric") -> dict:
    """The phase 1b summary body (everything but phase/model/dataset/provenance)."""
    budgets = sorted(by_budget)
    rows = {str(b): budget_summary(by_budget[b], st, seed, kind) for b in budgets}
    comparisons = [compare_budgets(by_budget[lo], by_budget[hi], st, seed)
                   for lo, hi in pairwise(budgets)]
    return {"samples": rows[str(budgets[0])]["k"] if budgets else 0, "budgets": rows,
            "comparisons": comparisons, "criterion": plateau_criterion(st),
            "verdict": overall_verdict(comparisons, st),
            "analysis": analysis_settings(st, seed, kind)}


