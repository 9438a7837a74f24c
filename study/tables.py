"""The one place that turns numbers into text: value formatters, text tables, markdown tables.

Console output of every phase, the markdown report and figure annotations format values here,
so a percentage or a confidence interval reads the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MISSING = "—"  # shown for a value that is undefined (no rows, no CI)
FLAT = "flat: no budget dependence"  # said wherever the constant fit of a curve is best


def finite(obj: Any) -> Any:
    """NaN/inf -> None, recursively, so JSON stays strict and tables show MISSING."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def pct(value: float | None, digits: int = 1, missing: str = MISSING) -> str:
    """0.4512 -> '45.1%'."""
    return missing if value is None else f"{100 * value:.{digits}f}%"


def signed_pp(value: float, digits: int = 1) -> str:
    """0.033 -> '+3.3' (percentage points)."""
    return f"{100 * value:+.{digits}f}"


def num(value: float | None, digits: int = 1, missing: str = MISSING) -> str:
    return missing if value is None else f"{value:.{digits}f}"


def ci_text(low: float | None, high: float | None, digits: int = 1, scale: float = 100.0,
            signed: bool = False) -> str:
    """A confidence interval '[2.6, 19.9]' (percent by default; ``scale=1`` for raw values)."""
    if low is None or high is None:
        return MISSING
    sign = "+" if signed else ""
    return f"[{scale * low:{sign}.{digits}f}, {scale * high:{sign}.{digits}f}]"


def text_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]],
               rule: str | None = "-") -> str:
    """A fixed-width console table. Each column is (title, format spec), e.g. ('Budget', '<8')
    or ('Accuracy', '>10'); cells are formatted with the column's spec. A rule of dashes as wide
    as the columns follows the header unless ``rule`` is None."""
    def line(cells: Sequence[Any]) -> str:
        return "".join(f"{str(cell):{spec}}" for cell, (_, spec) in zip(cells, columns))

    header = line([title for title, _ in columns])
    out = [header]
    if rule:
        out.append(rule * len(header))
    out += [line(row) for row in rows]
    return "\n".join(out)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; the first column left-aligned, the others right-aligned."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [list(header), align, *[[str(c) for c in row] for row in rows]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def by_budget(budgets: dict[str, Any]) -> list[Any]:
    """A summary's per-budget blocks (keyed by budget strings) in budget order."""
    return sorted(budgets.values(), key=lambda row: row["budget"])


def is_flat(scaling: Any) -> bool:
    """Whether a scaling summary (``study.schema_analyses.ScalingSummary``, or None) found its
    curve flat: the constant fit best by BIC."""
    return bool(((scaling or {}).get("fits") or {}).get("flat"))


def flat_from(budgets: Any) -> str:
    """'flat from B0', B0 the smallest budget: said instead of a saturation budget, since a flat
    curve never rose to saturate anywhere."""
    return f"flat from {min(int(b) for b in budgets)}"
