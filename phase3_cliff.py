"""Phase 3, step 1: the cliff on a fine budget grid — where does accuracy climb fastest?

Run:  python phase3_cliff.py --model qwen-1.5b
Demo: python phase3_cliff.py --model smollm2-135m --dataset arith --num-samples 40 \
          --budgets 16 32 48 64 80 96 112 128

Budgets default to 96..256 tokens in steps of 16; pass --budgets to zoom in elsewhere (a small
model's cliff sits lower). Every budget is read off one rollout per problem. When phase 1 already
made those rollouts (same model, dataset, seed, precision, sampling and prompts, and at least as
long as the largest cliff budget), they are reused and nothing is generated; otherwise the
problems are generated once, up to the largest cliff budget.

Writes results/phase3_cliff_{model}_budget{B}.json per budget and
results/phase3_cliff_summary_{model}.json: accuracy per budget (Wilson CI), gain per token between
consecutive budgets (paired bootstrap CI over problems), the steepest steps, and the narrowest
budget window holding half of the total gain.
"""

from __future__ import annotations

import sys
from functools import partial

import numpy as np

from study import runner
from study import stats
from study import store
from study.cli import Parser, add_run_args, fail, run_config_from_args
from config import CLIFF_BUDGETS, RunConfig, SamplingConfig

PHASE = "phase3"
SOURCE_PHASE = "phase1"
TOP_STEEPEST = 3
BOOTSTRAP_RESAMPLES = 2000
REUSED_NOTE = "derived from phase-1 rollouts (no new generation)"


# ---------------------------------------------------------------------------- summary


def correct_matrix(records: list[dict]) -> np.ndarray:
    """problems x samples 0/1 matrix, problems in the order the records list them."""
    rows: dict[str, dict[int, bool]] = {}
    for record in records:
        rows.setdefault(record["problem_id"], {})[record["sample"]] = bool(record["correct"])
    return np.array([[row[s] for s in sorted(row)] for row in rows.values()], dtype=float)


