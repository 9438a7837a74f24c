"""Phase 2, step 3: validate the labelled TSVs and aggregate the error taxonomy.

    python phase2_analyze.py --model qwen-1.5b [--budgets 128 256]

Every annotation TSV of the study, ``{annotations_dir}/{model}__{dataset}-s{seed}/`` (or those of
``--budgets``), is validated
strictly against the schema (annotations/SCHEMA.md) and against the phase-1 records it was
sampled from; any problem is printed as ``file:line: column: problem`` and the exit code is 2
with nothing written. The aggregates are described in ``study/annotation/error_analysis.py``. Writes
``results/phase2_error_analysis_{model}.json`` and prints the tables. Exit codes: 0 written,
2 user error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from config import StudyConfig
from study import store
from study.annotation.error_analysis import analyse, load_validated, report
from study.annotation.folders import study_flags
from study.annotation.queue import annotation_folder
from study.annotation.tsv import AnnotationError, select_tsvs
from study.cli import config_parser, run_command

# --seed is only recorded in the provenance: nothing here is random.
# model.num_layers, forcing.budget_mode and generation.decoding pick the run's files (model_tag)
SHOWN = ["seed", "model.name", "model.num_layers",
         "forcing.budget_mode", "generation.decoding", "paths.results_dir",
         "paths.annotations_dir", "annotation.budgets"]
_MAX_SHOWN = 30  # problems printed before "... and N more"


def run(cfg: StudyConfig) -> dict:
    """Validate the study's TSVs, write the analysis file, print its tables; the analysis."""
    started = time.perf_counter()
    tag, results_dir = cfg.model_tag, cfg.paths.results_dir
    paths = select_tsvs(annotation_folder(cfg), cfg.annotation.budgets, study_flags(cfg))
    rows, records, problems = load_validated(paths, results_dir, tag)
    if problems:
        more = len(problems) - _MAX_SHOWN
        print("\n".join(problems[:_MAX_SHOWN]) + (f"\n... and {more} more" if more > 0 else ""),
              file=sys.stderr)
        raise AnnotationError(problems, f"{len(problems)} problem(s) in the annotations; "
                              "nothing written. Fix them (allowed values: annotations/SCHEMA.md) "
                              "and run again")
    result = {"phase": "phase2", "model": tag, **analyse(rows, records)}
    result["files"] = {str(b): str(p) for b, p in paths.items()}
    sources = [store.phase1_record_path(results_dir, tag, b) for b in paths]
    result["provenance"] = store.provenance(cfg.to_dict(), seed=cfg.seed,
                                            wall_time_s=time.perf_counter() - started,
                                            record_files=[*sources, *paths.values()])
    out_path = store.phase2_analysis_path(results_dir, tag)
    store.write_json(out_path, result)
    print(report(result))
    print(f"wrote {out_path}")
    return result


PARSER = config_parser("phase2_analyze.py", __doc__, show=SHOWN, own="annotation")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PARSER, argv, run)  # a returned summary means exit code 0


if __name__ == "__main__":
    sys.exit(main())
