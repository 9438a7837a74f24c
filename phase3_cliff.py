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

from config import StudyConfig
from study import store
from study.analysis import cliff
from study.cli import config_parser, run_command
from study.report import console, forcing_output
from study.run import runner
from study.schema import CliffSummary
from study.strategies import rollouts

PHASE = "phase3"
SOURCE_PHASE = "phase1"  # whose rollouts the cliff grid is read from when they are long enough
REUSED_NOTE = "derived from phase-1 rollouts (no new generation)"
# Flags: model, data, decoding (must match phase 1 for reuse), the cliff grid, paths, run.
SHOWN = ("seed", "model", "data", "generation", "forcing", "phase3.budgets",
         "statistics.bootstrap_resamples", "paths.results_dir", "paths.data_dir", "run", "power",
         "thinking")
PARSER = config_parser("phase3_cliff.py", __doc__, SHOWN, own=PHASE)


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
    if summary["gains"] and not cliff.has_cliff(summary):
        lines.append("No cliff: no step's gain per token has a 95% CI above 0.")
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


def format_report(summary: CliffSummary, reason: str | None = None) -> str:
    n = next(iter(summary["budgets"].values()))["n"]
    table = (f"{console.accuracy_table(summary['budgets'], summary.get('thinking'))}\n"
             f"n = {n} solutions per budget; Cut = share stopped by the budget")
    return "\n\n".join([table, format_gains(summary),
                        format_steepest(summary), rollout_note(summary, reason)]) \
        + forcing_output.comparison_section(summary)


# ---------------------------------------------------------------------------- running


def run(cfg: StudyConfig) -> CliffSummary:
    """Run (or reuse) phase 3 and print its report."""
    plan = rollouts.plan_for(cfg, PHASE)
    results, tag = cfg.paths.results_dir, cfg.model_tag
    reuse: dict[str, rollouts.ReusedRollouts] = {}

    def from_phase1(problems):
        reuse[SOURCE_PHASE] = rollouts.rollouts_from_phase(cfg, plan, SOURCE_PHASE, problems)
        return reuse[SOURCE_PHASE].rollouts, reuse[SOURCE_PHASE].source

    output = runner.run_budget_phase(
        cfg, plan, lambda b: store.phase3_cliff_record_path(results, tag, b),
        store.phase3_cliff_summary_path(results, tag),
        lambda records: cliff.summarize(records, cfg.statistics, cfg.seed),
        seed_rollouts=from_phase1)
    reason = reuse[SOURCE_PHASE].reason if SOURCE_PHASE in reuse else None
    return console.show_phase("phase 3", output, results, format_report(output.summary, reason))


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
