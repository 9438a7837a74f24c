"""Budget forcing on the console and in the report: the two curves side by side.

A forced phase prints, per budget, the accuracy of the truncation reading and of the forced
answer, their difference, and the continuous metrics of the forced answers (mean p_gold with
its bootstrap CI, entropy, gold rank). Both curves come from the same rollouts: each forced
record carries ``truncated_correct``, the truncation reading of its own tokens.
"""

from __future__ import annotations

from study.schema import ForcingRow
from study.tables import (
    MISSING,
    by_budget,
    ci_text,
    markdown_table,
    num,
    pct,
    signed_pp,
    text_table,
)

LEGEND = ("Truncate: the first B tokens graded as they are; Forced: the answer generated after "
          "the cue.\np_gold: mean normalised probability of gold over the problem's answers "
          "(bootstrap CI); Entropy in bits;\nRank of gold (1 = top); Cont.: mean forced "
          "continues; Spent: mean thinking + cue + answer tokens.")
HEADER = ["Budget", "Truncate", "Forced", "Δ pp", "p_gold", "p_gold CI", "Entropy", "Rank",
          "Cont.", "Spent"]


def comparison_rows(forced: dict) -> list[list[str]]:
    """One row per budget: truncation vs forced accuracy and the forced answers' metrics."""
    metrics: dict[str, ForcingRow] = forced["forcing"]["budgets"]
    rows = []
    for row in by_budget(forced["budgets"]):
        m = metrics.get(str(row["budget"]), {})
        plain = m.get("truncate_accuracy")
        accuracy = row.get("accuracy", row.get("mean_accuracy"))  # phase 1b: mean over samples
        diff = signed_pp(accuracy - plain) if plain is not None else MISSING
        rows.append([row["budget"], pct(plain), pct(accuracy), diff,
                     num(m.get("p_gold"), 3),
                     ci_text(m.get("p_gold_ci_low"), m.get("p_gold_ci_high"), 3, scale=1),
                     num(m.get("entropy_bits"), 2), num(m.get("gold_rank"), 2),
                     num(m.get("forced_continues"), 2), num(m.get("tokens_spent"), 1)])
    return rows


def comparison_section(summary: dict) -> str:
    """The side-by-side table of a forced phase, after a blank line ("" for truncation)."""
    if "forcing" not in summary:
        return ""
    mode = summary["forcing"]["budget_mode"]
    widths = ["<8", ">10", ">10", ">8", ">8", ">16", ">9", ">7", ">7", ">8"]
    table = text_table(list(zip(HEADER, widths)), comparison_rows(summary))
    return (f"\n\n{mode} vs truncate, both read from the same rollouts:\n{table}\n{LEGEND}")


def comparison_markdown(summary: dict) -> str:
    """The report section's table and legend."""
    return f"{markdown_table(HEADER, comparison_rows(summary))}\n\n{LEGEND}"


def report_section(phases: dict[str, dict | None]) -> list[str]:
    """The report's "Budget forcing" section: one table per forced phase summary ({title:
    summary}); no lines when the study ran in truncate mode."""
    forced = {title: s for title, s in phases.items() if s and "forcing" in s}
    if not forced:
        return []
    first = next(iter(forced.values()))["forcing"]
    out = ["## Budget forcing", "",
           f"Mode **{first['budget_mode']}**: at each budget the cue {first['cue']!r} is "
           f"appended and up to {first['answer_tokens']} greedy tokens are generated; the "
           "truncate column reads the same rollouts without a cue.", ""]
    for title, summary in forced.items():
        out += [f"**{title}**", "", comparison_markdown(summary), ""]
    return out
