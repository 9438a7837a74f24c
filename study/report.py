"""The one-page markdown report of a study: findings, tables, provenance and cost, figure links.

Reads only the phase summary files in ``results/`` (never a model) and writes
``results/report_{model}.md``. Every number in it is computed from those files; a phase whose
file is missing gets one line naming the command that produces it. ``visualize.py`` calls
``write_report`` after drawing the figures; this module also holds the loading code both share.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from study import store
from config import RunConfig, model_tag

# Summary key -> (path of its file, what it holds). The order is the order phases run in.
PHASE_FILES: dict[str, tuple[Callable[[Path, str], Path], str]] = {
    "phase1": (store.phase1_combined_path, "phase-1 saturation curve"),
    "phase1b": (store.phase1b_summary_path, "phase-1b stochastic check"),
    "phase2": (store.phase2_analysis_path, "phase-2 error analysis"),
    "phase3": (store.phase3_cliff_summary_path, "phase-3 cliff"),
    "structure": (store.phase3_structure_path, "phase-3 solution structure"),
}


@dataclass
class Results:
    """Every phase summary of one model that exists (``None`` where it does not)."""

    model: str  # as the user typed it (alias, hub id or folder)
    results_dir: Path
    data: dict[str, dict | None]
    problems: dict[str, str] = field(default_factory=dict)  # unreadable files, by phase key

    @property
    def tag(self) -> str:
        return model_tag(self.model)


def load_results(model: str, results_dir: Path) -> Results:
    """Read each phase summary; an unreadable file counts as missing and is noted."""
    data: dict[str, dict | None] = {}
    problems: dict[str, str] = {}
    for key, (path_of, _) in PHASE_FILES.items():
        path = path_of(Path(results_dir), model_tag(model))
        data[key] = None
        if path.exists():
            try:
                data[key] = store.read_json(path)
            except store.ResultsError as exc:
                problems[key] = str(exc)
    return Results(model, Path(results_dir), data, problems)


def how_to_make(key: str, model: str, results_dir: Path) -> str:
    """The command that produces a phase's summary file."""
    extra = f" --model {model}"
    if Path(results_dir).resolve() != RunConfig().results_dir.resolve():
        extra += f" --results-dir {results_dir}"
    if key == "phase2":
        return (f"python run_all.py --phase2-prepare{extra}, label the TSVs (python "
                f"phase2_annotate.py --model {model}), then python run_all.py "
                f"--phase2-analyze{extra}")
    if key == "structure":
        return f"python phase3_structure.py{extra}"
    flag = {"phase1": "--phase1", "phase1b": "--phase1b", "phase3": "--phase3"}[key]
    return f"python run_all.py {flag}{extra}"


def missing_line(results: Results, key: str) -> str:
    what = PHASE_FILES[key][1]
    reason = results.problems.get(key, f"no {what} results")
    return f"{reason} — run {how_to_make(key, results.model, results.results_dir)}"


# ---------------------------------------------------------------- formatting helpers

