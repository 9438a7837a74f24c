"""The terminal labelling session of ``phase2_annotate.py``: key prompts, row display, saving.

Reads single key presses on a terminal and whole lines otherwise (tests, pipes). Each row is
shown with its explicit "a op b = c" steps highlighted (false ones red, or >>marked<< without
colour) and saved atomically as soon as it is labelled, so quitting loses at most the row on
screen.
"""

from __future__ import annotations

import os
import textwrap
from fractions import Fraction
from typing import TextIO

from study.annotation.tsv import Table, is_labelled, write_table
from study.data import arith_check

TYPE_KEYS = {"a": "arithmetic", "s": "setup", "l": "logic", "i": "incomplete",
             "f": "format", "h": "hallucination"}
RECOVERABLE_KEYS = {"y": "yes", "n": "no", "u": "unknown"}
_RED, _GREEN, _BOLD, _RESET = "\x1b[1;31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


class Quit(Exception):
    """The annotator asked to stop (q, Ctrl-C, Ctrl-D or end of input)."""


class Prompter:
    """Reads answers: single key presses on a terminal, whole lines otherwise (tests, pipes)."""

    def __init__(self, stdin: TextIO, stdout: TextIO):
        self.stdin, self.stdout = stdin, stdout
        self.single_key = isatty(stdin)

    def key(self, prompt: str, allowed: str) -> str:
        """One of ``allowed`` or '' (Enter); re-asks on anything else; raises Quit on q."""
        while True:
            self.stdout.write(prompt)
            self.stdout.flush()
            answer = self._read_key() if self.single_key else self._read_line()[:1].lower()
            self.stdout.write((answer if self.single_key else "") + "\n")
            if answer == "q":
                raise Quit
            if answer == "" or answer in allowed:
                return answer
            self.stdout.write(f"  unknown key {answer!r}; use one of {', '.join(allowed)}\n")

    def line(self, prompt: str) -> str:
        """One line of free text (stripped); raises Quit on a lone q or end of input."""
        self.stdout.write(prompt)
        self.stdout.flush()
        text = self._read_line()
        if not self.single_key:
            self.stdout.write("\n")  # piped input is not echoed; keep the transcript readable
        if text == "q":
            raise Quit
        return text

    def _read_line(self) -> str:
        text = self.stdin.readline()
        if text == "":
            raise Quit  # end of input
        return text.strip()

    def _read_key(self) -> str:
        import termios  # Unix only; single-key mode is used only on a real terminal
        import tty

        fd = self.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd, termios.TCSANOW)  # TCSAFLUSH would drop keys typed ahead
            char = os.read(fd, 1).decode("utf-8", "replace")
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        if char in ("\x04", "\x03"):  # Ctrl-D / Ctrl-C
            raise Quit
        return "" if char in ("\r", "\n") else char.lower()


def isatty(stream: object) -> bool:
    """True for a real terminal (single-key mode, colour); False for pipes and test streams."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------- display

def _number(value: Fraction | None) -> str:
    if value is None:
        return "not computable"
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6g}"


def mark_steps(text: str, colour: bool) -> str:
    """Highlight explicit arithmetic steps: false ones red (or >>..<<), true ones green."""
    out, last = [], 0
    for step in sorted(arith_check.find_arithmetic_steps(text), key=lambda s: s.start):
        if step.start < last:
            continue
        chunk = text[step.start:step.end]
        if step.correct is False:
            chunk = f"{_RED}{chunk}{_RESET}" if colour else f">>{chunk}<<"
        elif step.correct and colour:
            chunk = f"{_GREEN}{chunk}{_RESET}"
        out += [text[last:step.start], chunk]
        last = step.end
    return "".join(out) + text[last:]


def wrap(text: str, width: int, indent: str = "    ") -> str:
    """Each line of ``text`` filled to ``width``, indented; words are never split."""
    lines = text.splitlines() or [""]
    return "\n".join(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False) or indent
                     for line in lines)


def render_row(row: dict[str, str], position: str, colour: bool, width: int) -> str:
    """The screen shown for one row: ids, question, answers, generation, checks, suggestion."""
    bold = (lambda s: f"{_BOLD}{s}{_RESET}") if colour else (lambda s: s)
    wrong = [s for s in arith_check.find_arithmetic_steps(row["generated"]) if s.correct is False]
    checks = [f"    {s.text!r} is false: left side = {_number(s.lhs_value)}" for s in wrong]
    suggestion = row["suggested_error_type"] or "none"
    cut = " (cut by the budget)" if row["hit_budget"].strip().lower() == "true" else ""
    answers = (f"{bold('gold:')} {row['ground_truth']}   {bold('predicted:')} "
               f"{row['predicted'] or '(none)'}   tokens {row['tokens_used']}{cut}")
    parts = [
        "=" * min(width, 78),
        bold(f"{position}  {row['annotation_id']}  problem {row['problem_id']}  "
             f"budget {row['budget']}"),
        bold("question:"), wrap(row["question"], width),
        answers,
        bold("generation:"), wrap(mark_steps(row["generated"], colour), width),
        *([bold("arithmetic check:")] + checks if checks else []),
        f"{bold('suggestion:')} {suggestion}",
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- session

def label_row(prompter: Prompter, row: dict[str, str]) -> bool:
    """Ask for one row's labels; False when skipped. Raises Quit (row left unchanged)."""
    suggestion = row["suggested_error_type"]
    enter = f", Enter={suggestion}" if suggestion else ""
    while True:
        key = prompter.key("type? [a]rith [s]etup [l]ogic [i]ncomplete [f]ormat "
                           f"[h]allucination, k=skip, q=quit{enter}: ", "aslifhk")
        if key or suggestion:
            break
    if key == "k":
        return False
    error_type = TYPE_KEYS[key] if key else suggestion
    recoverable = RECOVERABLE_KEYS[prompter.key("recoverable? [y]es [n]o [u]nknown "
                                                "(Enter=unknown), q=quit: ", "ynu") or "u"]
    location = prompter.line("error location (optional, e.g. 'step 3'): ")
    notes = prompter.line("notes (optional): ")
    row.update(error_type=error_type, recoverable=recoverable, error_location=location,
               notes=notes, annotator="human")
    return True


def annotate(tables: list[Table], prompter: Prompter, colour: bool, width: int) -> int:
    """Walk unlabelled rows, saving after each; returns rows labelled this session."""
    todo = [(t, row) for t in tables for row in t.rows if not is_labelled(row)]
    out = prompter.stdout
    out.write(f"{len(todo)} unlabelled row(s) in {len(tables)} file(s)\n")
    done = 0
    try:
        for index, (table, row) in enumerate(todo, start=1):
            out.write(render_row(row, f"[{index}/{len(todo)}] {table.path.name}", colour, width))
            if label_row(prompter, row):
                write_table(table.path, table.rows)
                done += 1
    except (Quit, KeyboardInterrupt):
        out.write("\nquit; the row on screen was not saved\n")
    return done
