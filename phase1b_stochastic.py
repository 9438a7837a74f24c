"""Phase 1b: stochastic verification — is the accuracy plateau real or sampling noise?

Run:  python phase1b_stochastic.py --model qwen-1.5b --samples 5
Demo: python phase1b_stochastic.py --model smollm2-135m --dataset arith --num-samples 24 \
          --budgets 128 256 --samples 5

Every problem is sampled k times (--samples; temperature / top_p from config.STOCHASTIC_SAMPLING)
up to the largest budget; each smaller budget is read off the same rollouts. Per budget the
summary gives the mean accuracy over the k sample runs and its std (the "Avg Success / Std Dev"
pair), a bootstrap CI over problems, the distribution of per-problem success rates, pass@k and
maj@k; consecutive budgets are compared problem by problem (paired bootstrap CI and test) and a
one-line verdict says whether the plateau is genuine. With --samples 1 the std is n/a.
Writes results/phase1b_stochastic_{model}_budget{B}.json (records carry `sample` 0..k-1) and
results/phase1b_summary_{model}.json. Interrupted runs resume; finished runs are reused unless
--overwrite (changing only --min-effect / --bootstrap-resamples re-analyses the stored records).
"""

from __future__ import annotations

import functools
import math
import sys
from itertools import pairwise

import numpy as np

from study import grading
from study import runner
from study import stats
from study import store
from study.cli import Parser, add_run_args, fail, positive_int, probability, run_config_from_args
from config import STOCHASTIC_BUDGETS, STOCHASTIC_SAMPLING, RunConfig

PHASE = "phase1b"
ALPHA = 0.05  # significance level of the paired test in the plateau criterion
CONFIDENCE = 0.95


def _number(value: float) -> float | None:
    """NaN (e.g. the std of a single run) becomes None so the summary stays strict JSON."""
    return None if value is None or math.isnan(value) else float(value)


def group_by_problem(records: list[dict]) -> list[list[dict]]:
    """Records as rows of samples (problem order kept, samples sorted); every row must hold
    samples 0..k-1 for one common k."""
    rows: dict[str, list[dict]] = {}
    for record in records:
        rows.setdefault(record["problem_id"], []).append(record)
    grouped = [sorted(row, key=lambda r: r["sample"]) for row in rows.values()]
    k = len(grouped[0]) if grouped else 0
    for row in grouped:
        if [r["sample"] for r in row] != list(range(k)):
            raise ValueError(f"problem {row[0]['problem_id']}: samples "
                             f"{[r['sample'] for r in row]}, expected 0..{k - 1}")
    return grouped


def _ci(values: np.ndarray, n_resamples: int, seed: int) -> list[float | None]:
    return [_number(x) for x in stats.bootstrap_ci(values, np.mean, n_resamples, CONFIDENCE, seed)]


def budget_summary(records: list[dict], n_resamples: int, seed: int) -> dict:
    """Run-to-run spread, per-problem success distribution, pass@k and maj@k at one budget."""
    rows = group_by_problem(records)
    correct = np.array([[r["correct"] for r in row] for row in rows], dtype=float)
    k = correct.shape[1]
    mean, std = stats.mean_std_over_runs(correct)
    ci_low, ci_high = _ci(correct, n_resamples, seed)
    pass_rows = {j: np.array([stats.pass_at_k(k, int(c), j) for c in correct.sum(axis=1)])
                 for j in range(1, k + 1)}
    # maj@j of each problem alone (0 or 1), so the same vector gives the value and its CI.
    maj_rows = {j: np.array([stats.maj_at_k([[r["predicted"] for r in row]],
                                            [row[0]["ground_truth"]], j, grading.is_equivalent)
                             for row in rows]) for j in range(1, k + 1)}
    return {
        "budget": records[0]["budget"], "n_problems": len(rows), "k": k,
        "mean_accuracy": float(mean), "std_accuracy": _number(std),
        "run_accuracies": stats.per_sample_run_accuracy(correct).tolist(),
        "ci_low": ci_low, "ci_high": ci_high,
        "success_histogram": stats.success_rate_histogram(correct),
        "pass_at_k": {str(j): float(v.mean()) for j, v in pass_rows.items()},
        "pass_at_k_ci": {str(j): _ci(v, n_resamples, seed) for j, v in pass_rows.items()},
        "maj_at_k": {str(j): float(v.mean()) for j, v in maj_rows.items()},
        "maj_at_k_ci": {str(j): _ci(v, n_resamples, seed) for j, v in maj_rows.items()},
        "accuracy_strict": float(np.mean([r["correct_strict"] for r in records])),
        "avg_tokens": float(np.mean([r["tokens_used"] for r in records])),
        "hit_budget_rate": float(np.mean([r["hit_budget"] for r in records])),
    }


