"""The phase-2 annotation TSV: schema, tolerant reading, strict label checks, atomic writing.

Shared by ``phase2_prepare.py`` (writes the files), ``phase2_annotate.py`` (edits labels) and
``phase2_analyze.py`` (validates and aggregates). Not a command; the schema is documented for
annotators in ``annotations/SCHEMA.md``.

One folder per study, one file per budget:
``annotations/{model}__{dataset}-s{seed}/annotate_errors_budget{B}.tsv``, one row per sampled
error (the folder, and the files of earlier layouts moved into it: ``study.annotation.folders``).

Free-text columns escape backslash, newline, tab and CR as ``\\\\ \\n \\t \\r`` so every row
stays on one physical line and the text round-trips exactly.

Reading tolerates what spreadsheets do to a file: a UTF-8 BOM or UTF-16 ("Unicode text"), CRLF
line ends, quoted cells, reordered columns, dropped trailing empty cells, blank lines, and case
and stray spaces in labels. Everything else (missing or unknown columns, bad labels, duplicate
ids, empty required fields) is reported as ``file:line: column: problem``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from study.errors import UserError
from study.store import atomic_write_text

ERROR_TYPES: tuple[str, ...] = (
    "arithmetic", "setup", "logic", "incomplete", "format", "hallucination",
)
RECOVERABLE: tuple[str, ...] = ("yes", "no", "unknown")
ANNOTATORS: tuple[str, ...] = ("human", "auto")

# Written by phase2_prepare from the phase-1 record; never edited by the annotator.
RECORD_COLUMNS: tuple[str, ...] = (
    "annotation_id", "problem_id", "budget", "question", "ground_truth", "predicted",
    "tokens_used", "hit_budget", "generated", "suggested_error_type",
)
# Filled by the annotator (a person, phase2_annotate.py, or --auto-annotate).
LABEL_COLUMNS: tuple[str, ...] = (
    "error_type", "error_location", "recoverable", "notes", "annotator",
)
COLUMNS: tuple[str, ...] = RECORD_COLUMNS + LABEL_COLUMNS
# Free text that may hold newlines or tabs; escaped so a record is one line.
ESCAPED_COLUMNS = frozenset(
    {"question", "ground_truth", "predicted", "generated", "error_location", "notes"}
)
REQUIRED_COLUMNS = ("annotation_id", "problem_id", "budget", "question", "ground_truth")

_TSV_NAME = re.compile(r"annotate_errors_budget(\d+)\.tsv")
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE_PAIR = re.compile(r"\\(.)", re.DOTALL)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class AnnotationError(UserError):
    """An annotation file cannot be used; ``problems`` lists ``file:line: column: problem``.

    The message (one line, so a command ends on one line) is ``message``, or else the first
    problem plus how many more; callers that can show a list print ``problems`` themselves.
    """

    def __init__(self, problems: list[str], message: str | None = None):
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        first = problems[0] if problems else "unusable annotation file"
        super().__init__(message or f"{first}{more}")
        self.problems = problems


@dataclass
class Table:
    """One TSV: its rows as column -> text (unescaped) and the line each row starts on."""

    path: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def budget(self) -> int | None:
        return budget_of(self.path)

    def where(self, index: int) -> str:
        return f"{self.path}:{self.lines[index]}"


# ---------------------------------------------------------------- names

def tsv_path(folder: Path, budget: int) -> Path:
    """The TSV of ``budget`` in a study's folder (``study.annotation.folders``)."""
    return Path(folder) / f"annotate_errors_budget{budget}.tsv"


def budget_of(path: Path) -> int | None:
    match = _TSV_NAME.fullmatch(Path(path).name)
    return int(match.group(1)) if match else None


def list_tsvs(folder: Path) -> dict[int, Path]:
    """Annotation files in the folder by budget, ascending (backups ``*.bak`` do not match)."""
    found = {budget_of(p): p for p in Path(folder).glob("annotate_errors_budget*.tsv")}
    return {b: found[b] for b in sorted(k for k in found if k is not None)}


def select_tsvs(folder: Path, budgets: Sequence[int] | None, run_flags: str) -> dict[int, Path]:
    """The TSVs of a study's folder to use: all of them, or those of ``budgets``
    (AnnotationError if absent; the hint repeats ``run_flags``, ``folders.study_flags``)."""
    paths = list_tsvs(folder)
    if budgets:
        missing = [b for b in budgets if b not in paths]
        if missing:
            raise AnnotationError([
                f"--budgets {missing[0]}: no annotate_errors_budget{missing[0]}.tsv in "
                f"{folder}; run phase2_prepare.py with that budget"])
        paths = {b: paths[b] for b in sorted(set(budgets))}
    if not paths:
        raise AnnotationError([f"{folder}: no annotate_errors_budget*.tsv; run "
                               f"python phase2_prepare.py {run_flags} first"])
    return paths


# ---------------------------------------------------------------- escaping

def escape_text(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def unescape_text(text: str) -> str:
    # Unknown pairs such as "\x" stay as typed, so a hand-written backslash survives.
    return _ESCAPE_PAIR.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(0)), text)


def format_bool(value: bool) -> str:
    return "true" if value else "false"


def parse_bool(text: str) -> bool | None:
    value = text.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def normalize_label(text: str) -> str:
    return text.strip().lower()


# ---------------------------------------------------------------- write

