"""Budget forcing: accuracy vs budget for the truncation reading and the forced answer of the
same rollouts, with the gold answer's probability on the same budgets (figure 8).

Drawn from a forced phase-1 summary alone (its ``forcing`` block holds the truncation curve and
the continuous metrics, ``study.strategies.forcing.summary_block``).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from study.figures.style import (
    OKABE_ITO,
    display_name,
    in_style,
    log2_budget_axis,
    percent_axis,
    styled,
    value,
)
from study.schema import Phase1Summary
from study.tables import by_budget


def has_forcing(summary: Phase1Summary) -> bool:
    """Figure 8 exists only for forced runs (--budget-mode force-end|force-continue)."""
    return "forcing" in summary


@in_style
def fig8_budget_forcing(summary: Phase1Summary) -> Figure:
    """Top: accuracy of both readings (forced with its 95% Wilson band); bottom: mean p_gold
    (bootstrap band) and mean entropy of the forced answers."""
    block = summary["forcing"]
    mode = block["budget_mode"]
    rows = by_budget(summary["budgets"])
    extra = {int(k): v for k, v in block["budgets"].items()}
    x = [r["budget"] for r in rows]
    fig, (acc, prob) = styled(3.6, 4.4, nrows=2, sharex=True, height_ratios=[3, 2])
    forced, plain, gold = OKABE_ITO[1], OKABE_ITO[0], OKABE_ITO[2]
    acc.plot(x, [value(extra[b].get("truncate_accuracy")) for b in x], "s--", color=plain,
             label="truncate (first B tokens)")
    acc.fill_between(x, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows],
                     color=forced, alpha=0.18, linewidth=0)
    acc.plot(x, [r["accuracy"] for r in rows], "o-", color=forced, label=f"{mode} (cue + answer)")
    percent_axis(acc, "Accuracy (95% CI)", top=None)
    acc.set_ylim(bottom=0)
    acc.legend(loc="upper left")
    prob.fill_between(x, [value(extra[b].get("p_gold_ci_low")) for b in x],
                      [value(extra[b].get("p_gold_ci_high")) for b in x], color=gold, alpha=0.2,
                      linewidth=0)
    prob.plot(x, [value(extra[b].get("p_gold")) for b in x], "o-", color=gold,
              label="mean p_gold (95% CI)")
    prob.set_ylim(0, 1.02)
    prob.set_ylabel("p_gold")
    ent = prob.twinx()
    ent.plot(x, [value(extra[b].get("entropy_bits")) for b in x], "^:", color="#777777",
             label="mean entropy (bits)")
    ent.set_ylabel("Entropy (bits)")
    ent.set_ylim(bottom=0)
    ent.grid(False)  # the p_gold axis draws the grid; a second one would not line up with it
    handles = prob.get_legend_handles_labels()
    more = ent.get_legend_handles_labels()
    prob.legend(handles[0] + more[0], handles[1] + more[1], loc="best", fontsize="small")
    log2_budget_axis(prob, x)
    prob.set_xlabel("Token budget (log2 scale)")
    acc.set_title(f"Budget forcing ({mode}) — {display_name(summary)}\n"
                  f"{Path(summary.get('dataset') or '?').name}, n = {rows[0]['n']} problems")
    return fig
