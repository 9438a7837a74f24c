"""phase2_analyze: hand-checked aggregates, strict validation (exit 2, no output), tolerance."""

from __future__ import annotations

import json
import random

import pytest
from phase2_fixtures import MODEL, dirs, record, standard_results, study_dir, tsv

import phase2_analyze as analyze
import phase2_prepare as prep
from study import store
from study.analysis import stats
from study.annotation import error_analysis
from study.annotation.tsv import read_table, render_table, write_table

# budget -> problem -> (error_type, recoverable, annotator)
LABELS = {
    128: {"p0": ("arithmetic", "yes", "human"), "p1": ("incomplete", "yes", "human"),
          "p2": ("format", "no", "human"), "p3": ("logic", "no", "auto")},
    256: {"p0": ("arithmetic", "no", "human"), "p1": ("arithmetic", "unknown", "human"),
          "p4": ("hallucination", "", "auto")},
    512: {"p0": ("logic", "no", "human"), "p5": ("setup", "no", "human")},
}


def label(annotations, labels=LABELS):
    for budget, by_problem in labels.items():
        path = tsv(annotations, budget)
        table = read_table(path)
        for row in table.rows:
            kind, recoverable, who = by_problem[row["problem_id"]]
            row.update(error_type=kind, recoverable=recoverable, annotator=who)
        write_table(path, table.rows)