def render_table(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        cells = [str(row.get(col, "") or "") for col in COLUMNS]
        writer.writerow([escape_text(c) if col in ESCAPED_COLUMNS else c
                         for col, c in zip(COLUMNS, cells, strict=True)])
    return buffer.getvalue()


def write_table(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows in canonical column order, atomically (a crash leaves the old file)."""
    atomic_write_text(Path(path), render_table(rows))


# ---------------------------------------------------------------- read

def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")  # Excel's "Unicode text" export
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = (f"{path}: not UTF-8 text (bad byte at offset {exc.start}); "
                   "save it as UTF-8 tab-separated text")
        raise AnnotationError([message]) from exc


def _records(text: str) -> list[tuple[int, list[str]]]:
    """(start line, cells) per CSV record; quoted cells may span lines, so track the start."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    out, start = [], 1
    for cells in reader:
        out.append((start, cells))
        start = reader.line_num + 1
    return out


def _header(path: Path, cells: list[str], line: int) -> list[str]:
    names = [normalize_label(c).lstrip("\ufeff") for c in cells]
    problems = [f"{path}:{line}: {n}: column appears twice" for i, n in enumerate(names)
                if n and n in names[:i]]
    problems += [f"{path}:{line}: {n}: unknown column (allowed: {', '.join(COLUMNS)})"
                 for n in names if n and n not in COLUMNS]
    problems += [f"{path}:{line}: {c}: column missing; add it (it may be left empty)"
                 for c in COLUMNS if c not in names]
    if problems:
        raise AnnotationError(problems)
    return names


def read_table(path: Path) -> Table:
    """Parse one TSV into a Table. Raises AnnotationError on structural problems."""
    path = Path(path)
    if not path.exists():
        raise AnnotationError([f"{path}: not found; run phase2_prepare.py first"])
    records = [(line, cells) for line, cells in _records(_decode(path))
               if any(c.strip() for c in cells)]  # blank lines carry nothing
    if not records:
        raise AnnotationError([f"{path}:1: header: file is empty; re-run phase2_prepare.py"])
    header_line, header_cells = records[0]
    names = _header(path, header_cells, header_line)
    table, problems = Table(path), []
    for line, cells in records[1:]:
        extra = [c for c in cells[len(names):] if c.strip()]
        unnamed = [c for n, c in zip(names, cells, strict=False) if not n and c.strip()]
        if extra or unnamed:
            named = sum(1 for n in names if n)
            problems.append(f"{path}:{line}: row: {len(cells)} cells but the header names "
                            f"{named}; a stray tab? quote the cell or remove it")
            continue
        row = dict.fromkeys(COLUMNS, "")
        for name, cell in zip(names, cells, strict=False):  # short rows: trailing cells empty
            if name:
                row[name] = unescape_text(cell) if name in ESCAPED_COLUMNS else cell
        table.rows.append(row)
        table.lines.append(line)
    if problems:
        raise AnnotationError(problems)
    return table


# ---------------------------------------------------------------- validate

def check_table(table: Table, *, require_labels: bool) -> list[str]:
    """Normalise labels in place and return every problem as ``file:line: column: problem``.

    ``require_labels`` makes an empty error_type a problem (analysis time). A blank annotator
    on a labelled row means a person typed the label (spreadsheet), so it becomes ``human``.
    """
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(table.rows):
        where = table.where(index)
        for column in ("annotation_id", "problem_id", "budget", "tokens_used", "hit_budget"):
            row[column] = row[column].strip()  # ids and numbers: stray spaces are not content
        for column in ("suggested_error_type", "error_type", "recoverable", "annotator"):
            row[column] = normalize_label(row[column])
        if row["error_type"] and not row["annotator"]:
            row["annotator"] = "human"
        problems += [f"{where}: {msg}" for msg in _row_problems(row, table.budget, require_labels)]
        key = row["annotation_id"].strip()
        if key in seen:
            problems.append(f"{where}: annotation_id: duplicate id {key!r} "
                            f"(first on line {seen[key]}); ids must be unique")
        seen.setdefault(key, table.lines[index])
    return problems


def _row_problems(row: dict[str, str], budget: int | None, require_labels: bool) -> list[str]:
    out = [f"{c}: empty; this column is required" for c in REQUIRED_COLUMNS if not row[c].strip()]
    if row["budget"].strip() and row["budget"].strip() != str(budget):
        out.append(f"budget: {row['budget']!r} but the file is for budget {budget}")
    if not row["tokens_used"].strip().isdigit():
        out.append(f"tokens_used: {row['tokens_used']!r} is not a whole number")
    if parse_bool(row["hit_budget"]) is None:
        out.append(f"hit_budget: {row['hit_budget']!r} is not true/false")
    labels = (("suggested_error_type", ERROR_TYPES), ("error_type", ERROR_TYPES),
              ("recoverable", RECOVERABLE), ("annotator", ANNOTATORS))
    for column, allowed in labels:
        if row[column] and row[column] not in allowed:
            out.append(f"{column}: unknown label {row[column]!r} (allowed: {', '.join(allowed)})")
    if require_labels and not row["error_type"]:
        out.append("error_type: empty; label it (python phase2_annotate.py) or use "
                   "--auto-annotate")
    if not row["error_type"] and (row["recoverable"] or row["annotator"]):
        out.append("error_type: empty while recoverable/annotator are set; add the error type")
    return out


def is_labelled(row: dict[str, str]) -> bool:
    return bool(row["error_type"].strip())


def has_human_work(row: dict[str, str]) -> bool:
    """True when a person wrote anything into the row.

    Auto-annotation only ever fills error_type (and annotator), so a location or note is always
    human, and so is a label on a row not marked ``auto``.
    """
    if row["error_location"].strip() or row["notes"].strip():
        return True
    labelled = row["error_type"].strip() or row["recoverable"].strip()
    return bool(labelled) and normalize_label(row["annotator"]) != "auto"
