"""phase2_prepare: sampling rule, suggestions, TSV content, label safety, gate helpers."""

from __future__ import annotations

import pytest
from test_phase2_fixtures import QUESTION, dirs, record, standard_results

import phase2_prepare as prep
from study.annotations import read_table, tsv_path, write_table


def errors_of(spec: dict[int, list[str]]) -> dict[int, list[dict]]:
    return {b: [record(pid, b, "x", False) for pid in pids] for b, pids in spec.items()}


def test_problems_wrong_at_more_budgets_come_first_and_are_shared():
    many = [f"p{i}" for i in range(40)]
    errors = errors_of({128: many, 256: many[:20] + ["q1"], 512: many[:10] + ["q2"]})
    picked = prep.sample_errors(errors, {128: 10, 256: 10, 512: 10}, seed=1)
    ids = {b: {r["problem_id"] for r in recs} for b, recs in picked.items()}
    assert ids[128] == ids[256] == ids[512] == set(many[:10])  # wrong at all three budgets


def test_sampling_is_seeded():
    errors = errors_of({128: [f"p{i}" for i in range(50)]})
    run = [prep.sample_errors(errors, {128: 10}, seed=s)[128] for s in (1, 1, 2)]
    assert run[0] == run[1]
    assert [r["problem_id"] for r in run[0]] != [r["problem_id"] for r in run[2]]


def test_budget_with_fewer_errors_takes_all():
    errors = errors_of({128: ["p1", "p2"], 256: ["p1", "p2", "p3", "p4"]})
    picked = prep.sample_errors(errors, {128: 5, 256: 3}, seed=0)
    assert len(picked[128]) == 2 and len(picked[256]) == 3


@pytest.mark.parametrize("generated, hit_budget, gold, expected", [
    ("so 3 + 4 = 8 and", True, "7", "incomplete"),        # cut, nothing extractable
    ("so 3 + 4 = 8. #### 8", True, "7", "arithmetic"),    # cut, but it did answer
    ("3 * 4 = 13, the answer is 13", False, "12", "arithmetic"),
    ("We get 12 apples. Final: twelve #### 11", False, "12", "format"),
    ("The answer is 5", False, "12", ""),
    ("3 * 4 = 12 so the answer is 12 minus 1 = 11", False, "12", "format"),
])
def test_suggest_error_type(generated, hit_budget, gold, expected):
    rec = record("p6", 128, generated, False, hit_budget)
    rec["ground_truth"] = gold
    assert prep.suggest_error_type(rec) == expected


def test_prepare_writes_one_tsv_per_budget(tmp_path, capsys):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main(flags) == 0
    out = capsys.readouterr().out
    assert "budget 512: all 2 errors (fewer than the 50 requested)" in out
    assert "phase2_annotate.py" in out
    rows = read_table(tsv_path(annotations, 128)).rows
    assert [r["problem_id"] for r in rows][:2] == ["p0", "p1"]  # wrong at 2 budgets first
    assert {r["problem_id"] for r in rows} == {"p0", "p1", "p2", "p3"}
    first = next(r for r in rows if r["problem_id"] == "p1")
    assert first["question"] == QUESTION.format(n=1)
    assert first["generated"] == "Let me think\nabout 1 + 1 and"
    assert (first["hit_budget"], first["tokens_used"]) == ("true", "128")
    assert first["suggested_error_type"] == "incomplete"
    assert all(r["error_type"] == "" and r["annotator"] == "" for r in rows)
    assert sorted(p.name for p in annotations.iterdir()) == [
        f"annotate_errors_budget{b}.tsv" for b in (128, 256, 512)]


def test_budgets_and_per_budget_flags(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main([*flags, "--budgets", "256", "128", "--per-budget", "1"]) == 0
    assert [len(read_table(tsv_path(annotations, b)).rows) for b in (128, 256)] == [1, 1]
    assert not tsv_path(annotations, 512).exists()


def label_first_row(annotations, budget=128, **labels):
    path = tsv_path(annotations, budget)
    table = read_table(path)
    table.rows[0].update(labels)
    write_table(path, table.rows)
    return path


def test_rerun_keeps_human_labels_and_force_backs_up(tmp_path, capsys):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    prep.main(flags)
    path = label_first_row(annotations, error_type="logic", annotator="human")
    labelled = path.read_bytes()
    assert prep.main([*flags, "--per-budget", "1"]) == 0
    assert "kept" in capsys.readouterr().out and path.read_bytes() == labelled
    assert prep.main([*flags, "--per-budget", "1", "--force"]) == 0
    backups = list(annotations.glob("annotate_errors_budget128.tsv.*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == labelled
    assert len(read_table(path).rows) == 1 and read_table(path).rows[0]["error_type"] == ""
    assert "backed up" in capsys.readouterr().out


def test_auto_labels_alone_do_not_block_regeneration(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main([*flags, "--auto-annotate"]) == 0
    assert prep.main([*flags, "--per-budget", "1"]) == 0
    assert len(read_table(tsv_path(annotations, 128)).rows) == 1
    assert not list(annotations.glob("*.bak"))


@pytest.mark.parametrize("argv, fragment", [
    (["--budgets", "1024"], "phase1_main_qwen-1.5b_budget1024.json: not found"),
    (["--model", "qwen-7b"], "phase1_main_qwen-7b_budget128.json"),
])
def test_missing_results_exit_2_and_write_nothing(tmp_path, capsys, argv, fragment):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main([*flags, *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not annotations.exists()


@pytest.mark.parametrize("argv", [["--per-budget", "0"], ["--budgets", "x"], ["--bogus"]])
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, argv):
    _, annotations, flags = dirs(tmp_path)
    with pytest.raises(SystemExit) as info:
        prep.main([*flags, *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and argv[0] in err and len(err.strip().splitlines()) == 1
    assert not annotations.exists()


def test_unreadable_existing_tsv_is_not_overwritten(tmp_path, capsys):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    annotations.mkdir()
    broken = tsv_path(annotations, 128)
    broken.write_text("annotation_id\tmy own notes\n", encoding="utf-8")
    assert prep.main(flags) == 2
    assert "--force" in capsys.readouterr().err
    assert broken.read_text() == "annotation_id\tmy own notes\n"
    assert not tsv_path(annotations, 256).exists()


def test_pending_labels_and_auto_annotate(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    prep.main(flags)
    label_first_row(annotations, error_type="setup", recoverable="no", annotator="human")
    pending = prep.pending_labels(annotations)
    assert {p.name: n for p, n in pending.items()} == {
        "annotate_errors_budget128.tsv": 3, "annotate_errors_budget256.tsv": 3,
        "annotate_errors_budget512.tsv": 2}
    assert prep.auto_annotate(annotations) == 8
    assert set(prep.pending_labels(annotations).values()) == {0}
    rows = [r for b in (128, 256, 512) for r in read_table(tsv_path(annotations, b)).rows]
    human = [r for r in rows if r["annotator"] == "human"]
    assert [(r["error_type"], r["recoverable"]) for r in human] == [("setup", "no")]
    for row in (r for r in rows if r["annotator"] == "auto"):
        assert row["error_type"] == (row["suggested_error_type"] or prep.FALLBACK_ERROR_TYPE)
        assert row["recoverable"] == ""
    assert prep.auto_annotate(annotations) == 0


def test_gate_exit_code_is_documented_constant():
    assert prep.GATE_EXIT_CODE == 3
