"""Tests for structure: step splitting, step classification and whole-solution analysis.

Expected phases are hand labels: what a reader would call each step.
"""

from __future__ import annotations

import pytest

from study.analysis.structure import (
    PHASES,
    Segment,
    analyze_solution,
    classify_step,
    segment_solution,
    split_steps,
)

# ---------------------------------------------------------------- step classification

STEP_LABELS = [
    # setup: plans, unknowns, what is asked
    ("We need to find how many eggs Janet sells each day.", "setup"),
    ("Let x be the number of red marbles.", "setup"),
    ("First, let's figure out how long the trip takes.", "setup"),
    ("To find the total cost, we add the price of each item.", "setup"),
    ("We are told that the train travels for 3 hours.", "setup"),
    ("How many cookies are left?", "setup"),
    # computation: explicit arithmetic, equations with numbers, results, final answers
    ("She sells 16 - 3 - 4 = 9 eggs.", "computation"),
    ("So x = 12.", "computation"),
    ("Each box holds 6 * 4 = 24 pencils.", "computation"),
    ("That gives 45 minutes in total.", "computation"),
    ("Therefore, she has 7 apples left.", "computation"),
    ("5 times 8 is 40.", "computation"),
    ("The answer is 18.", "computation"),
    ("#### 72", "computation"),
    ("Final answer: \\boxed{42}", "computation"),
    # verification: re-checks, even when they contain arithmetic
    ("Let's verify: 9 + 3 + 4 = 16, which matches the total.", "verification"),
    ("To double-check, 24 * 2 = 48.", "verification"),
    ("Substituting x = 4 back into the equation gives 2(4) + 3 = 11.", "verification"),
    ("Plugging 5 back in, 5 + 5 = 10, as expected.", "verification"),
    ("This is correct.", "verification"),
    ("Check: 12 + 30 = 42 ✓", "verification"),
    ("We can confirm the result by adding the parts.", "verification"),
    ("Indeed, 3 * 7 = 21.", "verification"),
    # no rule fires: a restated given inherits the phase of the previous step
    ("Janet's ducks lay 16 eggs per day.", None),
    ("She bakes muffins for her friends.", None),
    ("Let's check how many apples are red.", "setup"),  # 'check how' is not a re-check
]


@pytest.mark.parametrize(("step", "phase"), STEP_LABELS)
def test_classify_step(step: str, phase: str | None) -> None:
    assert classify_step(step) == phase


# ---------------------------------------------------------------------- splitting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A cat. A dog!  Why?", ["A cat.", "A dog!", "Why?"]),
        ("It costs $3.50 each. Buy 2.", ["It costs $3.50 each.", "Buy 2."]),  # decimals stay
        ("1. Add them.\n2. Divide by 2.", ["1. Add them.", "2. Divide by 2."]),  # markers
        ("Take 3, e.g. apples. Done.", ["Take 3, e.g. apples.", "Done."]),  # abbreviation
        ("So 8 + 1 = 9. #### 9", ["So 8 + 1 = 9.", "#### 9"]),
        ("So it is 9 #### 9", ["So it is 9", "#### 9"]),
        ("Step 1: add. Step 2: halve", ["Step 1: add.", "Step 2: halve"]),
        ("  \n\n  ", []),
    ],
)
def test_split_steps(text: str, expected: list[str]) -> None:
    spans = split_steps(text)
    assert [text[a:b] for a, b in spans] == expected
    assert all(
        b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False)
    )  # ordered, disjoint


# ------------------------------------------------------------------ whole solutions

WITH_VERIFICATION = (
    "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4.\n"
    "So she sells 16 - 3 - 4 = 9 eggs.\n"
    "She earns 9 * 2 = 18 dollars.\n"
    "Let's verify: 9 + 3 + 4 = 16 eggs, which matches. The answer is 18."
)
NO_VERIFICATION = (
    "1. First, we need to find how many clips Natalia sold in May.\n"
    "2. She sold half as many: 48 / 2 = <<48/2=24>>24 clips.\n"
    "3. Altogether she sold 48 + 24 = <<48+24=72>>72 clips.\n"
    "#### 72"
)
ALL_COMPUTATION = "12 * 4 = 48. 48 + 6 = 54. 54 / 3 = 18. The answer is 18."
WITH_ERROR_AND_RECHECK = (
    "Let x be the number of boxes. We know 3x + 5 = 20. So 3x = 15 and x = 6.\n"
    "Substituting back: 3 * 6 + 5 = 23, not 20. Hmm. Indeed 15 / 3 = 5.\n"
    "So x = 5. The answer is 5."
)
SETUP_ONLY = "We need to find the total number of pages. Let p be the pages per day."

