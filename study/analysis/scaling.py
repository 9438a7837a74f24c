"""Phase 1's scaling analysis: curve fits and per-problem emergence, from the stored records.

``analyse(cfg)`` reads phase 1's summary and record files (no model), fits the curves of
``study.analysis.fits`` (and the constant they are compared with) to the per-problem outcomes,
scores every problem's trajectory (``study.analysis.emergence``; on correctness, and on ``p_gold``
when every record carries one) and writes ``results/phase1_scaling_{model}.json``. A summary made
from the same phase-1 results under the same settings is reused. ``format_scaling`` is its console
text; ``scaling_table`` its report section.
"""

from __future__ import annotations

import time

import numpy as np

from config import StudyConfig
from study import store
from study.analysis import emergence, fits, stats
from study.schema import Record
from study.schema_analyses import EmergenceBlock, ScalingSummary
from study.tables import FLAT, MISSING, ci_text, markdown_table, num, pct, text_table

FIT_LABELS = {"log-linear": "log-linear", "piecewise": "piecewise (1 break)",
              "saturating": "saturating", "constant": "constant"}


def problem_matrix(by_budget: dict[int, list[Record]], field: str) -> tuple[list[str], np.ndarray,
                                                                            int]:
    """(problem ids, problems x budgets sums of ``field`` over samples, samples per cell)."""
    budgets = sorted(by_budget)
    ids = list(dict.fromkeys(r["problem_id"] for r in by_budget[budgets[0]]))
    index = {pid: i for i, pid in enumerate(ids)}
    matrix = np.zeros((len(ids), len(budgets)))
    for j, budget in enumerate(budgets):
        for record in by_budget[budget]:
            matrix[index[record["problem_id"]], j] += float(record[field])
    samples = len(by_budget[budgets[0]]) // max(len(ids), 1)
    return ids, matrix, samples


def settings(cfg: StudyConfig, phase1: dict) -> dict:
    """What the analysis depends on; a stored summary with other settings is recomputed."""
    st = cfg.statistics
    return {"phase1_fingerprint": phase1.get("provenance", {}).get("fingerprint"),
            "budgets": sorted(int(b) for b in phase1["budgets"]),
            "fit_bootstrap_resamples": st.fit_bootstrap_resamples,
            "confidence": st.confidence, "top_emergent": st.top_emergent, "seed": cfg.seed,
            "tau_step": fits.TAU_STEP, "fit_models": list(fits.MODELS),
            "jump_rule": [emergence.JUMP_BREAKTHROUGH, emergence.JUMP_RISE]}


def analyse(cfg: StudyConfig) -> ScalingSummary:
    """Compute (or reuse) and write the scaling summary of phase 1's results."""
    started = time.perf_counter()
    results, tag = cfg.paths.results_dir, cfg.model_tag
    phase1 = store.read_json(store.phase1_combined_path(results, tag))
    wanted = settings(cfg, phase1)
    path = store.scaling_path(results, tag)
    if path.exists() and not cfg.run.overwrite:
        old = store.read_json(path)
        if isinstance(old, dict) and old.get("analysis") == wanted:
            return old
    budgets = wanted["budgets"]
    files = [store.phase1_record_path(results, tag, b) for b in budgets]
    by_budget = {b: store.read_records(f) for b, f in zip(budgets, files)}
    ids, correct, samples = problem_matrix(by_budget, "correct")
    st = cfg.statistics
    curve_fits = (fits.fit_all(budgets, correct, samples, n_resamples=st.fit_bootstrap_resamples,
                               confidence=st.confidence, seed=cfg.seed)
                  if len(budgets) >= 3 else None)
    window = stats.half_gain_window({int(b): r["accuracy"] for b, r in phase1["budgets"].items()})
    metric = "correct" if samples == 1 else "success rate"
    blocks = {metric: emergence.summarize(ids, budgets, correct / samples, metric,
                                          st.top_emergent, window)}
    records = [r for recs in by_budget.values() for r in recs]
    if records and all(r.get("p_gold") is not None for r in records):  # budget forcing ran
        _, p_gold, _ = problem_matrix(by_budget, "p_gold")
        blocks["p_gold"] = emergence.summarize(ids, budgets, p_gold / samples, "p_gold",
                                               st.top_emergent, window)
    summary = {"phase": "phase1_scaling", "model": phase1["model"],
               "dataset": phase1.get("dataset"), "budgets": phase1["budgets"],
               "fits": curve_fits, "cliff_window": list(window) if window else None,
               "emergence": blocks, "analysis": wanted}
    summary["provenance"] = store.provenance(cfg.to_dict(), seed=cfg.seed,
                                             wall_time_s=time.perf_counter() - started,
                                             record_files=files)
    store.write_json(path, summary)
    return summary


# ---------------------------------------------------------------- text

