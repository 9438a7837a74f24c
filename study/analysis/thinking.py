"""A thinking model's records summarised per budget: how many rollouts closed their thinking,
how long they thought, and how many gave an answer that could be read.

Pure: records in (``schema.Record``), ``schema.ThinkingRow`` out. Records of a model without
thinking markers carry null thinking fields and give no rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from study.schema import Record, ThinkingRow


def has_thinking(records: Sequence[Record]) -> bool:
    """Whether these records come from a model with thinking markers."""
    return any(r.get("thinking_tokens") is not None for r in records)


def budget_row(budget: int, records: Sequence[Record]) -> ThinkingRow:
    """Shares and means over the records of one budget (all samples of every problem)."""
    measured = [r for r in records if r.get("thinking_tokens") is not None]
    n = len(measured)
    return {
        "budget": budget, "n": n,
        "closed_thinking_rate": sum(bool(r["closed_thinking"]) for r in measured) / max(n, 1),
        "thinking_tokens": sum(int(r["thinking_tokens"]) for r in measured) / max(n, 1),
        "answer_present_rate": sum(bool(r["answer_present"]) for r in measured) / max(n, 1),
    }


def budget_rows(by_budget: Mapping[int, Sequence[Record]]) -> dict[str, ThinkingRow]:
    """``{str(budget): ThinkingRow}`` in budget order; {} when no record has thinking."""
    if not any(has_thinking(records) for records in by_budget.values()):
        return {}
    return {str(b): budget_row(b, by_budget[b]) for b in sorted(by_budget)}
