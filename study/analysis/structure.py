"""Rule-based segmentation of a written math solution into setup / computation / verification.

A solution is split into *steps* (``split_steps``): every non-empty line, further split
after sentence-ending ``.``/``!``/``?`` followed by whitespace (not after abbreviations such
as ``e.g.``, and a bare list marker such as ``2.`` stays with the text it numbers), and before
a ``####`` answer marker or a ``Step N:`` heading that appears mid-line. Each step then gets
a phase by the first rule that fires (``classify_step``):

====  ==============  ========================================================================
rank  phase           fires when the step ...
====  ==============  ========================================================================
1     verification    re-checks a result: verify / double-check / "let's check" / checking /
                      confirm / indeed / which matches / this is correct / sanity / as
                      expected / substituting or plugging ... back / "into the original
                      equation" / a check mark
2     computation     states the final answer (``the answer is``, ``final answer``, ``####``,
                      ``\\boxed``) - kept in *computation* so the three phases partition
                      the tokens
3     computation     contains an explicit arithmetic step (``arith_check``), an equation with
                      a number (``x = 5``), an operator between numbers (``3 * 4``, ``12 - 3``),
                      an operation in words (``5 times 3``), a result phrase with a number
                      (``gives 15``, ``in total 20``), or opens with so / thus / therefore /
                      hence / then and mentions a number
4     setup           plans or names things: we need to / to find / let x be / let's /
                      denote / suppose / given / we know / we are told / how many / first, ...
5     (none)          anything else, e.g. a restated given ("She has 16 ducks.") takes the
                      phase of the previous step, and ``setup`` at the start
====  ==============  ========================================================================

``analyze_solution`` sums tokens and characters per phase. Its ``count_tokens`` callable
defaults to a whitespace word count; the phase-3 script passes the model tokenizer so that
shares are in model tokens (each step is tokenized on its own, so the per-phase sum can differ
from the tokenized whole text by a token or two per step boundary).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from study.data.arith_check import count_operations, find_arithmetic_steps

PHASES = ("setup", "computation", "verification")

_FLAGS = re.IGNORECASE

_VERIFICATION_RE = re.compile(
    r"\bverif(?:y|ies|ied|ying|ication)\b"
    r"|\b(?:double|re)[- ]?check"
    r"|\bsanity\b"
    r"|\b(?:let'?s|let me|let us|we can|we could|to|now|quickly|i'?ll|we'?ll)\s+"
    r"(?:double[- ]?)?check\b(?!\s+how\b)"
    r"|^\W*check(?:ing)?\b"
    r"|\bchecking\b"
    r"|\bconfirm(?:s|ed|ing|ation)?\b"
    r"|\bindeed\b"
    r"|\bwhich matches\b|\bthis matches\b|\bmatches the\b"
    r"|\b(?:this|that|which|it) is (?:indeed )?correct\b"
    r"|\bas expected\b"
    r"|\bsubstitut\w*\b.{0,60}?\bback\b"
    r"|\bplug\w*\b.{0,60}?\bback\b"
    r"|\binto the original (?:equation|problem|expression)\b"
    r"|[✓✔]",
    _FLAGS,
)

_ANSWER_RE = re.compile(
    r"\b(?:the )?(?:final )?answer(?: is|:)|####|\\boxed\b",
    _FLAGS,
)

_NUMBER = r"\$?\d"
_COMPUTATION_RES = (
    re.compile(r"\d\s*(?:=|≈)|(?:=|≈)\s*[-−$\\]?\s*\d"),  # equation with a number
    re.compile(r"\d\s*[+*×÷^·⋅]\s*" + _NUMBER),  # 3 * 4, 5+2
    re.compile(r"\d\s+[-−–/]\s+" + _NUMBER),  # spaced 12 - 3, 12 / 4 (not dates/ranges)
    re.compile(r"\d\s+(?:times|plus|minus|divided by|multiplied by|over)\s+" + _NUMBER, _FLAGS),
    re.compile(
        r"\b(?:gives?|get|gets|got|equals?|results? in|left with|in total|altogether|"
        r"total of|total is|comes? to|amounts? to|makes?)\b[^.\d]{0,25}" + _NUMBER,
        _FLAGS,
    ),
    re.compile(r"^\W*(?:so|thus|therefore|hence|then|this means|that means)\b.*\d", _FLAGS),
)

_SETUP_RE = re.compile(
    r"\b(?:we need to|we have to|we must|we want to|we should|need to (?:find|figure|"
    r"calculate|compute|determine|know)|to (?:find|figure out|determine|calculate|solve)|"
    r"let'?s|let us|let [a-z]\b|let (?:the|me)\b|denote|suppose|assume|given|we know|"
    r"we are (?:told|given|asked)|the problem|the question|how (?:many|much)|what is|"
    r"first,|step 1\b|our goal|we will|we'll|represent|define|unknown|plan)\b",
    _FLAGS,
)

# Words that end with a period without ending a sentence.
_ABBREVIATIONS = frozenset({"e.g", "i.e", "mr", "mrs", "ms", "dr", "vs", "approx", "no", "st"})
_SENTENCE_END_RE = re.compile(r"[.!?]+(?=\s)")
_MID_LINE_BREAK_RE = re.compile(r"(?<=\S)\s+(?=####|step \d+\s*[:.])", _FLAGS)
_LIST_MARKER_RE = re.compile(r"^\(?(?:\d+|[a-z])[.)]$|^(?:step\s+)?\d+[.:)]$", _FLAGS)


@dataclass(frozen=True)
class Segment:
    """One step of a solution with its phase; ``start``/``end`` are offsets into the text."""

    phase: str
    text: str
    start: int
    end: int


def _strip_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    left = start + (len(piece) - len(piece.lstrip()))
    return left, left + len(stripped)


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans, offset = [], 0
    for line in text.splitlines(keepends=True):
        spans.append((offset, offset + len(line)))
        offset += len(line)
    return spans


def _is_abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"[\w.]+$", text[:dot])
    return word is not None and word.group().lower().rstrip(".") in _ABBREVIATIONS


def _cut_points(text: str, start: int, end: int) -> list[int]:
    """Offsets inside one line after which a new step begins."""
    line = text[start:end]
    cuts = [
        start + m.end()
        for m in _SENTENCE_END_RE.finditer(line)
        if not _is_abbreviation(text, start + m.start())
    ]
    cuts += [start + m.start() for m in _MID_LINE_BREAK_RE.finditer(line)]
    return sorted(set(cuts))


def _merge_list_markers(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join a bare list marker ('2.', 'Step 3:') to the step that follows it."""
    merged: list[tuple[int, int]] = []
    pending: int | None = None
    for start, end in spans:
        if _LIST_MARKER_RE.match(text[start:end]):
            pending = start if pending is None else pending
            continue
        merged.append((pending if pending is not None else start, end))
        pending = None
    if pending is not None:
        merged.append((pending, spans[-1][1]))
    return merged


