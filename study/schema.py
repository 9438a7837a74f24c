"""The one typed schema of the results store: records and every summary.

Record files and summaries are plain JSON (the spec's schema); these TypedDicts say what each
holds, and every reader (console tables, the report, the figures, later phases) goes through
them instead of guessing keys.
"""

from __future__ import annotations

from typing import TypedDict


class Record(TypedDict):
    """One graded generation at one budget (a record file is a JSON list of these)."""

    problem_id: str  # stable id, e.g. "arith-s1234-0007"
    question: str
    ground_truth: str  # as the dataset gives it
    generated: str  # text decoded from exactly the tokens within the budget
    predicted: str | None  # flexible extraction (used for `correct`)
    predicted_strict: str | None  # strict extraction ("#### N", "answer is N", \boxed{})
    correct: bool
    correct_strict: bool
    tokens_used: int  # generated tokens within the budget (EOS counted)
    budget: int
    hit_budget: bool  # the budget cut the generation (no EOS within it)
    sample: int  # sample index (phase 1b: 0..k-1; else 0)


RECORD_KEYS: tuple[str, ...] = tuple(Record.__annotations__)
