"""Phase 2, step 2: label the sampled errors in the terminal.

    python phase2_annotate.py --model qwen-1.5b [--budgets 128 256]

Walks every row of the study's folder, ``{annotations_dir}/{model}__{dataset}-s{seed}/`` (named
from the phase-1 results in --results-dir), whose error_type is empty, budget by budget,
and shows the question, the gold answer, the prediction and the generation (wrapped; explicit
"a op b = c" steps highlighted, false ones in red on a terminal, marked >>like this<<
otherwise). Keys:

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

import shutil
import sys
from collections.abc import Sequence

from config import StudyConfig
from study.annotation.folders import study_flags
from study.annotation.labelling import Prompter, annotate, isatty
from study.annotation.queue import annotation_folder
from study.annotation.tsv import AnnotationError, is_labelled, read_table, select_tsvs
from study.cli import config_parser, run_command

# Labelling reads only the TSVs, nothing random; the results folder only names the study's
# folder (its phase-1 summary gives the dataset and seed; without one, --dataset and --seed do).
# model.num_layers, forcing.budget_mode and generation.decoding pick the run's files (model_tag)
SHOWN = ["seed", "model.name", "model.num_layers", "data.dataset",
         "forcing.budget_mode", "generation.decoding", "paths.results_dir",
         "paths.annotations_dir", "annotation.budgets"]


def run(cfg: StudyConfig, prompter: Prompter | None = None) -> dict:
    """Label the study's unlabelled rows through ``prompter`` (default: this terminal)."""
    paths = select_tsvs(annotation_folder(cfg), cfg.annotation.budgets, study_flags(cfg))
    try:
        tables = [read_table(p) for p in paths.values()]
    except AnnotationError as exc:
        raise AnnotationError([f"{exc.problems[0]}; fix the file, then run again"]) from exc
    prompter = prompter or Prompter(sys.stdin, sys.stdout)
    colour = isatty(prompter.stdout)
    width = max(40, min(100, shutil.get_terminal_size((100, 24)).columns) - 2)
    done = annotate(tables, prompter, colour, width)
    left = sum(not is_labelled(row) for t in tables for row in t.rows)
    print(f"labelled {done} row(s) this session; {left} still unlabelled")
    if left:
        print(f"resume: python phase2_annotate.py {study_flags(cfg)} --annotations-dir "
              f"{cfg.paths.annotations_dir}")
    else:
        print(f"next: python phase2_analyze.py {study_flags(cfg)}")
    return {"labelled": done, "unlabelled": left, "files": [str(p) for p in paths.values()]}


PARSER = config_parser("phase2_annotate.py", __doc__, show=SHOWN, own="annotation")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PARSER, argv, run)  # a returned summary means exit code 0


if __name__ == "__main__":
    sys.exit(main())
