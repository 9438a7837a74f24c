"""The compute-matched comparison: accuracy against mean tokens spent per problem, per strategy.

Reads only the results store (record files, summaries, power-sampling rollout logs); never a
model. Every strategy is scored on the same problems, the intersection of the problem sets of
the runs found, so that no point is measured on easier problems than another.

Strategies and what a point costs (tokens per problem):
- ``truncation``: phase 1's single greedy chain at budget B; the tokens it used.
- another budget mode (``phase1_combined_{model}-{mode}.json``, e.g. force-end, when that run
  exists): its run's mean ``tokens_spent`` per record at B (from its provenance).
- ``majority`` (maj@j) and ``pass`` (pass@j, an oracle: it needs to know which sample is
  right) from phase 1b's k samples at budget B: the tokens the first j samples used.
- ``power``: one power-sampling chain at budget B; every token it proposed.
The Pareto frontier is taken over the non-oracle points.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from config import StatisticsConfig
from study import store
from study.analysis import plateau, stats
from study.schema import Record
from study.schema_analyses import ComputePoint, PowerBudgetRow
from study.tables import by_budget

# A phase-1 file of the same model under another budget mode: "{model}-{mode}" with a mode made
# of lowercase words (depth "-L{n}" and "-power" tags are other axes, not strategies).
_MODE = re.compile(r"^-([a-z][a-z_]*(?:-[a-z_]+)*)$")


def budget_modes(results_dir: Path, base_tag: str) -> list[str]:
    """Budget modes with phase-1 results besides plain truncation (e.g. ``force-end``)."""
    head = store.phase1_combined_path(results_dir, base_tag).name[:-len(".json")]
    modes = []
    for path in sorted(Path(results_dir).glob(f"{head}-*.json")):
        match = _MODE.match(path.name[len(head):-len(".json")])
        if match and match.group(1) != "power":
            modes.append(match.group(1))
    return modes


def _filter(records: list[Record], keep: set[str]) -> list[Record]:
    return [r for r in records if r["problem_id"] in keep]


def _ids(records: list[Record]) -> set[str]:
    return {r["problem_id"] for r in records}


def single_chain_points(strategy: str, label: str, records: dict[int, list[Record]],
                        spent: dict[str, int] | None, keep: set[str],
                        confidence: float) -> list[ComputePoint]:
    """One point per budget: accuracy (Wilson CI) of one chain per problem.

    ``spent`` (budget -> tokens spent by the whole run) is used when given; otherwise the chain
    cost what it used (prefix truncation).
    """
    points = []
    for budget, all_records in sorted(records.items()):
        recs = _filter(all_records, keep)
        n, correct = len(recs), sum(r["correct"] for r in recs)
        low, high = stats.wilson_ci(correct, n, confidence)
        used = float(np.mean([r["tokens_used"] for r in recs]))
        tokens = spent[str(budget)] / len(all_records) if spent else used
        points.append(_point(strategy, label, budget, 1, correct / n, low, high, tokens, used))
    return points


def sample_points(records: dict[int, list[Record]], keep: set[str], st: StatisticsConfig,
                  seed: int) -> list[ComputePoint]:
    """maj@j and pass@j (j = 1..k) at every phase-1b budget, with bootstrap CIs."""
    points = []
    for budget, all_records in sorted(records.items()):
        recs = _filter(all_records, keep)
        row = plateau.budget_summary(recs, st, seed)
        grouped = plateau.group_by_problem(recs)
        for j in range(1, row["k"] + 1):
            tokens = float(np.mean([sum(r["tokens_used"] for r in g[:j]) for g in grouped]))
            used = float(np.mean([r["tokens_used"] for g in grouped for r in g[:j]]))
            for strategy, key in (("majority", "maj_at_k"), ("pass", "pass_at_k")):
                low, high = row[f"{key}_ci"][str(j)]
                label = f"{'maj' if strategy == 'majority' else 'pass'}@k, B={budget}"
                points.append(_point(strategy, label, budget, j, row[key][str(j)], low, high,
                                     tokens, used, oracle=strategy == "pass"))
    return points


def power_points(records: dict[int, list[Record]], chains: dict[int, list[dict]],
                 keep: set[str], st: StatisticsConfig,
                 seed: int) -> tuple[list[ComputePoint], dict[str, PowerBudgetRow]]:
    """Per budget: accuracy of one power chain (mean over the k chains of a problem, bootstrap
    CI over problems), its tokens proposed, and the acceptance rate."""
    points, rows = [], {}
    for budget, all_records in sorted(records.items()):
        recs = _filter(all_records, keep)
        row = plateau.budget_summary(recs, st, seed)
        mine = [c for c in chains[budget] if c["problem_id"] in keep]
        proposed = sum(c["proposals"] for c in mine)
        tokens = float(np.mean([c["tokens_proposed"] for c in mine]))
        used = float(np.mean([r["tokens_used"] for r in recs]))
        points.append(_point("power", "power sampling", budget, 1, row["mean_accuracy"],
                             row["ci_low"], row["ci_high"], tokens, used))
        rows[str(budget)] = {
            "budget": budget, "chains": len(mine), "samples": row["k"],
            "accuracy": row["mean_accuracy"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
            "tokens_per_chain": tokens, "tokens_used": used, "proposals": proposed,
            "acceptance_rate": (sum(c["accepted"] for c in mine) / proposed
                                if proposed else None),
            "cost_ratio": tokens / used if used else None}
    return points, rows


def _point(strategy: str, label: str, budget: int, k: int, accuracy: float,
           low: float | None, high: float | None, tokens: float, used: float,
           oracle: bool = False) -> ComputePoint:
    return {"strategy": strategy, "label": label, "budget": budget, "k": k,
            "accuracy": float(accuracy), "ci_low": low, "ci_high": high,
            "tokens_per_problem": float(tokens), "tokens_used": float(used), "oracle": oracle,
            "pareto": False}


def mark_pareto(points: list[ComputePoint]) -> None:
    """Flag the non-oracle points that no other non-oracle point dominates (fewer or equal
    tokens and higher or equal accuracy, one of them strictly)."""
    real = [p for p in points if not p["oracle"]]
    for p in real:
        p["pareto"] = not any(
            q["tokens_per_problem"] <= p["tokens_per_problem"] and q["accuracy"] >= p["accuracy"]
            and (q["tokens_per_problem"] < p["tokens_per_problem"]
                 or q["accuracy"] > p["accuracy"]) for q in real)


def common_problems(record_sets: list[dict[int, list[Record]]]) -> set[str]:
    """Problem ids present at every budget of every run."""
    sets = [_ids(recs) for run in record_sets for recs in run.values()]
    return set.intersection(*sets) if sets else set()


def budget_records(summary: dict, path) -> dict[int, list[Record]]:
    """A budget summary's record files, read back: budget -> records (``path(budget)``)."""
    return {row["budget"]: store.read_records(path(row["budget"]))
            for row in by_budget(summary["budgets"])}