def problem_success_rates(records: list[dict]) -> tuple[list[str], np.ndarray]:
    """Problem ids and the share of each problem's samples graded correct."""
    rows = group_by_problem(records)
    return [row[0]["problem_id"] for row in rows], np.array(
        [np.mean([r["correct"] for r in row]) for row in rows])


def compare_budgets(low: list[dict], high: list[dict], n_resamples: int, seed: int,
                    min_effect: float) -> dict:
    """Paired comparison of per-problem success rates (high budget minus low) with a verdict."""
    ids_low, rates_low = problem_success_rates(low)
    ids_high, rates_high = problem_success_rates(high)
    if ids_low != ids_high:
        raise ValueError("budgets hold different problems; cannot pair them")
    diff = stats.paired_difference(rates_low, rates_high, n_resamples, seed, CONFIDENCE)
    is_plateau, reason = stats.plateau_verdict(diff, min_effect, ALPHA)
    return {"from": low[0]["budget"], "to": high[0]["budget"], **diff,
            "ci_low": _number(diff["ci_low"]), "ci_high": _number(diff["ci_high"]),
            "is_plateau": is_plateau, "verdict": reason}


def plateau_criterion(min_effect: float) -> str:
    pp = f"{100 * min_effect:g} pp"
    return (f"a step is a plateau when the {CONFIDENCE:.0%} bootstrap CI of the mean per-problem "
            f"difference lies within +/-{pp}, or the paired test has p >= {ALPHA} and "
            f"|difference| < {pp}")


def overall_verdict(comparisons: list[dict], min_effect: float) -> str:
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
    return f"{head} [{steps}]; criterion: {plateau_criterion(min_effect)}"


def analysis_settings(n_resamples: int, min_effect: float, seed: int) -> dict:
    return {"bootstrap_resamples": n_resamples, "min_effect": min_effect, "alpha": ALPHA,
            "confidence": CONFIDENCE, "seed": seed}


