"""Where a study's annotation TSVs live, and how files of earlier layouts get there.

One folder per study: ``{annotations_dir}/{model tag}__{dataset}-s{seed}/``, e.g.
``annotations/smollm2-135m__arith-s1234/``. Why this key and not the rollout fingerprint: the
labels are sampled from one study's phase-1 records, and what sets a study's records apart from
another's of the same model is the data they were made from (the dataset, and the seed, which
draws generated sets and the sample of errors to annotate). That name is readable and stays put
when a study grows (more budgets, more problems, a resumed run), where a fingerprint changes with
each and would strand the labels. Two runs that share model, dataset and seed (the same study
into two results folders) share a folder; labels that do not fit a run's records are caught by
``phase2_analyze.py``'s check against them, row by row.

The dataset and seed are read from the phase-1 summary in the results folder (what the records
were really made from, whatever the phase-2 command's flags say); without one (no phase 1 yet),
from the config.

Earlier layouts are still read: files directly in ``{annotations_dir}`` (the flat layout) name
no model and are taken to be this run's, as before; a folder of the model alone
(``{annotations_dir}/{model tag}/``, one folder per model) is moved in only when its rows are
this study's (every row's problem and question is in this study's phase-1 records), so a run on
another dataset never takes over another study's labels. A move never replaces a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from config import StudyConfig
from study import store
from study.annotation.tsv import AnnotationError, list_tsvs, read_table
from study.data.datasets import REGISTRY

_MOVABLE = re.compile(r"annotate_errors_budget\d+\.tsv(\..+\.bak)?")  # a TSV or its backups
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_said: set[str] = set()  # notes already printed by this process (the phases of run_all share it)


def study_of(cfg: StudyConfig) -> tuple[str, int]:
    """(dataset, seed) of the study whose records ``cfg`` points at: the phase-1 summary's when
    there is one, else the config's."""
    path = store.phase1_combined_path(cfg.paths.results_dir, cfg.model_tag)
    if path.exists():
        summary = store.read_json(path)
        seed = summary.get("provenance", {}).get("seed")
        if summary.get("dataset") and seed is not None:
            return str(summary["dataset"]), int(seed)
    return cfg.data.dataset, cfg.seed


def study_name(tag: str, dataset: str, seed: int) -> str:
    """The folder name of a study: ``{tag}__{dataset}-s{seed}`` (a local file by its stem)."""
    data = dataset if dataset in REGISTRY else Path(dataset).stem
    return f"{tag}__{_UNSAFE.sub('-', data).strip('-')}-s{seed}"


def study_folder(cfg: StudyConfig, report: Callable[[str], None] = print) -> Path:
    """The study's annotation folder, after moving in files of the earlier layouts (reported)."""
    root = Path(cfg.paths.annotations_dir)
    folder = root / study_name(cfg.model_tag, *study_of(cfg))
    flat = [p for p in sorted(root.glob("annotate_errors_budget*"))
            if _MOVABLE.fullmatch(p.name) and p.is_file()]
    if flat:
        _move(flat, folder, root)
        report(f"annotations: moved {len(flat)} file(s) from {root} into {folder}: files now "
               f"live in one folder per study, and files in the old flat place name no model, "
               f"so they were taken to be --model {cfg.model.name}'s (this run); if they are "
               f"another study's, move them to {root}/<its model>__<dataset>-s<seed>/")
        for old in flat:
            report(f"  {old} -> {folder / old.name}")
    per_model = root / cfg.model_tag
    if per_model.is_dir() and list_tsvs(per_model):
        _adopt(per_model, folder, cfg, report)
    return folder


def _adopt(old: Path, folder: Path, cfg: StudyConfig, report: Callable[[str], None]) -> None:
    """Move a per-model folder's files into the study's folder when its rows are this study's;
    else leave it, saying so once."""
    if _rows_match(old, cfg.paths.results_dir, cfg.model_tag):
        files = [p for p in sorted(old.iterdir()) if _MOVABLE.fullmatch(p.name) and p.is_file()]
        _move(files, folder, old)
        if not any(old.iterdir()):
            old.rmdir()
        report(f"annotations: moved {len(files)} file(s) from {old} (one folder per model, from "
               f"earlier versions) into {folder} (one per study): their rows are this study's "
               "phase-1 errors")
        return
    note = (f"annotations: {old} (one folder per model, from earlier versions) holds rows that "
            f"are not this study's phase-1 errors, so it is left in place; this study's "
            f"labels go to {folder}")
    if note not in _said:
        _said.add(note)
        report(note)


def _rows_match(folder: Path, results_dir: Path, tag: str) -> bool:
    """Whether every row of the folder's TSVs is a problem of this study's phase-1 records at
    that budget, with the same question (and there is at least one row)."""
    rows = 0
    for budget, path in list_tsvs(folder).items():
        records = store.phase1_record_path(results_dir, tag, budget)
        try:
            table = read_table(path).rows
            questions = {str(r["problem_id"]): str(r["question"])
                         for r in store.read_records(records)} if table else {}
        except (AnnotationError, store.ResultsError, OSError, KeyError, TypeError):
            return False  # unreadable here or there: nothing shows the rows are this study's
        for row in table:
            question = questions.get(row["problem_id"].strip())
            if question is None or question.split() != row["question"].split():
                return False
        rows += len(table)
    return rows > 0


def _move(files: list[Path], folder: Path, source: Path) -> None:
    """Rename ``files`` into ``folder``; AnnotationError, and nothing moved, if a target exists
    (so no label can be lost)."""
    for old in files:
        new = folder / old.name
        if new.exists():
            raise AnnotationError([
                f"{old} and {new} both exist: annotation files now live in one folder per "
                f"study, and moving the older file there would replace the other. Keep the "
                f"one you want at {new}, move the other out of {source} (e.g. to a .bak "
                "name), then run again"])
    folder.mkdir(parents=True, exist_ok=True)
    for old in files:
        old.rename(folder / old.name)  # same file system: atomic; the target was checked free


def study_flags(cfg: StudyConfig) -> str:
    """The flags that pick this study's annotation folder in a phase-2 hint: the run's flags,
    and ``--results-dir`` when not the default (the folder is named from the results there)."""
    results = cfg.paths.results_dir
    where = "" if results == StudyConfig().paths.results_dir else f" --results-dir {results}"
    return f"{cfg.run_flags}{where}"