def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def ci_text(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "—"
    return f"[{100 * low:.1f}, {100 * high:.1f}]"


def num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def md_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; the first column left-aligned, the others right-aligned."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [header, align, *[[str(c) for c in row] for row in rows]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def sorted_rows(budgets: dict) -> list[dict]:
    return sorted(budgets.values(), key=lambda row: row["budget"])


# ---------------------------------------------------------------- findings

def saturation_finding(p1: dict) -> str:
    rows = sorted_rows(p1["budgets"])
    first, last = rows[0], rows[-1]
    best = max(rows, key=lambda r: r["accuracy"])  # first maximum = smallest such budget
    text = (f"Accuracy goes from {pct(first['accuracy'])} at {first['budget']} tokens to "
            f"{pct(best['accuracy'])} at {best['budget']} tokens (the best budget; 95% CI "
            f"{ci_text(best['ci_low'], best['ci_high'])})")
    if last is not best:
        text += f", and is {pct(last['accuracy'])} at {last['budget']} tokens"
    sat = p1.get("saturation_budget")
    if sat is not None:
        text += (f". It saturates at {sat} tokens: the smallest budget whose accuracy lies "
                 "within the best budget's 95% CI")
    return (text + f". At {last['budget']} tokens the model uses {num(last['avg_tokens'])} "
            f"tokens on average and {pct(last['hit_budget_rate'])} of answers are still cut "
            "by the budget.")


def plateau_finding(p1b: dict) -> str:
    rows = sorted_rows(p1b["budgets"])
    spread = "; ".join(f"{pct(r['mean_accuracy'])} ± {pct(r.get('std_accuracy'))} at "
                       f"{r['budget']}" for r in rows)
    k, n = rows[0].get("k", p1b.get("samples")), rows[0].get("n_problems")
    return (f"Plateau check ({n} problems × {k} samples; mean accuracy ± std over sample runs: "
            f"{spread}): {p1b.get('verdict', 'no verdict recorded')}.")


def cliff_finding(p3: dict) -> str:
    rows = sorted_rows(p3["budgets"])
    grid = f"{rows[0]['budget']}–{rows[-1]['budget']} tokens"
    total = p3.get("total_gain", rows[-1]["accuracy"] - rows[0]["accuracy"])
    window = p3.get("half_gain_window")
    if window:
        text = (f"On the fine grid ({grid}), half of the total gain ({100 * total:+.1f} pp) lies "
                f"in {window[0]} → {window[1]} tokens")
        if p3.get("half_gain_window_gain") is not None:
            text += f" ({100 * p3['half_gain_window_gain']:+.1f} pp)"
    else:
        text = f"On the fine grid ({grid}) accuracy does not rise overall ({100 * total:+.1f} pp)"
    steep = p3.get("steepest") or []
    if steep:
        top = steep[0]
        ci = ""
        if top.get("ci_low") is not None and top.get("ci_high") is not None:
            ci = f", 95% CI [{100 * top['ci_low']:+.2f}, {100 * top['ci_high']:+.2f}]"
        text += (f"; the steepest step is {top['from']} → {top['to']} "
                 f"({100 * top['gain_per_token']:+.2f} pp per token{ci})")
    return text + "."


def label_sources_text(p2: dict) -> str:
    sources = p2.get("label_sources", {})
    parts = [f"{n} {who}" for who, n in sorted(sources.items())]
    note = " — auto labels are the heuristic suggestions, not checked by a person" \
        if sources.get("auto") else ""
    return f"labels: {', '.join(parts) or 'none'}{note}"


def error_totals(p2: dict) -> dict[str, int]:
    totals: dict[str, int] = {}
    for block in p2.get("error_types", {}).values():
        for kind, count in block.get("counts", {}).items():
            totals[kind] = totals.get(kind, 0) + count
    return totals


def top_type(block: dict) -> str:
    counts = block.get("counts", {})
    if not block.get("n"):
        return "no annotated errors"
    kind = max(counts, key=counts.get)
    return f"{kind} ({block['pct'][kind]}%)"


def errors_finding(p2: dict) -> str:
    totals = error_totals(p2)
    n = sum(totals.values())
    if not n:
        return f"No annotated errors ({label_sources_text(p2)})."
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:3]
    listed = ", ".join(f"{kind} {count}/{n} ({100 * count / n:.0f}%)" for kind, count in top
                       if count)
    types = p2["error_types"]
    budgets = sorted(types, key=int)
    text = f"Top error types over {n} annotated errors: {listed} ({label_sources_text(p2)})."
    if len(budgets) > 1:
        low, high = budgets[0], budgets[-1]
        text += (f" Most common at {low} tokens: {top_type(types[low])}; at {high} tokens: "
                 f"{top_type(types[high])}.")
    return text


def group_text(name: str, row: dict, lo: int, hi: int) -> str:
    return (f"{name} (length {row['length']}, n={row['n']}): accuracy "
            f"{pct(row.get('accuracy_at_window_start'), 0)} at {lo} → "
            f"{pct(row.get('accuracy_at_window_end'), 0)} at {hi}, "
            f"{pct(row.get('gain_share'), 0)} of the window's gain, "
            f"{pct(row.get('verification_share'), 0)} verify")


