"""Budget forcing on the console and in the report: the two curves side by side.

A forced phase prints, per budget, the accuracy of the truncation reading and of the forced
answer, their difference, and the continuous metrics of the forced answers (mean p_gold with
its bootstrap CI, entropy, gold rank). For force-end the truncation curve is read from the very
same rollouts; for force-continue it is truncation's own run (its rollouts have no continues).
"""

from __future__ import annotations

from collections.abc import Callable

from config import StudyConfig
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

HEADER = ["Budget", "Truncate", "Forced", "Δ pp", "p_gold", "p_gold CI", "Entropy", "Rank",
          "Cont.", "Spent"]


def comparison_rows(truncate: dict | None, forced: dict) -> list[list[str]]:
    """One row per forced budget: truncation vs forced accuracy and the forced metrics."""
    plain = truncate["budgets"] if truncate else {}
    metrics: dict[str, ForcingRow] = forced.get("forcing", {}).get("budgets", {})
    rows = []
    for row in by_budget(forced["budgets"]):
        key = str(row["budget"])
        base, m = plain.get(key), metrics.get(key, {})
        diff = signed_pp(row["accuracy"] - base["accuracy"]) if base else MISSING
        rows.append([row["budget"], pct(base["accuracy"]) if base else MISSING,
                     pct(row["accuracy"]), diff, num(m.get("p_gold"), 3),
                     ci_text(m.get("p_gold_ci_low"), m.get("p_gold_ci_high"), 3, scale=1),
                     num(m.get("entropy_bits"), 2), num(m.get("gold_rank"), 2),
                     num(m.get("forced_continues"), 2), num(m.get("tokens_spent"), 1)])
    return rows


def comparison_table(truncate: dict | None, forced: dict) -> str:
    """The console table of a forced phase."""
    mode = forced.get("forcing", {}).get("budget_mode", "forced")
    widths = ["<8", ">10", ">10", ">8", ">8", ">16", ">9", ">7", ">7", ">8"]
    table = text_table(list(zip(HEADER, widths)), comparison_rows(truncate, forced))
    source = ("the same rollouts" if mode == "force-end" else "truncation's own rollouts")
    return (f"{mode} vs truncate (truncate read from {source}):\n{table}\n"
            "p_gold = mean normalised probability of gold over the problem's answers (bootstrap "
            "CI); Entropy in bits; Rank of gold (1 = top); Cont. = mean forced continues; "
            "Spent = mean thinking + cue + answer tokens")


def comparison_markdown(truncate: dict | None, forced: dict) -> str:
    """The report section's table."""
    return markdown_table(HEADER, comparison_rows(truncate, forced))


def run_beside_truncate(cfg: StudyConfig, run: Callable[[StudyConfig], dict]) -> dict:
    """Run a phase in truncate mode, then in ``cfg``'s forced mode, and print them side by side.

    Force-end shares truncation's rollout log, so whichever runs first generates and the other
    only reads. Returns the forced summary.
    """
    truncate = run(cfg.replace({"forcing.budget_mode": "truncate"}))
    forced = run(cfg)
    print(comparison_table(truncate, forced))
    return forced
