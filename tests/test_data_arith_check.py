"""Tests for arith_parse and arith_check: the safe evaluator and the explicit-step finder."""

from __future__ import annotations

import ast
import builtins
import time
from fractions import Fraction
from pathlib import Path

import pytest

from study.data import arith_check, arith_parse
from study.data.arith_check import (
    arithmetic_errors,
    count_operations,
    find_arithmetic_steps,
    safe_eval,
)

F = Fraction

# ------------------------------------------------------------------------ safe_eval

EVAL_CASES = [
    ("2 + 3 * 4", F(14)),
    ("(2 + 3) * 4", F(20)),
    ("10 - 4 - 3", F(3)),  # left-associative
    ("48/2", F(24)),
    ("7 / 2", F(7, 2)),
    ("0.1 + 0.2", F(3, 10)),  # exact, no float error
    (".5 * 4", F(2)),
    ("1,000 + 250", F(1250)),
    ("12,345.5 * 2", F(24691)),
    ("$1,200 - $300", F(900)),
    ("\\$15 * 2", F(30)),
    ("3 × 4", F(12)),
    ("3 x 4", F(12)),
    ("3x4", F(12)),
    ("3 X 4", F(12)),
    ("12 ÷ 4", F(3)),
    ("2 · 5", F(10)),
    ("2 \\times 5", F(10)),
    ("2 \\cdot 5", F(10)),
    ("9 \\div 3", F(3)),
    ("\\frac{3}{4} * 8", F(6)),
    ("\\dfrac{1 + 1}{4}", F(1, 2)),
    ("5 − 3", F(2)),  # unicode minus
    ("-5 + 2", F(-3)),
    ("2 ^ 10", F(1024)),
    ("2 ** 3 ** 2", F(512)),  # right-associative
    ("-2^2", F(-4)),  # exponent binds tighter than unary minus
    ("2^-1", F(1, 2)),
    ("3(4 + 1)", F(15)),  # glued parenthesis multiplies
    ("{2 + 3} * 2", F(10)),
    ("25%", F(1, 4)),  # percent means /100
    ("80 * 25%", F(20)),
    ("\\left(1 + 2\\right) * 3", F(9)),
    ("42", F(42)),
]


@pytest.mark.parametrize(("expr", "expected"), EVAL_CASES)
def test_safe_eval_values(expr: str, expected: Fraction) -> None:
    assert safe_eval(expr) == expected


NOT_ARITHMETIC = [
    "",
    "x",
    "3x",  # x after a number without a right operand is a variable
    "2x + 3",
    "x + 1",
    "2 * y",
    "1,00",  # malformed thousands group
    "3 (4)",  # a spaced parenthesis is not an implicit product
    "(1 + 2",
    "1 + 2)",
    "(1 + 2}",  # mismatched brackets
    "5 +",
    "3 = 3",
    "3 apples + 4",
    "1/0",  # division by zero
    "0 ^ -1",
    "2 ** 0.5",  # irrational results are refused, not approximated
    "1" * 41,  # literal too long
    "(" * 60 + "1" + ")" * 60,  # nesting too deep
    "-" * 60 + "1",
    "__import__('os').system('echo hacked')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd').read()",
    "lambda: 1",
]


@pytest.mark.parametrize("expr", NOT_ARITHMETIC)
def test_safe_eval_rejects(expr: str) -> None:
    assert safe_eval(expr) is None


@pytest.mark.parametrize("expr", ["9**9**9", "2 ^ 100000", "10^10^10^10", "99999^9999"])
def test_huge_powers_are_rejected_fast(expr: str) -> None:
    began = time.perf_counter()
    assert safe_eval(expr) is None
    assert time.perf_counter() - began < 0.5


def test_safe_eval_rejects_overlong_input_and_non_strings() -> None:
    assert safe_eval("1 + " * 600 + "1") is None  # over MAX_EXPR_CHARS
    assert safe_eval(123) is None  # type: ignore[arg-type]


def test_growth_through_repeated_products_is_capped() -> None:
    # each factor is legal on its own; the product exceeds the bit-width limit
    expr = " * ".join(["99999999999999999999"] * 300)
    assert safe_eval(expr) is None


# ------------------------------------------------------------ parser building blocks


