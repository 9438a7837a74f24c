"""Accuracy against the token budget: figures 1 (saturation curve), 1b (stochastic check) and
3 (the cliff on a fine grid). Each is drawn from one kind of summary only."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from study.figures.style import (
    OKABE_ITO,
    categorical_budgets,
    display_name,
    in_style,
    log2_budget_axis,
    percent_axis,
    shade_window,
    styled,
    value,
)
from study.schema import CliffSummary, Phase1bSummary, Phase1Summary, StochasticRow
from study.tables import by_budget


def _two_panels() -> tuple[Figure, list[Axes]]:
    """A tall main panel over a smaller one, sharing the budget axis (figures 1 and 3)."""
    return styled(3.6, 4.4, nrows=2, sharex=True, height_ratios=[3, 2])


# ---------------------------------------------------------------- figure 1

@in_style
def fig1_saturation_curve(summaries: Sequence[Phase1Summary]) -> Figure:
    """Accuracy (95% CI band) and mean tokens used vs budget; one line per model (the first is
    the study's model, the others are overlaid)."""
    fig, (acc, used) = _two_panels()
    budgets: list[int] = []
    for i, summary in enumerate(summaries):
        rows, colour = by_budget(summary["budgets"]), OKABE_ITO[i % len(OKABE_ITO)]
        x = [r["budget"] for r in rows]
        budgets += x
        acc.fill_between(x, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows],
                         color=colour, alpha=0.18, linewidth=0)
        acc.plot(x, [r["accuracy"] for r in rows], "o-", color=colour,
                 label=display_name(summary))
        used.plot(x, [r["avg_tokens"] for r in rows], "o-", color=colour)
        _mark_saturation(acc, summary, colour)
    used.plot(sorted(set(budgets)), sorted(set(budgets)), "--", color="#777777", linewidth=1,
              label="budget (upper bound)")
    log2_budget_axis(used, budgets)
    log2_budget_axis(used, budgets, axis="y")
    percent_axis(acc, "Accuracy (95% CI)", top=None)
    acc.set_ylim(bottom=0)
    used.set_ylabel("Mean tokens used")
    used.set_xlabel("Token budget (log2 scale)")
    handles, labels = acc.get_legend_handles_labels()
    sat = summaries[0].get("saturation_budget")
    handles.append(Line2D([], [], marker="*", linestyle="none", color="#333333", markersize=9))
    labels.append("saturation point" if len(summaries) > 1
                  else f"saturation point ({sat} tokens)")
    acc.legend(handles, labels, loc="lower right")
    used.legend(loc="upper left")
    first = summaries[0]
    title = (f"Saturation curve — {display_name(first)}" if len(summaries) == 1
             else f"Saturation curves — {len(summaries)} models")
    acc.set_title(f"{title}\n{first.get('dataset', '?')}, "
                  f"n = {by_budget(first['budgets'])[0]['n']} problems")
    return fig


def _mark_saturation(ax: Axes, summary: Phase1Summary, colour: str) -> None:
    sat = summary.get("saturation_budget")
    row = summary["budgets"].get(str(sat))
    if row is None:
        return
    ax.plot([sat], [row["accuracy"]], marker="*", markersize=13, color=colour,
            markeredgecolor="white", markeredgewidth=0.6, linestyle="none", zorder=5,
            label="_saturation")


# ---------------------------------------------------------------- figure 1b

@in_style
def fig1b_stochastic(summary: Phase1bSummary) -> Figure:
    """Per-run accuracy spread, per-problem success distribution, pass@k / maj@k vs k."""
    fig, (spread, hist, curves) = styled(7.0, 2.6, ncols=3)
    rows = by_budget(summary["budgets"])
    colours = {r["budget"]: OKABE_ITO[i % len(OKABE_ITO)] for i, r in enumerate(rows)}
    _run_spread(spread, rows, colours)
    _success_histogram(hist, rows, colours)
    _pass_maj_curves(curves, rows, colours)
    k, n = rows[0].get("k", summary.get("samples")), rows[0].get("n_problems")
    fig.suptitle(f"Stochastic check — {display_name(summary)}: {n} problems × {k} samples "
                 f"(temperature sampling)", fontsize=9)
    return fig


def _run_spread(ax: Axes, rows: list[StochasticRow], colours: dict[int, str]) -> None:
    for i, r in enumerate(rows):
        runs = r.get("run_accuracies") or []
        jitter = [i + 0.18 * ((j % 5) - 2) / 2 for j in range(len(runs))]
        ax.plot(jitter, runs, "o", color=colours[r["budget"]], alpha=0.55, markersize=3.5)
        ax.errorbar([i], [r["mean_accuracy"]], yerr=value(r.get("std_accuracy")), fmt="_",
                    color="#222222", markersize=14, capsize=3, linewidth=1.2)
    categorical_budgets(ax, [r["budget"] for r in rows])
    percent_axis(ax, "Accuracy of each sample run", top=None)
    ax.set_ylim(bottom=0)
    ax.set_title("(a) run-to-run spread (bar: mean ± std)")


