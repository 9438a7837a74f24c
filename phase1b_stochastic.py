"""Phase 1b: stochastic verification — is the accuracy plateau real or sampling noise?

Run:  python phase1b_stochastic.py --model qwen-1.5b --samples 5
Demo: python phase1b_stochastic.py --model smollm2-135m --dataset arith --num-samples 24 \
          --budgets 128 256 --samples 5

Every problem is sampled k times (--samples; --temperature 0.7 / --top-p 0.9 by default) up to
the largest budget; each smaller budget is read off the same rollouts. Per budget the summary
gives the mean accuracy over the k sample runs and its std (the "Avg Success / Std Dev" pair),
a bootstrap CI over problems, the distribution of per-problem success rates, pass@k and maj@k;
consecutive budgets are compared problem by problem (paired bootstrap CI and test) and a
one-line verdict says whether the plateau is genuine. With --samples 1 the std is n/a.
Writes results/phase1b_stochastic_{model}_budget{B}.json (records carry `sample` 0..k-1) and
results/phase1b_summary_{model}.json. Interrupted runs resume; finished runs are reused unless
--overwrite (changing only --min-effect / --bootstrap-resamples re-analyses the stored records).
With --decoding power every (problem, sample, budget) is one power-sampling chain instead
(study/strategies/power.py); files are then named with the model tag plus "-power".
"""

from __future__ import annotations

import sys

from config import StudyConfig
from study import store
from study.analysis import plateau
from study.cli import config_parser, run_command
from study.data.datasets import dataset_spec
from study.report import console, forcing_output
from study.run import runner
from study.schema import Phase1bSummary
from study.strategies import rollouts
from study.tables import by_budget, ci_text, pct, signed_pp, text_table

PHASE = "phase1b"
# Flags: model, data, phase-1b budgets/samples/sampling, the plateau statistics, paths, run.
SHOWN = ("seed", "model", "data", "forcing", "phase1b", "statistics", "paths.results_dir",
         "paths.data_dir", "run", "generation.decoding", "power",
         "thinking")
PARSER = config_parser("phase1b_stochastic.py", __doc__, SHOWN, own=PHASE)


def format_table(summary: Phase1bSummary) -> str:
    """The spec's Budget / Avg Success / Std Dev table plus CI, pass@1, pass@k, maj@k."""
    k = summary["samples"]
    columns = [("Budget", "<8"), ("Avg Success", ">12"), ("Std Dev", ">9"), ("95% CI", ">16"),
               ("pass@1", ">9"), (f"pass@{k}", ">9"), (f"maj@{k}", ">9"), ("Cut", ">7")]
    budgets = by_budget(summary["budgets"])
    rows = [[r["budget"], pct(r["mean_accuracy"], missing="n/a"),
             pct(r["std_accuracy"], missing="n/a"), ci_text(r["ci_low"], r["ci_high"]),
             pct(r["pass_at_k"]["1"], missing="n/a"), pct(r["pass_at_k"][str(k)], missing="n/a"),
             pct(r["maj_at_k"][str(k)], missing="n/a"), pct(r["hit_budget_rate"], 0)]
            for r in budgets]
    if thinking := summary.get("thinking"):  # a thinking model: closed-thinking share
        columns.append(("Closed", ">7"))
        for row, r in zip(rows, budgets):
            row.append(console.closed_share(thinking, r["budget"]))
    n = budgets[0]["n_problems"] if budgets else 0
    lines = [text_table(columns, rows),
             f"n = {n} problems x {k} samples; Std Dev: accuracy spread over the {k} sample runs",
             "CI: bootstrap over problems; Cut: share of generations stopped by the budget"]
    for row in budgets:
        dist = " ".join(f"{key}:{count}" for key, count in row["success_histogram"].items())
        lines.append(f"problems solved j/{k} times at {row['budget']}: {dist}")
    for c in summary["comparisons"]:
        ci = ci_text(c["ci_low"], c["ci_high"], signed=True)
        lines.append(f"{c['from']} -> {c['to']}: success {signed_pp(c['mean_diff'])} pp, 95% CI "
                     f"{ci}, p={c['p_value']:.3g} ({c['test']}) -> "
                     f"{'plateau' if c['is_plateau'] else 'not a plateau'}")
    lines.append(f"verdict: {summary['verdict']}")
    return "\n".join(lines) + forcing_output.comparison_section(summary)


def run(cfg: StudyConfig) -> Phase1bSummary:
    """Generate (or resume, or reuse) the k-sample rollouts, write records and summary, print."""
    if cfg.phase1b.temperature == 0 and cfg.phase1b.samples > 1:
        print("warning: --temperature 0 is greedy decoding, so all samples of a problem are "
              "identical and the std is 0", file=sys.stderr)
    results, tag = cfg.paths.results_dir, cfg.model_tag
    summary_path = store.phase1b_summary_path(results, tag)
    plan = rollouts.plan_for(cfg, PHASE)

    kind = dataset_spec(cfg.data.dataset, cfg.data.answer_kind).answer_kind  # maj@k's rule

    def summarize(records: dict) -> dict:
        return plateau.summarize(records, cfg.statistics, cfg.seed, kind)

    output = runner.run_budget_phase(
        cfg, plan, lambda b: store.phase1b_record_path(results, tag, b), summary_path, summarize)
    if output.reused and output.summary.get("analysis") != plateau.analysis_settings(
            cfg.statistics, cfg.seed, kind):
        # Same rollouts, new analysis settings: re-read the stored records instead of generating.
        records = {b: store.read_records(store.phase1b_record_path(results, tag, b))
                   for b in plan.budgets}
        output.summary.update(summarize(records))
        store.write_json(summary_path, output.summary)
    return console.show_phase("phase 1b", output, results, format_table(output.summary))


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