@pytest.mark.parametrize(
    ("expr", "operators", "percent", "plain_value"),
    [
        ("2 + 3 * 4", 2, False, F(14)),
        ("3(4)", 1, False, F(12)),  # the implicit product counts as an operation
        ("-(2 ^ 3)", 1, False, F(-8)),  # unary minus is not a binary operator
        ("\\frac{1}{4}", 1, False, F(1, 4)),
        ("80 * 25%", 1, True, F(2000)),  # percent=False reads 25% as 25
        ("-5%", 0, True, F(-5)),
        ("7", 0, False, F(7)),
    ],
)
def test_tree_helpers(expr: str, operators: int, percent: bool, plain_value: Fraction) -> None:
    node = arith_parse.parse_tokens(arith_parse.tokenize(expr))
    assert node is not None
    assert arith_parse.count_binary(node) == operators
    assert arith_parse.has_percent(node) is percent
    assert arith_parse.evaluate(node, percent=False) == plain_value
    assert arith_parse.evaluate(node) == safe_eval(expr)


def test_tokenize_keeps_offsets_and_gaps() -> None:
    text = "So 3x4 = 12$"
    tokens = arith_parse.tokenize(text)
    assert [(t.kind, t.text) for t in tokens] == [
        ("WORD", "So"), ("NUM", "3"), ("TIMES_X", "x"), ("NUM", "4"), ("EQ", "="), ("NUM", "12"),
    ]  # the dollar sign is dropped
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert [t.gap_before for t in tokens] == [False, True, False, False, True, True]


def test_parse_and_evaluate_reject_cleanly() -> None:
    assert arith_parse.parse_tokens([]) is None
    assert arith_parse.parse_tokens(arith_parse.tokenize("2 +")) is None
    assert arith_parse.evaluate(None) is None
    assert arith_parse.evaluate(arith_parse.parse_tokens(arith_parse.tokenize("1/0"))) is None


def test_safe_eval_is_still_importable_from_both_modules() -> None:
    assert arith_check.safe_eval is arith_parse.safe_eval


# -------------------------------------------------------------- no eval / exec ever


@pytest.mark.parametrize("module", [arith_parse, arith_check])
def test_no_eval_exec_or_compile_in_module_source(module) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_malicious_input_never_reaches_eval(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec must not be called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}') = 1"
    assert find_arithmetic_steps(payload) == []
    assert safe_eval(payload.split("=")[0]) is None
    assert count_operations(payload) == 0
    assert not marker.exists()


# ----------------------------------------------------------------- step detection

# (text, [(lhs, rhs, correct), ...])
STEP_CASES = [
    ("2 + 2 = 4", [("2 + 2", "4", True)]),
    ("2 + 2 = 5", [("2 + 2", "5", False)]),
    ("So she sells 16 - 3 - 4 = 9 eggs.", [("16 - 3 - 4", "9", True)]),
    ("He pays 12 * 3 = 38 dollars.", [("12 * 3", "38", False)]),
    ("Total = 5 + 3 = 8", [("5 + 3", "8", True)]),  # words on the left are dropped
    ("(2 + 3) * 4 = 5 * 4 = 20", [("(2 + 3) * 4", "5 * 4", True), ("5 * 4", "20", True)]),
    ("2 + 3 = 5 + 1 = 6", [("2 + 3", "5", True), ("5 + 1", "6", True)]),  # running total
    ("2 + 3 = 7 + 1 = 8", [("2 + 3", "7 + 1", False), ("7 + 1", "8", True)]),
    ("10/3 = 3.33", [("10/3", "3.33", True)]),  # rounding to the rhs precision
    ("2/3 = 0.67", [("2/3", "0.67", True)]),
    ("2/3 = 0.66", [("2/3", "0.66", False)]),  # truncation is not rounding
    ("10/3 = 3.3333", [("10/3", "3.3333", True)]),
    ("10/3 = 3.4", [("10/3", "3.4", False)]),
    ("He paid $1,200 - $300 = $900.", [("1,200 - $300", "900", True)]),
    ("7 × 8 = 56 and 56 ÷ 7 = 8", [("7 × 8", "56", True), ("56 ÷ 7", "8", True)]),
    ("3 x 4 = 12", [("3 x 4", "12", True)]),
    ("$3 \\times 4 = 12$", [("3 \\times 4", "12", True)]),
    ("\\frac{10}{4} = 2.5", [("\\frac{10}{4}", "2.5", True)]),
    ("5 * 3 = \\boxed{15}", [("5 * 3", "{15}", True)]),
    ("0.25 * 100 = 25%", [("0.25 * 100", "25%", True)]),  # % on the rhs read as a label
    ("80 * 25% = 20", [("80 * 25%", "20", True)]),  # % as a factor means /100
    ("1/3 * 100 = 33.33%", [("1/3 * 100", "33.33%", True)]),
    ("12 / 5 ≈ 2.4 hours", [("12 / 5", "2.4", True)]),
    ("1. 3 + 4 = 7", [("3 + 4", "7", True)]),  # list numbering is not part of the lhs
    ("Step 2: 6 * 7 = 42.", [("6 * 7", "42", True)]),
    ("On 2023-05-01, 7 * 8 = 56.", [("7 * 8", "56", True)]),  # the date stays out
    ("3 + 4 = 7, 7 * 2 = 14", [("3 + 4", "7", True), ("7 * 2", "14", True)]),
]