def _success_histogram(ax: Axes, rows: list[StochasticRow], colours: dict[int, str]) -> None:
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        hist = r.get("success_histogram") or {}
        ax.bar([j + (i - (len(rows) - 1) / 2) * width for j in range(len(hist))],
               list(hist.values()), width=width, color=colours[r["budget"]],
               label=f"{r['budget']} tokens")
        ax.set_xticks(range(len(hist)), list(hist))
    ax.set_xlabel("Samples correct per problem")
    ax.set_ylabel("Problems")
    ax.grid(axis="x", visible=False)
    # Headroom above the tallest bar so the legend never covers one.
    tallest = max([p.get_height() for p in ax.patches] + [1])
    ax.set_ylim(0, tallest * (1.15 + 0.12 * len(rows)))
    ax.legend(loc="upper right")
    ax.set_title("(b) per-problem success")


def _pass_maj_curves(ax: Axes, rows: list[StochasticRow], colours: dict[int, str]) -> None:
    for r in rows:
        for key, style in (("pass_at_k", "o-"), ("maj_at_k", "s--")):
            values = r.get(key) or {}
            ks = sorted(int(j) for j in values)
            ax.plot(ks, [values[str(j)] for j in ks], style, color=colours[r["budget"]],
                    markersize=3)
    ks = sorted({int(j) for r in rows for j in (r.get("pass_at_k") or {})})
    ax.set_xticks(ks)
    ax.set_xlabel("k (samples)")
    percent_axis(ax, "Accuracy", top=None)
    ax.set_ylim(bottom=0)
    style_key = [Line2D([], [], color="#333333", marker="o", label="pass@k"),
                 Line2D([], [], color="#333333", marker="s", linestyle="--", label="maj@k")]
    ax.legend(handles=style_key, loc="lower right")
    ax.set_title("(c) pass@k and maj@k")


# ---------------------------------------------------------------- figure 3

@in_style
def fig3_cliff_detail(cliff: CliffSummary) -> Figure:
    """Fine-grid accuracy (Wilson CIs) and gain per token; the cliff window (narrowest span with
    half the total gain) shaded, the steepest step in orange. Linear x axis: the grid is evenly
    spaced, so a log scale would only squeeze its top end."""
    fig, (acc, gain) = _two_panels()
    rows = by_budget(cliff["budgets"])
    x = [r["budget"] for r in rows]
    y = [r["accuracy"] for r in rows]
    err = [[a - r["ci_low"] for a, r in zip(y, rows)], [r["ci_high"] - a for a, r in zip(y, rows)]]
    window = cliff.get("half_gain_window")
    if window:
        shade_window(acc, *window, label="cliff window (half of total gain)")
        shade_window(gain, *window)
    acc.errorbar(x, y, yerr=err, fmt="o-", color=OKABE_ITO[0], capsize=2, label="accuracy")
    _steepest_segment(acc, cliff)
    percent_axis(acc, "Accuracy (95% CI)", top=None)
    acc.set_ylim(bottom=0)
    # Below the panels: inside, it would cover error bars wherever the curve is high.
    fig.legend(*acc.get_legend_handles_labels(), loc="outside lower center", ncol=2)
    acc.set_title(f"Cliff detail — {display_name(cliff)}\n{cliff.get('dataset', '?')}, "
                  f"n = {rows[0]['n']} problems")
    _gain_bars(gain, cliff)
    gain.set_xticks(x, [str(b) for b in x], rotation=45 if len(x) > 10 else 0)
    gain.set_xlabel("Token budget")
    return fig


def _steepest_segment(ax: Axes, cliff: CliffSummary) -> None:
    steep = (cliff.get("steepest") or [None])[0]
    if not steep or steep["gain_per_token"] <= 0:
        return
    ends = [cliff["budgets"][str(b)] for b in (steep["from"], steep["to"])]
    ax.plot([r["budget"] for r in ends], [r["accuracy"] for r in ends], "-", color=OKABE_ITO[1],
            linewidth=3, zorder=4, label="steepest step")


def _gain_bars(ax: Axes, cliff: CliffSummary) -> None:
    gains = cliff.get("gains") or []
    steep = (cliff.get("steepest") or [{}])[0]
    mids = [(g["from"] + g["to"]) / 2 for g in gains]
    widths = [0.7 * (g["to"] - g["from"]) for g in gains]
    per_token = [100 * g["gain_per_token"] for g in gains]
    colours = [OKABE_ITO[1] if (g["from"], g["to"]) == (steep.get("from"), steep.get("to"))
               else OKABE_ITO[0] for g in gains]
    ax.bar(mids, per_token, width=widths, color=colours, alpha=0.85)
    if gains and all(g.get("ci_low") is not None for g in gains):
        ax.errorbar(mids, per_token, fmt="none", color="#333333", capsize=2, linewidth=0.8,
                    yerr=[[p - 100 * g["ci_low"] for p, g in zip(per_token, gains)],
                          [100 * g["ci_high"] - p for p, g in zip(per_token, gains)]])
    ax.axhline(0, color="#333333", linewidth=0.6)
    ax.set_ylabel("Gain (pp per token)")