def _params_text(model: str, params: dict) -> str:
    if model == "log-linear":
        return f"{pct(params['a'])} at {2 ** params['x0']:g} tok, {pct(params['b'])}/doubling"
    if model == "piecewise":
        return (f"break at {2 ** params['tau']:.0f} tok: {pct(params['slope_before'])} then "
                f"{pct(params['slope_after'])}/doubling")
    if model == "constant":
        return f"{pct(params['p'])} at every budget"
    return (f"{pct(params['a'])} -> level {pct(params['level'])}, "
            f"rate {params['rate']:.2f}/doubling")


# On a flat curve these models' breakpoint and level are not in the data (any value fits about
# as well), so their rows keep the evidence (log L, AIC, BIC) and leave the parameters out.
_UNSHOWN_WHEN_FLAT = ("piecewise", "saturating")


def fit_rows(curve_fits: dict) -> list[list[str]]:
    """Model, k, log L, AIC, BIC, ΔBIC, parameters: one row per model, best marked."""
    best_bic = min(m["bic"] for m in curve_fits["models"].values())
    flat = curve_fits.get("flat")
    return [[FIT_LABELS[name] + (" *" if name == curve_fits["best"] else ""), m["n_params"],
             num(m["log_likelihood"]), num(m["aic"]), num(m["bic"]), num(m["bic"] - best_bic),
             f"{MISSING} (flat curve)" if flat and name in _UNSHOWN_WHEN_FLAT
             else _params_text(name, m["params"])] for name, m in curve_fits["models"].items()]


def fit_verdict(curve_fits: dict) -> str:
    head = (f"best fit (lowest BIC): {curve_fits['best']} (lowest AIC: "
            f"{curve_fits['best_aic']})")
    if curve_fits.get("flat"):
        level = curve_fits["models"]["constant"]["params"]["p"]
        return (f"{head}; {FLAT} ({pct(level)} at every budget), so no breakpoint and no fitted "
                "saturation level")
    resamples = f"bootstrap over problems, {curve_fits['bootstrap_resamples']} resamples"
    if curve_fits.get("breakpoint_ci_note"):
        ci = f"{curve_fits['breakpoint_ci_note']} ({resamples})"
    else:
        low_high = curve_fits.get("breakpoint_ci") or [None, None]
        ci = f"95% CI {ci_text(*low_high, digits=0, scale=1.0)} ({resamples})"
    return (f"{head}; breakpoint {curve_fits['breakpoint']:.0f} tokens, {ci}; "
            f"fitted saturation level {pct(curve_fits['saturation_level'])}")


def emergence_lines(block: EmergenceBlock, top: int | None = None) -> list[str]:
    """Share that jumps, the window's gain split, and the top problems with trajectories."""
    lines = [f"{block['metric']}: {block['n_jumping']} of {len(block['problems'])} problems "
             f"jump ({pct(block['share_jumping'])}; {block['rule']})"]
    gain = block.get("window_gain")
    if gain:
        lines.append(f"cliff window {gain['from']} -> {gain['to']}: gain "
                     f"{pct(gain['gain'])} = {pct(gain['from_jumping'])} from jumping + "
                     f"{pct(gain['from_gradual'])} from gradual problems (jumping share "
                     f"{pct(gain['jumping_share'])})")
    scores = {p["problem_id"]: p for p in block["problems"]}
    for pid in block["top"][:top]:
        p = scores[pid]
        path = " ".join(f"{v:.2g}" for v in p["trajectory"])
        skew = MISSING if p["skew"] is None else f"{p['skew']:.2f}"
        lines.append(f"  {pid}: B {p['breakthroughness']:.2f}, B(BIG-bench) "
                     f"{p['breakthroughness_bigbench']:.3g}, skew {skew}; [{path}]")
    return lines


def format_scaling(summary: ScalingSummary) -> str:
    """Console text: the fit table, the verdict line and the emergence section."""
    out = []
    curve_fits = summary.get("fits")
    if curve_fits:
        columns = [("Fit", "<22"), ("k", ">3"), ("log L", ">10"), ("AIC", ">10"),
                   ("BIC", ">10"), ("dBIC", ">8"), ("  Parameters", "<")]
        out += [text_table(columns, [[*r[:6], "  " + r[6]] for r in fit_rows(curve_fits)]),
                fit_verdict(curve_fits)]
    else:
        out.append("curve fits: need at least three budgets")
    out.append("emergence (budgets " + " ".join(str(b) for b in next(
        iter(summary["emergence"].values()))["budgets"]) + "):")
    for block in summary["emergence"].values():
        out += emergence_lines(block)
    return "\n".join(out)


def scaling_table(summary: ScalingSummary) -> str:
    """The report section: fit table, verdict, emergence."""
    out = []
    curve_fits = summary.get("fits")
    if curve_fits:
        out += [markdown_table(["Fit", "k", "log L", "AIC", "BIC", "ΔBIC", "Parameters"],
                               fit_rows(curve_fits)),
                f"\\* {fit_verdict(curve_fits)}. Fitted by maximum likelihood on every "
                "per-problem outcome against log2(budget)."]
    for block in summary["emergence"].values():
        lines = emergence_lines(block)
        out.append("\n".join([f"**Emergence ({lines[0]})**", "", *[f"- {x.strip()}"
                                                                   for x in lines[1:]]]))
    return "\n\n".join(out)