def summarize(by_budget: dict[int, list[dict]], seed: int = 0,
              n_resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Accuracy table, gain per token with bootstrap CIs, steepest steps, half-gain window."""
    budgets = sorted(by_budget)
    rows = {str(b): {"budget": b, **runner.budget_table_rows(by_budget[b])} for b in budgets}
    accuracy = {b: rows[str(b)]["accuracy"] for b in budgets}
    gains = stats.bootstrap_gain_per_token({b: correct_matrix(by_budget[b]) for b in budgets},
                                           n_resamples=n_resamples, seed=seed)
    total = accuracy[budgets[-1]] - accuracy[budgets[0]] if budgets else 0.0
    window = stats.half_gain_window(accuracy)
    return {
        "budgets": rows,
        "gains": gains,
        "steepest": stats.steepest_windows(gains, TOP_STEEPEST),
        "total_gain": total,
        "half_gain_window": list(window) if window else None,
        "half_gain_window_gain": accuracy[window[1]] - accuracy[window[0]] if window else None,
        "bootstrap": {"resamples": n_resamples, "seed": seed, "unit": "problem",
                      "paired_across_budgets": True},
    }


# ---------------------------------------------------------------------------- printing


def format_accuracy_table(summary: dict) -> str:
    lines = [f"{'Budget':<8}{'Accuracy':>10}{'95% CI':>18}{'Avg Tokens':>12}{'Cut':>8}",
             "-" * 56]
    for row in sorted(summary["budgets"].values(), key=lambda r: r["budget"]):
        ci = f"[{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"
        lines.append(f"{row['budget']:<8}{100 * row['accuracy']:>9.1f}%{ci:>18}"
                     f"{row['avg_tokens']:>12.1f}{100 * row['hit_budget_rate']:>7.0f}%")
    n = next(iter(summary["budgets"].values()))["n"]
    lines.append(f"n = {n} solutions per budget; Cut = share stopped by the budget")
    return "\n".join(lines)


def _ci(row: dict) -> str:
    if "ci_low" not in row:
        return ""
    return f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]"


def format_gains(summary: dict) -> str:
    if not summary["gains"]:
        return "Gain per token: needs at least two budgets."
    lines = ["Gain per token between consecutive budgets (95% paired bootstrap CI over problems):",
             f"  {'Window':<14}{'Gain':>9}{'Per token':>12}  95% CI"]
    for row in summary["gains"]:
        window = f"{row['from']} → {row['to']}"
        lines.append(f"  {window:<14}{row['gain']:>+9.3f}{row['gain_per_token']:>12.4f}  "
                     f"{_ci(row)}")
    return "\n".join(lines)


def format_steepest(summary: dict) -> str:
    lines = ["Steepest improvements:"]
    for row in summary["steepest"]:
        lines.append(f"  {row['from']} → {row['to']}: {row['gain_per_token']:.4f} accuracy per "
                     f"token {_ci(row)}".rstrip())
    window = summary.get("half_gain_window")
    total = summary["total_gain"]
    if window:
        lo, hi = window
        lines.append(f"Half of the total gain ({total:+.3f}) lies in {lo} → {hi} "
                     f"({hi - lo} tokens, {summary['half_gain_window_gain']:+.3f}).")
    elif summary["gains"]:
        lines.append(f"No half-gain window: total gain over the grid is {total:+.3f}.")
    return "\n".join(lines)


def rollout_note(summary: dict, reason: str | None = None) -> str:
    """One line on where the rollouts came from (the one-rollout property, made visible)."""
    prov = summary["provenance"]
    source, generated = prov.get("reused_rollouts_from"), prov.get("rollouts_generated", 0)
    largest = prov["rollout_config"]["max_new_tokens"]
    if source and not generated:
        return f"All cliff budgets {REUSED_NOTE}: {source}."
    if source:
        return (f"Rollouts partly taken from phase 1 ({source}); the other {generated} were "
                f"generated once to {largest} tokens.")
    note = (f"Generated each problem once to {largest} tokens; every cliff budget is read off "
            "those rollouts.")
    if generated == 0:
        note = f"Resumed stored phase-3 rollouts (max {largest} tokens); nothing generated."
    return note + (f" (Phase-1 rollouts not reused: {reason}.)" if reason and generated else "")


def format_report(summary: dict, reason: str | None = None) -> str:
    return "\n\n".join([format_accuracy_table(summary), format_gains(summary),
                        format_steepest(summary), rollout_note(summary, reason)])


# ---------------------------------------------------------------------------- running


def run(cfg: RunConfig, overwrite: bool = False, device: str | None = None,
        progress: bool = True) -> tuple[runner.PhaseOutput, str | None]:
    """Run (or reuse) phase 3; also returns why phase-1 rollouts were not (all) reused."""
    reuse: dict[str, runner.ReusedRollouts] = {}

    def from_phase1(problems):
        reuse["phase1"] = runner.rollouts_from_phase(cfg, PHASE, SOURCE_PHASE, problems)
        return reuse["phase1"].rollouts, reuse["phase1"].source

    output = runner.run_budget_phase(
        cfg, PHASE, lambda b: store.phase3_cliff_record_path(cfg.results_dir, cfg.model_tag, b),
        store.phase3_cliff_summary_path(cfg.results_dir, cfg.model_tag),
        partial(summarize, seed=cfg.seed), overwrite=overwrite, device=device, progress=progress,
        seed_rollouts=from_phase1)
    reason = reuse["phase1"].reason if "phase1" in reuse else None
    return output, reason


def build_parser() -> Parser:
    parser = Parser(prog="phase3_cliff.py", description=__doc__.split("\n\n")[0])
    add_run_args(parser, CLIFF_BUDGETS, SamplingConfig())
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = run_config_from_args(args)
        output, reason = run(cfg, args.overwrite, args.device, progress=not args.quiet)
    except runner.USER_ERRORS as exc:
        return fail(str(exc))
    report = format_report(output.summary, reason)
    runner.print_phase_output("phase 3", output, cfg.results_dir, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
