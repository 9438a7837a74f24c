"""Graders for the ``latex`` and ``choice`` answer kinds (MATH-style and multiple-choice answers).

``latex``: the answer is the argument of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested
braces allowed), else the last final-answer statement ("the answer is ..."); the flexible rule
falls back to the last number in the text. Two answers are equal when, after ``normalize_latex``
(``\\left``/``\\right``, ``\\dfrac``/``\\tfrac``, spacing, degrees, ``\\text{}`` wrappers and
trailing unit words, ``\\$``, trailing periods), they are the same string, or both are plain
numbers of equal value, or math-verify says so (gold first: it is not symmetric).

math-verify's own timeouts use ``signal.alarm`` and so work on the main thread only. Here they
are off, inputs are bounded to ``numeric.MATH_VERIFY_MAX_CHARS``, and every math-verify call runs
in one persistent worker process with a wall-clock limit of ``LATEX_TIMEOUT_S`` per call, so the
limit holds from any thread. A call past the limit counts as not equivalent and the worker is
replaced. math-verify's log messages are silenced below ERROR, here and in the worker.

``choice``: the last answer letter (A-E) stated as ``\\boxed{C}``, else "Answer: C" / "the answer
is (C)", else a parenthesised ``(C)``, else a text that is only the letter; compared with the gold
letter case-insensitively.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading

from study.grading import numeric

# Wall-clock limit for one math-verify comparison (parse both sides and verify), in seconds.
LATEX_TIMEOUT_S = 5.0
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Worker start-up (a fresh interpreter importing sympy) is not part of any call's limit.
_WORKER_START_TIMEOUT_S = 120.0

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|textnormal)\s*\{")
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\left\b|\\right\b|\\displaystyle\b|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\u00b0|\\degree\b")
# Unit or filler words after a value ("10 inches", "5 \text{ cm}"); the value must end in a digit,
# a closing bracket or brace, so a pure-word answer ("Evelyn") is kept.
_TRAILING_WORDS = re.compile(r"(?<=[\d})\]])\s*(?:[A-Za-z]{2,}\.?\s*)+$")
_TRAILING_JUNK = re.compile(r"[\s.]+$")
_INLINE_MATH = re.compile(r"^\$+|\$+$|^\\\(|\\\)$|^\\\[|\\\]$")

_INLINE_MATH_SPAN = re.compile(r"\$([^$]+)\$")


def _unwrap_text(answer: str) -> str:
    """``\\text{Evelyn}`` -> ``Evelyn``: the argument of each text-style wrapper, kept verbatim."""
    while match := _TEXT_WRAPPER.search(answer):
        brace = match.end() - 1
        content = numeric.braced_argument(answer, brace)
        if content is None:
            return answer
        answer = answer[: match.start()] + content + answer[brace + len(content) + 2 :]
    return answer


def normalize_latex(answer: str) -> str:
    """Presentation-free form of a LaTeX answer, for string comparison and for math-verify."""
    answer = _INLINE_MATH.sub("", answer.strip()).strip()
    answer = answer.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    answer = answer.replace("\\$", "").replace("{,}", ",")
    answer = _DEGREES.sub("", _SPACING.sub(" ", answer))
    answer = _unwrap_text(answer)
    answer = _TRAILING_WORDS.sub("", answer)
    answer = _TRAILING_JUNK.sub("", answer)
    return re.sub(r"\s+", " ", answer).strip()


def _compact(answer: str) -> str:
    return answer.replace(" ", "")


# --------------------------------------------------------------------------- extraction


def _statement_answer(text: str) -> str | None:
    """The segment after the last final-answer statement that says anything."""
    for match in reversed(list(numeric.ANSWER_STATEMENT.finditer(text))):
        segment = numeric.statement_segment(text[match.end() :]).strip()
        inline_math = _INLINE_MATH_SPAN.findall(segment)
        if inline_math:
            return inline_math[-1].strip()
        if segment:
            return segment
    return None


def extract_latex_strict(text: str) -> str | None:
    """Last ``\\boxed{}`` argument, else the last final-answer statement's segment, else None."""
    boxed = numeric.boxed_contents(text)
    if boxed:
        return boxed[-1].strip()
    return _statement_answer(text)


def extract_latex_flexible(text: str) -> str | None:
    """The strict answer when present, else the last number in the text."""
    strict = extract_latex_strict(text)
    return strict if strict is not None else numeric.extract_flexible(text)


# --------------------------------------------------------------------------- math-verify worker


def _serve() -> None:
    """Worker loop (``python -m study.grading.latex``): one JSON [gold, predicted] per line in,
    one JSON verdict per line out."""
    for line in sys.stdin:
        gold, predicted = json.loads(line)
        sys.stdout.write(json.dumps(numeric.math_verify_verdict(gold, predicted)) + "\n")
        sys.stdout.flush()


