"""Phase 2, step 1: sample phase-1 errors into one annotation TSV per budget.

    python phase2_prepare.py --model qwen-1.5b [--budgets 128 256] [--per-budget 30]
                             [--force] [--auto-annotate]

Writes ``{annotations_dir}/{model}__{dataset}-s{seed}/annotate_errors_budget{B}.tsv``, one folder
per study (the dataset and seed of the phase-1 results; ``study/annotation/folders.py``). Budgets
are the keys of the config's ``annotation.samples`` that have a phase-1 record file (or
``--budgets``); each takes its configured number of errors (or ``--per-budget``), all of them
when it has fewer. The sampling rule and the suggestions are described in
``study/annotation/queue.py``; each row gets a heuristic ``suggested_error_type``, never a label.

A TSV holding any human label is left untouched; ``--force`` regenerates it after writing a
timestamped backup beside it. ``--auto-annotate`` fills blank labels from the suggestions.
Files of earlier layouts (``annotations/*.tsv``, and ``annotations/{model}/`` when its rows are
this study's) are moved into the study's folder first.
Exit codes: 0 done, 2 user error (nothing written).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from config import StudyConfig
from study.annotation.folders import study_flags
from study.annotation.queue import (
    annotation_folder,
    auto_annotate,
    backup,
    build_rows,
    describe_pending,
    errors_by_budget,
    keep_reason,
    pending_labels,
    quotas_for,
    resolve_budgets,
    sample_errors,
)
from study.annotation.tsv import tsv_path, write_table
from study.cli import config_parser, run_command

# model.num_layers, forcing.budget_mode and generation.decoding pick the run's files (model_tag)
SHOWN = ["seed", "model.name", "model.num_layers",
         "forcing.budget_mode", "generation.decoding", "paths.results_dir",
         "paths.annotations_dir", "annotation"]


def run(cfg: StudyConfig) -> dict:
    """Write the study's TSVs (keeping those with human labels) and report what is left."""
    budgets = resolve_budgets(cfg)
    errors = errors_by_budget(cfg.paths.results_dir, cfg.model_tag, budgets)
    quotas = quotas_for(budgets, cfg)
    folder = annotation_folder(cfg)
    paths = {b: tsv_path(folder, b) for b in budgets}
    # Every check runs before the first TSV is written, so a user error leaves the TSVs as they
    # were (moving flat files into the folder above only renames them).
    kept = {b: why for b in budgets if (why := keep_reason(paths[b], cfg.annotation.force))}
    samples = sample_errors(errors, quotas, cfg.seed)
    for budget in budgets:
        path, rows = paths[budget], build_rows(budget, samples[budget])
        if budget in kept:
            print(f"budget {budget}: kept {path} untouched ({kept[budget]}); "
                  "pass --force to regenerate it (a backup is written first)")
            continue
        if cfg.annotation.force and path.exists():
            print(f"budget {budget}: backed up {path} -> {backup(path)}")
        write_table(path, rows)
        print(_sample_line(budget, len(errors[budget]), quotas[budget], rows, path))
    if cfg.annotation.auto_annotate:
        print(f"auto-annotated {auto_annotate(folder)} row(s) (annotator=auto)")
    pending = pending_labels(folder)
    _print_next(cfg, describe_pending(pending))
    return {"phase": "phase2_prepare", "model": cfg.model_tag, "budgets": budgets,
            "files": {str(b): str(p) for b, p in paths.items()},
            "kept": sorted(kept), "pending": {str(p): n for p, n in pending.items()}}


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


def _print_next(cfg: StudyConfig, pending_lines: list[str]) -> None:
    flags = study_flags(cfg)
    if pending_lines:
        print("rows to label:\n" + "\n".join(pending_lines))
        print(f"next: python phase2_annotate.py {flags} --annotations-dir "
              f"{cfg.paths.annotations_dir}  (or edit the TSVs; see annotations/SCHEMA.md)")
    else:
        print(f"every row is labelled; next: python phase2_analyze.py {flags}")


PARSER = config_parser("phase2_prepare.py", __doc__, show=SHOWN, own="annotation")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PARSER, argv, run)  # a returned summary means exit code 0


if __name__ == "__main__":
    sys.exit(main())
