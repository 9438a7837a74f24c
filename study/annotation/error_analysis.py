"""Phase 2's analysis: annotation rows checked against phase 1, then the error taxonomy.

``load_validated`` reads a model's TSVs strictly and checks every row against the phase-1
record it was sampled from; ``analyse`` computes per budget the error-type distribution (all
labels, and human and auto labels apart) and recoverable shares; persistent errors (problems
annotated at several budgets, same or changed type); the evolution matrix (type at one annotated
budget -> type at the next, or ``fixed`` when phase 1 got it right there, or ``unsampled`` when
still wrong but not annotated); the unrecoverable share; and agreement of the heuristic
suggestions with human labels (Cohen's kappa, confusion table). ``report`` renders the console
tables. The JSON layout is documented in ``annotations/SCHEMA.md``.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from pathlib import Path

from study import store
from study.analysis import stats
from study.annotation.tsv import (
    ERROR_TYPES,
    RECOVERABLE,
    AnnotationError,
    Table,
    check_table,
    read_table,
)
from study.schema import Record
from study.tables import text_table

Rows = dict[int, list[dict[str, str]]]  # validated rows per budget
Records = dict[int, list[Record]]  # phase-1 records per budget

# ---------------------------------------------------------------- validation

def _same_text(a: str, b: str) -> bool:
    # Whitespace-insensitive: spreadsheets may trim or re-wrap, which is not a different record.
    return a.split() == b.split()


def match_results(table: Table, records: list[Record], source: Path) -> list[str]:
    """Rows whose problem no longer matches the phase-1 record it was sampled from."""
    by_id = {str(r["problem_id"]): r for r in reversed(records)}  # first sample wins
    problems = []
    fix = "re-run phase2_prepare.py --force (a backup is kept) and re-label"
    for index, row in enumerate(table.rows):
        where, record = table.where(index), by_id.get(row["problem_id"].strip())
        if record is None:
            problems.append(f"{where}: problem_id: {row['problem_id']!r} is not in {source}; {fix}")
        elif not _same_text(row["question"], str(record["question"])):
            problems.append(f"{where}: question: differs from {source} for this problem_id; {fix}")
        elif not _same_text(row["generated"], str(record["generated"] or "")):
            problems.append(f"{where}: generated: differs from {source} (results re-run, or "
                            f"labels for another model?); {fix}")
        elif record["correct"]:
            problems.append(f"{where}: problem_id: now answered correctly in {source}; {fix}")
    return problems


def load_validated(paths: dict[int, Path], results_dir: Path,
                   tag: str) -> tuple[Rows, Records, list[str]]:
    """Validated rows and phase-1 records per budget, plus every problem found."""
    rows: Rows = {}
    records: Records = {}
    problems: list[str] = []
    first_seen: dict[str, str] = {}
    for budget, path in paths.items():
        try:
            table = read_table(path)
        except AnnotationError as exc:
            problems += exc.problems
            continue
        problems += check_table(table, require_labels=True)
        for index, row in enumerate(table.rows):
            key = row["annotation_id"].strip()
            if key in first_seen and not first_seen[key].startswith(f"{path}:"):
                problems.append(f"{table.where(index)}: annotation_id: {key!r} also used at "
                                f"{first_seen[key]}; ids must be unique across files")
            first_seen.setdefault(key, table.where(index))
        source = store.phase1_record_path(results_dir, tag, budget)
        try:
            records[budget] = store.read_records(source)
        except store.ResultsError as exc:
            problems.append(f"{path}: budget {budget}: {exc}")
            continue
        problems += match_results(table, records[budget], source)
        rows[budget] = table.rows
    return rows, records, problems


# ---------------------------------------------------------------- analysis

def _share(counts: dict[str, int]) -> dict:
    n = sum(counts.values())
    pct = {k: round(100.0 * v / n, 1) if n else None for k, v in counts.items()}
    return {"n": n, "counts": counts, "pct": pct}


def type_counts(rows: list[dict[str, str]]) -> dict[str, int]:
    """Rows per error type, every type listed (zeros included) in ERROR_TYPES order."""
    found = Counter(r["error_type"] for r in rows)
    return {t: found[t] for t in ERROR_TYPES}


def recoverable_counts(rows: list[dict[str, str]]) -> dict[str, int]:
    """Rows per recoverable value; a blank one counts as unknown."""
    found = Counter(r["recoverable"] or "unknown" for r in rows)  # blank = unknown
    return {v: found[v] for v in RECOVERABLE}


def distributions(rows: Rows) -> dict:
    """Per budget: error-type shares over all rows, and over human and auto rows apart."""
    out = {}
    for budget, budget_rows in rows.items():
        block = _share(type_counts(budget_rows))
        block["by_annotator"] = {who: _share(type_counts([r for r in budget_rows
                                                          if r["annotator"] == who]))
                                 for who in ("human", "auto")}
        out[str(budget)] = block
    return out


def unrecoverable(rows: Rows) -> dict:
    """Share of rows labelled recoverable=no: overall, per budget and per error type."""
    every = [r for budget_rows in rows.values() for r in budget_rows]

    def pct(sub: list[dict[str, str]]) -> dict:
        count = sum(r["recoverable"] == "no" for r in sub)
        return {"n": len(sub), "count": count,
                "pct": round(100.0 * count / len(sub), 1) if sub else None}

    return {**pct(every), "by_budget": {str(b): pct(r) for b, r in rows.items()},
            "by_error_type": {t: pct([r for r in every if r["error_type"] == t])
                              for t in ERROR_TYPES}}


def persistent_errors(rows: Rows, records: Records) -> dict:
    """Problems annotated at several budgets: does the error keep its type?"""
    types: dict[str, dict[str, str]] = defaultdict(dict)
    for budget, budget_rows in rows.items():
        for r in budget_rows:
            types[r["problem_id"]][str(budget)] = r["error_type"]
    several = {pid: t for pid, t in sorted(types.items()) if len(t) > 1}
    same = sum(len(set(t.values())) == 1 for t in several.values())
    wrong_at = Counter(str(r["problem_id"]) for recs in records.values()
                       for r in recs if not r["correct"])
    return {"n_problems": len(several), "same_type": same, "changed_type": len(several) - same,
            "same_type_pct": round(100.0 * same / len(several), 1) if several else None,
            "wrong_at_several_budgets_in_results": sum(c > 1 for c in wrong_at.values()),
            "problems": [{"problem_id": pid, "types": t, "same": len(set(t.values())) == 1}
                         for pid, t in several.items()]}


def evolution(rows: Rows, records: Records) -> dict:
    """Type at each annotated budget -> state at the next annotated budget."""
    targets = (*ERROR_TYPES, "fixed", "unsampled")
    total = {t: dict.fromkeys(targets, 0) for t in ERROR_TYPES}
    pairs = []
    budgets = sorted(rows)
    for low, high in itertools.pairwise(budgets):
        later = {r["problem_id"]: r["error_type"] for r in rows[high]}
        correct = {str(r["problem_id"]): bool(r["correct"]) for r in reversed(records[high])}
        matrix = {t: dict.fromkeys(targets, 0) for t in ERROR_TYPES}
        for r in rows[low]:
            pid = r["problem_id"]
            state = later.get(pid) or ("fixed" if correct.get(pid) else "unsampled")
            matrix[r["error_type"]][state] += 1
            total[r["error_type"]][state] += 1
        pairs.append({"from_budget": low, "to_budget": high, "matrix": matrix})
    return {"states": list(targets), "pairs": pairs, "total": total}


def suggestion_agreement(rows: Rows) -> dict:
    """Heuristic suggestion vs human label; auto rows are excluded (they copy the suggestion)."""
    human = [r for budget_rows in rows.values() for r in budget_rows if r["annotator"] == "human"]
    suggested = [r["suggested_error_type"] or "none" for r in human]
    labelled = [r["error_type"] for r in human]
    if not human:
        return {"n": 0, "kappa": None, "observed_agreement": None, "confusion": {},
                "note": "no human labels yet; auto labels are excluded"}
    kappa = stats.cohens_kappa(suggested, labelled)
    return {"n": len(human), "kappa": round(kappa, 3),
            "observed_agreement": round(sum(a == b for a, b in zip(suggested, labelled,
                                                                    strict=True)) / len(human), 3),
            "n_with_suggestion": sum(s != "none" for s in suggested),
            "confusion": stats.confusion_table(suggested, labelled),
            "note": "rows: suggestion ('none' = no rule fired); columns: human label"}


def analyse(rows: Rows, records: Records) -> dict:
    """Every aggregate of the analysis file (all keys but phase, model, files, provenance)."""
    every = [r for budget_rows in rows.values() for r in budget_rows]
    return {
        "budgets": sorted(rows),
        "label_sources": dict(Counter(r["annotator"] for r in every)),
        "errors_in_results": {str(b): sum(not r["correct"] for r in records[b]) for b in rows},
        "error_types": distributions(rows),
        "recoverable": {**{str(b): _share(recoverable_counts(r)) for b, r in rows.items()},
                        "all": _share(recoverable_counts(every))},
        "unrecoverable": unrecoverable(rows),
        "persistent_errors": persistent_errors(rows, records),
        "evolution": evolution(rows, records),
        "suggestion_agreement": suggestion_agreement(rows),
    }


# ---------------------------------------------------------------- printing

def table_text(title: str, header: list[str], body: list[list]) -> str:
    """A titled table sized to its cells: first column left-aligned, the others right-aligned
    two spaces apart; None shows as '-'."""
    cells = [["-" if c is None else str(c) for c in row] for row in body]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    # The two-space gap is folded into each right-aligned column's width.
    columns = [(name, f"<{w}" if i == 0 else f">{w + 2}")
               for i, (name, w) in enumerate(zip(header, widths, strict=True))]
    return f"{title}\n{text_table(columns, cells, rule=None)}\n"


def _type_rows(types: dict, budgets: list[str], who: str | None) -> list[list]:
    blocks = {b: types[b]["by_annotator"][who] if who else types[b] for b in budgets}
    def cell(block: dict, t: str) -> str:
        return f"{block['counts'][t]} ({block['pct'][t]}%)" if block["n"] else "-"

    body = [[t, *(cell(blocks[b], t) for b in budgets)] for t in ERROR_TYPES]
    return body + [["n", *(blocks[b]["n"] for b in budgets)]]


def report(result: dict) -> str:
    """The console tables of an analysis result."""
    types, rec = result["error_types"], result["recoverable"]
    budgets = [str(b) for b in result["budgets"]]
    out = [table_text("error types per budget, all labels: count (% of annotated rows)",
                      ["type", *budgets], _type_rows(types, budgets, None))]
    for who in ("human", "auto"):
        if result["label_sources"].get(who) and len(result["label_sources"]) > 1:
            out.append(table_text(f"error types per budget, {who} labels only",
                                  ["type", *budgets], _type_rows(types, budgets, who)))
    out.append(table_text("recoverable (blank = unknown): % of rows",
                          ["recoverable", *budgets, "all"],
                          [[v, *(rec[b]["pct"][v] for b in [*budgets, "all"])]
                           for v in RECOVERABLE]))
    unrec, pers = result["unrecoverable"], result["persistent_errors"]
    out.append(f"unrecoverable: {unrec['count']}/{unrec['n']} = {unrec['pct']}%\n"
               f"persistent (annotated at >1 budget): {pers['n_problems']} problems, "
               f"{pers['same_type']} same type, {pers['changed_type']} changed\n")
    evo = result["evolution"]
    states = evo["states"]
    out.append(table_text("evolution, all consecutive budget pairs (row: type at B, column: next "
                          "annotated budget)", ["from \\ to", *states],
                          [[t, *(evo["total"][t][s] for s in states)] for t in ERROR_TYPES]))
    agree = result["suggestion_agreement"]
    if agree["n"]:
        labels = list(agree["confusion"])
        title = (f"suggestion (rows) vs human label (columns): n={agree['n']}, "
                 f"kappa={agree['kappa']}, agreement={agree['observed_agreement']}")
        out.append(table_text(title, ["suggested", *labels],
                              [[a, *(agree["confusion"][a][b] for b in labels)] for a in labels]))
    else:
        out.append(f"suggestion agreement: {agree['note']}\n")
    return "\n".join(out)
