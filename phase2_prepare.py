"""Phase 2, step 1: sample phase-1 errors into one annotation TSV per budget.

    python phase2_prepare.py --model qwen-1.5b [--budgets 128 256] [--per-budget 30]
                             [--force] [--auto-annotate]

Budgets are the keys of config.ANNOTATION_SAMPLES that have a phase-1 record file (or
``--budgets``); each takes its configured number of errors (or ``--per-budget``), all of them
when it has fewer.

Sampling rule (seeded by ``--seed``): problems are ordered once for all budgets, first by how
many of the annotated budgets they are wrong at (most first), then by a seeded shuffle; every
budget takes its first N errors in that order. A problem wrong everywhere is therefore
annotated at every budget, so its error can be traced as the budget grows. The price is that
each budget's sample over-represents persistent errors; analyze reports how many errors each
budget had in all.

Each row gets a heuristic ``suggested_error_type`` (see ``suggest_error_type``), never a label.
A TSV holding any human label is left untouched; ``--force`` regenerates it after writing a
timestamped backup beside it. ``--auto-annotate`` fills blank labels from the suggestions.
Exit codes: 0 done, 2 user error (nothing written). ``GATE_EXIT_CODE`` (3) is what
``run_all.py --all`` returns while labels are missing.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from study import arith_check
from study import grading
from study import store
from study.annotations import (
    AnnotationError,
    format_bool,
    has_human_work,
    is_labelled,
    list_tsvs,
    read_table,
    tsv_path,
    write_table,
)
from study.cli import Parser, fail, positive_int
from config import ANNOTATION_SAMPLES, RunConfig, model_tag

GATE_EXIT_CODE = 3  # run_all --all: 0 ok, 2 user error, 3 waiting for annotation labels
FALLBACK_ERROR_TYPE = "logic"  # auto-annotation of rows with no suggestion: the residual class
_RECORD_KEYS = ("problem_id", "question", "ground_truth", "generated", "correct",
                "tokens_used", "hit_budget")


# ---------------------------------------------------------------- phase-1 records

def load_records(path: Path) -> list[dict]:
    """A phase-1 record file, checked for the fields phase 2 uses (ResultsError if unusable)."""
    records = store.read_json(path)
    if not isinstance(records, list):
        raise store.ResultsError(f"{path}: expected a JSON list of records; re-run phase 1")
    for index, record in enumerate(records):
        missing = [k for k in _RECORD_KEYS if not isinstance(record, dict) or k not in record]
        if missing:
            raise store.ResultsError(f"{path}: record {index} lacks {', '.join(missing)}; "
                                     "re-run phase 1")
    return records


def resolve_budgets(results_dir: Path, tag: str, requested: list[int] | None) -> list[int]:
    """Requested budgets (each must have results) or the configured ones that have results."""
    if requested:
        for budget in requested:
            path = store.phase1_record_path(results_dir, tag, budget)
            if not path.exists():
                raise store.ResultsError(f"{path}: not found; run phase 1 at budget {budget} "
                                         "or drop it from --budgets")
        return sorted(set(requested))
    found = [b for b in sorted(ANNOTATION_SAMPLES)
             if store.phase1_record_path(results_dir, tag, b).exists()]
    if not found:
        expected = store.phase1_record_path(results_dir, tag, min(ANNOTATION_SAMPLES))
        raise store.ResultsError(f"{expected} (and the other configured budgets): not found; run "
                                 f"phase 1 for --model {tag} first, or pass --budgets")
    return found


def errors_by_budget(results_dir: Path, tag: str, budgets: list[int]) -> dict[int, list[dict]]:
    """Wrong records per budget (first sample of each problem)."""
    out: dict[int, list[dict]] = {}
    for budget in budgets:
        seen: set[str] = set()
        out[budget] = []
        for record in load_records(store.phase1_record_path(results_dir, tag, budget)):
            pid = str(record["problem_id"])
            if pid not in seen and not record["correct"]:
                out[budget].append(record)
            seen.add(pid)
    return out


# ---------------------------------------------------------------- sampling

def problem_order(errors: dict[int, list[dict]], seed: int) -> list[str]:
    """All wrong problems: most budgets wrong first, ties broken by a seeded shuffle."""
    wrong_at = Counter(str(r["problem_id"]) for records in errors.values() for r in records)
    ids = sorted(wrong_at)
    random.Random(seed).shuffle(ids)
    rank = {pid: i for i, pid in enumerate(ids)}
    return sorted(ids, key=lambda pid: (-wrong_at[pid], rank[pid]))


def sample_errors(errors: dict[int, list[dict]], quotas: dict[int, int],
                  seed: int) -> dict[int, list[dict]]:
    """The first ``quotas[b]`` errors of each budget in the shared problem order."""
    position = {pid: i for i, pid in enumerate(problem_order(errors, seed))}
    return {b: sorted(records, key=lambda r: position[str(r["problem_id"])])[:quotas[b]]
            for b, records in errors.items()}


def quotas_for(budgets: list[int], per_budget: int | None) -> dict[int, int]:
    # A budget outside the config gets the smallest configured count unless --per-budget says.
    default = min(ANNOTATION_SAMPLES.values())
    return {b: per_budget or ANNOTATION_SAMPLES.get(b, default) for b in budgets}


# ---------------------------------------------------------------- suggestions

def suggest_error_type(record: dict) -> str:
    """Heuristic pre-label, checked in this order; '' when no rule fires.

    incomplete: the budget cut the generation and no final answer can be extracted strictly.
    arithmetic: an explicit step "a op b = c" is false (arith_check, never eval).
    format: the gold number is stated in the text, but the extracted final answer is wrong or
    missing.
    """
    text, gold = record["generated"] or "", str(record["ground_truth"])
    if record["hit_budget"] and grading.extract_strict(text) is None:
        return "incomplete"
    if arith_check.arithmetic_errors(text):
        return "arithmetic"
    if grading.states_answer(text, gold):
        return "format"
    return ""


def build_rows(budget: int, records: list[dict]) -> list[dict[str, str]]:
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


# ---------------------------------------------------------------- gate helpers (run_all)

def pending_labels(annotations_dir: Path) -> dict[Path, int]:
    """Unlabelled rows (empty error_type) per annotation TSV. Raises AnnotationError."""
    return {path: sum(not is_labelled(row) for row in read_table(path).rows)
            for path in list_tsvs(annotations_dir).values()}


def describe_pending(pending: dict[Path, int]) -> list[str]:
    """One line per TSV that still has unlabelled rows, in the order given (budget order)."""
    return [f"  {path}: {count} rows unlabelled" for path, count in pending.items() if count]


def auto_annotate(annotations_dir: Path) -> int:
    """Fill every blank error_type from its suggestion (fallback: FALLBACK_ERROR_TYPE) and mark
    the row ``annotator=auto``; recoverable stays blank (= unknown). Returns rows filled."""
    filled = 0
    for path in list_tsvs(annotations_dir).values():
        table = read_table(path)
        blank = [row for row in table.rows if not is_labelled(row)]
        for row in blank:
            row["error_type"] = row["suggested_error_type"].strip().lower() or FALLBACK_ERROR_TYPE
            row["annotator"] = "auto"
        if blank:
            write_table(path, table.rows)
        filled += len(blank)
    return filled


# ---------------------------------------------------------------- writing

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
    rows = read_table(path).rows
    human = sum(has_human_work(row) for row in rows)
    return f"{human} row(s) with human labels" if human else None


def parse_args(argv: list[str] | None):
    defaults = RunConfig()
    parser = Parser(prog="phase2_prepare.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=defaults.model, help="default: %(default)s")
    parser.add_argument("--results-dir", type=Path, default=defaults.results_dir)
    parser.add_argument("--annotations-dir", type=Path, default=defaults.annotations_dir)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="default: %(default)s")
    parser.add_argument("--budgets", type=positive_int, nargs="+", default=None,
                        help="budgets to annotate (default: config ANNOTATION_SAMPLES keys "
                        "that have phase-1 results)")
    parser.add_argument("--per-budget", type=positive_int, default=None,
                        help="errors per budget (default: config ANNOTATION_SAMPLES)")
    parser.add_argument("--force", action="store_true",
                        help="regenerate TSVs that hold labels (a timestamped backup is kept)")
    parser.add_argument("--auto-annotate", action="store_true",
                        help="fill blank labels from the suggestions (annotator=auto; demos/CI)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = model_tag(args.model)
    try:
        budgets = resolve_budgets(args.results_dir, tag, args.budgets)
        errors = errors_by_budget(args.results_dir, tag, budgets)
        paths = {b: tsv_path(args.annotations_dir, b) for b in budgets}
        kept = {b: why for b in budgets if (why := keep_reason(paths[b], args.force))}
    except store.ResultsError as exc:
        return fail(str(exc))
    except AnnotationError as exc:
        return fail(f"{exc.problems[0]} (existing file unreadable; fix it, or pass --force to "
                    "back it up and regenerate)")
    quotas = quotas_for(budgets, args.per_budget)
    samples = sample_errors(errors, quotas, args.seed)
    for budget in budgets:
        path, rows = paths[budget], build_rows(budget, samples[budget])
        if budget in kept:
            print(f"budget {budget}: kept {path} untouched ({kept[budget]}); "
                  "pass --force to regenerate it (a backup is written first)")
            continue
        if args.force and path.exists():
            print(f"budget {budget}: backed up {path} -> {backup(path)}")
        write_table(path, rows)
        print(_sample_line(budget, len(errors[budget]), quotas[budget], rows, path))
    if args.auto_annotate:
        print(f"auto-annotated {auto_annotate(args.annotations_dir)} row(s) (annotator=auto)")
    return _report_next(args.annotations_dir, args.model)


def _sample_line(budget: int, n_errors: int, quota: int, rows: list[dict], path: Path) -> str:
    if n_errors == 0:
        taken = "no errors at this budget (empty file)"
    elif n_errors >= quota:
        taken = f"{len(rows)} of {n_errors} errors"
    else:
        taken = f"all {n_errors} errors (fewer than the {quota} requested)"
    hints = Counter(r["suggested_error_type"] or "none" for r in rows)
    listed = ", ".join(f"{k} {v}" for k, v in sorted(hints.items()))
    return f"budget {budget}: {taken} -> {path} (suggested: {listed or '-'})"


def _report_next(annotations_dir: Path, model: str) -> int:
    try:
        pending = pending_labels(annotations_dir)
    except AnnotationError as exc:
        return fail(exc.problems[0])
    lines = describe_pending(pending)
    if lines:
        print("rows to label:\n" + "\n".join(lines))
        print(f"next: python phase2_annotate.py --model {model} --annotations-dir "
              f"{annotations_dir}  (or edit the TSVs; see annotations/SCHEMA.md)")
    else:
        print(f"every row is labelled; next: python phase2_analyze.py --model {model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
