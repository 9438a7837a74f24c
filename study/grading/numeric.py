"""Final-answer extraction and equivalence for GSM8K-style model outputs (pure functions).

This module is the ``numeric`` answer kind; ``grade`` and ``is_equivalent`` take ``kind=`` (one
of ``ANSWER_KINDS``) and hand ``latex`` and ``choice`` to latex.py.

Two extraction rules are reported side by side:

* **strict** (``extract_strict``): only an explicit final-answer statement counts, in this
  priority order: the last ``#### N``; else the last ``\\boxed{...}``; else the number in the
  last "answer is ..." / "final answer: ..." / "Answer: ..." statement (case-insensitive).
  Within each kind, the last statement that contains a number wins.
* **flexible** (``extract_flexible``): the strict answer when there is one, else the last
  number anywhere in the text.

``Grade.correct`` uses the *flexible* prediction. Chat-tuned models rarely write ``####`` or
"the answer is", so a strict-only score mostly measures formatting: the study notes put strict
accuracy at 0.20 against 0.78 flexible for chat models. ``correct_strict`` is kept so that the
gap between the two stays visible.

Number reading rules (``normalize_number`` and the last-number rule share them):

* ``$``, ``\\$``, ``%`` and words after a number are dropped (``25%`` -> ``25``,
  ``$1,000 dollars.`` -> ``1000``); percentages keep their face value, so ``25%`` does not
  equal ``0.25``.
* Commas are thousands separators only in groups of three (``1,234,567``); ``1,2,3`` is three
  numbers. Spaces are never thousands separators: ``1 000`` reads as two numbers, because
  spaces separate list items far more often than digit groups in model output.
* A minus sign (``-`` or the unicode ``−``) makes a number negative only when it is not a
  binary minus: ``-3`` and ``= -3`` are negative, ``15-8`` and ``15 - 8`` are not.
* ``.5`` -> ``0.5``; ``5.`` at a sentence end -> ``5``; ``29.00`` -> ``29``; ``0.50`` -> ``0.5``.
* ``a/b`` between integers (and LaTeX ``\\frac{a}{b}``) is one number with value a/b.
  Terminating values print as decimals (``3/4`` -> ``0.75``); others keep the reduced
  fraction (``2/6`` -> ``1/3``) and compare within the tolerance below.
  Mixed numbers (``2 1/2``) are not recognised.
* A clock time ``H:MM`` is one number in hours (``3:00`` -> ``3``, ``3:30`` -> ``3.5``), so the
  minutes never surface as a separate "last number". ``Step 1:`` is not a time (no digits
  follow the colon), and list markers such as ``1.`` count as ordinary numbers.

Equivalence: when both sides are plain numbers (one number, optionally with ``$``, ``%`` or
unit words), they are compared numerically: integers exactly, anything else within a relative
tolerance of 1e-6 (so ``0.3333333`` equals ``1/3`` but ``1000001`` never equals ``1000000``).
Otherwise math-verify decides (gold first; it is not symmetric).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable
from fractions import Fraction

# math-verify (and sympy under it) is imported on first use: numeric sets never need it, and a
# command should fail on a bad flag before paying for it. It logs "Timeout is disabled..." (and
# parse failures) as warnings; keep them off the user's terminal.
logging.getLogger("math_verify").setLevel(logging.ERROR)

# Answer kinds that ``grade`` and ``is_equivalent`` accept (latex and choice: latex.py).
ANSWER_KINDS = ("numeric", "latex", "choice")

# Relative tolerance for non-integer numeric comparison (absorbs rounding like 0.3333333 vs 1/3).
REL_TOL = 1e-6
# math-verify runs sympy with its timeouts disabled (they are signal based and fail off the main
# thread), so very long strings are refused rather than risking a slow parse.
MATH_VERIFY_MAX_CHARS = 300

_NUMBER = re.compile(
    r"""
    (?P<sign>(?<![\w)\]}])[-\u2212])?        # a sign, unless it is a binary minus (15-8)
    \$?                                      # "-$5"
    (?:
        (?P<time>(?<![\d:])\d{1,2}:\d{2})(?![\d:])             # clock time 3:00
      | (?P<frac>(?<![\d/.,])\d+/\d+)(?![\d/]|\.\d)            # simple fraction 3/4
      | (?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?     # 1,234.50 or 29
              | (?<![\d.])\.\d+)                                  # .5
    )
    """,
    re.VERBOSE,
)

# LaTeX wrappers whose argument is kept verbatim (\text{ dollars} -> " dollars").
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|textnormal)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")
# Spacing macros and sizing commands carry no value; "{,}" is LaTeX for a thousands comma.
_LATEX_DROP = re.compile(r"\\[,;:! ]|\\left|\\right")

_HASH_ANSWER = re.compile(r"####[ \t]*([^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)\b\s*")
ANSWER_STATEMENT = re.compile(r"\b(?:final\s+)?answer\b[\s*_]*(?:is\b|:|=)[\s*:]*", re.IGNORECASE)
# A statement's number ends at the end of its sentence: a period, ! or ? followed by a space.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
# Characters allowed around the single number of a "plain number" string ($18.00, 25%, **5**).
_PLAIN_FILLER = re.compile(r"[\sA-Za-z$%.,!:;*_'\"]*")


def _clean_latex(text: str) -> str:
    """Rewrite the LaTeX forms that wrap numbers into plain text."""
    text = _LATEX_TEXT.sub(r"\1", text)
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    text = text.replace("\\$", "$").replace("\\%", "%").replace("{,}", ",")
    return _LATEX_DROP.sub("", text)


def _match_value(match: re.Match[str]) -> Fraction | None:
    """Value of one _NUMBER match; None for a fraction with a zero denominator."""
    if match["time"]:
        hours, minutes = match["time"].split(":")
        value = int(hours) + Fraction(int(minutes), 60)
    elif match["frac"]:
        numerator, denominator = match["frac"].split("/")
        if int(denominator) == 0:
            return None
        value = Fraction(int(numerator), int(denominator))
    else:
        value = Fraction(match["num"].replace(",", ""))
    return -value if match["sign"] else value


def _number_matches(text: str) -> list[re.Match[str]]:
    return list(_NUMBER.finditer(_clean_latex(text)))


def _values(text: str) -> list[Fraction]:
    """All numbers in the text, in order of appearance."""
    values = (_match_value(m) for m in _number_matches(text))
    return [v for v in values if v is not None]


def _format_value(value: Fraction) -> str:
    """Canonical string: integer, terminating decimal without trailing zeros, else 'p/q'."""
    if value.denominator == 1:
        return str(value.numerator)
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value) * 10**places  # an integer because the denominator divides 10**places
    digits = str(int(scaled)).rjust(places + 1, "0")
    whole, decimals = digits[:-places], digits[-places:].rstrip("0")
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{decimals}"


def normalize_number(text: str) -> str | None:
    """Canonical string of the first number in ``text`` ($, %, commas, units dropped), or None."""
    values = _values(text)
    return _format_value(values[0]) if values else None


def _statement_number(segment: str) -> str | None:
    """Number of an answer statement's segment: the value after the last '=' when there is one."""
    if "=" in segment:
        after_equals = normalize_number(segment.rsplit("=", 1)[1])
        if after_equals is not None:
            return after_equals
    return normalize_number(segment)


