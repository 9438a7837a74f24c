"""Compute along depth: accuracy against the layers kept (figure 9) and the logit lens
(figure 10). Each is drawn from one summary only (``DepthSummary``, ``LensSummary``)."""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from study.figures.style import OKABE_ITO, display_name, in_style, percent_axis, styled
from study.schema_analyses import DepthSummary, LensSummary
from study.tables import by_budget


@in_style
def fig9_depth_accuracy(summary: DepthSummary) -> Figure:
    """Accuracy (Wilson 95% CI) against decoder layers kept, one line per budget; the critical
    depth (fewest layers within the best depth's CI) starred."""
    fig, (ax,) = styled(3.6, 2.8)
    total = summary["model_layers"]
    blocks = by_budget(summary["budgets"])
    for i, block in enumerate(blocks):
        rows = sorted(block["depths"].values(), key=lambda r: r["layers"])
        x, y = [r["layers"] for r in rows], [r["accuracy"] for r in rows]
        err = [[a - r["ci_low"] for a, r in zip(y, rows)],
               [r["ci_high"] - a for a, r in zip(y, rows)]]
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        ax.errorbar(x, y, yerr=err, fmt="o-", color=colour, capsize=2,
                    label=f"{block['budget']} tokens")
        crit = block.get("critical_depth")
        if crit is not None:
            ax.plot([crit], [block["depths"][str(crit)]["accuracy"]], marker="*", markersize=13,
                    color=colour, markeredgecolor="white", markeredgewidth=0.6, zorder=5,
                    linestyle="none")
    layers = sorted(summary["layers"])
    ax.set_xticks(layers, [str(n) for n in layers])
    ax.set_xlim(min(layers) - 1, total + 1)
    ax.set_xlabel(f"Decoder layers kept (of {total})")
    percent_axis(ax, "Accuracy (95% CI)", top=None)
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="*", linestyle="none", color="#333333", markersize=9))
    crit = ", ".join(str(b.get("critical_depth")) for b in blocks)
    labels.append(f"critical depth ({crit} layers)")
    ax.legend(handles, labels, loc="upper left")
    n = next(iter(blocks[0]["depths"].values()))["n"]
    ax.set_title(f"Accuracy vs depth — {display_name(summary)}\n"
                 f"{summary.get('dataset', '?')}, n = {n} problems")
    return fig


@in_style
def fig10_logit_lens(summary: LensSummary) -> Figure:
    """KL(final || layer) per layer, one line per budget (log scale; the last layer's KL is 0
    by construction and is left off)."""
    fig, (ax,) = styled(3.6, 2.8)
    blocks = by_budget(summary["budgets"])
    shades = colormaps["viridis"]
    for i, block in enumerate(blocks):
        kl = block["kl"][:-1]
        colour = shades(i / max(1, len(blocks) - 1) * 0.8)  # viridis' yellow end is too faint
        ax.plot(range(1, len(kl) + 1), kl, "o-", color=colour, markersize=2.5, linewidth=1.2,
                label=f"{block['budget']} tokens")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"Layer (of {summary['model_layers']}; the last, KL = 0, not shown)")
    ax.set_ylabel("KL(final ‖ layer), nats")
    ax.legend(title="budget", loc="lower left", ncol=2 if len(blocks) > 3 else 1)
    ax.set_title(f"Logit lens — {display_name(summary)}\n{summary.get('dataset', '?')}, "
                 f"{summary['n_rollouts']} rollouts, mean over generated tokens")
    return fig
