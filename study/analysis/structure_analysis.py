"""Phase-3 structure analysis: what changes in solutions at the cliff?

Reads a model's phase-3 cliff records (optionally phase-1 records at other budgets), splits every
solution into setup / computation / verification steps (``study.analysis.structure``), checks
explicit arithmetic steps (``study.data.arith_check``), and aggregates per budget and per length
group around the cliff window. Pure apart from reading the results store; the caller supplies the
token counter (the model's tokenizer) so nothing here touches the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from study import store
from study.analysis import stats, structure
from study.data.arith_check import find_arithmetic_steps
from study.schema import Record

GROUPS = ("below", "inside", "above")
Analyzer = Callable[[str], dict]
TokenCounter = Callable[[str], int]


# ---------------------------------------------------------------------------- loading


def load_cliff(results_dir: Path, run_flags: str, tag: str
               ) -> tuple[dict, dict[int, list[Record]], list[Path]]:
    """The cliff summary and its records by budget; ResultsError when phase 3 has not run
    (the hint repeats ``run_flags``, ``StudyConfig.run_flags``)."""
    summary_path = store.phase3_cliff_summary_path(results_dir, tag)
    if not summary_path.exists():
        raise store.ResultsError(
            f"no phase-3 results for model {tag} in {results_dir}: run "
            f"python phase3_cliff.py {run_flags} first")
    summary = store.read_json(summary_path)
    budgets = sorted(int(b) for b in summary["budgets"])
    paths = [store.phase3_cliff_record_path(results_dir, tag, b) for b in budgets]
    _check_record_files(summary, paths)
    return summary, {b: store.read_records(p) for b, p in zip(budgets, paths)}, paths


def _check_record_files(summary: dict, paths: list[Path]) -> None:
    """Refuse record files that are missing or differ from the ones the summary was made from."""
    listed = summary.get("provenance", {}).get("record_files", {})
    for path in paths:
        if not path.exists():
            raise store.ResultsError(f"{path}: missing; re-run phase3_cliff.py --overwrite")
        expected = listed.get(path.name)
        if expected is not None and store.file_sha256(path) != expected:
            raise store.ResultsError(
                f"{path}: differs from the file its summary lists (sha256); re-run "
                "phase3_cliff.py --overwrite")


def load_phase1_extra(results_dir: Path, tag: str, cliff: dict[int, list[Record]]
                      ) -> tuple[dict[int, list[Record]], list[Path], str | None]:
    """Phase-1 records at budgets the cliff grid lacks, when they cover the same solutions."""
    combined = store.phase1_combined_path(results_dir, tag)
    if not combined.exists():
        return {}, [], f"no phase-1 results at {combined}"
    keys = _keys(next(iter(cliff.values())))
    extra, paths = {}, []
    for budget in sorted(int(b) for b in store.read_json(combined)["budgets"]):
        if budget in cliff:
            continue
        path = store.phase1_record_path(results_dir, tag, budget)
        records = store.read_records(path)
        if _keys(records) != keys:
            return {}, [], "phase-1 records cover other problems than the cliff records"
        extra[budget], paths = records, [*paths, path]
    return extra, paths, None


def _keys(records: list[dict]) -> set[tuple[str, int]]:
    return {(r["problem_id"], r.get("sample", 0)) for r in records}


# ---------------------------------------------------------------------------- analysis


def make_analyzer(count_tokens: TokenCounter | None = None) -> Analyzer:
    """structure.analyze_solution plus the number of checkable arithmetic steps, memoised
    by text (a solution that ended before a budget has the same text at every larger one)."""
    cache: dict[str, dict] = {}

    def analyze(text: str) -> dict:
        if text not in cache:
            result = structure.analyze_solution(text, count_tokens)
            result["n_arith_checked"] = sum(
                step.correct is not None for step in find_arithmetic_steps(text))
            cache[text] = result
        return cache[text]

    return analyze


def _proportion(flags: list[bool], confidence: float) -> dict:
    """Accuracy with a Wilson CI; accuracy is None (not NaN) when there is nothing to measure."""
    out = stats.proportion_summary(flags, confidence)
    if out["n"] == 0:
        out["accuracy"] = None
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(records: list[Record], analyze: Analyzer, confidence: float) -> dict:
    """The structure metrics of a set of graded solutions."""
    found = [analyze(r["generated"]) for r in records]
    phase_tokens = {p: [a["tokens_per_phase"][p] for a in found] for p in structure.PHASES}
    all_tokens = sum(sum(v) for v in phase_tokens.values())
    checked = sum(a["n_arith_checked"] for a in found)
    errors = sum(a["n_arith_errors"] for a in found)
    verified = [a["has_verification"] for a in found]
    with_verification = [bool(r["correct"]) for r, v in zip(records, verified) if v]
    without = [bool(r["correct"]) for r, v in zip(records, verified) if not v]
    return {
        "n": len(records),
        "accuracy": _mean([float(r["correct"]) for r in records]),
        "avg_tokens": _mean([r["tokens_used"] for r in records]),
        "tokens_per_phase": {p: _mean(v) for p, v in phase_tokens.items()},
        "token_share_per_phase": {p: sum(v) / all_tokens if all_tokens else None
                                  for p, v in phase_tokens.items()},
        "verification_share": _mean([float(v) for v in verified]),
        "avg_steps": _mean([a["n_steps"] for a in found]),
        "avg_operations": _mean([a["n_operations"] for a in found]),
        "arith_steps_checked": checked,
        "arith_errors": errors,
        "arith_error_rate": errors / checked if checked else None,
        "with_verification": _proportion(with_verification, confidence),
        "without_verification": _proportion(without, confidence),
    }


def per_budget(records_by_budget: dict[int, list[Record]], analyze: Analyzer,
               sources: dict[int, str], confidence: float) -> dict:
    return {str(b): {"budget": b, "source": sources.get(b, "phase3"),
                     **aggregate(records_by_budget[b], analyze, confidence)}
            for b in sorted(records_by_budget)}


# ---------------------------------------------------------------------------- the cliff window


def cliff_window(summary: dict) -> dict | None:
    """The half-gain window of the cliff summary, else its steepest positive step."""
    window = summary.get("half_gain_window")
    if window:
        return {"from": int(window[0]), "to": int(window[1]), "chosen_by": "half_gain_window"}
    steepest = [s for s in summary.get("steepest", []) if s["gain_per_token"] > 0]
    if steepest:
        return {"from": steepest[0]["from"], "to": steepest[0]["to"], "chosen_by": "steepest_step"}
    return None


def length_group(record: dict, lo: int, hi: int) -> str:
    """below / inside / above by the solution's own length (a cut solution's is unknown: above)."""
    if record["hit_budget"] or record["tokens_used"] > hi:
        return "above"
    return "below" if record["tokens_used"] <= lo else "inside"


def compare_around_window(records_by_budget: dict[int, list[Record]], window: dict,
                          analyze: Analyzer, confidence: float) -> dict:
    """Metrics of the below / inside / above groups (see the module docstring)."""
    lo, hi = window["from"], window["to"]
    final = records_by_budget[max(records_by_budget)]
    at_lo = {(r["problem_id"], r.get("sample", 0)): r["correct"] for r in records_by_budget[lo]}
    at_hi = {(r["problem_id"], r.get("sample", 0)): r["correct"] for r in records_by_budget[hi]}
    total_gain = sum(at_hi.values()) - sum(at_lo.values())
    groups = {}
    for name in GROUPS:
        members = [r for r in final if length_group(r, lo, hi) == name]
        keys = [(r["problem_id"], r.get("sample", 0)) for r in members]
        gain = sum(at_hi[k] for k in keys) - sum(at_lo[k] for k in keys)
        groups[name] = {
            "length": {"below": f"<= {lo}", "inside": f"{lo + 1}..{hi}",
                       "above": f"> {hi} or cut"}[name],
            "accuracy_at_window_start": _mean([float(at_lo[k]) for k in keys]),
            "accuracy_at_window_end": _mean([float(at_hi[k]) for k in keys]),
            "gain_share": gain / total_gain if total_gain else None,
            **aggregate(members, analyze, confidence),
        }
    return groups




def analyse(run_flags: str, tag: str, results_dir: Path, count_tokens: TokenCounter, *,
            confidence: float, include_phase1: bool = False, counter_name: str | None = None
            ) -> tuple[dict, list[Path], int | None]:
    """The structure analysis of one model's cliff records (nothing written), the record files
    it read, and the seed of the cliff run."""
    summary, records, paths = load_cliff(results_dir, run_flags, tag)
    sources = dict.fromkeys(records, "phase3")
    note = None
    if include_phase1:
        extra, extra_paths, note = load_phase1_extra(results_dir, tag, records)
        sources.update(dict.fromkeys(extra, "phase1"))
        records, paths = {**records, **extra}, [*paths, *extra_paths]
    analyze = make_analyzer(count_tokens)
    cliff_records = {b: r for b, r in records.items() if sources[b] == "phase3"}
    window = cliff_window(summary)
    if window is not None:
        window["measured_at_budget"] = max(cliff_records)
    result = {
        "phase": "phase3_structure", "model": summary.get("model", tag),
        "dataset": summary.get("dataset"),
        "token_counter": counter_name or "custom token counter",
        "budgets": per_budget(records, analyze, sources, confidence),
        "window": window,
        "groups": (compare_around_window(cliff_records, window, analyze, confidence)
                   if window else None),
        "phase1_note": note,
    }
    return result, paths, summary.get("provenance", {}).get("seed")


