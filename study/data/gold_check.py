"""Checking a dataset's gold answers where the question itself determines them.

Generated sets are not always right: reasoning-gym's ``basic_arithmetic`` without parentheses
writes "Calculate 4 + 8 * 5." but computes its answer as if the text were "(4 + 8) * 5" (60
instead of 44). Where a question is a pure arithmetic expression, its value under the usual
precedence rules is the answer, so the loader replaces a gold answer that disagrees with it and
counts the fix in the dataset's provenance. Pure: no I/O, table-tested.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from study.data.arith_parse import safe_eval

# The expression of an arith question: everything between "Calculate" (or "What is", "Compute",
# "Evaluate") and the final "." / "?" / "=", made only of digits, operators, spaces, brackets.
_EXPRESSION = re.compile(
    r"^\s*(?:calculate|compute|evaluate|what is|solve)?\s*:?\s*"
    r"(?P<expr>[0-9.+\-*/×÷^() ]+?)\s*(?:=\s*\??)?\s*[.?]?\s*$",
    re.IGNORECASE,
)

# A checker maps a question to its verified answer, or None when the question cannot be checked.
GoldChecker = Callable[[str], str | None]


def format_number(value: Fraction) -> str:
    """An exact value as the datasets write answers: an integer, or a terminating decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if Fraction(repr(as_float)) == value:
        return repr(as_float)
    return f"{value.numerator}/{value.denominator}"


def arithmetic_answer(question: str) -> str | None:
    """The value of the arithmetic expression a question asks for, or None when the question
    is not one pure expression (then nothing can be checked)."""
    match = _EXPRESSION.match(question)
    if match is None or not re.search(r"[0-9]", match["expr"]):
        return None
    value = safe_eval(match["expr"])
    return None if value is None else format_number(value)


def same_number(a: str, b: str) -> bool:
    """Whether two answer strings are the same number ("16" == "16.0")."""
    try:
        return Fraction(a) == Fraction(b)
    except (ValueError, ZeroDivisionError):
        return a.strip() == b.strip()


@dataclass(frozen=True)
class GoldFix:
    index: int  # row index in the dataset (the problem id's number)
    question: str
    stated: str  # the gold answer the data set gave
    verified: str  # the answer the check computed, now the gold answer


def verify_golds(rows: list[dict], check: GoldChecker) -> tuple[list[dict], list[GoldFix]]:
    """Rows with every checkable gold answer replaced by the verified one, and the fixes made.

    Rows are dicts with 'question' and 'answer'; rows the checker cannot read are kept as is.
    """
    fixed_rows, fixes = [], []
    for index, row in enumerate(rows):
        verified = check(row["question"])
        if verified is not None and not same_number(verified, str(row["answer"])):
            fixes.append(GoldFix(index, row["question"], str(row["answer"]), verified))
            row = {**row, "answer": verified}
        fixed_rows.append(row)
    return fixed_rows, fixes
