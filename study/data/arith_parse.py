"""Safe arithmetic: one tokenizer, a recursive-descent parser and an exact evaluator.

Nothing here ever calls ``eval``/``exec``: text is split by one regular-expression tokenizer,
parsed by a small recursive-descent parser into a tuple tree, and that tree is evaluated with
exact ``Fraction`` arithmetic under size limits (literal length, nesting depth, exponent size,
result bit length), so inputs like ``9**9**9`` are rejected in microseconds. The step finder
(``arith_check``) works on the same tokens and trees.

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
percent            ``25%`` means 25/100 (so ``80 * 25% = 20`` holds); ``evaluate`` can also
                   read it as a plain 25 (the step checker's right-hand-side rule)
limits             literals of at most 40 digits, nesting depth 50, integer exponents of at
                   most 10,000 in size, every intermediate value at most 4,096 bits wide
=================  =========================================================================

A non-integer exponent, division by zero or a limit overflow makes the value ``None``.

Trees are tuples: ``("num", Fraction) | ("neg", node) | ("pct", node) |
("bin", op, left, right)`` with ``op`` one of ``+ - * / ^``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_LITERAL_DIGITS = 40  # longer literals are not arithmetic a model does by hand
MAX_EXPR_CHARS = 2000  # safe_eval refuses longer strings outright
MAX_NESTING = 50  # parentheses + unary signs; keeps recursion far from Python's limit
MAX_EXPONENT = 10_000  # |n| in a ** n
MAX_BITS = 4096  # numerator/denominator width of any intermediate value

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

# Token kinds: a binary operator, and anything that may appear inside a pure expression.
BINARY_KINDS = frozenset({"ADD", "SUB", "MUL", "DIV", "POW", "TIMES_X"})
EXPR_KINDS = BINARY_KINDS | {"NUM", "FRAC", "PCT", "LP", "RP"}
_CLOSERS = {"(": ")", "{": "}"}

Node = tuple  # an expression tree, shaped as in the module docstring


@dataclass(frozen=True)
class Token:
    """One significant token; ``start``/``end`` are offsets into the tokenized text."""

    kind: str
    text: str
    start: int
    end: int
    gap_before: bool  # whitespace directly before this token


class _Reject(Exception):
    """The token sequence is not a well-formed arithmetic expression."""


class _Unevaluable(Exception):
    """A well-formed expression whose value is out of limits or not a rational number."""


def tokenize(text: str) -> list[Token]:
    """Significant tokens of ``text`` (spaces and ignorable LaTeX dropped, gaps remembered)."""
    tokens: list[Token] = []
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
        tokens.append(Token(kind, m.group(), m.start(), m.end(), gap))
        gap = False
    return tokens


# ----------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the grammar in the module docstring; raises _Reject."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def parse(self) -> Node:
        if not self.tokens:
            raise _Reject("empty")
        node = self._expr()
        if self.i != len(self.tokens):
            raise _Reject("trailing tokens")
        return node

    def _peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self, kind: str, text: str | None = None) -> Token:
        tok = self._peek()
        if tok is None or tok.kind != kind or (text is not None and tok.text != text):
            raise _Reject(f"expected {kind}")
        self.i += 1
        return tok

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _Reject("nesting too deep")

    def _expr(self) -> Node:
        node = self._term()
        while (tok := self._peek()) is not None and tok.kind in ("ADD", "SUB"):
            self.i += 1
            node = ("bin", "+" if tok.kind == "ADD" else "-", node, self._term())
        return node

    def _term(self) -> Node:
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

    def _unary(self) -> Node:
        tok = self._peek()
        if tok is not None and tok.kind in ("ADD", "SUB"):
            self.i += 1
            self._enter()
            operand = self._unary()
            self.depth -= 1
            return ("neg", operand) if tok.kind == "SUB" else operand
        return self._power()

    def _power(self) -> Node:
        base = self._postfix()
        tok = self._peek()
        if tok is not None and tok.kind == "POW":
            self.i += 1
            return ("bin", "^", base, self._unary())  # right-associative via _unary
        return base

    def _postfix(self) -> Node:
        node = self._atom()
        tok = self._peek()
        if tok is not None and tok.kind == "PCT":
            self.i += 1
            node = ("pct", node)
        return node

    def _atom(self) -> Node:
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

    def _group(self, opener: str | None = None) -> Node:
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


def parse_tokens(tokens: list[Token]) -> Node | None:
    """The tree of a token sequence that is exactly one expression, else None."""
    try:
        return _Parser(tokens).parse()
    except _Reject:
        return None


def count_binary(node: Node) -> int:
    """Binary operators in a tree (an implicit product ``3(4)`` counts)."""
    if node[0] == "num":
        return 0
    if node[0] in ("neg", "pct"):
        return count_binary(node[1])
    return 1 + count_binary(node[2]) + count_binary(node[3])


def has_percent(node: Node) -> bool:
    """Whether a ``%`` appears anywhere in the tree."""
    if node[0] == "num":
        return False
    if node[0] == "pct":
        return True
    if node[0] == "neg":
        return has_percent(node[1])
    return has_percent(node[2]) or has_percent(node[3])


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


def _evaluate(node: Node, percent: bool) -> Fraction:
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


def evaluate(node: Node | None, percent: bool = True) -> Fraction | None:
    """Exact value of a tree, or None (no tree, division by zero, out of limits).

    ``percent=False`` reads ``25%`` as 25 instead of 1/4.
    """
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
    tokens = tokenize(expr)
    if any(tok.kind not in EXPR_KINDS for tok in tokens):
        return None
    return evaluate(parse_tokens(tokens))
