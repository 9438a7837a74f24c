"""Thinking budgets: accuracy against the share of rollouts that closed their thinking, per
budget (figure 12). Drawn from a phase-1 summary of a model with thinking markers alone (its
``thinking`` block, ``study.strategies.reasoning.summary_block``).
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
)
from study.schema import Phase1Summary
from study.tables import by_budget


def has_thinking(summary: Phase1Summary) -> bool:
    """Figure 12 exists only for models with thinking markers."""
    return bool(summary.get("thinking"))


@in_style
def fig12_thinking_budget(summary: Phase1Summary) -> Figure:
    """Left: accuracy (95% Wilson band), the share that closed its thinking and the share with
    a readable answer, against the budget. Right: accuracy against the closed share, one point
    per budget, joined in budget order (a model that answers only after thinking sits on or
    under the diagonal under truncation)."""
    block = summary["thinking"]
    rows = by_budget(summary["budgets"])
    x = [r["budget"] for r in rows]
    think = {int(k): v for k, v in block["budgets"].items()}
    closed = [think[b]["closed_thinking_rate"] if b in think else float("nan") for b in x]
    present = [think[b]["answer_present_rate"] if b in think else float("nan") for b in x]
    accuracy = [r["accuracy"] for r in rows]
    fig, (by_b, scatter) = styled(7.2, 3.2, ncols=2)
    acc_c, closed_c, present_c = OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[2]
    by_b.fill_between(x, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows],
                      color=acc_c, alpha=0.18, linewidth=0)
    by_b.plot(x, accuracy, "o-", color=acc_c, label="accuracy (95% CI)")
    by_b.plot(x, closed, "s--", color=closed_c, label="closed thinking")
    by_b.plot(x, present, "^:", color=present_c, label="answer present")
    percent_axis(by_b, "Share of rollouts", top=1.02)
    by_b.set_ylim(-0.03, 1.03)  # points at 0 % and 100 % drawn whole
    log2_budget_axis(by_b, x)
    by_b.set_xlabel("Token budget (log2 scale)")
    by_b.legend(loc="upper left")
    scatter.plot([0, 1], [0, 1], "--", color="#999999", linewidth=1, label="accuracy = closed")
    scatter.plot(closed, accuracy, "-", color=acc_c, alpha=0.5, linewidth=1)
    scatter.scatter(closed, accuracy, color=acc_c, zorder=3, s=14)
    for b, cx, cy in zip(x, closed, accuracy):
        scatter.annotate(str(b), (cx, cy), textcoords="offset points", xytext=(4, 4),
                         fontsize=6)
    percent_axis(scatter, "Accuracy", top=1.02)
    scatter.set_ylim(-0.03, 1.03)
    scatter.set_xlim(-0.03, 1.03)
    scatter.xaxis.set_major_formatter(by_b.yaxis.get_major_formatter())
    scatter.set_xlabel("Closed thinking (share of rollouts)")
    scatter.legend(loc="upper left")
    end = (block["markers"] + ["", ""])[1] or "end marker"
    read = "whole text" if block["graded"] == "whole-text" else f"answer after {end}"
    fig.suptitle(f"Thinking budget — {display_name(summary)}, "
                 f"{Path(summary.get('dataset') or '?').name}, n = {rows[0]['n']} problems "
                 f"({read})", fontsize=9)
    return fig
