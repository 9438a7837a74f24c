"""Phase 1: the saturation curve — accuracy at each token budget.

Run:  python phase1_main.py --model qwen-1.5b --dataset gsm8k
Demo: python phase1_main.py --model smollm2-135m --dataset arith --num-samples 40 \
          --budgets 16 32 64 128 256 512

Each problem is generated once, greedily, up to the largest budget; every smaller budget is read
off the same rollout (identical to a separate run with that max_new_tokens). Writes
results/phase1_main_{model}_budget{B}.json per budget and results/phase1_combined_{model}.json.
Interrupted runs resume where they stopped; a finished run is reused unless --overwrite.
"""

from __future__ import annotations

import sys

from study import runner
from study import stats
from study import store
from study.cli import Parser, add_run_args, fail, run_config_from_args
from config import MAIN_BUDGETS, RunConfig, SamplingConfig

PHASE = "phase1"


def summarize(by_budget: dict[int, list[dict]]) -> dict:
    """Per-budget accuracy with Wilson CIs, and the saturation budget."""
    rows = {str(b): {"budget": b, **runner.budget_table_rows(recs)}
            for b, recs in by_budget.items()}
    points = {int(b): (r["accuracy"], r["ci_low"], r["ci_high"]) for b, r in rows.items()}
    return {"budgets": rows, "saturation_budget": stats.saturation_budget(points)}


def format_table(summary: dict) -> str:
    """The spec's Budget / Accuracy / Avg Tokens table, plus the 95 % CI and the cut rate."""
    lines = [f"{'Budget':<8}{'Accuracy':>10}{'95% CI':>18}{'Avg Tokens':>12}{'Cut':>8}",
             "-" * 56]
    for row in sorted(summary["budgets"].values(), key=lambda r: r["budget"]):
        ci = f"[{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"
        lines.append(f"{row['budget']:<8}{100 * row['accuracy']:>9.1f}%{ci:>18}"
                     f"{row['avg_tokens']:>12.1f}{100 * row['hit_budget_rate']:>7.0f}%")
    n = next(iter(summary["budgets"].values()))["n"]
    lines.append(f"n = {n} problems; Cut = share of generations stopped by the budget; "
                 f"saturation budget: {summary.get('saturation_budget')}")
    return "\n".join(lines)


def run(cfg: RunConfig, overwrite: bool = False, device: str | None = None,
        progress: bool = True) -> runner.PhaseOutput:
    return runner.run_budget_phase(
        cfg, PHASE, lambda b: store.phase1_record_path(cfg.results_dir, cfg.model_tag, b),
        store.phase1_combined_path(cfg.results_dir, cfg.model_tag), summarize,
        overwrite=overwrite, device=device, progress=progress)


def build_parser() -> Parser:
    parser = Parser(prog="phase1_main.py", description=__doc__.split("\n\n")[0])
    add_run_args(parser, MAIN_BUDGETS, SamplingConfig())
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = run_config_from_args(args)
        output = run(cfg, args.overwrite, args.device, progress=not args.quiet)
    except runner.USER_ERRORS as exc:
        return fail(str(exc))
    runner.print_phase_output("phase 1", output, cfg.results_dir, format_table(output.summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