@pytest.fixture()
def study(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main(flags) == 0
    label(annotations)
    return results, annotations, flags


def output_json(results):
    return json.loads(store.phase2_analysis_path(results, MODEL).read_text())


def test_aggregates_match_hand_counts(study, capsys):
    results, annotations, flags = study
    assert analyze.main(flags) == 0
    out = output_json(results)
    assert out["budgets"] == [128, 256, 512] and out["label_sources"] == {"human": 7, "auto": 2}
    b128 = out["error_types"]["128"]
    assert b128["n"] == 4 and b128["counts"]["format"] == 1 and b128["pct"]["logic"] == 25.0
    assert b128["by_annotator"]["auto"]["counts"]["logic"] == 1
    assert b128["by_annotator"]["human"]["n"] == 3
    assert out["recoverable"]["256"]["counts"] == {"yes": 0, "no": 1, "unknown": 2}
    assert out["unrecoverable"]["count"] == 5 and out["unrecoverable"]["pct"] == 55.6
    assert out["unrecoverable"]["by_error_type"]["logic"] == {"n": 2, "count": 2, "pct": 100.0}
    persistent = out["persistent_errors"]
    assert (persistent["n_problems"], persistent["same_type"], persistent["changed_type"]) == (
        2, 0, 2)
    assert persistent["problems"][0] == {"problem_id": "p0", "same": False, "types": {
        "128": "arithmetic", "256": "arithmetic", "512": "logic"}}
    assert persistent["wrong_at_several_budgets_in_results"] == 2
    total = out["evolution"]["total"]
    assert {k: v for k, v in total["arithmetic"].items() if v} == {
        "arithmetic": 1, "logic": 1, "fixed": 1}
    assert total["incomplete"]["arithmetic"] == 1 and total["format"]["fixed"] == 1
    assert [p["from_budget"] for p in out["evolution"]["pairs"]] == [128, 256]
    agree = out["suggestion_agreement"]
    assert agree["n"] == 7 and agree["observed_agreement"] == round(5 / 7, 3)
    assert agree["confusion"]["arithmetic"]["logic"] == 1 and agree["confusion"]["none"]["setup"]
    assert set(out["provenance"]["record_files"]) == {
        f"phase1_main_{MODEL}_budget{b}.json" for b in (128, 256, 512)} | {
        f"annotate_errors_budget{b}.tsv" for b in (128, 256, 512)}
    printed = capsys.readouterr().out
    assert "unrecoverable: 5/9 = 55.6%" in printed and "auto labels only" in printed


def test_kappa_is_stats_kappa_of_suggestion_vs_human(study):
    results, annotations, flags = study
    analyze.main(flags)
    rows = [r for b in (128, 256, 512) for r in read_table(tsv(annotations, b)).rows
            if r["annotator"] == "human"]
    expected = stats.cohens_kappa([r["suggested_error_type"] or "none" for r in rows],
                                  [r["error_type"] for r in rows])
    assert output_json(results)["suggestion_agreement"]["kappa"] == round(expected, 3)


def test_evolution_counts_unsampled_and_fixed():
    rows = {128: [{"problem_id": "a", "error_type": "logic"},
                  {"problem_id": "b", "error_type": "setup"}], 256: []}
    records = {256: [record("p1", 256, "x", False) | {"problem_id": "a"},
                     record("p2", 256, "y", True) | {"problem_id": "b"}]}
    matrix = error_analysis.evolution(rows, records)["pairs"][0]["matrix"]
    assert matrix["logic"]["unsampled"] == 1 and matrix["setup"]["fixed"] == 1


def test_spreadsheet_edited_files_give_the_same_analysis(study):
    results, annotations, flags = study
    analyze.main(flags)
    before = output_json(results)
    for budget in (128, 256, 512):
        path = tsv(annotations, budget)
        lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        cells = [line.split("\t") for line in lines]
        order = [len(cells[0]) - 1 - i for i in range(len(cells[0]))]  # reversed columns
        text = "\r\n".join("\t".join(c[i] for i in order) for c in cells)
        text = text.replace("\tlogic\t", "\t Logic \t").replace("\tno\t", "\tNO\t")
        path.write_bytes(("\ufeff" + text + "\r\n").encode("utf-8"))
    assert analyze.main(flags) == 0
    after = output_json(results)
    for key in ("error_types", "recoverable", "evolution", "suggestion_agreement"):
        assert after[key] == before[key]


def _edit_results(results, budget, change):
    path = store.phase1_record_path(results, MODEL, budget)
    records = json.loads(path.read_text())
    change(records)
    path.write_text(json.dumps(records))


@pytest.mark.parametrize("budget, change, fragment", [
    (128, lambda rs: rs[0].update(question="another question"), "question: differs"),
    (128, lambda rs: rs[0].update(generated="another text"), "generated: differs"),
    (128, lambda rs: rs[0].update(correct=True), "problem_id: now answered correctly"),
    (256, lambda rs: rs.pop(4), "problem_id: 'p4' is not in"),
])
def test_rows_that_no_longer_match_results(study, capsys, budget, change, fragment):
    results, annotations, flags = study
    _edit_results(results, budget, change)
    assert analyze.main(flags) == 2
    err = capsys.readouterr().err
    assert f"annotate_errors_budget{budget}.tsv:" in err and fragment in err
    assert not store.phase2_analysis_path(results, MODEL).exists()


@pytest.mark.parametrize("edit, fragment", [
    (lambda rows: rows[0].update(error_type="typo"), ":2: error_type: unknown label 'typo'"),
    (lambda rows: rows[1].update(error_type=""), ":3: error_type: empty"),
    (lambda rows: rows[1].update(annotation_id=rows[0]["annotation_id"]),
     ":3: annotation_id: duplicate id"),
    (lambda rows: rows[0].update(recoverable="perhaps"), ":2: recoverable: unknown label"),
])
def test_bad_labels_exit_2_and_write_nothing(study, capsys, edit, fragment):
    results, annotations, flags = study
    path = tsv(annotations, 128)
    rows = read_table(path).rows
    edit(rows)
    path.write_text(render_table(rows), encoding="utf-8")
    assert analyze.main(flags) == 2
    err = capsys.readouterr().err
    assert f"{path}{fragment}" in err and "nothing written" in err
    assert not store.phase2_analysis_path(results, MODEL).exists()


def test_missing_results_file_and_missing_tsvs(study, tmp_path, capsys):
    results, annotations, flags = study
    store.phase1_record_path(results, MODEL, 512).unlink()
    assert analyze.main(flags) == 2
    assert "budget 512" in capsys.readouterr().err
    _, _, empty_flags = dirs(tmp_path / "elsewhere")
    assert analyze.main(empty_flags) == 2
    assert "phase2_prepare.py" in capsys.readouterr().err


def test_fuzzed_tsvs_never_crash_and_never_half_write(study, capsys):
    results, annotations, flags = study
    path = tsv(annotations, 256)
    clean = path.read_text(encoding="utf-8")
    rng = random.Random(5)
    codes = set()
    for _ in range(40):
        text = list(clean)
        for _ in range(rng.randint(1, 3)):
            text.insert(rng.randrange(len(text)), rng.choice(["\t", "\n", '"', "z", "\\"]))
        path.write_text("".join(text), encoding="utf-8")
        store.phase2_analysis_path(results, MODEL).unlink(missing_ok=True)
        code = analyze.main(flags)
        codes.add(code)
        assert code in (0, 2)
        assert store.phase2_analysis_path(results, MODEL).exists() == (code == 0)
    assert 2 in codes
    capsys.readouterr()



def test_files_are_the_models_tsvs_and_budgets_select_some(study):
    results, annotations, flags = study
    assert analyze.main([*flags, "--budgets", "256", "128"]) == 0
    out = output_json(results)
    assert out["budgets"] == [128, 256]
    assert out["files"] == {str(b): str(tsv(annotations, b)) for b in (128, 256)}
    assert out["model"] == MODEL and out["provenance"]["config"]["annotation"]["budgets"] == [
        128, 256]


def test_flat_files_are_moved_before_the_analysis(study, capsys):
    results, annotations, flags = study
    for path in study_dir(annotations).iterdir():
        path.rename(annotations / path.name)
    assert analyze.main(flags) == 0
    assert "annotations: moved 3 file(s)" in capsys.readouterr().out
    assert output_json(results)["files"]["512"] == str(tsv(annotations, 512))


def test_a_bug_is_not_reported_as_a_user_error(study, monkeypatch):
    results, annotations, flags = study

    def broken(rows, records):
        raise ValueError("internal")

    monkeypatch.setattr(analyze, "analyse", broken)
    with pytest.raises(ValueError, match="internal"):
        analyze.main(flags)


def test_console_tables_keep_their_layout():
    # The layout of the tables printed before study.tables existed (compared by hand).
    text = error_analysis.table_text("title", ["type", "128", "1024"],
                                     [["logic", "1 (25.0%)", None], ["n", 4, 0]])
    assert text == ("title\n"
                    "type         128  1024\n"
                    "logic  1 (25.0%)     -\n"
                    "n              4     0\n")