def structure_finding(st: dict) -> str:
    window, groups = st.get("window"), st.get("groups")
    rows = sorted_rows(st["budgets"])
    first, last = rows[0], rows[-1]
    verify = (f"Solutions with a verification phase: {pct(first.get('verification_share'), 0)} "
              f"at {first['budget']} tokens, {pct(last.get('verification_share'), 0)} at "
              f"{last['budget']} tokens.")
    if not window or not groups:
        return "No cliff window with a positive gain, so no below/inside/above comparison. " + \
            verify
    lo, hi = window["from"], window["to"]
    parts = "; ".join(group_text(name, row, lo, hi) for name, row in groups.items())
    return (f"What changes at the cliff ({lo} → {hi}; solutions at "
            f"{window.get('measured_at_budget')} tokens grouped by length): {parts}. {verify}")


def verification_finding(st: dict) -> str:
    both = [r for r in sorted_rows(st["budgets"])
            if r.get("with_verification", {}).get("n") and r.get("without_verification",
                                                                  {}).get("n")]
    if not both:
        return ("Accuracy with vs without verification cannot be compared: no budget has "
                "solutions of both kinds.")
    row = both[-1]
    w, wo = row["with_verification"], row["without_verification"]
    return (f"At {row['budget']} tokens, solutions that verify are right {pct(w['accuracy'])} of "
            f"the time (n={w['n']}) vs {pct(wo['accuracy'])} for those that do not "
            f"(n={wo['n']}).")


FINDINGS: list[tuple[str, Callable[[dict], str]]] = [
    ("phase1", saturation_finding), ("phase1b", plateau_finding), ("phase3", cliff_finding),
    ("phase2", errors_finding), ("structure", structure_finding),
    ("structure", verification_finding),
]


def findings(results: Results) -> list[str]:
    out = []
    for key, make in FINDINGS:
        summary = results.data.get(key)
        line = make(summary) if summary else f"({missing_line(results, key)})"
        if line not in out:
            out.append(line)
    return out


# ---------------------------------------------------------------- tables

def phase1_table(p1: dict) -> str:
    sat = p1.get("saturation_budget")
    rows = [[f"**{r['budget']}**" if r["budget"] == sat else r["budget"], pct(r["accuracy"]),
             ci_text(r["ci_low"], r["ci_high"]), num(r["avg_tokens"]),
             pct(r["hit_budget_rate"], 0), r["n"]] for r in sorted_rows(p1["budgets"])]
    table = md_table(["Budget", "Accuracy", "95% CI", "Avg tokens", "Cut", "n"], rows)
    bold = f"Bold: saturation budget ({sat}). " if sat is not None else ""
    return table + f"\n\n{bold}Cut = share of answers stopped by the budget; CI = Wilson."


def phase1b_table(p1b: dict) -> str:
    rows_in = sorted_rows(p1b["budgets"])
    k = str(rows_in[0].get("k", p1b.get("samples", 1)))
    rows = [[r["budget"], pct(r["mean_accuracy"]), pct(r.get("std_accuracy")),
             ci_text(r.get("ci_low"), r.get("ci_high")),
             pct(r.get("pass_at_k", {}).get("1")), pct(r.get("pass_at_k", {}).get(k)),
             pct(r.get("maj_at_k", {}).get(k)),
             " ".join(f"{j}:{c}" for j, c in r.get("success_histogram", {}).items())]
            for r in rows_in]
    out = [md_table(["Budget", "Avg success", "Std dev", "95% CI", "pass@1", f"pass@{k}",
                     f"maj@{k}", "Problems solved j/k times"], rows)]
    steps = [[f"{c['from']} → {c['to']}", f"{100 * c['mean_diff']:+.1f} pp",
              "—" if c.get("ci_low") is None else
              f"[{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]",
              f"{c['p_value']:.3g} ({c.get('test', '?')})",
              "plateau" if c.get("is_plateau") else "not a plateau"]
             for c in p1b.get("comparisons", [])]
    if steps:
        out.append(md_table(["Step", "Δ success", "95% CI", "p (test)", "Verdict"], steps))
    return "\n\n".join(out)