def _first_stated_number(segments: Iterable[str]) -> str | None:
    """Number of the first segment that states one. Callers pass their candidate statements
    last-first (lazily), because the last statement with a number wins."""
    for segment in segments:
        number = _statement_number(segment)
        if number is not None:
            return number
    return None


def _last_hash_answer(text: str) -> str | None:
    return _first_stated_number(m.group(1) for m in reversed(list(_HASH_ANSWER.finditer(text))))


def braced_argument(text: str, start: int) -> str | None:
    """Content of the {...} group opening at ``start`` (nested braces allowed); None if unclosed."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
    return None


def boxed_contents(text: str) -> list[str]:
    """Arguments of every \\boxed{...} (or ``\\boxed 5``), in order; unclosed boxes are skipped."""
    contents = []
    for match in _BOXED.finditer(text):
        if text.startswith("{", match.end()):
            content = braced_argument(text, match.end())
        else:
            bare = re.match(r"[^\s$]+", text[match.end() :])
            content = bare.group(0) if bare else None
        if content is not None:
            contents.append(content)
    return contents


def _last_boxed_answer(text: str) -> str | None:
    return _first_stated_number(reversed(boxed_contents(text)))


def statement_segment(after: str) -> str:
    """The sentence following an answer statement (the next non-empty line if it ends there)."""
    line = after.lstrip().split("\n", 1)[0]
    end = _SENTENCE_END.search(line)
    return line[: end.start()] if end else line


def _last_answer_statement(text: str) -> str | None:
    matches = reversed(list(ANSWER_STATEMENT.finditer(text)))
    return _first_stated_number(statement_segment(text[m.end() :]) for m in matches)


def extract_strict(text: str) -> str | None:
    """Answer from an explicit final-answer statement (#### > \\boxed > 'answer is'), or None."""
    for extractor in (_last_hash_answer, _last_boxed_answer, _last_answer_statement):
        answer = extractor(text)
        if answer is not None:
            return answer
    return None


def extract_flexible(text: str) -> str | None:
    """The strict answer when present, else the last number in the text; None if no number."""
    strict = extract_strict(text)
    if strict is not None:
        return strict
    values = _values(text)
    return _format_value(values[-1]) if values else None


def parse_gold(answer: str) -> str:
    """Gold answer from a dataset field: the normalised N of the last '#### N'; else the field
    normalised when it is a plain number ('1,234' -> '1234'); else the field stripped, for
    math-verify to compare ('\\frac{\\pi}{2}')."""
    if "####" in answer:
        number = _last_hash_answer(answer)
        if number is not None:
            return number
    value = plain_value(answer)
    return _format_value(value) if value is not None else answer.strip()


def plain_value(text: str) -> Fraction | None:
    """Value of a string that is a single number with only $, %, units or punctuation around it."""
    cleaned = _clean_latex(text)
    matches = list(_NUMBER.finditer(cleaned))
    if len(matches) != 1:
        return None
    before, after = cleaned[: matches[0].start()], cleaned[matches[0].end() :]
    if not (_PLAIN_FILLER.fullmatch(before) and _PLAIN_FILLER.fullmatch(after)):
        return None
    return _match_value(matches[0])


def values_close(a: Fraction, b: Fraction) -> bool:
    if a == b:
        return True
    if a.denominator == 1 and b.denominator == 1:
        return False  # integers are compared exactly: 1000001 is not 1000000
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def _math_verify_parse(text: str) -> list[object]:
    """math-verify parse of ``text``, read as inline math first: undelimited LaTeX such as
    '\\sqrt{4}' parses to nothing, and '2\\sqrt{2}' to just 2, without the $ delimiters."""
    from math_verify import parse

    if "$" not in text and "\\boxed" not in text:
        parsed = parse(f"${text}$", parsing_timeout=None)
        if parsed:
            return parsed
    return parse(text, parsing_timeout=None)


def math_verify_verdict(gold: str, predicted: str) -> bool:
    """math-verify's verdict (gold first) with its signal-based timeouts and its warnings off;
    any failure counts as False. No size or time limit: see the callers."""
    from math_verify import verify

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            gold_parsed = _math_verify_parse(gold)
            predicted_parsed = _math_verify_parse(predicted)
            return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=None))
        except (ValueError, TypeError, ArithmeticError, AttributeError, RecursionError):
            return False


