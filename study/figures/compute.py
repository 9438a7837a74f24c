"""Figure 11: the compute-matched comparison, drawn from the phase-4 summary only."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from study.figures.style import OKABE_ITO, display_name, in_style, percent_axis, styled
from study.schema_analyses import ComputePoint, ComputeSummary

# One colour per kind of strategy; the k-sample series of different budgets differ by marker.
_COLOURS = {"truncation": OKABE_ITO[0], "majority": OKABE_ITO[2], "pass": OKABE_ITO[3],
            "power": OKABE_ITO[1]}
_OTHER_MODES = (OKABE_ITO[5], OKABE_ITO[4], OKABE_ITO[6])
_MARKERS = ("o", "s", "^", "D", "v")


def _series(points: list[ComputePoint]) -> dict[str, list[ComputePoint]]:
    out: dict[str, list[ComputePoint]] = {}
    for p in points:
        out.setdefault(p["label"], []).append(p)
    return {label: sorted(ps, key=lambda p: p["tokens_per_problem"]) for label, ps in out.items()}


@in_style
def fig11_compute_matched(summary: ComputeSummary) -> Figure:
    """Accuracy (95% CI) against mean tokens spent per problem, one series per strategy, log2 x
    axis; the Pareto frontier of the non-oracle points as a grey step line with rings."""
    fig, (ax,) = styled(5.6, 4.0)
    modes: dict[str, str] = {}
    for label, pts in _series(summary["points"]).items():
        kind = pts[0]["strategy"]
        colour = _COLOURS.get(kind) or modes.setdefault(
            kind, _OTHER_MODES[len(modes) % len(_OTHER_MODES)])
        budgets = sorted({p["budget"] for p in summary["points"] if p["strategy"] == kind})
        marker = _MARKERS[budgets.index(pts[0]["budget"]) % len(_MARKERS)] \
            if kind in ("majority", "pass") else "o"
        x = [p["tokens_per_problem"] for p in pts]
        y = [p["accuracy"] for p in pts]
        err = [[a - (p["ci_low"] if p["ci_low"] is not None else a) for a, p in zip(y, pts)],
               [(p["ci_high"] if p["ci_high"] is not None else a) - a for a, p in zip(y, pts)]]
        oracle = pts[0]["oracle"]
        ax.errorbar(x, y, yerr=err, fmt=marker + (":" if oracle else "-"), color=colour,
                    capsize=2, linewidth=1.1, markersize=4, elinewidth=0.7, alpha=0.9,
                    markerfacecolor="white" if oracle else colour,
                    label=label + (" (oracle)" if oracle else ""))
        if kind in ("power", "truncation") or kind in modes:
            for i, p in enumerate(pts):  # alternate below / above: neighbours may be close
                ax.annotate(f"{p['budget']}", (p["tokens_per_problem"], p["accuracy"]),
                            textcoords="offset points", xytext=(3, -8 if i % 2 == 0 else 4),
                            fontsize=5.5, color=colour)
    _frontier(ax, summary["points"])
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("Mean tokens spent per problem (log2 scale)")
    percent_axis(ax, "Accuracy (95% CI)", top=None)
    ax.set_ylim(bottom=0)
    s = summary.get("power_settings") or {}
    ax.set_title(f"Compute-matched comparison — {display_name(summary)}\n"
                 f"{summary.get('dataset', '?')}, n = {summary['n_problems']} problems; "
                 f"power sampling α={s.get('alpha')}, {s.get('blocks')} blocks, "
                 f"{s.get('mcmc_steps')} MH steps\nsmall numbers: the budget B of each chain",
                 fontsize=8)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3)
    return fig


def _frontier(ax, points: list[ComputePoint]) -> None:
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["tokens_per_problem"])
    if not front:
        return
    ax.step([p["tokens_per_problem"] for p in front], [p["accuracy"] for p in front],
            where="post", color="#999999", linewidth=3, alpha=0.45, zorder=0,
            label="Pareto frontier (pass@k left out)")
    ax.plot([p["tokens_per_problem"] for p in front], [p["accuracy"] for p in front], "o",
            markersize=9, markerfacecolor="none", markeredgecolor="#555555",
            markeredgewidth=0.8, zorder=5)
