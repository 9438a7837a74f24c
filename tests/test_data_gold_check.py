"""Gold answers checked against the question's own expression (study.data.gold_check), and the arith
loader that fixes reasoning-gym's wrong golds."""

from __future__ import annotations

from fractions import Fraction

import pytest

from study.data import datasets
from study.data.gold_check import arithmetic_answer, format_number, same_number, verify_golds


@pytest.mark.parametrize("question, answer", [
    ("Calculate 8 + 1 * 8.", "16"),
    ("Calculate 4 + 8 * 5.", "44"),
    ("Calculate 6 * 2 + 5.", "17"),
    ("Calculate 0 + 1 + 9.", "10"),
    ("What is 7 - 10?", "-3"),
    ("Compute (2 + 3) * 4 =", "20"),
    ("Calculate 7 / 4.", "1.75"),
    ("Calculate 1 / 3.", "1/3"),
    ("Calculate 5 / 0.", None),  # not evaluable: nothing to check
    ("Janet has 3 apples and buys 4 more.", None),  # not a pure expression
    ("Calculate x + 1.", None),
    ("Calculate .", None),
])
def test_arithmetic_answer(question, answer):
    assert arithmetic_answer(question) == answer


def test_format_number_and_same_number():
    assert format_number(Fraction(12)) == "12"
    assert format_number(Fraction(-5, 2)) == "-2.5"
    assert same_number("16", "16.0") and same_number("-3", "-3")
    assert not same_number("60", "44") and not same_number("abc", "16")


def test_verify_golds_fixes_only_disagreeing_rows():
    rows = [{"question": "Calculate 8 + 1 * 8.", "answer": "72"},
            {"question": "Calculate 2 * 3.", "answer": "6"},
            {"question": "A word problem.", "answer": "5"}]
    fixed, fixes = verify_golds(rows, arithmetic_answer)
    assert [r["answer"] for r in fixed] == ["16", "6", "5"]
    assert [(f.index, f.stated, f.verified) for f in fixes] == [(0, "72", "16")]
    assert rows[0]["answer"] == "72"  # the input is not modified


def brute_force_value(question: str) -> Fraction:
    """Independent reference for '+'/'*' expressions: sum of the products of '+'-separated terms."""
    expr = question.removeprefix("Calculate ").rstrip(".")
    total = Fraction(0)
    for term in expr.split("+"):
        product = Fraction(1)
        for factor in term.split("*"):
            product *= int(factor)
        total += product
    return total


def test_arith_golds_are_right_on_1000_seeded_problems(tmp_path):
    loaded = datasets.load_dataset("arith", 1000, 1234, tmp_path)
    wrong = [p for p in loaded.problems if Fraction(p.answer) != brute_force_value(p.question)]
    assert wrong == []
    fixed = loaded.info["gold_fixed"]
    assert loaded.info["gold_checked"] == 1000
    # reasoning-gym computes these as if parenthesised left to right: 118 of 1,000 at seed 1234.
    assert len(fixed) == 118
    first = fixed[0]
    assert (first["problem_id"], first["stated"], first["verified"]) == ("arith-s1234-00002",
                                                                         "60", "44")


def test_gsm8k_golds_are_not_checked(tmp_path):
    assert "gold_fixed" not in datasets.load_dataset("gsm8k", 3, 0, tmp_path).info