class _Worker:
    """One persistent worker process for math-verify calls, replaced after a timeout. A plain
    subprocess (not multiprocessing), so callers' scripts are never re-imported in it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._unavailable = False

    def _start(self) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([_REPO_ROOT, *sys.path]))
        return subprocess.Popen(
            [sys.executable, "-m", "study.grading.latex"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def _ask(self, gold: str, predicted: str, timeout_s: float) -> bool:
        """The worker's verdict; the first call also waits for the worker to start."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps([gold, predicted]) + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError
        line = process.stdout.readline()
        if not line:
            raise OSError("math-verify worker exited")
        return bool(json.loads(line))

    def verify(self, gold: str, predicted: str, timeout_s: float) -> bool:
        with self._lock:
            if self._process is None and not self._unavailable:
                try:
                    self._process = self._start()
                    self._ask("1", "1", _WORKER_START_TIMEOUT_S)
                except (OSError, TimeoutError, ValueError):
                    self.close()
                    self._unavailable = True  # no worker here: run inline, size-bounded only
            if self._process is None:
                return numeric.math_verify_verdict(gold, predicted)
            try:
                return self._ask(gold, predicted, timeout_s)
            except (OSError, TimeoutError, ValueError):
                self.close()  # the next call starts a fresh worker
                return False


_WORKER = _Worker()
atexit.register(_WORKER.close)


def _math_verify_equal(gold: str, predicted: str) -> bool:
    limit = numeric.MATH_VERIFY_MAX_CHARS
    if len(gold) > limit or len(predicted) > limit:
        return False
    return _WORKER.verify(gold, predicted, LATEX_TIMEOUT_S)


# --------------------------------------------------------------------------- latex verdicts


def latex_equivalent(predicted: str | None, gold: str) -> bool:
    """Whether the LaTeX answer ``predicted`` equals ``gold``: normalised string, then value,
    then math-verify (gold first, time-limited). Never raises."""
    if predicted is None:
        return False
    gold_norm, predicted_norm = normalize_latex(gold), normalize_latex(predicted)
    if not predicted_norm:
        return False
    if _compact(gold_norm) == _compact(predicted_norm):
        return True
    gold_value = numeric.plain_value(gold_norm)
    predicted_value = numeric.plain_value(predicted_norm)
    if gold_value is not None and predicted_value is not None:
        return numeric.values_close(predicted_value, gold_value)
    return _math_verify_equal(gold_norm, predicted_norm)


# --------------------------------------------------------------------------- choice

_LETTER = r"\(?\s*([A-Ea-e])\s*\)?"
_BOXED_LETTER = re.compile(rf"^\s*(?:\\text\s*\{{)?{_LETTER}\}}?\s*\.?\s*$")
_STATEMENT_LETTER = re.compile(
    rf"\b(?:final\s+)?answer\b[\s*_]*(?:is\b|:|=)?[\s*:]*(?:option\s+|choice\s+)?"
    rf"\**\$?(?:\\boxed\{{)?{_LETTER}(?![\w'])",
    re.IGNORECASE,
)
_PAREN_LETTER = re.compile(r"\(([A-E])\)")
_ONLY_LETTER = re.compile(r"^\W*([A-Ea-e])\W*$")


def extract_choice_strict(text: str) -> str | None:
    """The last boxed letter, else the last letter of an answer statement; upper case, or None."""
    for boxed in reversed(numeric.boxed_contents(text)):
        match = _BOXED_LETTER.match(boxed)
        if match:
            return match.group(1).upper()
    statements = list(_STATEMENT_LETTER.finditer(text))
    return statements[-1].group(1).upper() if statements else None


def extract_choice_flexible(text: str) -> str | None:
    """The strict letter, else the last parenthesised ``(C)``, else a text that is one letter."""
    strict = extract_choice_strict(text)
    if strict is not None:
        return strict
    parens = _PAREN_LETTER.findall(text)
    if parens:
        return parens[-1]
    only = _ONLY_LETTER.match(text)
    return only.group(1).upper() if only else None


def choice_equivalent(predicted: str | None, gold: str) -> bool:
    """Whether the letter ``predicted`` is the gold letter (``gold`` may be 'c' or '(C)')."""
    if predicted is None:
        return False
    gold_letter = _ONLY_LETTER.match(gold)
    return gold_letter is not None and gold_letter.group(1).upper() == predicted.strip().upper()


# Per kind: (strict extractor, flexible extractor, equivalence), used by ``study.grading.grader``.
KIND_RULES = {
    "latex": (extract_latex_strict, extract_latex_flexible, latex_equivalent),
    "choice": (extract_choice_strict, extract_choice_flexible, choice_equivalent),
}


if __name__ == "__main__":
    _serve()
