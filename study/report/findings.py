"""The report's findings: one plain-language sentence per result, computed from the summaries.

Each function reads one typed summary (``study.schema``) and returns text; numbers are formatted
by ``study.tables`` so a percentage or an interval reads the same here as in every table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from study.analysis.cliff import has_cliff
from study.results import StudyResults
from study.schema import CliffSummary, ErrorTypeBlock, Phase1bSummary, Phase1Summary, Phase2Summary
from study.schema_analyses import LengthGroup, ScalingSummary, StructureSummary
from study.tables import FLAT, by_budget, ci_text, flat_from, is_flat, num, pct, signed_pp


def saturation_finding(p1: Phase1Summary, scaling: ScalingSummary | None = None) -> str:
    """Where accuracy goes and where it saturates; on a flat curve (``scaling``'s constant fit
    best) that it is flat instead, since it never rose to saturate."""
    rows = by_budget(p1["budgets"])
    first, last = rows[0], rows[-1]
    if is_flat(scaling):
        level = scaling["fits"]["models"]["constant"]["params"]["p"]
        return (f"Accuracy is {FLAT} over {first['budget']}–{last['budget']} tokens "
                f"(measured {', '.join(pct(r['accuracy']) for r in rows)}): the constant fit, "
                f"{pct(level)} at every budget, is best by BIC, so the curve is "
                f"{flat_from(p1['budgets'])} and has no saturation budget. At {last['budget']} "
                f"tokens the model uses {num(last['avg_tokens'])} tokens on average and "
                f"{pct(last['hit_budget_rate'])} of answers are still cut by the budget.")
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


def plateau_finding(p1b: Phase1bSummary) -> str:
    rows = by_budget(p1b["budgets"])
    spread = "; ".join(f"{pct(r['mean_accuracy'])} ± {pct(r.get('std_accuracy'))} at "
                       f"{r['budget']}" for r in rows)
    k, n = rows[0].get("k", p1b.get("samples")), rows[0].get("n_problems")
    return (f"Plateau check ({n} problems × {k} samples; mean accuracy ± std over sample runs: "
            f"{spread}): {p1b.get('verdict', 'no verdict recorded')}.")


def cliff_finding(p3: CliffSummary) -> str:
    rows = by_budget(p3["budgets"])
    grid = f"{rows[0]['budget']}–{rows[-1]['budget']} tokens"
    total = p3.get("total_gain", rows[-1]["accuracy"] - rows[0]["accuracy"])
    window = p3.get("half_gain_window")
    if window:
        text = (f"On the fine grid ({grid}), half of the total gain ({signed_pp(total)} pp) lies "
                f"in {window[0]} → {window[1]} tokens")
        if p3.get("half_gain_window_gain") is not None:
            text += f" ({signed_pp(p3['half_gain_window_gain'])} pp)"
    else:
        text = f"On the fine grid ({grid}) accuracy does not rise overall ({signed_pp(total)} pp)"
    steep = p3.get("steepest") or []
    if p3.get("gains") and not has_cliff(p3):
        return (text + "; no cliff: no step's gain per token has a 95% CI above 0 (paired "
                "bootstrap over problems).")
    if steep:
        top = steep[0]
        ci = ""
        if top.get("ci_low") is not None and top.get("ci_high") is not None:
            ci = f", 95% CI {ci_text(top['ci_low'], top['ci_high'], 2, signed=True)}"
        text += (f"; the steepest step is {top['from']} → {top['to']} "
                 f"({signed_pp(top['gain_per_token'], 2)} pp per token{ci})")
    return text + "."


def label_sources_text(p2: Phase2Summary) -> str:
    """Who labelled the errors: '10 auto, 6 human — auto labels are ... not checked'."""
    sources = p2.get("label_sources", {})
    parts = [f"{n} {who}" for who, n in sorted(sources.items())]
    note = " — auto labels are the heuristic suggestions, not checked by a person" \
        if sources.get("auto") else ""
    return f"labels: {', '.join(parts) or 'none'}{note}"


def error_totals(p2: Phase2Summary) -> dict[str, int]:
    """Annotated errors of each type, summed over budgets."""
    totals: dict[str, int] = {}
    for block in p2.get("error_types", {}).values():
        for kind, count in block.get("counts", {}).items():
            totals[kind] = totals.get(kind, 0) + count
    return totals


def top_type(block: ErrorTypeBlock) -> str:
    counts = block.get("counts", {})
    if not block.get("n"):
        return "no annotated errors"
    kind = max(counts, key=lambda k: counts[k])
    return f"{kind} ({block['pct'][kind]}%)"


def errors_finding(p2: Phase2Summary) -> str:
    totals = error_totals(p2)
    n = sum(totals.values())
    if not n:
        return f"No annotated errors ({label_sources_text(p2)})."
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:3]
    listed = ", ".join(f"{kind} {count}/{n} ({pct(count / n, 0)})" for kind, count in top
                       if count)
    types = p2["error_types"]
    budgets = sorted(types, key=int)
    text = f"Top error types over {n} annotated errors: {listed} ({label_sources_text(p2)})."
    if len(budgets) > 1:
        low, high = budgets[0], budgets[-1]
        text += (f" Most common at {low} tokens: {top_type(types[low])}; at {high} tokens: "
                 f"{top_type(types[high])}.")
    return text


def group_text(name: str, row: LengthGroup, lo: int, hi: int) -> str:
    return (f"{name} (length {row['length']}, n={row['n']}): accuracy "
            f"{pct(row.get('accuracy_at_window_start'), 0)} at {lo} → "
            f"{pct(row.get('accuracy_at_window_end'), 0)} at {hi}, "
            f"{pct(row.get('gain_share'), 0)} of the window's gain, "
            f"{pct(row.get('verification_share'), 0)} verify")


def structure_finding(st: StructureSummary) -> str:
    window, groups = st.get("window"), st.get("groups")
    rows = by_budget(st["budgets"])
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


def verification_finding(st: StructureSummary) -> str:
    both = [r for r in by_budget(st["budgets"])
            if (r.get("with_verification") or {}).get("n")
            and (r.get("without_verification") or {}).get("n")]
    if not both:
        return ("Accuracy with vs without verification cannot be compared: no budget has "
                "solutions of both kinds.")
    row = both[-1]
    w, wo = row["with_verification"], row["without_verification"]
    return (f"At {row['budget']} tokens, solutions that verify are right {pct(w['accuracy'])} of "
            f"the time (n={w['n']}) vs {pct(wo['accuracy'])} for those that do not "
            f"(n={wo['n']}).")


# (summary key, finding drawn from it), in the order the report tells the story.
FINDINGS: list[tuple[str, Callable[[Any], str]]] = [
    ("phase1", saturation_finding), ("phase1b", plateau_finding), ("phase3", cliff_finding),
    ("phase2", errors_finding), ("structure", structure_finding),
    ("structure", verification_finding),
]


def findings(results: StudyResults) -> list[str]:
    """Every finding whose summary exists, else one line naming the command that makes it."""
    out: list[str] = []
    for key, make in FINDINGS:
        summary = results.summary(key)
        if summary is None and not results.applies(key):
            continue
        if make is saturation_finding and summary:  # the fits say whether the curve is flat
            line = saturation_finding(summary, results.summary("scaling"))
        else:
            line = make(summary) if summary else f"({results.missing_line(key)})"
        if line not in out:  # a missing summary feeding two findings is named once
            out.append(line)
    return out
