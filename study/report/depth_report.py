"""The report's depth sections (markdown, from the summaries only): accuracy against depth, and
the logit lens. ``study.report.markdown`` registers them next to the phases' tables."""

from __future__ import annotations

from study.schema_analyses import DepthSummary, LensSummary
from study.tables import by_budget, ci_text, markdown_table, num, pct


def depth_table(summary: DepthSummary) -> str:
    out = []
    for block in by_budget(summary["budgets"]):
        crit = block.get("critical_depth")
        rows = [[f"**{r['layers']}**" if r["layers"] == crit else r["layers"],
                 pct(r["accuracy"]), ci_text(r["ci_low"], r["ci_high"]), num(r["avg_tokens"]),
                 pct(r["hit_budget_rate"], 0), r["n"]]
                for r in sorted(block["depths"].values(), key=lambda r: r["layers"])]
        out.append(f"Budget {block['budget']} tokens (model depth {summary['model_layers']}):"
                   "\n\n" + markdown_table(["Layers", "Accuracy", "95% CI", "Avg tokens", "Cut",
                                            "n"], rows))
    return "\n\n".join(out) + ("\n\nBold: critical depth (fewest layers whose accuracy lies "
                               "within the best depth's CI). CI = Wilson.")


def lens_table(summary: LensSummary) -> str:
    blocks = by_budget(summary["budgets"])
    rows = [[layer + 1, *[num(b["kl"][layer], 3) for b in blocks]]
            for layer in range(summary["model_layers"])]
    drops = "; ".join(f"{b['budget']} tokens: layer {b['steepest_drop'][0]} → "
                      f"{b['steepest_drop'][1]}" for b in blocks if b.get("steepest_drop"))
    return (markdown_table(["Layer", *[f"{b['budget']} tok" for b in blocks]], rows) +
            f"\n\nMean KL(final ‖ layer) in nats over the generated tokens within each budget, "
            f"{summary['n_rollouts']} seeded phase-1 rollouts. Largest drop: {drops or '—'}.")
