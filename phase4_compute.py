"""Phase 4: compute-matched comparison — which way of spending tokens buys the most accuracy.

Run:  python phase4_compute.py --model qwen-1.5b --dataset gsm8k
Demo: python phase4_compute.py --config examples/demo.yaml --stochastic-budgets 64 128 256 \
          --samples 2 --stochastic-num-samples 20

For one model and dataset, accuracy against the mean tokens spent per problem of every strategy
that has results: longer single chains (phase 1's truncation curve; other budget modes such as
force-end when their phase-1 files exist), k samples with maj@k and pass@k (phase 1b), and power
sampling. Each point has a 95% CI; the Pareto frontier (pass@k left out: it is an oracle) is
marked. Existing results are reused; only the power-sampling runs are generated when missing:
they are the phase-1b plan (--stochastic-budgets, --samples, --stochastic-num-samples) under
--decoding power, the same files `phase1b_stochastic.py --decoding power` writes. All strategies
are scored on the problems every run has. Writes results/phase4_compute_{model}.json;
`visualize.py` draws fig11_compute_matched from it.
"""

from __future__ import annotations

import sys
import time

from config import StudyConfig
from study import store
from study.analysis import compute, plateau
from study.cli import config_parser, run_command
from study.errors import ResultsError
from study.results import how_to_make
from study.run import runner
from study.schema_analyses import ComputeSummary
from study.strategies import rollouts
from study.tables import ci_text, num, pct, text_table

PHASE = "phase4"
SHOWN = ("seed", "model", "data", "phase1b", "power", "statistics", "paths.results_dir",
         "paths.data_dir", "run")
PARSER = config_parser("phase4_compute.py", __doc__, SHOWN)


def power_run(cfg: StudyConfig) -> dict:
    """The power-sampling run (phase-1b plan, --decoding power): reused, resumed or made."""
    power = cfg.replace({"generation.decoding": "power"})
    results, tag = power.paths.results_dir, power.model_tag
    output = runner.run_budget_phase(
        power, rollouts.plan_for(power, "phase1b"),
        lambda b: store.phase1b_record_path(results, tag, b),
        store.phase1b_summary_path(results, tag),
        lambda records: plateau.summarize(records, cfg.statistics, cfg.seed))
    return output.summary


def power_chains(cfg: StudyConfig, budgets: list[int]) -> dict[int, list[dict]]:
    """The stored chains (with their proposal counts) of each power budget."""
    power = cfg.replace({"generation.decoding": "power"})
    chains = {}
    for b in budgets:
        path = store.power_rollouts_path(cfg.paths.results_dir, "phase1b", power.model_tag, b)
        if not path.exists():
            raise ResultsError(f"{path}: missing, so the tokens each power chain spent are "
                               "unknown; re-run with --overwrite")
        chains[b] = list(store.RolloutLog(path, store.read_rollout_header(path)).load().values())
    return chains