def summarize(by_budget: dict[int, list[dict]], *, n_resamples: int = 2000,
              min_effect: float = 0.02, seed: int = 0) -> dict:
    """The phase 1b summary body (everything but phase/model/dataset/provenance)."""
    budgets = sorted(by_budget)
    rows = {str(b): budget_summary(by_budget[b], n_resamples, seed) for b in budgets}
    comparisons = [compare_budgets(by_budget[lo], by_budget[hi], n_resamples, seed, min_effect)
                   for lo, hi in pairwise(budgets)]
    return {"samples": rows[str(budgets[0])]["k"] if budgets else 0, "budgets": rows,
            "comparisons": comparisons, "criterion": plateau_criterion(min_effect),
            "verdict": overall_verdict(comparisons, min_effect),
            "analysis": analysis_settings(n_resamples, min_effect, seed)}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_table(summary: dict) -> str:
    """The spec's Budget / Avg Success / Std Dev table plus CI, pass@1, pass@k, maj@k."""
    k = summary["samples"]
    lines = [f"{'Budget':<8}{'Avg Success':>12}{'Std Dev':>9}{'95% CI':>16}{'pass@1':>9}"
             f"{f'pass@{k}':>9}{f'maj@{k}':>9}{'Cut':>7}", "-" * 79]
    budgets = sorted(summary["budgets"].values(), key=lambda r: r["budget"])
    for row in budgets:
        ci = f"[{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"
        lines.append(f"{row['budget']:<8}{_pct(row['mean_accuracy']):>12}"
                     f"{_pct(row['std_accuracy']):>9}{ci:>16}{_pct(row['pass_at_k']['1']):>9}"
                     f"{_pct(row['pass_at_k'][str(k)]):>9}{_pct(row['maj_at_k'][str(k)]):>9}"
                     f"{100 * row['hit_budget_rate']:>6.0f}%")
    n = budgets[0]["n_problems"] if budgets else 0
    lines += [f"n = {n} problems x {k} samples; Std Dev: accuracy spread over the {k} sample runs",
              "CI: bootstrap over problems; Cut: share of generations stopped by the budget"]
    for row in budgets:
        dist = " ".join(f"{key}:{count}" for key, count in row["success_histogram"].items())
        lines.append(f"problems solved j/{k} times at {row['budget']}: {dist}")
    for c in summary["comparisons"]:
        lines.append(f"{c['from']} -> {c['to']}: success {100 * c['mean_diff']:+.1f} pp, 95% CI "
                     f"[{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}], p={c['p_value']:.3g}"
                     f" ({c['test']}) -> {'plateau' if c['is_plateau'] else 'not a plateau'}")
    lines.append(f"verdict: {summary['verdict']}")
    return "\n".join(lines)


def run(cfg: RunConfig, analysis: dict, overwrite: bool = False, device: str | None = None,
        progress: bool = True) -> runner.PhaseOutput:
    """Generate (or resume, or reuse) the k-sample rollouts and write records and summary."""
    summary_path = store.phase1b_summary_path(cfg.results_dir, cfg.model_tag)
    summarize_fn = functools.partial(summarize, n_resamples=analysis["bootstrap_resamples"],
                                     min_effect=analysis["min_effect"], seed=analysis["seed"])
    output = runner.run_budget_phase(
        cfg, PHASE, lambda b: store.phase1b_record_path(cfg.results_dir, cfg.model_tag, b),
        summary_path, summarize_fn, overwrite=overwrite, device=device, progress=progress)
    if output.reused and output.summary.get("analysis") != analysis:
        # Same rollouts, new analysis settings: re-read the stored records instead of generating.
        records = {b: store.read_json(store.phase1b_record_path(cfg.results_dir, cfg.model_tag, b))
                   for b in cfg.budgets}
        output.summary.update(summarize_fn(records))
        store.write_json(summary_path, output.summary)
    return output


def build_parser() -> Parser:
    parser = Parser(prog="phase1b_stochastic.py", description=__doc__.split("\n\n")[0])
    add_run_args(parser, STOCHASTIC_BUDGETS, STOCHASTIC_SAMPLING)
    parser.add_argument("--samples", type=positive_int, default=5,
                        help="samples per problem, k (default: %(default)s; k >= 2 for a std)")
    parser.add_argument("--bootstrap-resamples", type=positive_int, default=2000,
                        help="bootstrap resamples for every CI (default: %(default)s)")
    parser.add_argument("--min-effect", type=probability, default=0.02,
                        help="plateau criterion: largest accuracy change that still counts as "
                        "flat, as a fraction (default: %(default)s = 2 pp)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.temperature == 0 and args.samples > 1:
        print("warning: --temperature 0 is greedy decoding, so all samples of a problem are "
              "identical and the std is 0", file=sys.stderr)
    analysis = analysis_settings(args.bootstrap_resamples, args.min_effect, args.seed)
    try:
        cfg = run_config_from_args(args, samples_per_problem=args.samples)
        output = run(cfg, analysis, args.overwrite, args.device, progress=not args.quiet)
    except runner.USER_ERRORS as exc:
        return fail(str(exc))
    runner.print_phase_output("phase 1b", output, cfg.results_dir, format_table(output.summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