def phase2_table(p2: dict) -> str:
    types = p2.get("error_types", {})
    budgets = sorted(types, key=int)
    kinds = list(next(iter(types.values()))["counts"]) if types else []

    def cell(block: dict, kind: str) -> str:
        return f"{block['counts'][kind]} ({block['pct'][kind]}%)" if block["n"] else "—"

    rows = [[kind, *(cell(types[b], kind) for b in budgets)] for kind in kinds]
    rows.append(["annotated", *(types[b]["n"] for b in budgets)])
    errors = p2.get("errors_in_results", {})
    if errors:
        rows.append(["errors in results", *(errors.get(b, "—") for b in budgets)])
    unrec = p2.get("unrecoverable", {})
    tail = f"\n\nCount (% of annotated errors) per budget; {label_sources_text(p2)}."
    if unrec.get("n"):
        tail += f" Unrecoverable: {unrec['count']}/{unrec['n']} ({unrec['pct']}%)."
    return md_table(["Error type", *budgets], rows) + tail


def phase3_table(p3: dict) -> str:
    acc = md_table(["Budget", "Accuracy", "95% CI", "Avg tokens", "Cut"],
                   [[r["budget"], pct(r["accuracy"]), ci_text(r["ci_low"], r["ci_high"]),
                     num(r["avg_tokens"]), pct(r["hit_budget_rate"], 0)]
                    for r in sorted_rows(p3["budgets"])])
    steepest = {(s["from"], s["to"]) for s in (p3.get("steepest") or [])[:1]}
    gains = [[f"{'**' if (g['from'], g['to']) in steepest else ''}{g['from']} → {g['to']}"
              f"{'**' if (g['from'], g['to']) in steepest else ''}",
              f"{100 * g['gain']:+.1f} pp", f"{100 * g['gain_per_token']:+.3f}",
              "—" if g.get("ci_low") is None else
              f"[{100 * g['ci_low']:+.3f}, {100 * g['ci_high']:+.3f}]"]
             for g in p3.get("gains", [])]
    if not gains:
        return acc
    return acc + "\n\n" + md_table(["Step", "Gain", "pp per token", "95% CI"], gains) + \
        "\n\nBold: steepest step. CI: paired bootstrap over problems."


def _structure_cells(row: dict) -> list[str]:
    tokens = row.get("tokens_per_phase", {})
    rate = row.get("arith_error_rate")
    arith = "—" if rate is None else \
        f"{pct(rate)} ({row.get('arith_errors')}/{row.get('arith_steps_checked')})"
    return [pct(row.get("accuracy"), 0), num(tokens.get("setup")),
            num(tokens.get("computation")), num(tokens.get("verification")),
            pct(row.get("verification_share"), 0), num(row.get("avg_steps")), arith]


_STRUCT_HEAD = ["Acc", "Setup", "Comp", "Verif", "Verif %", "Steps", "Arith err"]


def _acc_n(block: dict | None) -> str:
    if not block or not block.get("n"):
        return "— (n=0)"
    return f"{pct(block['accuracy'], 0)} (n={block['n']})"


def structure_table(st: dict) -> str:
    rows = [[r["budget"], *_structure_cells(r), _acc_n(r.get("with_verification")),
             _acc_n(r.get("without_verification"))] for r in sorted_rows(st["budgets"])]
    out = [md_table(["Budget", *_STRUCT_HEAD, "Acc w/ verif", "Acc w/o verif"], rows),
           "Setup/Comp/Verif = mean tokens per phase; Verif % = solutions with a verification "
           "phase; Arith err = wrong explicit steps / checked steps."]
    window, groups = st.get("window"), st.get("groups")
    if window and groups:
        lo, hi = window["from"], window["to"]
        out.append(md_table(
            ["Group", "Length", "n", f"Acc @{lo}", f"Acc @{hi}", "Gain share", *_STRUCT_HEAD],
            [[name, g["length"], g["n"], pct(g.get("accuracy_at_window_start"), 0),
              pct(g.get("accuracy_at_window_end"), 0), pct(g.get("gain_share"), 0),
              *_structure_cells(g)] for name, g in groups.items()]))
        out.append(f"Window {lo} → {hi} ({window.get('chosen_by')}); solutions at "
                   f"{window.get('measured_at_budget')} tokens grouped by their length.")
    return "\n\n".join(out)


