"""What the solutions look like: figures 2 (error types, phase 2), 4 (solution structure) and
5 (verification and accuracy, both phase 3). Each is drawn from one kind of summary only."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from study.figures.style import (
    ERROR_COLOURS,
    OKABE_ITO,
    PHASE_COLOURS,
    categorical_budgets,
    display_name,
    in_style,
    percent_axis,
    shade_window_categorical,
    stacked_bars,
    styled,
    value,
)
from study.report.findings import label_sources_text
from study.schema import Phase2Summary
from study.schema_analyses import StructureRow, StructureSummary
from study.tables import by_budget

# ---------------------------------------------------------------- figure 2

@in_style
def fig2_error_distribution(analysis: Phase2Summary) -> Figure:
    """Stacked error types per annotated budget: counts (left) and shares (right)."""
    fig, (counts_ax, share_ax) = styled(7.0, 2.9, ncols=2)
    types = analysis["error_types"]
    budgets = sorted(types, key=int)
    kinds = [k for k in next(iter(types.values()))["counts"]
             if any(types[b]["counts"][k] for b in budgets)]  # types that never occur: no bar
    totals = [types[b]["n"] for b in budgets]
    counts = {kind: [types[b]["counts"][kind] for b in budgets] for kind in kinds}
    stacked_bars(counts_ax, counts, ERROR_COLOURS)
    stacked_bars(share_ax, {kind: [c / t if t else 0.0 for c, t in zip(values, totals)]
                            for kind, values in counts.items()}, ERROR_COLOURS, label=False)
    errors = analysis.get("errors_in_results", {})
    for i, b in enumerate(budgets):
        label = f"{totals[i]}/{errors[b]}" if b in errors else str(totals[i])
        counts_ax.text(i, totals[i], label, ha="center", va="bottom", fontsize=7)
    counts_ax.set_ylim(0, max(totals + [1]) * 1.15)
    counts_ax.set_ylabel("Annotated errors")
    counts_ax.set_title("(a) counts (label: annotated / all errors)")
    percent_axis(share_ax, "Share of annotated errors")
    share_ax.set_title("(b) shares")
    for ax in (counts_ax, share_ax):
        categorical_budgets(ax, [int(b) for b in budgets])
    handles, labels = counts_ax.get_legend_handles_labels()
    # Reversed so the legend reads top to bottom like the stacks.
    fig.legend(handles[::-1], labels[::-1], loc="outside right center", title="Error type",
               title_fontsize=7)
    fig.suptitle(f"Error types by budget — {display_name(analysis)} "
                 f"({label_sources_text(analysis).split(' — ')[0]})", fontsize=9)
    return fig


# ---------------------------------------------------------------- figure 4

@in_style
def fig4_solution_structure(structure: StructureSummary) -> Figure:
    """Mean tokens per solution phase (setup / computation / verification) and their shares."""
    fig, (tokens_ax, share_ax) = styled(7.0, 2.8, ncols=2)
    rows = by_budget(structure["budgets"])
    budgets = [r["budget"] for r in rows]
    stack = stacked_bars(tokens_ax, {p: [value(r.get("tokens_per_phase", {}).get(p))
                                         for r in rows] for p in PHASE_COLOURS}, PHASE_COLOURS)
    stacked_bars(share_ax, {p: [value(r.get("token_share_per_phase", {}).get(p)) for r in rows]
                            for p in PHASE_COLOURS}, PHASE_COLOURS, label=False)
    used = [value(r.get("avg_tokens")) for r in rows]
    tokens_ax.plot(range(len(rows)), used, "D", color="#222222", markersize=3.5,
                   label="all tokens used")
    tokens_ax.set_ylim(0, 1.1 * max([v for v in used + stack if v == v] + [1.0]))
    for ax in (tokens_ax, share_ax):
        shade_window_categorical(ax, budgets, structure.get("window"))
        categorical_budgets(ax, budgets)
    tokens_ax.set_ylabel("Mean tokens per solution")
    tokens_ax.set_title("(a) tokens per phase")
    percent_axis(share_ax, "Share of segmented tokens")
    share_ax.set_title("(b) share of tokens")
    handles, labels = tokens_ax.get_legend_handles_labels()
    phases = [i for i, label in enumerate(labels) if label in PHASE_COLOURS]
    others = [i for i, label in enumerate(labels) if label not in PHASE_COLOURS]
    order = phases[::-1] + others  # phases read top-down like the stacks
    fig.legend([handles[i] for i in order], [labels[i] for i in order],
               loc="outside right center")
    fig.suptitle(f"Solution structure — {display_name(structure)}", fontsize=9)
    return fig


# ---------------------------------------------------------------- figure 5

@in_style
def fig5_verification_accuracy(structure: StructureSummary) -> Figure:
    """Accuracy of solutions with vs without a verification phase, and how many verify."""
    fig, (acc, share) = styled(3.6, 4.2, nrows=2, sharex=True, height_ratios=[3, 2])
    rows = by_budget(structure["budgets"])
    budgets = [r["budget"] for r in rows]
    for key, offset, colour, marker in (("with_verification", -0.12, OKABE_ITO[2], "o"),
                                        ("without_verification", 0.12, OKABE_ITO[1], "s")):
        _accuracy_points(acc, rows, key, offset, colour, marker)
    if not any((r.get("with_verification") or {}).get("n") for r in rows):
        acc.text(0.5, 0.93, "no solution has a verification phase", transform=acc.transAxes,
                 ha="center", va="top", fontsize=7, color="#555555")
    percent_axis(acc, "Accuracy (95% CI)", top=1.05)
    acc.legend(loc="upper left", bbox_to_anchor=(0, 0.88) if acc.texts else None)
    acc.set_title(f"Verification and accuracy — {display_name(structure)}")
    shares = [value(r.get("verification_share")) for r in rows]
    share.bar(range(len(rows)), shares, color=OKABE_ITO[2], width=0.6)
    shade_window_categorical(share, budgets, structure.get("window"))
    # At least 0-10 %, so an all-zero panel reads as "none" rather than as noise.
    highest = max([v for v in shares if v == v] + [0.0])
    percent_axis(share, "Solutions that verify", top=min(1.0, max(0.1, 1.25 * highest)))
    if share.get_legend_handles_labels()[0]:
        share.legend(loc="upper left")
    categorical_budgets(share, budgets)
    return fig


def _accuracy_points(ax: Axes, rows: list[StructureRow], key: str, offset: float, colour: str,
                     marker: str) -> None:
    """Accuracy with its CI at each budget that has solutions of this kind (n > 0)."""
    points = [(i, r[key]) for i, r in enumerate(rows)  # type: ignore[literal-required]
              if (r.get(key) or {}).get("n")]
    xs = [i + offset for i, _ in points]
    ys = [b["accuracy"] for _, b in points]
    err = [[y - b["ci_low"] for y, (_, b) in zip(ys, points)],
           [b["ci_high"] - y for y, (_, b) in zip(ys, points)]]
    label = key.replace("_", " ").replace("verification", "verification phase")
    ax.errorbar(xs, ys, yerr=err if points else None, fmt=marker, color=colour, capsize=2,
                label=label)