WHOLE_SOLUTIONS = [
    (
        WITH_VERIFICATION,
        ["setup", "setup", "computation", "computation", "verification", "computation"],
        {"n_arith_steps": 3, "n_arith_errors": 0, "n_operations": 5},
    ),
    (
        NO_VERIFICATION,
        ["setup", "computation", "computation", "computation"],
        {"n_arith_steps": 2, "n_arith_errors": 0, "n_operations": 2},
    ),
    (
        ALL_COMPUTATION,
        ["computation"] * 4,
        {"n_arith_steps": 3, "n_arith_errors": 0, "n_operations": 3},
    ),
    (
        WITH_ERROR_AND_RECHECK,
        # 'Hmm.' inherits verification from the step before it
        [
            "setup",
            "computation",
            "computation",
            "verification",
            "verification",
            "verification",
            "computation",
            "computation",
        ],
        {"n_arith_steps": 2, "n_arith_errors": 0, "n_operations": 3},
    ),
    (SETUP_ONLY, ["setup", "setup"], {"n_arith_steps": 0, "n_arith_errors": 0}),
]


@pytest.mark.parametrize(("text", "phases", "stats"), WHOLE_SOLUTIONS)
def test_segment_whole_solutions(text: str, phases: list[str], stats: dict) -> None:
    segments = segment_solution(text)
    assert [s.phase for s in segments] == phases
    for segment in segments:
        assert text[segment.start : segment.end] == segment.text
    analysis = analyze_solution(text)
    assert analysis["n_steps"] == len(phases)
    assert analysis["has_verification"] == ("verification" in phases)
    for key, value in stats.items():
        assert analysis[key] == value, key


@pytest.mark.parametrize(("text", "_phases", "_stats"), WHOLE_SOLUTIONS)
def test_segments_cover_all_non_whitespace(text: str, _phases, _stats) -> None:
    segments = segment_solution(text)
    covered = "".join(s.text for s in segments)
    assert "".join(covered.split()) == "".join(text.split())
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:], strict=False))


def test_analyze_solution_totals_and_first_verification() -> None:
    analysis = analyze_solution(WITH_VERIFICATION)
    assert set(analysis["tokens_per_phase"]) == set(PHASES)
    assert sum(analysis["tokens_per_phase"].values()) == len(WITH_VERIFICATION.split())
    assert analysis["chars_per_phase"]["verification"] == len(
        "Let's verify: 9 + 3 + 4 = 16 eggs, which matches."
    )
    assert analysis["first_verification_char"] == WITH_VERIFICATION.index("Let's verify")
    assert analysis["tokens_per_phase"]["verification"] == 12  # whitespace-separated words


def test_analyze_solution_uses_the_given_token_counter() -> None:
    analysis = analyze_solution(ALL_COMPUTATION, count_tokens=len)  # characters as "tokens"
    assert analysis["tokens_per_phase"] == {
        "setup": 0,
        "computation": sum(len(s.text) for s in segment_solution(ALL_COMPUTATION)),
        "verification": 0,
    }
    assert analysis["first_verification_char"] is None


def test_arithmetic_error_is_reported() -> None:
    analysis = analyze_solution("She has 4 * 6 = 26 apples. The answer is 26.")
    assert analysis["n_arith_errors"] == 1 and analysis["n_arith_steps"] == 1


def test_empty_solution() -> None:
    analysis = analyze_solution("")
    assert analysis["n_steps"] == 0 and not analysis["has_verification"]
    assert analysis["tokens_per_phase"] == dict.fromkeys(PHASES, 0)
    assert segment_solution("") == []


def test_unclassified_first_step_is_setup() -> None:
    (first, second) = segment_solution("Tom has 5 pens. He gets 3 more, so 5 + 3 = 8.")
    assert first == Segment("setup", "Tom has 5 pens.", 0, 15)
    assert second.phase == "computation"