SECTIONS: list[tuple[str, str, Callable[[dict], str]]] = [
    ("phase1", "Phase 1 — saturation curve", phase1_table),
    ("phase1b", "Phase 1b — stochastic verification", phase1b_table),
    ("phase2", "Phase 2 — error types", phase2_table),
    ("phase3", "Phase 3 — the cliff on a fine grid", phase3_table),
    ("structure", "Phase 3 — solution structure", structure_table),
]


# ---------------------------------------------------------------- provenance

def _first(results: Results, *path: str):
    """The first phase summary's provenance value at ``path`` that is set."""
    for summary in results.data.values():
        value = (summary or {}).get("provenance", {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def short_git(commit: str | None) -> str:
    if not commit:
        return "—"
    return f"`{commit[:12]}`" + ("-dirty" if commit.endswith("-dirty") else "")


def provenance_section(results: Results) -> str:
    p1 = results.data["phase1"] or {}
    n = next(iter(p1.get("budgets", {}).values()), {}).get("n")
    packages = _first(results, "packages") or {}
    head = (f"Model **{p1.get('model', results.model)}**, dataset **{p1.get('dataset', '?')}**, "
            f"n = {n} problems, seed {_first(results, 'seed')}, precision "
            f"{_first(results, 'config', 'precision') or '?'}; torch {packages.get('torch')}, "
            f"transformers {packages.get('transformers')}, python {_first(results, 'python')}.")
    rows, total = [], 0.0
    for key, (_, what) in PHASE_FILES.items():
        prov = (results.data.get(key) or {}).get("provenance")
        if prov is None:
            continue
        total += prov.get("wall_time_s") or 0.0
        tps = prov.get("tokens_per_s")
        reused = prov.get("rollouts_resumed_or_reused")
        rows.append([what, num(prov.get("wall_time_s")), prov.get("generated_tokens", "—"),
                     "—" if tps is None else f"{tps:.0f}", prov.get("device") or "—",
                     "—" if reused is None else reused, short_git(prov.get("git")),
                     prov.get("written_at", "—")])
    table = md_table(["Phase", "Wall time (s)", "Generated tokens", "Tokens/s", "Device",
                      "Rollouts reused", "Git", "Written"], rows)
    return f"{head}\n\n{table}\n\nTotal wall time: {total:.1f} s."


# ---------------------------------------------------------------- the report

def figure_lines(figures: dict[str, list[Path]], report_dir: Path) -> list[str]:
    lines = []
    for stem, paths in figures.items():
        if not paths:
            continue
        links = ", ".join(f"[{p.suffix[1:].upper()}]({relative(p, report_dir)})" for p in paths)
        lines.append(f"- `{stem}`: {links}")
    return lines


def relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


def build_report(results: Results, figures: dict[str, list[Path]], skipped: list[str],
                 report_dir: Path) -> str:
    """The markdown text; ``figures`` maps figure names to the files saved for them."""
    p1 = results.data["phase1"] or {}
    out = [f"# Token-budget saturation study — {p1.get('model', results.model)}", "",
           "Generated by `visualize.py` from the summary files in "
           f"`{results.results_dir}`; every number below is read from them.", "",
           "## Findings", "", *[f"- {line}" for line in findings(results)], ""]
    fig1 = next((p for p in figures.get(f"fig1_saturation_curve_{results.tag}", [])
                 if p.suffix == ".png"), None)
    if fig1 is not None:
        out += [f"![Saturation curve]({relative(fig1, report_dir)})", ""]
    out += ["## Figures", "", *figure_lines(figures, report_dir),
            *[f"- skipped {line}" for line in skipped], ""]
    for key, title, table in SECTIONS:
        summary = results.data.get(key)
        body = table(summary) if summary else f"_{missing_line(results, key)}._"
        out += [f"## {title}", "", body, ""]
    out += ["## Provenance and cost", "", provenance_section(results), ""]
    return "\n".join(out)


def report_path(results_dir: Path, model: str) -> Path:
    return Path(results_dir) / f"report_{model_tag(model)}.md"


def write_report(results: Results, figures: dict[str, list[Path]],
                 skipped: list[str]) -> Path:
    path = report_path(results.results_dir, results.model)
    store.atomic_write_text(path, build_report(results, figures, skipped, path.parent))
    return path
