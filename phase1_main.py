"""Phase 1: the saturation curve — accuracy at each token budget.

Run:  python phase1_main.py --model qwen-1.5b --dataset gsm8k
Demo: python phase1_main.py --model smollm2-135m --dataset arith --num-samples 40 \
          --budgets 16 32 64 128 256 512

Each problem is generated once, greedily, up to the largest budget; every smaller budget is read
off the same rollout (identical to a separate run with that max_new_tokens). With
--budget-mode force-end|force-continue the answer is forced at each budget
(study.strategies.forcing) and the forced curve is printed beside the truncation curve of the same
rollouts. Writes results/phase1_main_{model}_budget{B}.json per budget and
results/phase1_combined_{model}.json, then fits the curve and scores each problem's emergence
(results/phase1_scaling_{model}.json). Interrupted runs resume where they stopped; a finished run is
reused unless --overwrite.
"""

from __future__ import annotations

import sys

from config import StudyConfig
from study import store
from study.analysis import scaling, stats
from study.cli import config_parser, run_command
from study.report import console, forcing_output
from study.run import runner
from study.schema import Phase1Summary, Record
from study.strategies import rollouts

PHASE = "phase1"
# Flags this script shows: the model, the data, decoding, phase-1 budgets, paths and run options.
SHOWN = ("seed", "model", "data", "generation", "forcing", "phase1", "paths.results_dir",
         "paths.data_dir", "run", "statistics.bootstrap_resamples",  # resamples: p_gold's CI
         "power", "thinking")
PARSER = config_parser("phase1_main.py", __doc__, SHOWN, own=PHASE)


def summarize(by_budget: dict[int, list[Record]], confidence: float) -> dict:
    """Per-budget accuracy with Wilson CIs, and the saturation budget."""
    rows = {str(b): {"budget": b, **stats.budget_table_rows(recs, confidence)}
            for b, recs in by_budget.items()}
    points = {int(b): (r["accuracy"], r["ci_low"], r["ci_high"]) for b, r in rows.items()}
    return {"budgets": rows, "saturation_budget": stats.saturation_budget(points)}


def format_table(summary: Phase1Summary) -> str:
    """The accuracy table and the saturation budget."""
    n = next(iter(summary["budgets"].values()))["n"]
    return (f"{console.accuracy_table(summary['budgets'], summary.get('thinking'))}\n"
            f"n = {n} problems; Cut = share of generations stopped by the budget; "
            f"saturation budget: {summary.get('saturation_budget')}"
            f"{forcing_output.comparison_section(summary)}")


def run(cfg: StudyConfig) -> Phase1Summary:
    """Generate (or resume, or reuse) phase 1, write its files, print its table."""
    results, tag = cfg.paths.results_dir, cfg.model_tag
    output = runner.run_budget_phase(
        cfg, rollouts.plan_for(cfg, PHASE), lambda b: store.phase1_record_path(results, tag, b),
        store.phase1_combined_path(results, tag),
        lambda by_budget: summarize(by_budget, cfg.statistics.confidence))
    summary = console.show_phase("phase 1", output, results, format_table(output.summary))
    # Curve fits and per-problem emergence, from the records just written (or reused); a shard
    # still waiting for the others has no combined records yet.
    if store.phase1_combined_path(results, tag).exists():
        print(scaling.format_scaling(scaling.analyse(cfg)))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
