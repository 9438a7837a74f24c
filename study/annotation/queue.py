"""Phase 2's work queue: which errors get annotated, their suggestions, and what is left to label.

Used by ``phase2_prepare.py`` (sampling, rows, label safety), ``phase2_annotate.py`` and
``phase2_analyze.py`` (the study's folder), and ``run_all.py --all`` (``annotation_gate``).

Sampling rule (seeded by ``cfg.seed``): problems are ordered once for all budgets, first by how
many of the annotated budgets they are wrong at (most first), then by a seeded shuffle; every
budget takes its first N errors in that order. A problem wrong everywhere is therefore annotated
at every budget, so its error can be traced as the budget grows. The price is that each budget's
sample over-represents persistent errors; the analysis reports how many errors each budget had.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from pathlib import Path

from config import StudyConfig
from study import store
from study.annotation.folders import study_flags, study_folder
from study.annotation.tsv import (
    AnnotationError,
    format_bool,
    has_human_work,
    is_labelled,
    list_tsvs,
    read_table,
    write_table,
)
from study.data import arith_check
from study.errors import ConfigError
from study.grading import numeric
from study.schema import Record

GATE_EXIT_CODE = 3  # run_all --all: 0 ok, 2 user error, 3 waiting for annotation labels
FALLBACK_ERROR_TYPE = "logic"  # auto-annotation of rows with no suggestion: the residual class


def annotation_folder(cfg: StudyConfig) -> Path:
    """The study's annotation folder, with files of earlier layouts moved in (printed)."""
    return study_folder(cfg)


# ---------------------------------------------------------------- phase-1 errors

def resolve_budgets(cfg: StudyConfig) -> list[int]:
    """``annotation.budgets`` (each must have results), or the budgets of ``annotation.samples``
    that have phase-1 results. ResultsError when there is nothing to sample from."""
    results_dir, tag, samples = cfg.paths.results_dir, cfg.model_tag, cfg.annotation.samples
    if not cfg.annotation.budgets and not samples:
        raise ConfigError("annotation.samples is empty: give --budgets, or budgets and counts "
                          "under annotation.samples in the YAML file")
    if cfg.annotation.budgets:
        for budget in cfg.annotation.budgets:
            path = store.phase1_record_path(results_dir, tag, budget)
            if not path.exists():
                raise store.ResultsError(f"{path}: not found; run phase 1 at budget {budget} "
                                         "or drop it from --budgets")
        return sorted(set(cfg.annotation.budgets))
    found = [b for b in sorted(samples) if store.phase1_record_path(results_dir, tag, b).exists()]
    if not found:
        expected = store.phase1_record_path(results_dir, tag, min(samples))
        raise store.ResultsError(f"{expected} (and the other configured budgets): not found; run "
                                 f"python phase1_main.py {cfg.run_flags} first, or pass "
                                 "--budgets")
    return found


def errors_by_budget(results_dir: Path, tag: str, budgets: list[int]) -> dict[int, list[Record]]:
    """Wrong records per budget (first sample of each problem)."""
    out: dict[int, list[Record]] = {}
    for budget in budgets:
        seen: set[str] = set()
        out[budget] = []
        for record in store.read_records(store.phase1_record_path(results_dir, tag, budget)):
            pid = str(record["problem_id"])
            if pid not in seen and not record["correct"]:
                out[budget].append(record)
            seen.add(pid)
    return out


# ---------------------------------------------------------------- sampling

def problem_order(errors: dict[int, list[Record]], seed: int) -> list[str]:
    """All wrong problems: most budgets wrong first, ties broken by a seeded shuffle."""
    wrong_at = Counter(str(r["problem_id"]) for records in errors.values() for r in records)
    ids = sorted(wrong_at)
    random.Random(seed).shuffle(ids)
    rank = {pid: i for i, pid in enumerate(ids)}
    return sorted(ids, key=lambda pid: (-wrong_at[pid], rank[pid]))


def sample_errors(errors: dict[int, list[Record]], quotas: dict[int, int],
                  seed: int) -> dict[int, list[Record]]:
    """The first ``quotas[b]`` errors of each budget in the shared problem order."""
    position = {pid: i for i, pid in enumerate(problem_order(errors, seed))}
    return {b: sorted(records, key=lambda r: position[str(r["problem_id"])])[:quotas[b]]
            for b, records in errors.items()}


def quotas_for(budgets: list[int], cfg: StudyConfig) -> dict[int, int]:
    """Errors to sample per budget: ``annotation.per_budget``, else ``annotation.samples``."""
    samples = cfg.annotation.samples
    # A budget outside `samples` gets the smallest configured count unless --per-budget says.
    default = min(samples.values(), default=None)
    quotas = {b: cfg.annotation.per_budget or samples.get(b, default) for b in budgets}
    bad = {b: q for b, q in quotas.items() if q is None or q <= 0}
    if bad:
        budget, count = next(iter(bad.items()))
        raise ConfigError(f"annotation.samples: budget {budget} gets {count} errors; give a "
                          "positive count there or pass --per-budget")
    return quotas


