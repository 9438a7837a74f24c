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
from study.schema_analyses import ScalingSummary
from study.strategies import rollouts
from study.tables import flat_from, is_flat

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


def format_table(summary: Phase1Summary, fits: ScalingSummary | None = None) -> str:
    """The accuracy table and the saturation budget, or where the curve is flat from when the
    constant fit is best (``fits``: the scaling summary of these results)."""
    n = next(iter(summary["budgets"].values()))["n"]
    saturation = (flat_from(summary["budgets"]) if is_flat(fits)
                  else f"saturation budget: {summary.get('saturation_budget')}")
    return (f"{console.accuracy_table(summary['budgets'], summary.get('thinking'))}\n"
            f"n = {n} problems; Cut = share of generations stopped by the budget; {saturation}"
            f"{forcing_output.comparison_section(summary)}")


def run(cfg: StudyConfig) -> Phase1Summary:
    """Generate (or resume, or reuse) phase 1, write its files, print its table."""
    results, tag = cfg.paths.results_dir, cfg.model_tag
    output = runner.run_budget_phase(
        cfg, rollouts.plan_for(cfg, PHASE), lambda b: store.phase1_record_path(results, tag, b),
        store.phase1_combined_path(results, tag),
        lambda by_budget: summarize(by_budget, cfg.statistics.confidence))
    # Curve fits and per-problem emergence, from the records just written (or reused), before
    # the table, which says "flat" when they find no budget dependence; a shard still waiting
    # for the others has no combined records yet.
    fits = (scaling.analyse(cfg) if store.phase1_combined_path(results, tag).exists()
            else None)
    summary = console.show_phase("phase 1", output, results, format_table(output.summary, fits))
    if fits is not None:
        print(scaling.format_scaling(fits))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
