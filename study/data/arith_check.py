"""Explicit arithmetic steps in model solutions: find every ``a op b = c`` and check it.

Expressions are read with the tokenizer, parser and exact evaluator of ``arith_parse`` (its
docstring lists the accepted syntax and limits; nothing here calls ``eval``/``exec``).
``safe_eval`` is re-exported here, where callers have always imported it from.

Explicit steps (``find_arithmetic_steps``)
------------------------------------------
* An equality sign is ``=``, ``≈`` or ``\\approx`` (``==``, ``<=``, ``>=``, ``!=``, ``=>``
  are not). Words, newlines and punctuation outside ``arith_parse``'s syntax break an
  expression, so each side is the *maximal pure-arithmetic span adjacent to the sign*:
  ``Total = 5 + 3 = 8`` yields the single step ``5 + 3 = 8``; in
  ``He paid 2 * 15 = 30 dollars`` the step is ``2 * 15 = 30``.
* The left side must contain at least one binary operator (``x = 5`` and ``8 = 8`` are not
  steps). Both sides must parse.
* A side that visibly continues into non-arithmetic text is rejected rather than truncated:
  the left side may not follow an operator (``2y + 3 * 4 = 14``) nor start with a sign that
  is really binary (``2y - 3 = 1``); the right side may not be followed by an operator, by a
  ``(`` glued to it, or by a glued single letter (``12 = 3x`` is an equation in ``x``).
* Chains ``a = b = c`` give one step per sign (``a = b`` and ``b = c``). In the running-total
  style ``2 + 3 = 5 + 1 = 6`` the middle side ``5 + 1`` does not equal ``2 + 3`` but its
  leading number does, so the first step is read as ``2 + 3 = 5``.
* GSM8K calculator annotations ``48/2 = <<48/2=24>>24`` count once: ``<`` and ``>`` break
  expressions, so the step is the one inside the annotation and the visible ``=`` that
  precedes ``<<`` has no right-hand side.
* Correctness: exact equality, or - when the right side is a single number with ``d``
  decimals - equality after rounding the left value to ``d`` decimals (half-up or half-even),
  because models round (``10/3 = 3.33``, ``7/2 = 4``). When the right side carries ``%`` it is
  also accepted read as a plain number, because models write both ``0.25 * 100 = 25%`` and
  ``80 * 25% = 20``. ``correct`` is ``None`` when a side parses but cannot be evaluated
  (division by zero, overflow, non-integer exponent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from study.data.arith_parse import (
    BINARY_KINDS,
    Node,
    Token,
    count_binary,
    evaluate,
    has_percent,
    parse_tokens,
    safe_eval,
    tokenize,
)

__all__ = [
    "MAX_SIDE_TOKENS",
    "ArithStep",
    "arithmetic_errors",
    "count_operations",
    "find_arithmetic_steps",
    "safe_eval",
]

MAX_SIDE_TOKENS = 120  # tokens scanned on each side of an equality sign (bounds the search)

_START_KINDS = frozenset({"NUM", "LP", "FRAC", "ADD", "SUB"})  # a side may begin with these
_END_KINDS = frozenset({"NUM", "RP", "PCT"})  # ... and end with these
_OPERAND_END_KINDS = frozenset({"NUM", "RP", "PCT", "WORD"})
_BOUNDARY_KINDS = frozenset({"EQ", "CMP", "BREAK", "WORD"})


@dataclass(frozen=True)
class ArithStep:
    """One explicit equality ``lhs = rhs``; offsets are into the analysed text."""

    text: str
    lhs: str
    rhs: str
    lhs_value: Fraction | None
    rhs_value: Fraction | None
    correct: bool | None
    start: int
    end: int


@dataclass(frozen=True)
class _Side:
    first: int  # token index range [first, last)
    last: int
    node: Node


def _lhs_context_ok(tokens: list[Token], first: int) -> bool:
    """False when the span visibly continues leftwards into a variable or other text."""
    if first == 0:
        return True
    prev, head = tokens[first - 1], tokens[first]
    if prev.kind in BINARY_KINDS:
        return False
    if head.kind in ("ADD", "SUB") and prev.kind in _OPERAND_END_KINDS:
        return False  # the sign is really a binary operator applied to prev
    return not (prev.kind == "WORD" and not head.gap_before)


def _rhs_context_ok(tokens: list[Token], last: int) -> bool:
    """False when the span visibly continues rightwards (operator, glued '(' or variable)."""
    if last >= len(tokens):
        return True
    nxt = tokens[last]
    if nxt.kind in BINARY_KINDS:
        return False
    if nxt.kind == "LP" and not nxt.gap_before:
        return False
    return not (nxt.kind == "WORD" and not nxt.gap_before and len(nxt.text) == 1)


def _left_side(tokens: list[Token], lo: int, eq: int) -> _Side | None:
    """Longest parseable token suffix of tokens[lo:eq], if its context allows it."""
    for first in range(max(lo, eq - MAX_SIDE_TOKENS), eq):
        if tokens[first].kind not in _START_KINDS:
            continue
        node = parse_tokens(tokens[first:eq])
        if node is not None:
            return _Side(first, eq, node) if _lhs_context_ok(tokens, first) else None
    return None


def _right_side(tokens: list[Token], eq: int, hi: int) -> _Side | None:
    """Longest parseable token prefix of tokens[eq+1:hi], if its context allows it."""
    for last in range(min(hi, eq + 1 + MAX_SIDE_TOKENS), eq + 1, -1):
        if tokens[last - 1].kind not in _END_KINDS:
            continue
        node = parse_tokens(tokens[eq + 1 : last])
        if node is not None:
            return _Side(eq + 1, last, node) if _rhs_context_ok(tokens, last) else None
    return None


def _segment_bounds(tokens: list[Token], eq: int) -> tuple[int, int]:
    """Token index just after the previous boundary and of the next boundary around ``eq``."""
    lo = eq
    while lo > 0 and tokens[lo - 1].kind not in _BOUNDARY_KINDS:
        lo -= 1
    hi = eq + 1
    while hi < len(tokens) and tokens[hi].kind not in _BOUNDARY_KINDS:
        hi += 1
    return lo, hi


def _decimals(tokens: list[Token]) -> int | None:
    """Decimal places of a right side that is one (signed, maybe percent) literal, else None."""
    core = [t for t in tokens if t.kind not in ("ADD", "SUB", "PCT")]
    if len(core) != 1 or core[0].kind != "NUM":
        return None
    _, _, fraction = core[0].text.partition(".")
    return len(fraction)


def _round_half_up(value: Fraction, decimals: int) -> Fraction:
    scale = 10**decimals
    magnitude = math.floor(abs(value) * scale + Fraction(1, 2))
    return Fraction(magnitude if value >= 0 else -magnitude, scale)


def _matches(lhs: Fraction, rhs: Fraction, decimals: int | None) -> bool:
    if lhs == rhs:
        return True
    if decimals is None:
        return False
    return round(lhs, decimals) == rhs or _round_half_up(lhs, decimals) == rhs


def _judge(lhs_value: Fraction | None, rhs: _Side, tokens: list[Token]) -> bool | None:
    rhs_value = evaluate(rhs.node)
    if lhs_value is None or rhs_value is None:
        return None
    decimals = _decimals(tokens[rhs.first : rhs.last])
    if _matches(lhs_value, rhs_value, decimals):
        return True
    plain = evaluate(rhs.node, percent=False) if has_percent(rhs.node) else None
    return plain is not None and _matches(lhs_value, plain, decimals)


def _continuation(tokens: list[Token], rhs: _Side) -> _Side | None:
    """The leading number of a right side such as ``5 + 1`` (running-total chains)."""
    head = tokens[rhs.first]
    if rhs.last - rhs.first < 2 or head.kind != "NUM":
        return None
    node = parse_tokens([head])
    return _Side(rhs.first, rhs.first + 1, node) if node is not None else None


def _step_at(text: str, tokens: list[Token], eq: int) -> ArithStep | None:
    lo, hi = _segment_bounds(tokens, eq)
    lhs = _left_side(tokens, lo, eq)
    if lhs is None or count_binary(lhs.node) == 0:
        return None
    rhs = _right_side(tokens, eq, hi)
    if rhs is None:
        return None
    lhs_value = evaluate(lhs.node)
    correct = _judge(lhs_value, rhs, tokens)
    if correct is False:
        head = _continuation(tokens, rhs)
        if head is not None and _judge(lhs_value, head, tokens):
            rhs, correct = head, True
    start, end = tokens[lhs.first].start, tokens[rhs.last - 1].end
    return ArithStep(
        text=text[start:end],
        lhs=text[start : tokens[lhs.last - 1].end],
        rhs=text[tokens[rhs.first].start : end],
        lhs_value=lhs_value,
        rhs_value=evaluate(rhs.node),
        correct=correct,
        start=start,
        end=end,
    )


def find_arithmetic_steps(text: str) -> list[ArithStep]:
    """Every explicit step ``a op b = c`` in ``text``, in order (rules: module docstring)."""
    tokens = tokenize(text)
    steps = []
    for index, tok in enumerate(tokens):
        if tok.kind == "EQ":
            step = _step_at(text, tokens, index)
            if step is not None:
                steps.append(step)
    return steps


def arithmetic_errors(text: str) -> list[ArithStep]:
    """The explicit steps whose claimed result is wrong (``correct is False``)."""
    return [step for step in find_arithmetic_steps(text) if step.correct is False]


def count_operations(text: str) -> int:
    """Binary operators on the left-hand sides of the explicit steps in ``text``.

    Only left sides are counted so that a chain ``a + b = c * d = e`` counts the middle
    expression once (it is the left side of the second step).
    """
    total = 0
    for step in find_arithmetic_steps(text):
        node = parse_tokens(tokenize(step.lhs))
        total += count_binary(node) if node is not None else 0
    return total