@pytest.mark.parametrize(("text", "expected"), STEP_CASES)
def test_find_arithmetic_steps(text: str, expected: list[tuple[str, str, bool]]) -> None:
    steps = find_arithmetic_steps(text)
    assert [(s.lhs, s.rhs, s.correct) for s in steps] == expected


NO_STEP_CASES = [
    "x = 5",
    "Let x = 12 and y = 3.",
    "2x + 3 = 7",  # equation in a variable
    "2y + 3 * 4 = 14",  # the arithmetic continues into a variable on the left
    "12 + 3 = 3x",  # ... or on the right
    "a = 3 + 4 * y",
    "5 = 5",  # no operator on the left
    "8 = 5 + 3",
    "The meeting is on 12/25/2023.",
    "2 + 2 == 4 and 3 <= 4 + 1",  # comparisons are not claims of equality
    "3 + 4\n= 7",  # a newline ends an expression
    "five plus three = eight",
    "",
]


@pytest.mark.parametrize("text", NO_STEP_CASES)
def test_texts_without_steps(text: str) -> None:
    assert find_arithmetic_steps(text) == []


def test_gsm8k_annotation_counts_once() -> None:
    text = "Natalia sold 48/2 = <<48/2=24>>24 clips in May. Total: 48+24 = <<48+24=72>>72."
    steps = find_arithmetic_steps(text)
    assert [(s.lhs, s.rhs, s.correct) for s in steps] == [
        ("48/2", "24", True),
        ("48+24", "72", True),
    ]
    assert count_operations(text) == 2


def test_wrong_annotation_is_an_error() -> None:
    errors = arithmetic_errors("He earns 12*5 = <<12*5=65>>65 dollars.")
    assert [(e.lhs, e.rhs, e.lhs_value, e.rhs_value) for e in errors] == [
        ("12*5", "65", F(60), F(65))
    ]


def test_offsets_point_into_the_original_text() -> None:
    text = "First, 16 - 3 = 13. Then 13 * 2 = 26 dollars."
    for step in find_arithmetic_steps(text):
        assert text[step.start : step.end] == step.text
        assert step.text.startswith(step.lhs) and step.text.endswith(step.rhs)
    assert [s.start for s in find_arithmetic_steps(text)] == [7, 25]


def test_unevaluable_side_gives_correct_none() -> None:
    (by_zero,) = find_arithmetic_steps("5 / 0 = 1")
    assert by_zero.lhs_value is None and by_zero.correct is None
    began = time.perf_counter()
    (huge,) = find_arithmetic_steps("9**9**9 = 7")
    assert huge.correct is None and time.perf_counter() - began < 0.5
    assert arithmetic_errors("5 / 0 = 1") == []


def test_arithmetic_errors_keeps_only_wrong_steps() -> None:
    text = "3 + 4 = 7. 6 * 7 = 48. 10 - 4 = 6. 9 / 3 = 4."
    assert [(e.lhs, e.rhs) for e in arithmetic_errors(text)] == [("6 * 7", "48"), ("9 / 3", "4")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 + 3 * 4 = 14", 2),
        ("(2 + 3) * 4 = 5 * 4 = 20", 3),  # the middle product is counted once
        ("x = 5, and 10 = 10", 0),
        ("3(4) = 12", 1),  # an implicit product is an operation
        ("So 16 - 3 - 4 = 9 and 9 * 2 = 18.", 3),
    ],
)
def test_count_operations(text: str, expected: int) -> None:
    assert count_operations(text) == expected


def test_long_text_is_fast() -> None:
    text = "She buys 3 + 4 = 7 apples and 7 * 12 = 84 pears. " * 200
    began = time.perf_counter()
    assert len(find_arithmetic_steps(text)) == 400
    assert time.perf_counter() - began < 5
