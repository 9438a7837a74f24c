"""Phase 2, step 2: label the sampled errors in the terminal.

    python phase2_annotate.py --model qwen-1.5b [--budgets 128 256]

Walks every row whose error_type is empty, budget by budget, and shows the question, the gold
answer, the prediction and the generation (wrapped; explicit "a op b = c" steps highlighted,
false ones in red on a terminal, marked >>like this<< otherwise). Keys:

    error type   a arithmetic  s setup  l logic  i incomplete  f format  h hallucination
                 Enter = take the suggestion (when there is one), k = skip, q = quit
    recoverable  y yes  n no  u unknown (Enter = unknown)
    then an optional error location and optional notes (one line each; a lone q quits)

On a terminal the keys act at once; piped input is read a line at a time (first letter).
The TSV is saved atomically after every labelled row (annotator=human), so quitting at any
prompt, Ctrl-C or Ctrl-D loses at most the row on screen; running again resumes. Exit codes:
0 done or quit, 2 user error (no TSVs, unreadable TSV).
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

from study import arith_check
from study.annotations import (
    AnnotationError,
    Table,
    is_labelled,
    read_table,
    select_tsvs,
    write_table,
)
from study.cli import Parser, fail, positive_int
from config import RunConfig

TYPE_KEYS = {"a": "arithmetic", "s": "setup", "l": "logic", "i": "incomplete",
             "f": "format", "h": "hallucination"}
RECOVERABLE_KEYS = {"y": "yes", "n": "no", "u": "unknown"}
_RED, _GREEN, _BOLD, _RESET = "\x1b[1;31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


class Quit(Exception):
    """The annotator asked to stop (q, Ctrl-C, Ctrl-D or end of input)."""


class Prompter:
    """Reads answers: single key presses on a terminal, whole lines otherwise (tests, pipes)."""

    def __init__(self, stdin, stdout):
        self.stdin, self.stdout = stdin, stdout
        self.single_key = _isatty(stdin)

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


def _isatty(stream) -> bool:
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
    lines = text.splitlines() or [""]
    return "\n".join(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False) or indent
                     for line in lines)


def render_row(row: dict[str, str], position: str, colour: bool, width: int) -> str:
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


def parse_args(argv: list[str] | None):
    defaults = RunConfig()
    parser = Parser(prog="phase2_annotate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=defaults.model,
                        help="shown in the hints only; TSVs are per annotations folder")
    parser.add_argument("--results-dir", type=Path, default=defaults.results_dir,
                        help="unused; accepted so all phase-2 scripts share flags")
    parser.add_argument("--annotations-dir", type=Path, default=defaults.annotations_dir)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="unused (see above)")
    parser.add_argument("--budgets", type=positive_int, nargs="+", default=None,
                        help="only these budgets' TSVs (default: all in the folder)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        paths = select_tsvs(args.annotations_dir, args.budgets, args.model)
    except AnnotationError as exc:
        return fail(exc.problems[0])
    try:
        tables = [read_table(p) for p in paths.values()]
    except AnnotationError as exc:
        return fail(f"{exc.problems[0]}; fix the file, then run again")
    colour = _isatty(sys.stdout)
    width = max(40, min(100, shutil.get_terminal_size((100, 24)).columns) - 2)
    done = annotate(tables, Prompter(sys.stdin, sys.stdout), colour, width)
    left = sum(not is_labelled(row) for t in tables for row in t.rows)
    print(f"labelled {done} row(s) this session; {left} still unlabelled")
    if left:
        print(f"resume: python phase2_annotate.py --model {args.model} --annotations-dir "
              f"{args.annotations_dir}")
    else:
        print(f"next: python phase2_analyze.py --model {args.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
