"""What the HTML report's problem browser shows, gathered from the results store (no model).

``page_data`` reads phase 1's record files (one per budget), phase 1b's where it ran, and the
annotation TSVs, and returns one JSON-ready dict per problem: its prompt, gold, verdict and
extracted answer at every budget (forced answer and p_gold where forcing ran), its emergence
score (``study.analysis.emergence``, the same rule as the scaling summary), the filters it
belongs to, its annotations, and its rollout cut into segments at the budget marks.

Budget marks sit at exact token offsets without a tokenizer: one rollout serves every budget, and
the record at budget B holds the text decoded from exactly its first B tokens, so the end of
that text *is* the offset of token B in the largest budget's text. Offsets are taken as the
common prefix of the two texts (a byte-level token split inside a character can make the
shorter decode end in a replacement character). The rollout is sent as segments
``[text, band]`` (band k: tokens after budget k-1 up to budget k) so the page never computes
string offsets (JS strings count UTF-16 units, Python code points).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from study import store
from study.analysis import emergence
from study.analysis.scaling import problem_matrix
from study.annotation import tsv
from study.results import StudyResults
from study.schema import Record

# Filters of the problem browser, in the order the page lists them: key -> label.
FILTERS: dict[str, str] = {
    "jump": "jumps (emergence rule)", "wrong": "always wrong", "right": "always right",
    "regress": "regressions (right, then wrong at a larger budget)",
}

Segments = list[list[Any]]  # [[text, band], ...]; a third item 1 marks the graded answer


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def thinking_text(record: Record, cue: str | None) -> str:
    """The rollout part of a record's text: a forced run's ``generated`` ends with the cue and
    the forced answer, which are not rollout tokens."""
    text = record["generated"] or ""
    forced = record.get("forced_answer")
    if forced is None:
        return text
    if forced and text.endswith(forced):
        text = text[:-len(forced)]
    if cue and text.endswith(cue):
        return text[:-len(cue)]
    # The cue's token ids may decode differently at the seam (or start with an end-of-thinking
    # marker that decoding skips): cut at its last appearance, stripped.
    at = text.rfind(cue.strip()) if cue and cue.strip() else -1
    return text[:at] if at >= 0 else text


def answer_span(text: str, answer: str | None) -> tuple[int, int] | None:
    """Where ``answer`` first appears in ``text`` as a whole number or word (``12`` is not
    found inside ``123`` or ``1.25``); None when it does not appear."""
    if not answer:
        return None
    pattern = re.escape(answer)
    if re.fullmatch(r"-?[\d.,]+", answer):
        pattern = rf"(?<![\d.,]){pattern}(?![\d]|[.,]\d)"
    match = re.search(pattern, text)
    return (match.start(), match.end()) if match else None


def segments(texts: Sequence[str], answer: tuple[int, int] | None = None) -> tuple[Segments,
                                                                                    list[int]]:
    """The last text cut into bands at the end of each shorter text (one per budget, smallest
    first); returns (segments, the offset of each mark). ``answer``: a span of the last text
    to flag as the graded answer."""
    full = texts[-1]
    marks: list[int] = []
    for text in texts:
        marks.append(max(marks[-1] if marks else 0, _common_prefix(text, full)))
    cuts = sorted({0, *marks, *(answer or ())})
    out: Segments = []
    for start, end in zip(cuts, cuts[1:]):
        band = next(k for k, m in enumerate(marks) if start < m)
        inside = answer is not None and answer[0] <= start and end <= answer[1]
        out.append([full[start:end], band, 1] if inside else [full[start:end], band])
    return out, marks


def _first_sample(records: list[Record]) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for record in records:
        out.setdefault(str(record["problem_id"]), record)
    return out


def verdict_arrays(rows: Sequence[Record]) -> dict[str, list]:
    """Per-budget verdict, extracted answer, tokens used and cut flag of one rollout; forced
    answer and p_gold when forcing ran."""
    out: dict[str, list] = {"c": [int(bool(r["correct"])) for r in rows],
                            "pred": [r["predicted"] for r in rows],
                            "tok": [int(r["tokens_used"]) for r in rows],
                            "cut": [int(bool(r["hit_budget"])) for r in rows]}
    if any("forced_answer" in r for r in rows):
        out["forced"] = [r.get("forced_answer") for r in rows]
        out["pgold"] = [r.get("p_gold") for r in rows]
    return out


def rollout(rows: Sequence[Record], cue: str | None) -> dict[str, Any]:
    """One rollout seen at every budget: its segments and where the graded answer (the one
    extracted at the largest budget) first appears."""
    texts = [thinking_text(r, cue) for r in rows]
    graded = rows[-1]["predicted"]
    span = answer_span(texts[-1], graded)
    segs, marks = segments(texts, span)
    first = None if span is None else next(k for k, m in enumerate(marks) if span[0] < m)
    return {"roll": segs, "ans": first, **verdict_arrays(rows)}


def flags(correct: Sequence[int], jumps: bool) -> list[str]:
    """The browser's filters this trajectory of 0/1 verdicts (smallest budget first) is in."""
    out = ["jump"] if jumps else []
    if not any(correct):
        out.append("wrong")
    if all(correct):
        out.append("right")
    if any(a and not b for i, a in enumerate(correct) for b in correct[i + 1:]):
        out.append("regress")
    return out


