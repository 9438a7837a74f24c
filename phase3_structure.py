"""Phase 3, step 2: solution structure — what changes at the cliff?

Run:  python phase3_structure.py --model qwen-1.5b        (after phase3_cliff.py)

Reads the phase-3 cliff records of a model (no generation; only the tokenizer is loaded, to count
model tokens). Every solution is split into steps and each step is labelled setup / computation /
verification by the documented rules in structure.py; explicit arithmetic steps ``a op b = c`` are
found and checked with the exact, eval-free evaluator in arith_check.py.

Per budget it reports: mean model tokens per phase, the share of solutions with a verification
phase, mean reasoning steps and arithmetic operations, the arithmetic-step error rate (wrong
steps / steps whose two sides could be evaluated), and accuracy with vs without verification.

Then it compares solutions below, inside and above the cliff window (the narrowest window holding
half of the total gain, else the steepest step). Solutions are taken at the largest cliff budget
and grouped by their length L in tokens: *below* finished within the window's start (L <= lo),
*inside* finished within the window (lo < L <= hi) — exactly the solutions whose text changes
between the two budgets — and *above* need more than hi tokens or were cut. For each group it
also gives accuracy at lo and at hi and its share of the window's gain.
Writes results/phase3_structure_analysis_{model}.json.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from study import stats
from study import store
from study import structure
import utils
from study.arith_check import find_arithmetic_steps
from study.cli import Parser, fail
from config import RunConfig, model_tag

GROUPS = ("below", "inside", "above")
Analyzer = Callable[[str], dict]


# ---------------------------------------------------------------------------- loading


def load_cliff(results_dir: Path, model: str) -> tuple[dict, dict[int, list[dict]], list[Path]]:
    """The cliff summary and its records by budget; ResultsError when phase 3 has not run."""
    tag = model_tag(model)
    summary_path = store.phase3_cliff_summary_path(results_dir, tag)
    if not summary_path.exists():
        raise store.ResultsError(
            f"no phase-3 results for model {model} in {results_dir}: run "
            f"python phase3_cliff.py --model {model} first")
    summary = store.read_json(summary_path)
    budgets = sorted(int(b) for b in summary["budgets"])
    paths = [store.phase3_cliff_record_path(results_dir, tag, b) for b in budgets]
    _check_record_files(summary, paths)
    return summary, {b: store.read_json(p) for b, p in zip(budgets, paths)}, paths


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


def load_phase1_extra(results_dir: Path, model: str, cliff: dict[int, list[dict]]
                      ) -> tuple[dict[int, list[dict]], list[Path], str | None]:
    """Phase-1 records at budgets the cliff grid lacks, when they cover the same solutions."""
    tag = model_tag(model)
    combined = store.phase1_combined_path(results_dir, tag)
    if not combined.exists():
        return {}, [], f"no phase-1 results at {combined}"
    keys = _keys(next(iter(cliff.values())))
    extra, paths = {}, []
    for budget in sorted(int(b) for b in store.read_json(combined)["budgets"]):
        if budget in cliff:
            continue
        path = store.phase1_record_path(results_dir, tag, budget)
        records = store.read_json(path)
        if _keys(records) != keys:
            return {}, [], "phase-1 records cover other problems than the cliff records"
        extra[budget], paths = records, [*paths, path]
    return extra, paths, None


def _keys(records: list[dict]) -> set[tuple[str, int]]:
    return {(r["problem_id"], r.get("sample", 0)) for r in records}


# ---------------------------------------------------------------------------- analysis


def make_analyzer(count_tokens: Callable[[str], int] | None = None) -> Analyzer:
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


def _proportion(flags: list[bool]) -> dict:
    """Accuracy with a Wilson CI; accuracy is None (not NaN) when there is nothing to measure."""
    out = stats.proportion_summary(flags)
    if out["n"] == 0:
        out["accuracy"] = None
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(records: list[dict], analyze: Analyzer) -> dict:
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
        "with_verification": _proportion(with_verification),
        "without_verification": _proportion(without),
    }


def per_budget(records_by_budget: dict[int, list[dict]], analyze: Analyzer,
               sources: dict[int, str]) -> dict:
    return {str(b): {"budget": b, "source": sources.get(b, "phase3"),
                     **aggregate(records_by_budget[b], analyze)}
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


def compare_around_window(records_by_budget: dict[int, list[dict]], window: dict,
                          analyze: Analyzer) -> dict:
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
            **aggregate(members, analyze),
        }
    return groups


# ---------------------------------------------------------------------------- printing


def _pct(value: float | None, width: int) -> str:
    return f"{'—':>{width}}" if value is None else f"{100 * value:>{width - 1}.0f}%"


def _num(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _acc_n(block: dict) -> str:
    if block["accuracy"] is None:
        return "—  (n=0)"
    return f"{100 * block['accuracy']:.0f}% (n={block['n']})"


def _arith(row: dict) -> str:
    rate = row["arith_error_rate"]
    if rate is None:
        return "—"
    return f"{100 * rate:.1f}% ({row['arith_errors']}/{row['arith_steps_checked']})"


def _metric_cells(row: dict) -> str:
    tokens = row["tokens_per_phase"]
    return (f"{_pct(row['accuracy'], 6)}{_num(tokens['setup'], 7)}{_num(tokens['computation'], 7)}"
            f"{_num(tokens['verification'], 7)}{_pct(row['verification_share'], 7)}"
            f"{_num(row['avg_steps'], 7)}{_num(row['avg_operations'], 6)}  {_arith(row):<16}")


_METRIC_HEAD = (f"{'Acc':>6}{'Setup':>7}{'Comp':>7}{'Verif':>7}{'Verif%':>7}{'Steps':>7}"
                f"{'Ops':>6}  {'Arith err':<16}")


def format_budget_table(result: dict) -> str:
    lines = [f"Solution structure per budget ({result['token_counter']}):",
             f"{'Budget':<8}{_METRIC_HEAD}{'Acc w/ verif':<15}{'Acc w/o verif':<15}"]
    lines.append("-" * len(lines[-1].rstrip()))
    for row in result["budgets"].values():
        mark = "*" if row["source"] != "phase3" else " "
        lines.append(f"{row['budget']:<7}{mark}{_metric_cells(row)}"
                     f"{_acc_n(row['with_verification']):<15}"
                     f"{_acc_n(row['without_verification']):<15}")
    lines.append("Setup/Comp/Verif = mean tokens per phase; Verif% = solutions with a "
                 "verification phase; Arith err = wrong explicit steps / checked steps"
                 + ("; * = phase-1 budget" if any(r["source"] != "phase3"
                                                   for r in result["budgets"].values()) else ""))
    return "\n".join(line.rstrip() for line in lines)


def format_window_table(result: dict) -> str:
    window = result["window"]
    if window is None:
        return "What changes at the cliff: no window with a positive gain in the cliff grid."
    lo, hi = window["from"], window["to"]
    lines = [f"What changes at the cliff: window {lo} → {hi} ({window['chosen_by']}); solutions "
             f"at budget {window['measured_at_budget']} grouped by length:",
             f"{'Group':<20}{'n':>4}{f'@{lo}':>7}{f'@{hi}':>7}{'Gain':>6} {_METRIC_HEAD}"]
    lines.append("-" * len(lines[-1].rstrip()))
    for name, row in result["groups"].items():
        label = f"{name} ({row['length']})"
        lines.append(f"{label:<20}{row['n']:>4}{_pct(row['accuracy_at_window_start'], 7)}"
                     f"{_pct(row['accuracy_at_window_end'], 7)}{_pct(row['gain_share'], 6)} "
                     f"{_metric_cells(row)}")
    lines.append(f"@{lo}/@{hi} = accuracy of the group at the window's budgets; Gain = the "
                 "group's share of the window's accuracy gain; other columns at budget "
                 f"{window['measured_at_budget']}")
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------- running


def token_counter(model: str, data_dir: Path) -> Callable[[str], int]:
    tokenizer = utils.load_tokenizer(model, data_dir)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


def analyse(model: str, results_dir: Path, data_dir: Path, include_phase1: bool = False,
            count_tokens: Callable[[str], int] | None = None
            ) -> tuple[dict, list[Path], int | None]:
    """The structure analysis of one model's cliff records (nothing written), the record files
    it read, and the seed of the cliff run."""
    summary, records, paths = load_cliff(results_dir, model)
    sources = dict.fromkeys(records, "phase3")
    note = None
    if include_phase1:
        extra, extra_paths, note = load_phase1_extra(results_dir, model, records)
        sources.update(dict.fromkeys(extra, "phase1"))
        records, paths = {**records, **extra}, [*paths, *extra_paths]
    counter = count_tokens or token_counter(model, data_dir)
    analyze = make_analyzer(counter)
    cliff_records = {b: r for b, r in records.items() if sources[b] == "phase3"}
    window = cliff_window(summary)
    if window is not None:
        window["measured_at_budget"] = max(cliff_records)
    result = {
        "phase": "phase3_structure", "model": summary.get("model", model),
        "dataset": summary.get("dataset"),
        "token_counter": f"{model} tokenizer" if count_tokens is None else "custom token counter",
        "budgets": per_budget(records, analyze, sources),
        "window": window,
        "groups": compare_around_window(cliff_records, window, analyze) if window else None,
        "phase1_note": note,
    }
    return result, paths, summary.get("provenance", {}).get("seed")


def build_parser() -> Parser:
    defaults = RunConfig()
    parser = Parser(prog="phase3_structure.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=defaults.model,
                        help="the model phase3_cliff.py ran (default: %(default)s)")
    parser.add_argument("--results-dir", type=Path, default=defaults.results_dir)
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    parser.add_argument("--include-phase1", action="store_true",
                        help="add phase-1 budgets outside the cliff grid to the per-budget table")
    return parser


def write_result(result: dict, paths: list[Path], seed: int | None, args: argparse.Namespace,
                 started: float) -> Path:
    config = {"model": args.model, "results_dir": str(args.results_dir),
              "data_dir": str(args.data_dir), "include_phase1": args.include_phase1}
    result["provenance"] = store.provenance(
        config, seed=seed, wall_time_s=time.perf_counter() - started, record_files=paths,
        extra={"rules": "structure.py (step phases), arith_check.py (explicit steps)"})
    path = store.phase3_structure_path(args.results_dir, model_tag(args.model))
    store.write_json(path, _finite(result))
    return path


def _finite(obj):
    """NaN/inf -> None, so the JSON stays strict."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        result, paths, seed = analyse(args.model, args.results_dir, args.data_dir,
                                      args.include_phase1)
        path = write_result(result, paths, seed, args, started)
    except (store.ResultsError, utils.ModelLoadError) as exc:
        return fail(str(exc))
    print(format_budget_table(result))
    if result["phase1_note"]:
        print(f"(phase-1 budgets not added: {result['phase1_note']})")
    print()
    print(format_window_table(result))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
