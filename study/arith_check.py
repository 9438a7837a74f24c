"""Safe arithmetic evaluation and detection of explicit arithmetic steps in model solutions.

Nothing here ever calls ``eval``/``exec``: text is split by one regular-expression tokenizer,
parsed by a small recursive-descent parser into a tuple tree, and that tree is evaluated with
exact ``Fraction`` arithmetic under size limits (literal length, nesting depth, exponent size,
result bit length), so inputs like ``9**9**9`` are rejected in microseconds.

Accepted expression syntax (``safe_eval``)
------------------------------------------
=================  =========================================================================
numbers            ``12``, ``3.5``, ``.5``, thousands commas ``1,000`` / ``12,345.6``
                   (a comma that is not followed by exactly three digits is not a number)
operators          ``+``; ``-``, unicode minus ``−`` and en dash ``–``; ``*``, ``×``, ``·``,
                   ``⋅``, ``\\times``, ``\\cdot``; ``/``, ``÷``, ``\\div``; ``^`` and ``**``
                   (right-associative, binding tighter than unary minus: ``-2^2 = -4``)
``x`` / ``X``      multiplication only *between* operands (``3 x 4``, ``3x4``); anywhere else
                   it is a variable and the expression is rejected (``3x``, ``x + 1``)
grouping           ``( )``, ``{ }`` and ``\\frac{a}{b}`` (also ``\\dfrac``/``\\tfrac``);
                   a ``(`` written directly after an operand multiplies: ``3(4) = 12``
ignored            ``$``, ``\\$``, ``\\left``, ``\\right``, ``\\boxed``, ``\\(`` ``\\)`` and
                   LaTeX thin spaces
percent            ``25%`` means 25/100 (so ``80 * 25% = 20`` holds); see the step rule below
                   for a right-hand side that carries a ``%``
limits             literals of at most 40 digits, nesting depth 50, integer exponents of at
                   most 10,000 in size, every intermediate value at most 4,096 bits wide
=================  =========================================================================

A non-integer exponent, division by zero or a limit overflow makes the value ``None``.

Explicit steps (``find_arithmetic_steps``)
------------------------------------------
* An equality sign is ``=``, ``≈`` or ``\\approx`` (``==``, ``<=``, ``>=``, ``!=``, ``=>``
  are not). Words, newlines and punctuation other than the syntax above break an
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
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_LITERAL_DIGITS = 40  # longer literals are not arithmetic a model does by hand
MAX_EXPR_CHARS = 2000  # safe_eval refuses longer strings outright
MAX_NESTING = 50  # parentheses + unary signs; keeps recursion far from Python's limit
MAX_EXPONENT = 10_000  # |n| in a ** n
MAX_BITS = 4096  # numerator/denominator width of any intermediate value
MAX_SIDE_TOKENS = 120  # tokens scanned on each side of an equality sign (bounds the search)

_TOKEN_RE = re.compile(
    r"""
     (?P<CMP>==|<=|>=|!=|=>|:=|≠|≤|≥)
    |(?P<EQ>=|≈|\\approx(?![A-Za-z]))
    |(?P<NUM>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?(?![0-9])|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)
    |(?P<POW>\*\*|\^)
    |(?P<MUL>[*×·⋅∗]|\\times(?![A-Za-z])|\\cdot(?![A-Za-z])|\\ast(?![A-Za-z]))
    |(?P<DIV>[/÷∕]|\\div(?![A-Za-z]))
    |(?P<ADD>\+)
    |(?P<SUB>[-−–])
    |(?P<FRAC>\\[dt]?frac(?![A-Za-z]))
    |(?P<SKIP>\\\$|\$|\\[,;:!\ ]|\\[()\[\]]
             |\\left(?![A-Za-z])|\\right(?![A-Za-z])|\\boxed(?![A-Za-z]))
    |(?P<PCT>\\?%)
    |(?P<LP>[({])
    |(?P<RP>[)}])
    |(?P<SPACE>[ \t]+)
    |(?P<WORD>[^\W\d]+)
    |(?P<BREAK>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_BINARY_KINDS = frozenset({"ADD", "SUB", "MUL", "DIV", "POW", "TIMES_X"})
_EXPR_KINDS = _BINARY_KINDS | {"NUM", "FRAC", "PCT", "LP", "RP"}
_START_KINDS = frozenset({"NUM", "LP", "FRAC", "ADD", "SUB"})  # a side may begin with these
_END_KINDS = frozenset({"NUM", "RP", "PCT"})  # ... and end with these
_OPERAND_END_KINDS = frozenset({"NUM", "RP", "PCT", "WORD"})
_BOUNDARY_KINDS = frozenset({"EQ", "CMP", "BREAK", "WORD"})
_CLOSERS = {"(": ")", "{": "}"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    start: int
    end: int
    gap_before: bool  # whitespace directly before this token


class _Reject(Exception):
    """The token sequence is not a well-formed arithmetic expression."""


class _Unevaluable(Exception):
    """A well-formed expression whose value is out of limits or not a rational number."""


def _tokenize(text: str) -> list[_Tok]:
    """Significant tokens of ``text`` (spaces and ignorable LaTeX dropped, gaps remembered)."""
    tokens: list[_Tok] = []
    gap = False
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "BREAK"
        if kind == "SPACE":
            gap = True
            continue
        if kind == "SKIP":
            continue
        if kind == "WORD" and m.group() in ("x", "X"):
            kind = "TIMES_X"
        tokens.append(_Tok(kind, m.group(), m.start(), m.end(), gap))
        gap = False
    return tokens


# ----------------------------------------------------------------------------- parser
# Tree nodes: ("num", Fraction) | ("neg", node) | ("pct", node) | ("bin", op, left, right)


class _Parser:
    """Recursive descent over the grammar in the module docstring; raises _Reject."""

    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def parse(self) -> tuple:
        if not self.tokens:
            raise _Reject("empty")
        node = self._expr()
        if self.i != len(self.tokens):
            raise _Reject("trailing tokens")
        return node

    def _peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self, kind: str, text: str | None = None) -> _Tok:
        tok = self._peek()
        if tok is None or tok.kind != kind or (text is not None and tok.text != text):
            raise _Reject(f"expected {kind}")
        self.i += 1
        return tok

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _Reject("nesting too deep")

    def _expr(self) -> tuple:
        node = self._term()
        while (tok := self._peek()) is not None and tok.kind in ("ADD", "SUB"):
            self.i += 1
            node = ("bin", "+" if tok.kind == "ADD" else "-", node, self._term())
        return node

    def _term(self) -> tuple:
        node = self._unary()
        while (tok := self._peek()) is not None:
            if tok.kind in ("MUL", "DIV", "TIMES_X"):
                self.i += 1
                if tok.kind == "TIMES_X" and not self._operand_follows():
                    raise _Reject("x used as a variable")  # '2x + 3', '3x - 1'
                node = ("bin", "/" if tok.kind == "DIV" else "*", node, self._unary())
            elif tok.kind == "LP" and tok.text == "(" and not tok.gap_before:
                node = ("bin", "*", node, self._unary())  # implicit product: 3(4)
            else:
                break
        return node

    def _operand_follows(self) -> bool:
        tok = self._peek()
        return tok is not None and tok.kind in ("NUM", "LP", "FRAC")

    def _unary(self) -> tuple:
        tok = self._peek()
        if tok is not None and tok.kind in ("ADD", "SUB"):
            self.i += 1
            self._enter()
            operand = self._unary()
            self.depth -= 1
            return ("neg", operand) if tok.kind == "SUB" else operand
        return self._power()

    def _power(self) -> tuple:
        base = self._postfix()
        tok = self._peek()
        if tok is not None and tok.kind == "POW":
            self.i += 1
            return ("bin", "^", base, self._unary())  # right-associative via _unary
        return base

    def _postfix(self) -> tuple:
        node = self._atom()
        tok = self._peek()
        if tok is not None and tok.kind == "PCT":
            self.i += 1
            node = ("pct", node)
        return node

    def _atom(self) -> tuple:
        tok = self._peek()
        if tok is None:
            raise _Reject("missing operand")
        if tok.kind == "NUM":
            self.i += 1
            return ("num", _literal_value(tok.text))
        if tok.kind == "LP":
            return self._group()
        if tok.kind == "FRAC":
            self.i += 1
            numerator = self._group("{")
            denominator = self._group("{")
            return ("bin", "/", numerator, denominator)
        raise _Reject(f"unexpected {tok.kind}")

    def _group(self, opener: str | None = None) -> tuple:
        tok = self._take("LP", opener)
        self._enter()
        node = self._expr()
        self._take("RP", _CLOSERS[tok.text])
        self.depth -= 1
        return node


def _literal_value(text: str) -> Fraction:
    digits = text.replace(",", "")
    if sum(ch.isdigit() for ch in digits) > MAX_LITERAL_DIGITS:
        raise _Reject("literal too long")
    return Fraction(digits)


def _parse(tokens: list[_Tok]) -> tuple | None:
    try:
        return _Parser(tokens).parse()
    except _Reject:
        return None


def _count_binary(node: tuple) -> int:
    if node[0] == "num":
        return 0
    if node[0] in ("neg", "pct"):
        return _count_binary(node[1])
    return 1 + _count_binary(node[2]) + _count_binary(node[3])


def _has_percent(node: tuple) -> bool:
    if node[0] == "num":
        return False
    if node[0] == "pct":
        return True
    if node[0] == "neg":
        return _has_percent(node[1])
    return _has_percent(node[2]) or _has_percent(node[3])


# -------------------------------------------------------------------------- evaluator


def _bits(value: Fraction) -> int:
    return max(value.numerator.bit_length(), value.denominator.bit_length())


def _checked(value: Fraction) -> Fraction:
    if _bits(value) > MAX_BITS:
        raise _Unevaluable("value too large")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise _Unevaluable("non-integer exponent")
    n = exponent.numerator
    if abs(n) > MAX_EXPONENT:
        raise _Unevaluable("exponent too large")
    # Check the result width *before* computing it: this is what makes 9**9**9 cheap.
    if base not in (0, 1, -1) and _bits(base) * abs(n) > MAX_BITS + 64:
        raise _Unevaluable("power too large")
    return base**n  # Fraction(0) ** negative raises ZeroDivisionError


def _evaluate(node: tuple, percent: bool = True) -> Fraction:
    """Exact value of a tree; ``percent=False`` reads ``25%`` as 25. Raises on bad values."""
    tag = node[0]
    if tag == "num":
        return node[1]
    if tag == "neg":
        return -_evaluate(node[1], percent)
    if tag == "pct":
        inner = _evaluate(node[1], percent)
        return inner / 100 if percent else inner
    op, left, right = node[1], _evaluate(node[2], percent), _evaluate(node[3], percent)
    if op == "+":
        return _checked(left + right)
    if op == "-":
        return _checked(left - right)
    if op == "*":
        return _checked(left * right)
    if op == "/":
        return _checked(left / right)
    return _checked(_power(left, right))


def _value(node: tuple | None, percent: bool = True) -> Fraction | None:
    if node is None:
        return None
    try:
        return _evaluate(node, percent)
    except (ZeroDivisionError, _Unevaluable):
        return None


def safe_eval(expr: str) -> Fraction | None:
    """Exact value of a pure arithmetic expression, or None (not arithmetic / not evaluable)."""
    if not isinstance(expr, str) or len(expr) > MAX_EXPR_CHARS:
        return None
    tokens = _tokenize(expr)
    if any(tok.kind not in _EXPR_KINDS for tok in tokens):
        return None
    return _value(_parse(tokens))


# ------------------------------------------------------------------------ step finder


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
    node: tuple


def _lhs_context_ok(tokens: list[_Tok], first: int) -> bool:
    """False when the span visibly continues leftwards into a variable or other text."""
    if first == 0:
        return True
    prev, head = tokens[first - 1], tokens[first]
    if prev.kind in _BINARY_KINDS:
        return False
    if head.kind in ("ADD", "SUB") and prev.kind in _OPERAND_END_KINDS:
        return False  # the sign is really a binary operator applied to prev
    return not (prev.kind == "WORD" and not head.gap_before)


def _rhs_context_ok(tokens: list[_Tok], last: int) -> bool:
    """False when the span visibly continues rightwards (operator, glued '(' or variable)."""
    if last >= len(tokens):
        return True
    nxt = tokens[last]
    if nxt.kind in _BINARY_KINDS:
        return False
    if nxt.kind == "LP" and not nxt.gap_before:
        return False
    return not (nxt.kind == "WORD" and not nxt.gap_before and len(nxt.text) == 1)


def _left_side(tokens: list[_Tok], lo: int, eq: int) -> _Side | None:
    """Longest parseable token suffix of tokens[lo:eq], if its context allows it."""
    for first in range(max(lo, eq - MAX_SIDE_TOKENS), eq):
        if tokens[first].kind not in _START_KINDS:
            continue
        node = _parse(tokens[first:eq])
        if node is not None:
            return _Side(first, eq, node) if _lhs_context_ok(tokens, first) else None
    return None


def _right_side(tokens: list[_Tok], eq: int, hi: int) -> _Side | None:
    """Longest parseable token prefix of tokens[eq+1:hi], if its context allows it."""
    for last in range(min(hi, eq + 1 + MAX_SIDE_TOKENS), eq + 1, -1):
        if tokens[last - 1].kind not in _END_KINDS:
            continue
        node = _parse(tokens[eq + 1 : last])
        if node is not None:
            return _Side(eq + 1, last, node) if _rhs_context_ok(tokens, last) else None
    return None


def _segment_bounds(tokens: list[_Tok], eq: int) -> tuple[int, int]:
    """Token index just after the previous boundary and of the next boundary around ``eq``."""
    lo = eq
    while lo > 0 and tokens[lo - 1].kind not in _BOUNDARY_KINDS:
        lo -= 1
    hi = eq + 1
    while hi < len(tokens) and tokens[hi].kind not in _BOUNDARY_KINDS:
        hi += 1
    return lo, hi


def _decimals(tokens: list[_Tok]) -> int | None:
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


def _judge(lhs_value: Fraction | None, rhs: _Side, tokens: list[_Tok]) -> bool | None:
    rhs_value = _value(rhs.node)
    if lhs_value is None or rhs_value is None:
        return None
    decimals = _decimals(tokens[rhs.first : rhs.last])
    if _matches(lhs_value, rhs_value, decimals):
        return True
    plain = _value(rhs.node, percent=False) if _has_percent(rhs.node) else None
    return plain is not None and _matches(lhs_value, plain, decimals)


def _continuation(tokens: list[_Tok], rhs: _Side) -> _Side | None:
    """The leading number of a right side such as ``5 + 1`` (running-total chains)."""
    head = tokens[rhs.first]
    if rhs.last - rhs.first < 2 or head.kind != "NUM":
        return None
    return _Side(rhs.first, rhs.first + 1, ("num", _literal_value(head.text)))


def _step_at(text: str, tokens: list[_Tok], eq: int) -> ArithStep | None:
    lo, hi = _segment_bounds(tokens, eq)
    lhs = _left_side(tokens, lo, eq)
    if lhs is None or _count_binary(lhs.node) == 0:
        return None
    rhs = _right_side(tokens, eq, hi)
    if rhs is None:
        return None
    lhs_value = _value(lhs.node)
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
        rhs_value=_value(rhs.node),
        correct=correct,
        start=start,
        end=end,
    )


def find_arithmetic_steps(text: str) -> list[ArithStep]:
    """Every explicit step ``a op b = c`` in ``text``, in order (rules: module docstring)."""
    tokens = _tokenize(text)
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
        node = _parse(_tokenize(step.lhs))
        total += _count_binary(node) if node is not None else 0
    return total
