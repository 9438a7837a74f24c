"""The depth sweep: the phase-1 machinery run once per number of decoder layers kept.

Each depth is its own generating run (``runner.run_budget_phase`` with ``model.num_layers``
set), with its own rollouts, record files and run summary under the cut model's tag
(``{model}-L{n}``); the full depth uses the plain tag. A depth's rollouts are taken from phase 1
of the same depth when those are the very tokens it would generate. The critical depth is found
the way the saturation budget is: the fewest layers whose accuracy lies within the best depth's
confidence interval (``stats.saturation_budget`` with depths as the axis).
"""

from __future__ import annotations

import time

import utils
from config import StudyConfig
from study import store
from study.analysis import stats
from study.errors import ConfigError
from study.run import runner
from study.run.phase_run import PhaseOutput
from study.schema import Record
from study.schema_analyses import DepthRun, DepthSummary
from study.strategies import rollouts
from study.strategies.rollouts import GenerationPlan
from study.tables import ci_text, num, pct, text_table

PHASE = "depth"
SOURCE_PHASE = "phase1"  # rollouts of the same depth and decoding are reused from here
# Default grid as shares of the model's depth: coarse where models usually fail, fine near the top.
DEFAULT_SHARES = (0.4, 0.6, 0.8, 0.9, 1.0)


def resolve_layers(cfg: StudyConfig, total: int) -> tuple[int, ...]:
    """The depths to run: ``depth.layers``, or DEFAULT_SHARES of ``total``; checked."""
    wanted = cfg.depth.layers or [max(1, round(s * total)) for s in DEFAULT_SHARES]
    layers = tuple(sorted(set(wanted)))
    bad = [n for n in layers if not 1 <= n <= total]
    if bad:
        raise ConfigError(f"--layers {' '.join(map(str, bad))}: {cfg.model.name} has {total} "
                          f"decoder layers; use depths from 1 to {total}")
    return layers


def depth_config(cfg: StudyConfig, layers: int, total: int) -> StudyConfig:
    """The config of one depth; the whole model keeps ``num_layers`` unset (its plain tag)."""
    return cfg.replace({"model.num_layers": None if layers == total else layers})


def run_depth(cfg: StudyConfig, layers: int, total: int) -> tuple[PhaseOutput, DepthRun]:
    """Run (or resume, or reuse) one depth at the sweep's budgets."""
    cut = depth_config(cfg, layers, total)
    results, tag = cut.paths.results_dir, cut.model_tag
    plan = GenerationPlan(PHASE, cfg.depth.budgets, 1, cfg.data.num_samples,
                          rollouts.sampling(cfg.generation.temperature, cfg.generation.top_p))

    def from_phase1(problems):
        found = rollouts.rollouts_from_phase(cut, plan, SOURCE_PHASE, problems)
        return found.rollouts, found.source

    def summarize(by_budget: dict[int, list[Record]]) -> dict:
        return {"layers": layers,
                "budgets": {str(b): {"budget": b, **stats.budget_table_rows(
                    recs, cfg.statistics.confidence)} for b, recs in by_budget.items()}}

    path = store.depth_run_path(results, tag)
    output = runner.run_budget_phase(cut, plan, lambda b: store.depth_record_path(results, tag, b),
                                     path, summarize, seed_rollouts=from_phase1)
    prov = output.summary["provenance"]
    run: DepthRun = {"layers": layers, "summary_file": path.name, "reused": output.reused,
                     "wall_time_s": prov["wall_time_s"],
                     "generated_tokens": prov.get("generated_tokens"),
                     "tokens_per_s": prov.get("tokens_per_s"),
                     "reused_rollouts_from": prov.get("reused_rollouts_from")}
    return output, run


def sweep(cfg: StudyConfig) -> DepthSummary:
    """Every depth in turn, then the sweep summary (written to the store)."""
    started = time.perf_counter()
    cfg = rollouts.on_hf_engine(cfg, "the depth sweep")  # cutting layers is HF-only
    total = utils.model_depth(cfg.model.name, cfg.paths.data_dir)
    layers = resolve_layers(cfg, total)
    outputs, runs, files, device = {}, {}, [], None
    for n in layers:
        outputs[n], runs[str(n)] = run_depth(cfg, n, total)
        device = device or outputs[n].summary["provenance"].get("device")
        files += [store.depth_record_path(cfg.paths.results_dir,
                                          depth_config(cfg, n, total).model_tag, b)
                  for b in cfg.depth.budgets]
    budgets = {}
    for b in cfg.depth.budgets:
        rows = {str(n): {"layers": n, **outputs[n].summary["budgets"][str(b)]} for n in layers}
        points = {n: (r["accuracy"], r["ci_low"], r["ci_high"])
                  for n, r in ((int(k), v) for k, v in rows.items())}
        budgets[str(b)] = {"budget": b, "depths": rows,
                           "critical_depth": stats.saturation_budget(points)}
    base = cfg.replace({"model.num_layers": None})
    summary: DepthSummary = {
        "phase": PHASE, "model": cfg.model.name, "dataset": cfg.data.dataset,
        "model_layers": total, "layers": list(layers), "budgets": budgets, "runs": runs,
        "provenance": store.provenance(
            base.to_dict(), seed=cfg.seed, wall_time_s=time.perf_counter() - started,
            device=device, record_files=files,
            extra={"model_layers": total, "layers": list(layers),
                   "budgets": list(cfg.depth.budgets)}),
    }
    store.write_json(store.depth_summary_path(cfg.paths.results_dir, base.model_tag), summary)
    return summary


def format_table(summary: DepthSummary) -> str:
    """One accuracy-by-depth table per budget, the critical depth starred."""
    out = []
    for block in sorted(summary["budgets"].values(), key=lambda b: b["budget"]):
        crit = block["critical_depth"]
        rows = [[f"{r['layers']}{' *' if r['layers'] == crit else ''}", pct(r["accuracy"]),
                 ci_text(r["ci_low"], r["ci_high"]), num(r["avg_tokens"]),
                 pct(r["hit_budget_rate"], 0),
                 num(summary["runs"][str(r["layers"])]["wall_time_s"])]
                for r in sorted(block["depths"].values(), key=lambda r: r["layers"])]
        columns = [("Layers", "<9"), ("Accuracy", ">10"), ("95% CI", ">16"),
                   ("Avg Tokens", ">12"), ("Cut", ">7"), ("Wall s", ">9")]
        n = next(iter(block["depths"].values()))["n"]
        out.append(f"Budget {block['budget']} tokens, n = {n} problems, model depth "
                   f"{summary['model_layers']}:\n{text_table(columns, rows)}\n"
                   f"critical depth (* fewest layers within the best depth's CI): {crit}")
    return "\n\n".join(out)