def split_steps(text: str) -> list[tuple[int, int]]:
    """Character spans of the steps of ``text`` (ordered, disjoint, whitespace trimmed)."""
    spans: list[tuple[int, int]] = []
    for line_start, line_end in _line_spans(text):
        bounds = [line_start, *_cut_points(text, line_start, line_end), line_end]
        for start, end in zip(bounds, bounds[1:], strict=False):
            span = _strip_span(text, start, end)
            if span is not None:
                spans.append(span)
    return _merge_list_markers(text, spans)


def _is_computation(step: str) -> bool:
    if find_arithmetic_steps(step):
        return True
    return any(pattern.search(step) for pattern in _COMPUTATION_RES)


def classify_step(step: str) -> str | None:
    """Phase of one step by the rules in the module docstring; None when no rule fires."""
    if _VERIFICATION_RE.search(step):
        return "verification"
    if _ANSWER_RE.search(step) or _is_computation(step):
        return "computation"
    if _SETUP_RE.search(step):
        return "setup"
    return None


def segment_solution(text: str) -> list[Segment]:
    """One Segment per step; unclassified steps inherit the previous phase (setup first)."""
    segments: list[Segment] = []
    phase = "setup"
    for start, end in split_steps(text):
        step = text[start:end]
        phase = classify_step(step) or phase
        segments.append(Segment(phase, step, start, end))
    return segments


def _word_count(text: str) -> int:
    return len(text.split())


def analyze_solution(text: str, count_tokens: Callable[[str], int] | None = None) -> dict:
    """Per-phase token/char totals plus arithmetic-step statistics for one solution."""
    counter = count_tokens or _word_count
    segments = segment_solution(text)
    tokens = dict.fromkeys(PHASES, 0)
    chars = dict.fromkeys(PHASES, 0)
    for segment in segments:
        tokens[segment.phase] += counter(segment.text)
        chars[segment.phase] += len(segment.text)
    verification_starts = [s.start for s in segments if s.phase == "verification"]
    steps = find_arithmetic_steps(text)
    return {
        "tokens_per_phase": tokens,
        "chars_per_phase": chars,
        "has_verification": bool(verification_starts),
        "n_steps": len(segments),
        "n_operations": count_operations(text),
        "n_arith_steps": len(steps),
        "n_arith_errors": sum(step.correct is False for step in steps),
        "first_verification_char": verification_starts[0] if verification_starts else None,
    }