def read_annotations(folder: Path) -> tuple[dict[str, list[dict]], list[str]]:
    """Annotation rows by problem id from a model's TSV folder, and lines about files that
    could not be read (shown on the page; the report is still written)."""
    by_problem: dict[str, list[dict]] = {}
    problems: list[str] = []
    for budget, path in tsv.list_tsvs(folder).items():
        try:
            table = tsv.read_table(path)
        except tsv.AnnotationError as exc:
            problems.append(f"{path}: {exc}")
            continue
        for row in table.rows:
            by_problem.setdefault(row.get("problem_id", ""), []).append({
                "budget": budget, "type": tsv.normalize_label(row.get("error_type", "")),
                "suggested": row.get("suggested_error_type", ""),
                "note": row.get("notes", ""), "where": row.get("error_location", ""),
                "rec": row.get("recoverable", ""), "who": row.get("annotator", "")})
    return by_problem, problems


def _records(path_of: Any, results: StudyResults, budgets: Sequence[int]) -> dict[int, list]:
    return {b: store.read_records(path_of(results.results_dir, results.tag, b)) for b in budgets}


def stochastic(results: StudyResults, cue: str | None) -> tuple[list[int], dict[str, list]]:
    """Phase 1b's budgets and, per problem, each sample's rollout (sample order)."""
    p1b: Any = results.phase1b
    if not p1b:
        return [], {}
    budgets = sorted(int(b) for b in p1b["budgets"])
    by_budget = _records(store.phase1b_record_path, results, budgets)
    keyed = {b: {(str(r["problem_id"]), int(r["sample"])): r for r in recs}
             for b, recs in by_budget.items()}
    out: dict[str, list] = {}
    for pid, sample in keyed[budgets[0]]:
        rows = [keyed[b][(pid, sample)] for b in budgets if (pid, sample) in keyed[b]]
        if len(rows) == len(budgets):
            out.setdefault(pid, []).append(rollout(rows, cue))
    return budgets, out


def page_data(results: StudyResults, annotations_dir: Path | None) -> dict[str, Any]:
    """Everything the problem browser shows, JSON-ready (see the module docstring)."""
    p1: Any = results.phase1
    budgets = sorted(int(b) for b in p1["budgets"])
    cue = (p1.get("forcing") or {}).get("cue")
    notes: list[str] = []
    try:
        by_budget = _records(store.phase1_record_path, results, budgets)
    except store.ResultsError as exc:  # a summary without its records: no browser, say why
        by_budget = {b: [] for b in budgets}
        notes.append(f"no problem browser: {exc}")
    ids, totals, samples = problem_matrix(by_budget, "correct")
    scores = emergence.score_problems(ids, totals / max(samples, 1))
    first = {b: _first_sample(recs) for b, recs in by_budget.items()}
    annotations: dict[str, list[dict]] = {}
    if annotations_dir is not None:
        annotations, unread = read_annotations(Path(annotations_dir) / results.tag)
        notes += unread
    try:
        p1b_budgets, p1b = stochastic(results, cue)
    except store.ResultsError as exc:
        p1b_budgets, p1b = [], {}
        notes.append(f"phase-1b samples not shown: {exc}")
    problems = []
    for pid, score in zip(ids, scores):
        if any(pid not in first[b] for b in budgets):  # a hand-edited or partial record file
            notes.append(f"{pid}: not in every budget's record file; left out")
            continue
        rows = [first[b][pid] for b in budgets]
        entry = {"id": pid, "q": rows[-1]["question"], "gold": str(rows[-1]["ground_truth"]),
                 "b": round(score["breakthroughness"], 4), **rollout(rows, cue)}
        entry["flags"] = flags(entry["c"], score["jumps"])
        if pid in annotations:
            entry["ann"] = sorted(annotations[pid], key=lambda a: a["budget"])
        if pid in p1b:
            entry["s1b"] = p1b[pid]
        problems.append(entry)
    types = sorted({a["type"] for rows in annotations.values() for a in rows if a["type"]})
    return {"model": p1.get("model", results.model), "tag": results.tag,
            "dataset": p1.get("dataset"), "budgets": budgets, "p1b_budgets": p1b_budgets,
            "filters": FILTERS, "error_types": types,
            "jump_rule": f"breakthroughness > {emergence.JUMP_BREAKTHROUGH} and rise >= "
                         f"{emergence.JUMP_RISE}",
            "forced": bool(cue), "notes": notes, "problems": problems}
