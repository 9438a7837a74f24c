"""Problems and the files they are read from (the registry of datasets is ``study.data.datasets``).

A ``Problem`` has a stable ``problem_id``, the gold answer (normalised for its answer kind) and
the user prompt. ``subject`` and ``level`` are kept where a dataset has them (MATH-500), for
analyses that split by difficulty; they are not part of the record files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from study.errors import DatasetError  # also re-exported: callers catch problems.DatasetError
from study.grading.numeric import parse_gold

LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Problem:
    problem_id: str
    question: str  # the question as the dataset states it
    answer: str  # normalised gold answer
    prompt: str  # the user message sent to the model
    answer_kind: str = "numeric"  # numeric, latex or choice: which grader reads the answer
    subject: str | None = None
    level: int | None = None


def gold_answer(answer: str, kind: str) -> str:
    """The gold answer of a dataset field: numbers normalised (GSM8K '#### N' parsed), LaTeX
    stripped, choices as the bare upper-case letter ('(b)' -> 'B')."""
    if kind == "numeric":
        return parse_gold(answer)
    if kind == "choice":
        return answer.strip().strip("()").strip().upper()
    return answer.strip()


def is_local_dataset(name: str) -> bool:
    """Whether ``--dataset`` names a local file (by its suffix) rather than a known set."""
    return Path(name).suffix.lower() in LOCAL_SUFFIXES


def read_local_rows(path: Path, fields: tuple[str, ...] = ("question", "answer")) -> list[dict]:
    """Rows with ``fields`` from a .jsonl/.json/.csv/.parquet file."""
    suffix = path.suffix.lower()
    lines: list[int] = []  # JSONL: the file line of each row, for messages (blank lines skipped)
    try:
        if suffix == ".jsonl":
            rows, lines = _jsonl_rows(path)
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data if isinstance(data, list) else data.get("data", data.get("rows", []))
        elif suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
        else:
            import pandas as pd

            rows = pd.read_parquet(path).to_dict("records")
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or any(f not in row for f in fields):
            needs = " and ".join(f"'{f}'" for f in fields)
            where = f"{path}:{lines[index]}" if lines else f"{path}: row {index + 1}"
            raise DatasetError(f"{where}: needs {needs} fields")
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def _jsonl_rows(path: Path) -> tuple[list, list[int]]:
    """The rows of a JSONL file and the line each is on. A row that is not JSON is named by its
    line in the file: json's own position ("line 1 column 14") is inside the row only."""
    rows, lines = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: cannot read this row as JSON ({exc.msg} at "
                               f"column {exc.colno})") from exc
        lines.append(number)
    return rows, lines