def run(cfg: StudyConfig) -> ComputeSummary:
    """Gather every strategy's points (making the power runs if missing), write, print."""
    started = time.perf_counter()
    cfg = cfg.replace({"generation.decoding": "sample"})
    results, tag, st = cfg.paths.results_dir, cfg.model_tag, cfg.statistics
    runs: list[tuple[str, dict, dict | None]] = []  # (strategy, records by budget, spent)
    sources: dict[str, str] = {}
    for mode in ["truncation", *compute.budget_modes(results, tag)]:
        mode_tag = tag if mode == "truncation" else f"{tag}-{mode}"
        path = store.phase1_combined_path(results, mode_tag)
        if not path.exists():
            print(f"skipped single chains: no phase-1 results — run "
                  f"{how_to_make('phase1', cfg.run_flags, results)}")
            continue
        summary = store.read_json(path)
        prov = summary.get("provenance", {})
        spent = prov.get("tokens_spent") if prov.get("strategy", mode) != "truncation" else None
        runs.append((mode, compute.budget_records(
            summary, lambda b, t=mode_tag: store.phase1_record_path(results, t, b)), spent))
        sources[mode] = str(path)
    samples = None
    if (p1b := store.phase1b_summary_path(results, tag)).exists():
        samples = compute.budget_records(store.read_json(p1b),
                                         lambda b: store.phase1b_record_path(results, tag, b))
        sources["majority"] = sources["pass"] = str(p1b)
    else:
        print(f"skipped k samples: no phase-1b results — run "
              f"{how_to_make('phase1b', cfg.run_flags, results)}")
    power_summary = power_run(cfg)
    power_tag = cfg.replace({"generation.decoding": "power"}).model_tag
    power_records = compute.budget_records(
        power_summary, lambda b: store.phase1b_record_path(results, power_tag, b))
    sources["power"] = str(store.phase1b_summary_path(results, power_tag))
    keep = compute.common_problems([r for _, r, _ in runs] + [power_records] +
                                   ([samples] if samples else []))
    if not keep:
        raise ResultsError("the runs share no problem; run them on the same --dataset and seed")
    points = [p for mode, records, spent in runs for p in compute.single_chain_points(
        mode, f"single chain ({mode})", records, spent, keep, st.confidence)]
    if samples:
        points += compute.sample_points(samples, keep, st, cfg.seed)
    power_pts, power_rows = compute.power_points(
        power_records, power_chains(cfg, sorted(power_records)), keep, st, cfg.seed)
    points += power_pts
    compute.mark_pareto(points)
    summary: ComputeSummary = {
        "phase": "phase4_compute", "model": cfg.model.name, "dataset": cfg.data.dataset,
        "n_problems": len(keep), "strategies": sources, "points": points, "budgets": power_rows,
        "power_settings": power_summary["provenance"].get("power", {}),
        "provenance": store.provenance(
            cfg.to_dict(), seed=cfg.seed, wall_time_s=time.perf_counter() - started,
            extra={"power_run_wall_time_s": power_summary["provenance"].get("wall_time_s"),
                   "power_run_device": power_summary["provenance"].get("device")}),
    }
    store.write_json(store.phase4_compute_path(results, tag), summary)
    print(format_table(summary))
    return summary


def format_table(summary: ComputeSummary) -> str:
    """Every point (Pareto points starred), then power sampling's cost and acceptance."""
    columns = [("Strategy", "<26"), ("B", ">6"), ("k", ">4"), ("Tokens/problem", ">16"),
               ("Accuracy", ">10"), ("95% CI", ">16"), ("Pareto", ">8")]
    rows = [[p["label"].split(", B=")[0] + (" (oracle)" if p["oracle"] else ""), p["budget"],
             p["k"], num(p["tokens_per_problem"]), pct(p["accuracy"]),
             ci_text(p["ci_low"], p["ci_high"]), "*" if p["pareto"] else ""]
            for p in sorted(summary["points"], key=lambda p: p["tokens_per_problem"])]
    lines = [text_table(columns, rows), f"n = {summary['n_problems']} problems (common to "
             "every run); tokens/problem = mean tokens spent (power: every proposed token)"]
    s = summary["power_settings"]
    for row in sorted(summary["budgets"].values(), key=lambda r: r["budget"]):
        lines.append(f"power sampling (alpha={s.get('alpha')}, {s.get('blocks')} blocks, "
                     f"{s.get('mcmc_steps')} MH steps) at {row['budget']}: acceptance "
                     f"{pct(row['acceptance_rate'])} of {row['proposals']} proposals, "
                     f"{num(row['tokens_per_chain'])} tokens per chain for "
                     f"{num(row['tokens_used'])}-token answers ({num(row['cost_ratio'])}x)")
    wall = summary["provenance"].get("power_run_wall_time_s")
    lines.append(f"power run wall time: {num(wall)} s on "
                 f"{summary['provenance'].get('power_run_device') or 'n/a'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
