"""Builders of small phase-1 record files shared by the phase-2 tests (no tests of its own)."""

from __future__ import annotations

import json
from pathlib import Path

from config import StudyConfig
from study.annotation import folders

MODEL = "qwen-1.5b"
DEFAULTS = StudyConfig()
# Questions carry a tab, quotes and a newline so every test also exercises the escaping.
QUESTION = 'Tom has {n} apples\tand "gets" {n} more.\nHow many?'

# budget -> problem_id -> (generated, hit_budget) for the wrong answers; the other problems of
# PROBLEMS are right at that budget. Gold answer of problem pN is 2N.
PROBLEMS = [f"p{i}" for i in range(8)]
WRONG = {
    128: {"p0": ("Step: 0 + 0 = 1. The answer is 1", False),
          "p1": ("Let me think\nabout 1 + 1 and", True),
          "p2": ("So 2 + 2 = 4, we get 4, and then \\n #### 5", False),
          "p3": ("hmm #### 7", False)},
    256: {"p0": ("Step: 0 + 0 = 1. The answer is 1", False),
          "p1": ("1 + 1 = 3. The answer is 3", False),
          "p4": ("no idea #### 9", False)},
    512: {"p0": ("Then 0 + 0 = 5. #### 5", False),
          "p5": ("I think it is #### 11", False)},
}


def gold(pid: str) -> str:
    return str(2 * int(pid[1:]))


def record(pid: str, budget: int, generated: str, correct: bool, hit_budget: bool = False,
           predicted: str | None = None) -> dict:
    return {"problem_id": pid, "question": QUESTION.format(n=int(pid[1:])),
            "ground_truth": gold(pid), "generated": generated, "predicted": predicted,
            "predicted_strict": predicted, "correct": correct, "correct_strict": correct,
            "tokens_used": budget if hit_budget else 20, "budget": budget,
            "hit_budget": hit_budget, "sample": 0}


def write_records(results_dir: Path, budget: int, records: list[dict], model: str = MODEL) -> Path:
    path = Path(results_dir) / f"phase1_main_{model}_budget{budget}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def standard_results(results_dir: Path, wrong: dict | None = None,
                     model: str = MODEL) -> dict[int, Path]:
    """Phase-1 files of ``model`` for budgets 128/256/512 following WRONG (or ``wrong``)."""
    paths = {}
    for budget, errors in (wrong or WRONG).items():
        records = []
        for pid in PROBLEMS:
            if pid in errors:
                text, hit = errors[pid]
                answer = text.split()[-1] if text.split()[-1].isdigit() else None
                records.append(record(pid, budget, text, False, hit, answer))
            else:
                records.append(record(pid, budget, f"{pid} ok #### {gold(pid)}", True,
                                      predicted=gold(pid)))
        paths[budget] = write_records(results_dir, budget, records, model)
    return paths


def dirs(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """(results dir, annotations dir, the CLI flags pointing at them)."""
    results, annotations = tmp_path / "results", tmp_path / "annotations"
    return results, annotations, ["--results-dir", str(results),
                                  "--annotations-dir", str(annotations)]


def study_dir(annotations: Path, model: str = MODEL, dataset: str = DEFAULTS.data.dataset,
              seed: int = DEFAULTS.seed) -> Path:
    """The study's annotation folder: these record files come without a phase-1 summary, so
    the study is named from the config (its defaults unless a test passes others)."""
    return Path(annotations) / folders.study_name(model, dataset, seed)


def tsv(annotations: Path, budget: int, model: str = MODEL) -> Path:
    """Where phase 2 keeps ``model``'s TSV of ``budget``: one folder per study."""
    return study_dir(annotations, model) / f"annotate_errors_budget{budget}.tsv"


def write_phase1_summary(results_dir: Path, dataset: str, seed: int,
                         model: str = MODEL) -> Path:
    """The phase-1 summary's fields that name the study (its dataset and seed)."""
    path = Path(results_dir) / f"phase1_combined_{model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"phase": "phase1", "model": model, "dataset": dataset,
                                "budgets": {}, "provenance": {"seed": seed}}), encoding="utf-8")
    return path