# ---------------------------------------------------------------- suggestions and rows

def suggest_error_type(record: Record) -> str:
    """Heuristic pre-label, checked in this order; '' when no rule fires.

    incomplete: the budget cut the generation and no final answer can be extracted strictly.
    arithmetic: an explicit step "a op b = c" is false (arith_check, never eval).
    format: the gold number is stated in the text, but the extracted final answer is wrong or
    missing.
    """
    text, gold = record["generated"] or "", str(record["ground_truth"])
    if record["hit_budget"] and numeric.extract_strict(text) is None:
        return "incomplete"
    if arith_check.arithmetic_errors(text):
        return "arithmetic"
    if numeric.states_answer(text, gold):
        return "format"
    return ""


def build_rows(budget: int, records: list[Record]) -> list[dict[str, str]]:
    """The TSV rows of one budget's sampled errors, labels blank."""
    return [{
        "annotation_id": f"b{budget}-{i + 1:03d}",
        "problem_id": str(r["problem_id"]),
        "budget": str(budget),
        "question": str(r["question"]),
        "ground_truth": str(r["ground_truth"]),
        "predicted": "" if r.get("predicted") is None else str(r["predicted"]),
        "tokens_used": str(int(r["tokens_used"])),
        "hit_budget": format_bool(bool(r["hit_budget"])),
        "generated": r["generated"] or "",
        "suggested_error_type": suggest_error_type(r),
    } for i, r in enumerate(records)]


# ---------------------------------------------------------------- label safety

def backup(path: Path) -> Path:
    """Copy ``path`` to ``<name>.<timestamp>.bak`` beside it (never overwriting a backup)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = path.with_name(f"{path.name}.{stamp}.bak"), 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.{stamp}-{n}.bak"), n + 1
    shutil.copy2(path, target)
    return target


def keep_reason(path: Path, force: bool) -> str | None:
    """Why an existing TSV must not be regenerated, or None. Raises AnnotationError if it
    cannot be read and --force was not given (it may hold labels we cannot see)."""
    if force or not path.exists():
        return None
    try:
        rows = read_table(path).rows
    except AnnotationError as exc:
        raise AnnotationError([f"{exc.problems[0]} (existing file unreadable; fix it, or pass "
                               "--force to back it up and regenerate)"]) from exc
    human = sum(has_human_work(row) for row in rows)
    return f"{human} row(s) with human labels" if human else None


# ---------------------------------------------------------------- pending rows and the gate

def pending_labels(folder: Path) -> dict[Path, int]:
    """Unlabelled rows (empty error_type) per TSV of a study's folder. Raises AnnotationError."""
    return {path: sum(not is_labelled(row) for row in read_table(path).rows)
            for path in list_tsvs(folder).values()}


def describe_pending(pending: dict[Path, int]) -> list[str]:
    """One line per TSV that still has unlabelled rows, in the order given (budget order)."""
    return [f"  {path}: {count} rows unlabelled" for path, count in pending.items() if count]


def auto_annotate(folder: Path) -> int:
    """Fill every blank error_type from its suggestion (fallback: FALLBACK_ERROR_TYPE) and mark
    the row ``annotator=auto``; recoverable stays blank (= unknown). Returns rows filled."""
    filled = 0
    for path in list_tsvs(folder).values():
        table = read_table(path)
        blank = [row for row in table.rows if not is_labelled(row)]
        for row in blank:
            row["error_type"] = row["suggested_error_type"].strip().lower() or FALLBACK_ERROR_TYPE
            row["annotator"] = "auto"
        if blank:
            write_table(path, table.rows)
        filled += len(blank)
    return filled


def annotation_gate(cfg: StudyConfig, continue_command: str) -> int:
    """0 when every TSV row of the study is labelled (after auto-annotation when
    ``annotation.auto_annotate``); else print what is left and how to go on, and return
    GATE_EXIT_CODE. ``continue_command`` is the full command that resumes the run. A broken TSV
    raises AnnotationError (a user error)."""
    folder = annotation_folder(cfg)
    if cfg.annotation.auto_annotate:
        filled = auto_annotate(folder)
        print(f"auto-annotate: filled {filled} rows from suggestions (annotator=auto)")
    lines = describe_pending(pending_labels(folder))
    if not lines:
        return 0
    print("\nWaiting for annotations — label these rows, then run the same command again:")
    print("\n".join(lines))
    print(f"  label interactively:  {annotate_command(cfg)}")
    print(f"  then continue:        {continue_command}")
    print("  (or add --auto-annotate to fill labels from the suggestions)")
    return GATE_EXIT_CODE


def annotate_command(cfg: StudyConfig) -> str:
    """The phase2_annotate.py command for this study (--results-dir and --annotations-dir only
    when not the default, so the usual hint stays short)."""
    folder = cfg.paths.annotations_dir
    where = "" if folder == StudyConfig().paths.annotations_dir else f" --annotations-dir {folder}"
    return f"python phase2_annotate.py {study_flags(cfg)}{where}"
