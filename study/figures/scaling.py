"""Curve fits and emergence: figure 6 (fits over the phase-1 curve), figure 7 (the most emergent
problems) and the comparison of several runs (``compare.py``). Drawn from scaling summaries
(``study.schema.ScalingSummary``) only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from study.analysis import fits
from study.figures import style
from study.schema_analyses import ScalingSummary
from study.tables import FLAT, by_budget, is_flat

FIT_STYLE = {"log-linear": ":", "piecewise": "--", "saturating": "-.",
             "constant": (0, (6, 1.5, 1, 1.5))}


def _curve_with_ci(ax: Axes, summary: ScalingSummary, colour: str, label: str) -> list[int]:
    rows = by_budget(summary["budgets"])
    x = [r["budget"] for r in rows]
    acc = np.array([r["accuracy"] for r in rows])
    err = np.array([acc - [r["ci_low"] for r in rows], [r["ci_high"] for r in rows] - acc])
    ax.errorbar(x, acc, yerr=err, fmt="o", color=colour, capsize=2, markersize=4, label=label,
                zorder=4)
    return x


def _fitted(ax: Axes, summary: ScalingSummary, model: str, colour: str, budgets: list[int],
            width: float, label: str | None) -> None:
    curve_fits = summary["fits"]
    if not curve_fits:
        return
    grid = np.linspace(np.log2(min(budgets)), np.log2(max(budgets)), 200)
    y = fits.predict(model, curve_fits["models"][model]["params"], grid)
    ax.plot(2 ** grid, y, linestyle=FIT_STYLE[model], color=colour, linewidth=width, label=label)


@style.in_style
def fig6_curve_fits(summary: ScalingSummary) -> Figure:
    """Phase-1 accuracy (95% CI) with the fitted curves (the constant among them), the
    breakpoint (bootstrap CI) and the fitted saturation level; on a flat curve (the constant
    best) neither of the last two, and the title says it is flat."""
    fig, (ax,) = style.styled(3.6, 3.0)
    budgets = _curve_with_ci(ax, summary, "#222222", "accuracy (95% CI)")
    curve_fits = summary["fits"]
    if curve_fits:
        for i, model in enumerate(fits.MODELS):
            best = model == curve_fits["best"]
            _fitted(ax, summary, model, style.OKABE_ITO[i + 1], budgets, 2.0 if best else 1.1,
                    f"{model}{' (best BIC)' if best else ''}")
        low_high = curve_fits.get("breakpoint_ci")
        if low_high:
            style.shade_window(ax, low_high[0], low_high[1], label="breakpoint 95% CI")
        if curve_fits.get("breakpoint") is not None:  # None: flat, there is no breakpoint
            label = "breakpoint (no CI: no spread)" if curve_fits.get("breakpoint_ci_note") \
                else None
            ax.axvline(curve_fits["breakpoint"], color=style.OKABE_ITO[2], linewidth=0.8,
                       label=label)
        if curve_fits.get("saturation_level") is not None:
            ax.axhline(curve_fits["saturation_level"], color=style.OKABE_ITO[3], linewidth=0.8,
                       linestyle=(0, (1, 3)), label="fitted saturation level")
    style.log2_budget_axis(ax, budgets)
    style.percent_axis(ax, "Accuracy", top=None)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("Token budget (log2 scale)")
    ax.legend(loc="lower right", fontsize=6)
    title = f"Curve fits — {style.display_name(summary)}, {summary.get('dataset', '?')}"
    if is_flat(summary):
        ax.set_title(f"{title}\n{FLAT}", fontsize=7)
    else:
        ax.set_title(title)
    return fig


@style.in_style
def fig7_emergent_problems(summary: ScalingSummary) -> Figure:
    """(a) trajectories of the most emergent problems; (b) the cliff window's gain from
    problems that jump vs problems that improve gradually."""
    block = next(iter(summary["emergence"].values()))
    fig, (heat, split) = style.styled(7.0, 2.8, ncols=2, width_ratios=[2.6, 1])
    scores = {p["problem_id"]: p for p in block["problems"]}
    top = block["top"]
    matrix = np.array([scores[pid]["trajectory"] for pid in top]) if top else np.zeros((0, 1))
    image = heat.imshow(matrix if top else np.zeros((1, len(block["budgets"]))), aspect="auto",
                        cmap="viridis", vmin=0, vmax=1)
    heat.set_xticks(range(len(block["budgets"])), [str(b) for b in block["budgets"]])
    heat.set_yticks(range(len(top)), [f"{pid} (B {scores[pid]['breakthroughness']:.2f})"
                                      for pid in top], fontsize=6)
    heat.set_xlabel("Token budget")
    heat.grid(False)
    fig.colorbar(image, ax=heat, label=block["metric"], shrink=0.8)
    heat.set_title(f"(a) top {len(top)} emergent problems; {block['n_jumping']} of "
                   f"{len(block['problems'])} jump")
    gain = block.get("window_gain")
    if gain:
        split.bar([0], [gain["from_jumping"]], color=style.OKABE_ITO[5], label="jumping problems")
        split.bar([0], [gain["from_gradual"]], bottom=[gain["from_jumping"]],
                  color=style.OKABE_ITO[1], label="gradual problems")
        split.set_xticks([0], [f"{gain['from']} → {gain['to']} tokens"])
        split.set_xlim(-0.8, 0.8)
        split.set_ylim(top=1.45 * max(gain["gain"], gain["from_jumping"], 1e-3))
        split.legend(loc="upper center", fontsize=6)
    style.percent_axis(split, "Gain in the cliff window", top=None)
    split.set_title("(b) gain split")
    fig.suptitle(f"Emergent problems — {style.display_name(summary)}, "
                 f"{summary.get('dataset', '?')}", fontsize=9)
    return fig


@style.in_style
def fig_compare_runs(summaries: Sequence[ScalingSummary], labels: Sequence[str]) -> Figure:
    """One panel per dataset: each run's accuracy (95% CI) with its best fitted curve."""
    datasets = list(dict.fromkeys(s.get("dataset") or "?" for s in summaries))
    fig, axes = style.styled(max(3.4 * len(datasets), 4.2), 3.0, ncols=len(datasets), sharey=True)
    models = list(dict.fromkeys(labels))
    for ax, dataset in zip(axes, datasets):
        budgets: list[int] = []
        for summary, label in zip(summaries, labels):
            if (summary.get("dataset") or "?") != dataset:
                continue
            colour = style.OKABE_ITO[models.index(label) % len(style.OKABE_ITO)]
            rows = by_budget(summary["budgets"])
            x = [r["budget"] for r in rows]
            budgets += x
            ax.fill_between(x, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows],
                            color=colour, alpha=0.15, linewidth=0)
            ax.plot(x, [r["accuracy"] for r in rows], "o", color=colour, markersize=4)
            best = summary["fits"]["best"] if summary["fits"] else None
            if best:
                name = "flat" if is_flat(summary) else best
                _fitted(ax, summary, best, colour, x, 1.4, f"{label}: {name}")
        style.log2_budget_axis(ax, budgets)
        style.percent_axis(ax, "Accuracy (95% CI)", top=None)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("Token budget (log2 scale)")
        ax.set_title(Path(str(dataset)).stem)
        ax.legend(loc="upper left", fontsize=6)
    fig.suptitle("Runs compared (points: measured; lines: best fit by BIC)", fontsize=8)
    return fig
