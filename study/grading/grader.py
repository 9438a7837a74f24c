"""Grading one generated text: the answer kind picks its extraction rules and equivalence.

``grade`` reports two extraction rules side by side (``study.grading.numeric`` explains them):
*strict* counts only an explicit final-answer statement, *flexible* falls back to the last
number. ``Grade.correct`` uses the flexible prediction; ``correct_strict`` keeps the gap
between the two visible.
"""

from __future__ import annotations

from dataclasses import dataclass

from study.grading import latex, numeric

# Answer kinds that ``grade`` and ``is_equivalent`` accept.
ANSWER_KINDS = ("numeric", "latex", "choice")

# Per kind: (strict extractor, flexible extractor, equivalence).
KIND_RULES = {
    "numeric": (numeric.extract_strict, numeric.extract_flexible, numeric.numeric_equivalent),
    **latex.KIND_RULES,
}


def kind_rules(kind: str):
    """(strict extractor, flexible extractor, equivalence) of an answer kind."""
    if kind not in ANSWER_KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; expected one of {ANSWER_KINDS}")
    return KIND_RULES[kind]


def is_equivalent(predicted: str | None, gold: str, kind: str = "numeric") -> bool:
    """Whether ``predicted`` matches ``gold`` under the answer kind's rule (``numeric``: see
    ``numeric.numeric_equivalent``; ``latex``/``choice``: see ``study.grading.latex``). Never
    raises, except ValueError for an unknown kind."""
    return kind_rules(kind)[2](predicted, gold)


@dataclass(frozen=True)
class Grade:
    """Extractions and verdicts for one generated text (``correct`` uses the flexible rule)."""

    predicted: str | None
    predicted_strict: str | None
    correct: bool
    correct_strict: bool


def grade(text: str, gold: str, kind: str = "numeric") -> Grade:
    """Grade one generation against its gold answer with both extraction rules of the answer
    kind (one of ``ANSWER_KINDS``; ValueError otherwise)."""
    strict_rule, flexible_rule, equal = kind_rules(kind)
    strict = strict_rule(text)
    flexible = strict if strict is not None else flexible_rule(text)
    return Grade(
        predicted=flexible,
        predicted_strict=strict,
        correct=equal(flexible, gold),
        correct_strict=equal(strict, gold),
    )
