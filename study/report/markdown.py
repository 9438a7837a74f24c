"""The one-page markdown report of a study: findings, tables, provenance and cost, figure links.

Reads only the summaries in the results store (``study.results``; never a model) and writes
``results/report_{model}.md``. Every number in it is computed from those files and formatted by
``study.tables``; a phase whose file is missing gets one line naming the command that makes
it (from the registry ``study.results.SUMMARIES``). ``visualize.py`` calls ``write_report`` after
drawing the figures and hands it the files it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study import store
from study.analysis.scaling import scaling_table
from study.report import forcing_output
from study.report.console import closed_share
from study.report.depth_report import depth_table, lens_table
from study.report.findings import findings, label_sources_text
from study.results import SUMMARIES, StudyResults
from study.schema import CliffSummary, GainStep, Phase1bSummary, Phase1Summary, Phase2Summary
from study.schema_analyses import (
    ComputeSummary,
    Proportion,
    ScalingSummary,
    StructureMetrics,
    StructureSummary,
)
from study.tables import (
    FLAT,
    MISSING,
    by_budget,
    ci_text,
    flat_from,
    is_flat,
    markdown_table,
    num,
    pct,
    signed_pp,
)


@dataclass(frozen=True)
class FigureFiles:
    """A drawn figure as the report links it."""

    stem: str  # file name without suffix, e.g. "fig1_saturation_curve_qwen-1.5b"
    title: str  # a few words, e.g. "saturation curve"
    paths: tuple[Path, ...]  # one per format
    inline: bool = False  # also shown in the report itself (its PNG)


# ---------------------------------------------------------------- tables

def phase1_table(p1: Phase1Summary, scaling: ScalingSummary | None = None) -> str:
    """The accuracy table, its saturation budget in bold; on a flat curve (``scaling``'s
    constant fit best) no saturation budget, but where it is flat from."""
    flat = is_flat(scaling)
    sat = None if flat else p1.get("saturation_budget")
    rows = [[f"**{r['budget']}**" if r["budget"] == sat else r["budget"], pct(r["accuracy"]),
             ci_text(r["ci_low"], r["ci_high"]), num(r["avg_tokens"]),
             pct(r["hit_budget_rate"], 0), r["n"]] for r in by_budget(p1["budgets"])]
    head = ["Budget", "Accuracy", "95% CI", "Avg tokens", "Cut", "n"]
    thinking = p1.get("thinking")
    if thinking:  # a reasoning model: the share that closed its thinking within the budget
        head.append("Closed thinking")
        for row, r in zip(rows, by_budget(p1["budgets"])):
            row.append(closed_share(thinking, r["budget"]))
    table = markdown_table(head, rows)
    bold = f"Bold: saturation budget ({sat}). " if sat is not None else ""
    closed = " Closed thinking = share of rollouts whose thinking ended within the budget." \
        if thinking else ""
    if flat:
        bold = f"{FLAT.capitalize()} ({flat_from(p1['budgets'])}; the constant fit is best). "
    return table + f"\n\n{bold}Cut = share of answers stopped by the budget; CI = Wilson.{closed}"


def phase1b_table(p1b: Phase1bSummary) -> str:
    rows_in = by_budget(p1b["budgets"])
    k = str(rows_in[0].get("k", p1b.get("samples", 1)))
    rows = [[r["budget"], pct(r["mean_accuracy"]), pct(r.get("std_accuracy")),
             ci_text(r.get("ci_low"), r.get("ci_high")),
             pct(r.get("pass_at_k", {}).get("1")), pct(r.get("pass_at_k", {}).get(k)),
             pct(r.get("maj_at_k", {}).get(k)),
             " ".join(f"{j}:{c}" for j, c in r.get("success_histogram", {}).items())]
            for r in rows_in]
    out = [markdown_table(["Budget", "Avg success", "Std dev", "95% CI", "pass@1", f"pass@{k}",
                           f"maj@{k}", "Problems solved j/k times"], rows)]
    steps = [[f"{c['from']} → {c['to']}", f"{signed_pp(c['mean_diff'])} pp",
              ci_text(c.get("ci_low"), c.get("ci_high"), signed=True),
              f"{c['p_value']:.3g} ({c.get('test', '?')})",
              "plateau" if c.get("is_plateau") else "not a plateau"]
             for c in p1b.get("comparisons", [])]
    if steps:
        out.append(markdown_table(["Step", "Δ success", "95% CI", "p (test)", "Verdict"], steps))
    return "\n\n".join(out)


def phase2_table(p2: Phase2Summary) -> str:
    types = p2.get("error_types", {})
    budgets = sorted(types, key=int)
    kinds = list(next(iter(types.values()))["counts"]) if types else []

    def cell(b: str, kind: str) -> str:
        block = types[b]
        return f"{block['counts'][kind]} ({block['pct'][kind]}%)" if block["n"] else MISSING

    rows: list[list[Any]] = [[kind, *(cell(b, kind) for b in budgets)] for kind in kinds]
    rows.append(["annotated", *(types[b]["n"] for b in budgets)])
    errors = p2.get("errors_in_results", {})
    if errors:
        rows.append(["errors in results", *(errors.get(b, MISSING) for b in budgets)])
    unrec = p2.get("unrecoverable", {})
    tail = f"\n\nCount (% of annotated errors) per budget; {label_sources_text(p2)}."
    if unrec.get("n"):
        tail += f" Unrecoverable: {unrec['count']}/{unrec['n']} ({unrec['pct']}%)."
    return markdown_table(["Error type", *budgets], rows) + tail


def _step(g: GainStep, bold: bool) -> str:
    mark = "**" if bold else ""
    return f"{mark}{g['from']} → {g['to']}{mark}"


def phase3_table(p3: CliffSummary) -> str:
    acc = markdown_table(["Budget", "Accuracy", "95% CI", "Avg tokens", "Cut"],
                         [[r["budget"], pct(r["accuracy"]), ci_text(r["ci_low"], r["ci_high"]),
                           num(r["avg_tokens"]), pct(r["hit_budget_rate"], 0)]
                          for r in by_budget(p3["budgets"])])
    steepest = {(s["from"], s["to"]) for s in (p3.get("steepest") or [])[:1]}
    gains = [[_step(g, (g["from"], g["to"]) in steepest), f"{signed_pp(g['gain'])} pp",
              signed_pp(g["gain_per_token"], 3),
              ci_text(g.get("ci_low"), g.get("ci_high"), 3, signed=True)]
             for g in p3.get("gains", [])]
    if not gains:
        return acc
    return acc + "\n\n" + markdown_table(["Step", "Gain", "pp per token", "95% CI"], gains) + \
        "\n\nBold: steepest step. CI: paired bootstrap over problems."


_STRUCT_HEAD = ["Acc", "Setup", "Comp", "Verif", "Verif %", "Steps", "Arith err"]


def _structure_cells(row: StructureMetrics) -> list[str]:
    tokens = row.get("tokens_per_phase", {})
    rate = row.get("arith_error_rate")
    arith = MISSING if rate is None else \
        f"{pct(rate)} ({row.get('arith_errors')}/{row.get('arith_steps_checked')})"
    return [pct(row.get("accuracy"), 0), num(tokens.get("setup")),
            num(tokens.get("computation")), num(tokens.get("verification")),
            pct(row.get("verification_share"), 0), num(row.get("avg_steps")), arith]


def _acc_n(block: Proportion | None) -> str:
    if not block or not block.get("n"):
        return f"{MISSING} (n=0)"
    return f"{pct(block['accuracy'], 0)} (n={block['n']})"


def structure_table(st: StructureSummary) -> str:
    rows = [[r["budget"], *_structure_cells(r), _acc_n(r.get("with_verification")),
             _acc_n(r.get("without_verification"))] for r in by_budget(st["budgets"])]
    out = [markdown_table(["Budget", *_STRUCT_HEAD, "Acc w/ verif", "Acc w/o verif"], rows),
           "Setup/Comp/Verif = mean tokens per phase; Verif % = solutions with a verification "
           "phase; Arith err = wrong explicit steps / checked steps."]
    window, groups = st.get("window"), st.get("groups")
    if window and groups:
        lo, hi = window["from"], window["to"]
        out.append(markdown_table(
            ["Group", "Length", "n", f"Acc @{lo}", f"Acc @{hi}", "Gain share", *_STRUCT_HEAD],
            [[name, g["length"], g["n"], pct(g.get("accuracy_at_window_start"), 0),
              pct(g.get("accuracy_at_window_end"), 0), pct(g.get("gain_share"), 0),
              *_structure_cells(g)] for name, g in groups.items()]))
        out.append(f"Window {lo} → {hi} ({window.get('chosen_by')}); solutions at "
                   f"{window.get('measured_at_budget')} tokens grouped by their length.")
    return "\n\n".join(out)


def compute_table(cs: ComputeSummary) -> str:
    points = sorted(cs["points"], key=lambda p: p["tokens_per_problem"])
    rows = [[p["label"].split(", B=")[0] + (" (oracle)" if p["oracle"] else ""), p["budget"],
             p["k"], num(p["tokens_per_problem"]), pct(p["accuracy"]),
             ci_text(p["ci_low"], p["ci_high"]), "✓" if p["pareto"] else ""] for p in points]
    out = [markdown_table(["Strategy", "B", "k", "Tokens/problem", "Accuracy", "95% CI",
                           "Pareto"], rows),
           f"n = {cs['n_problems']} problems, common to every run. Tokens/problem = mean tokens "
           "spent per problem (k samples: the first k; power sampling: every proposed token). "
           "The frontier leaves out pass@k (an oracle)."]
    s = cs.get("power_settings") or {}
    power = [[r["budget"], r["chains"], pct(r["accuracy"]), num(r["tokens_per_chain"]),
              num(r["tokens_used"]), num(r["cost_ratio"]), pct(r["acceptance_rate"]),
              r["proposals"]] for r in by_budget(cs["budgets"])]
    out.append(markdown_table(["Budget", "Chains", "Accuracy", "Tokens/chain", "Answer tokens",
                               "Cost ×", "Acceptance", "Proposals"], power))
    out.append(f"Power sampling: α = {s.get('alpha')}, {s.get('blocks')} blocks, "
               f"{s.get('mcmc_steps')} MH steps per block; one chain per budget.")
    return "\n\n".join(out)


# One section per registered summary, titled by the registry, in phase order.
TABLES: dict[str, Callable[[Any], str]] = {
    "phase1": phase1_table, "scaling": scaling_table, "phase1b": phase1b_table,
    "phase2": phase2_table, "phase3": phase3_table, "structure": structure_table,
    "depth": depth_table, "lens": lens_table, "compute": compute_table,
}


# ---------------------------------------------------------------- provenance

def _first(results: StudyResults, *path: str) -> Any:
    """The first summary's provenance value at ``path`` that is set (phase order)."""
    for _, summary in results.present():
        value = summary.get("provenance", {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def short_git(commit: str | None) -> str:
    if not commit:
        return MISSING
    return f"`{commit[:12]}`" + ("-dirty" if commit.endswith("-dirty") else "")


def provenance_section(results: StudyResults) -> str:
    p1: Any = results.phase1 or {}
    n = next(iter(p1.get("budgets", {}).values()), {}).get("n")
    packages = _first(results, "packages") or {}
    # The precision sits at config.precision (flat config) or config.model.precision (nested).
    precision = _first(results, "config", "precision") or \
        _first(results, "config", "model", "precision") or "?"
    head = (f"Model **{p1.get('model', results.model)}**, dataset **{p1.get('dataset', '?')}**, "
            f"n = {n} problems, seed {_first(results, 'seed')}, precision {precision}; torch "
            f"{packages.get('torch')}, transformers {packages.get('transformers')}, python "
            f"{_first(results, 'python')}.")
    rows, total = [], 0.0
    for entry, summary in results.present():
        prov = summary.get("provenance")
        if prov is None:
            continue
        total += prov.get("wall_time_s") or 0.0
        reused = prov.get("rollouts_resumed_or_reused")
        rows.append([entry.what, num(prov.get("wall_time_s")),
                     prov.get("generated_tokens", MISSING), num(prov.get("tokens_per_s"), 0),
                     prov.get("device") or MISSING, MISSING if reused is None else reused,
                     short_git(prov.get("git")), prov.get("written_at", MISSING)])
    table = markdown_table(["Phase", "Wall time (s)", "Generated tokens", "Tokens/s", "Device",
                            "Rollouts reused", "Git", "Written"], rows)
    return f"{head}\n\n{table}\n\nTotal wall time: {total:.1f} s."


# ---------------------------------------------------------------- the report

def relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


def figure_lines(figures: Sequence[FigureFiles], report_dir: Path) -> list[str]:
    lines = []
    for fig in figures:
        if not fig.paths:
            continue
        links = ", ".join(f"[{p.suffix[1:].upper()}]({relative(p, report_dir)})"
                          for p in fig.paths)
        lines.append(f"- `{fig.stem}` ({fig.title}): {links}")
    return lines


def build_report(results: StudyResults, figures: Sequence[FigureFiles], skipped: list[str],
                 report_dir: Path) -> str:
    """The markdown text; ``figures`` are the drawn figures, ``skipped`` the skip lines."""
    p1: Any = results.phase1 or {}
    out = [f"# Token-budget saturation study — {p1.get('model', results.model)}", "",
           "Generated by `visualize.py` from the summary files in "
           f"`{results.results_dir}`; every number below is read from them.", "",
           "## Findings", "", *[f"- {line}" for line in findings(results)], ""]
    for fig in figures:
        png = next((p for p in fig.paths if p.suffix == ".png"), None)
        if fig.inline and png is not None:
            out += [f"![{fig.title.capitalize()}]({relative(png, report_dir)})", ""]
    out += ["## Figures", "", *figure_lines(figures, report_dir),
            *[f"- skipped {line}" for line in skipped], ""]
    for key, entry in SUMMARIES.items():
        summary = results.summary(key)
        if summary is None and not results.applies(key):
            continue  # not made for runs like this one (e.g. a depth sweep of a forced run)
        if summary and key == "phase1":  # the fits say whether the curve is flat
            body = phase1_table(summary, results.summary("scaling"))
        else:
            body = TABLES[key](summary) if summary else f"_{results.missing_line(key)}._"
        out += [f"## {entry.title}", "", body, ""]
    out += forcing_output.report_section({SUMMARIES[k].title: results.summary(k)
                                          for k in ("phase1", "phase1b", "phase3")})
    out += ["## Provenance and cost", "", provenance_section(results), ""]
    return "\n".join(out)


def report_path(results_dir: Path, tag: str) -> Path:
    return Path(results_dir) / f"report_{tag}.md"


def write_report(results: StudyResults, figures: Sequence[FigureFiles],
                 skipped: list[str]) -> Path:
    """Write ``results/report_{model}.md`` and return its path."""
    path = report_path(results.results_dir, results.tag)
    store.atomic_write_text(path, build_report(results, figures, skipped, path.parent))
    return path