def _math_verify_equal(gold: str, predicted: str) -> bool:
    """The verdict inline, for answers no longer than ``MATH_VERIFY_MAX_CHARS``."""
    if len(gold) > MATH_VERIFY_MAX_CHARS or len(predicted) > MATH_VERIFY_MAX_CHARS:
        return False
    return math_verify_verdict(gold, predicted)


def numeric_equivalent(predicted: str | None, gold: str) -> bool:
    """The ``numeric`` kind's rule: numerically when both are plain numbers, else by
    math-verify; ``gold`` may be a dataset field such as '#### 18' or '1,234'. Never raises."""
    if predicted is None:
        return False
    gold_text = parse_gold(gold)
    predicted_value, gold_value = plain_value(predicted), plain_value(gold_text)
    if predicted_value is not None and gold_value is not None:
        return values_close(predicted_value, gold_value)
    return _math_verify_equal(gold_text, predicted)


def states_answer(text: str, gold: str) -> bool:
    """True when any number mentioned in ``text`` equals the gold answer. Both a fraction 'a/b'
    and its parts a and b count as mentioned, so '72/2' states 72."""
    gold_value = plain_value(parse_gold(gold))
    if gold_value is None:
        return False
    mentioned = _values(text)
    for match in _number_matches(text):
        if match["frac"]:
            mentioned.extend(Fraction(int(part)) for part in match["frac"].split("/"))
    return any(values_close(value, gold_value) for value in mentioned)


