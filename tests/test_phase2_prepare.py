"""phase2_prepare and study.annotation.queue: sampling, suggestions, TSV content, label safety,
one folder per study (two studies of a model do not collide), the moves from the flat and the
per-model layouts, and the run_all gate."""

from __future__ import annotations

import pytest
from phase2_fixtures import (
    MODEL,
    QUESTION,
    dirs,
    record,
    standard_results,
    study_dir,
    tsv,
    write_phase1_summary,
    write_records,
)

import phase2_prepare as prep
from config import StudyConfig
from study.annotation import queue
from study.annotation.tsv import AnnotationError, read_table, write_table
from study.errors import UserError


def errors_of(spec: dict[int, list[str]]) -> dict[int, list[dict]]:
    return {b: [record(pid, b, "x", False) for pid in pids] for b, pids in spec.items()}


def test_problems_wrong_at_more_budgets_come_first_and_are_shared():
    many = [f"p{i}" for i in range(40)]
    errors = errors_of({128: many, 256: many[:20] + ["q1"], 512: many[:10] + ["q2"]})
    picked = queue.sample_errors(errors, {128: 10, 256: 10, 512: 10}, seed=1)
    ids = {b: {r["problem_id"] for r in recs} for b, recs in picked.items()}
    assert ids[128] == ids[256] == ids[512] == set(many[:10])  # wrong at all three budgets


def test_sampling_is_seeded():
    errors = errors_of({128: [f"p{i}" for i in range(50)]})
    run = [queue.sample_errors(errors, {128: 10}, seed=s)[128] for s in (1, 1, 2)]
    assert run[0] == run[1]
    assert [r["problem_id"] for r in run[0]] != [r["problem_id"] for r in run[2]]


def test_budget_with_fewer_errors_takes_all():
    errors = errors_of({128: ["p1", "p2"], 256: ["p1", "p2", "p3", "p4"]})
    picked = queue.sample_errors(errors, {128: 5, 256: 3}, seed=0)
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
    assert queue.suggest_error_type(rec) == expected


def test_prepare_writes_one_tsv_per_budget(tmp_path, capsys):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main(flags) == 0
    out = capsys.readouterr().out
    assert "budget 512: all 2 errors (fewer than the 50 requested)" in out
    assert "phase2_annotate.py" in out
    rows = read_table(tsv(annotations, 128)).rows
    assert [r["problem_id"] for r in rows][:2] == ["p0", "p1"]  # wrong at 2 budgets first
    assert {r["problem_id"] for r in rows} == {"p0", "p1", "p2", "p3"}
    first = next(r for r in rows if r["problem_id"] == "p1")
    assert first["question"] == QUESTION.format(n=1)
    assert first["generated"] == "Let me think\nabout 1 + 1 and"
    assert (first["hit_budget"], first["tokens_used"]) == ("true", "128")
    assert first["suggested_error_type"] == "incomplete"
    assert all(r["error_type"] == "" and r["annotator"] == "" for r in rows)
    assert [p.name for p in annotations.iterdir()] == [study_dir(annotations).name]  # one study
    assert sorted(p.name for p in study_dir(annotations).iterdir()) == [
        f"annotate_errors_budget{b}.tsv" for b in (128, 256, 512)]
    assert f"-> {tsv(annotations, 128)} (suggested:" in out


def test_budgets_and_per_budget_flags(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main([*flags, "--budgets", "256", "128", "--per-budget", "1"]) == 0
    assert [len(read_table(tsv(annotations, b)).rows) for b in (128, 256)] == [1, 1]
    assert not tsv(annotations, 512).exists()


def label_first_row(annotations, budget=128, folder=None, **labels):
    path = tsv(annotations, budget) if folder is None else folder / tsv(annotations, budget).name
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
    backups = list(study_dir(annotations).glob("annotate_errors_budget128.tsv.*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == labelled
    assert len(read_table(path).rows) == 1 and read_table(path).rows[0]["error_type"] == ""
    assert "backed up" in capsys.readouterr().out


def test_auto_labels_alone_do_not_block_regeneration(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main([*flags, "--auto-annotate"]) == 0
    assert prep.main([*flags, "--per-budget", "1"]) == 0
    assert len(read_table(tsv(annotations, 128)).rows) == 1
    assert not list(annotations.rglob("*.bak"))


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
    broken = tsv(annotations, 128)
    broken.parent.mkdir(parents=True)
    broken.write_text("annotation_id\tmy own notes\n", encoding="utf-8")
    assert prep.main(flags) == 2
    assert "--force" in capsys.readouterr().err
    assert broken.read_text() == "annotation_id\tmy own notes\n"
    assert not tsv(annotations, 256).exists()


def test_pending_labels_and_auto_annotate(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    prep.main(flags)
    label_first_row(annotations, error_type="setup", recoverable="no", annotator="human")
    folder = study_dir(annotations)
    pending = queue.pending_labels(folder)
    assert {p.name: n for p, n in pending.items()} == {
        "annotate_errors_budget128.tsv": 3, "annotate_errors_budget256.tsv": 3,
        "annotate_errors_budget512.tsv": 2}
    assert queue.auto_annotate(folder) == 8
    assert set(queue.pending_labels(folder).values()) == {0}
    rows = [r for b in (128, 256, 512) for r in read_table(tsv(annotations, b)).rows]
    human = [r for r in rows if r["annotator"] == "human"]
    assert [(r["error_type"], r["recoverable"]) for r in human] == [("setup", "no")]
    for row in (r for r in rows if r["annotator"] == "auto"):
        assert row["error_type"] == (row["suggested_error_type"] or queue.FALLBACK_ERROR_TYPE)
        assert row["recoverable"] == ""
    assert queue.auto_annotate(folder) == 0


def test_gate_exit_code_is_documented_constant():
    assert queue.GATE_EXIT_CODE == 3


def test_quotas_come_from_the_config_samples(tmp_path, capsys):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    yaml_file = tmp_path / "study.yaml"
    yaml_file.write_text("annotation:\n  samples: {128: 1, 256: 2, 1024: 5}\n", encoding="utf-8")
    assert prep.main([*flags, "--config", str(yaml_file)]) == 0
    assert [len(read_table(tsv(annotations, b)).rows) for b in (128, 256)] == [1, 2]
    assert not tsv(annotations, 512).exists()  # not in samples; 1024 has no phase-1 results
    assert "budget 256: 2 of 3 errors" in capsys.readouterr().out
    assert StudyConfig().annotation.samples == {128: 30, 256: 30, 512: 50, 1024: 50}


def test_results_of_another_model_go_to_that_models_folder(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    standard_results(results, model="qwen-7b")
    assert prep.main(flags) == 0
    assert prep.main([*flags, "--model", "qwen-7b", "--per-budget", "1"]) == 0
    assert len(read_table(tsv(annotations, 128)).rows) == 4
    assert len(read_table(tsv(annotations, 128, "qwen-7b")).rows) == 1


# ---------------------------------------------------------------- one folder per study

def test_two_studies_of_one_model_on_two_datasets_do_not_collide(tmp_path, capsys):
    """The demo after a study of the same model: each prepares, labels and passes its gate in
    its own folder, named from its phase-1 results; neither sees the other's rows."""
    annotations = tmp_path / "annotations"
    studies = {"gsm8k": tmp_path / "gsm8k", "arith": tmp_path / "arith"}
    wrong = {"gsm8k": None, "arith": {128: {"p6": ("6 + 6 = 13. #### 13", False)}}}
    for dataset, results in studies.items():
        standard_results(results, wrong[dataset])
        write_phase1_summary(results, dataset, 7)
    flags = {d: ["--results-dir", str(r), "--annotations-dir", str(annotations)]
             for d, r in studies.items()}
    assert prep.main(flags["gsm8k"]) == 0
    gsm8k = study_dir(annotations, dataset="gsm8k", seed=7)
    label_first_row(annotations, error_type="logic", notes="mine", annotator="human",
                    folder=gsm8k)
    before = {p.name: p.read_bytes() for p in gsm8k.iterdir()}
    capsys.readouterr()
    assert prep.main(flags["arith"]) == 0  # would stop on the gsm8k study's labels before
    arith = study_dir(annotations, dataset="arith", seed=7)
    assert sorted(p.name for p in annotations.iterdir()) == sorted([gsm8k.name, arith.name])
    assert f"-> {arith / 'annotate_errors_budget128.tsv'}" in capsys.readouterr().out
    assert [r["problem_id"] for r in read_table(arith / "annotate_errors_budget128.tsv").rows] \
        == ["p6"]
    assert {p.name: p.read_bytes() for p in gsm8k.iterdir()} == before  # untouched
    arith_cfg = config_for(tmp_path, **{"paths.results_dir": studies["arith"],
                                        "annotation.auto_annotate": True})
    assert queue.annotation_gate(arith_cfg, "unused") == 0  # the gsm8k rows are not waited on
    gsm8k_cfg = config_for(tmp_path, **{"paths.results_dir": studies["gsm8k"]})
    assert queue.annotation_gate(gsm8k_cfg, "unused") == queue.GATE_EXIT_CODE  # its own rows
    assert read_table(gsm8k / "annotate_errors_budget128.tsv").rows[0]["notes"] == "mine"


def per_model_study(tmp_path):
    """A study prepared in the per-model layout of earlier versions, one human label at 128."""
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    prep.main(flags)
    label_first_row(annotations, error_type="logic", notes="mine", annotator="human")
    study_dir(annotations).rename(annotations / MODEL)
    return results, annotations, flags


def test_a_per_model_folder_of_this_study_moves_in_with_one_line(tmp_path, capsys):
    results, annotations, flags = per_model_study(tmp_path)
    old = {p.name: p.read_bytes() for p in (annotations / MODEL).iterdir()}
    capsys.readouterr()
    assert prep.main(flags) == 0
    out = capsys.readouterr().out
    assert out.count("annotations: moved") == 1
    assert (f"annotations: moved 3 file(s) from {annotations / MODEL} (one folder per model, "
            f"from earlier versions) into {study_dir(annotations)}") in out
    assert "budget 128: kept" in out  # the label came along
    assert [p.name for p in annotations.iterdir()] == [study_dir(annotations).name]
    assert {p.name: p.read_bytes() for p in study_dir(annotations).iterdir()} == old


def test_a_per_model_folder_of_another_study_is_left_in_place(tmp_path, capsys):
    _, annotations, _ = per_model_study(tmp_path)
    old = {p.name: p.read_bytes() for p in (annotations / MODEL).iterdir()}
    other = tmp_path / "other"  # same model, at every budget, on other problems (another set)
    for budget in (128, 256, 512):
        write_records(other, budget, [record("q7", budget, "7 + 7 = 15. #### 15", False),
                                      record("q8", budget, "q8 ok #### 16", True)])
    write_phase1_summary(other, "arith", 1234)
    capsys.readouterr()
    assert prep.main(["--results-dir", str(other), "--annotations-dir", str(annotations),
                      "--budgets", "128"]) == 0
    out = capsys.readouterr().out
    assert f"{annotations / MODEL} (one folder per model, from earlier versions) holds rows " \
        "that are not this study's phase-1 errors, so it is left in place" in out
    assert {p.name: p.read_bytes() for p in (annotations / MODEL).iterdir()} == old
    mine = study_dir(annotations, dataset="arith")
    assert [r["problem_id"] for r in read_table(mine / "annotate_errors_budget128.tsv").rows] \
        == ["q7"]


# ---------------------------------------------------------------- the old flat layout

def flat_study(tmp_path):
    """A study prepared in the flat layout of earlier versions, one human label at 128."""
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    prep.main(flags)
    label_first_row(annotations, error_type="logic", notes="mine", annotator="human")
    for path in study_dir(annotations).iterdir():
        path.rename(annotations / path.name)
    study_dir(annotations).rmdir()
    (annotations / "annotate_errors_budget128.tsv.20240101-000000.bak").write_text("old")
    return results, annotations, flags


def test_flat_files_move_into_the_model_folder_with_a_message(tmp_path, capsys):
    results, annotations, flags = flat_study(tmp_path)
    before = {p.name: p.read_bytes() for p in annotations.iterdir()}
    assert prep.main(flags) == 0
    out = capsys.readouterr().out
    assert f"moved 4 file(s) from {annotations} into {study_dir(annotations)}" in out
    assert f"--model {MODEL}'s (this run)" in out
    assert f"{annotations / 'annotate_errors_budget128.tsv'} -> {tsv(annotations, 128)}" in out
    assert "budget 128: kept" in out  # the moved file holds a human label
    assert [p.name for p in annotations.iterdir()] == [study_dir(annotations).name]
    moved = {p.name: p.read_bytes() for p in study_dir(annotations).iterdir()}
    assert moved["annotate_errors_budget128.tsv"] == before["annotate_errors_budget128.tsv"]
    assert moved["annotate_errors_budget128.tsv.20240101-000000.bak"] == b"old"
    assert prep.main(flags) == 0 and "moved" not in capsys.readouterr().out  # once only


def test_flat_and_model_file_both_present_is_an_error_that_changes_nothing(tmp_path, capsys):
    results, annotations, flags = flat_study(tmp_path)
    tsv(annotations, 256).parent.mkdir()
    tsv(annotations, 256).write_text("newer labels")
    before = {p: p.read_bytes() for p in annotations.rglob("*") if p.is_file()}
    assert prep.main(flags) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"{annotations / 'annotate_errors_budget256.tsv'} and {tsv(annotations, 256)}" in err
    assert "both exist" in err and "then run again" in err
    assert {p: p.read_bytes() for p in annotations.rglob("*") if p.is_file()} == before


# ---------------------------------------------------------------- the run_all gate

def config_for(tmp_path, **changes) -> StudyConfig:
    results, annotations, _ = dirs(tmp_path)
    return StudyConfig().replace({"paths.results_dir": results,
                                  "paths.annotations_dir": annotations, **changes})


def test_gate_waits_for_labels_then_passes(tmp_path, capsys):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    prep.main([*flags, "--budgets", "128", "256"])
    label_first_row(annotations, error_type="setup", annotator="human")
    capsys.readouterr()
    cfg = config_for(tmp_path)
    assert queue.annotation_gate(cfg, "python run_all.py --all") == queue.GATE_EXIT_CODE == 3
    assert capsys.readouterr().out.splitlines() == [
        "", "Waiting for annotations — label these rows, then run the same command again:",
        f"  {tsv(annotations, 128)}: 3 rows unlabelled",
        f"  {tsv(annotations, 256)}: 3 rows unlabelled",
        f"  label interactively:  python phase2_annotate.py --model {MODEL} --results-dir "
        f"{results} --annotations-dir {annotations}",
        "  then continue:        python run_all.py --all",
        "  (or add --auto-annotate to fill labels from the suggestions)"]
    auto = cfg.replace({"annotation.auto_annotate": True})
    assert queue.annotation_gate(auto, "unused") == 0
    assert capsys.readouterr().out == (
        "auto-annotate: filled 6 rows from suggestions (annotator=auto)\n")
    assert queue.annotation_gate(cfg, "unused") == 0 and capsys.readouterr().out == ""


def test_annotate_hint_names_the_annotations_dir_only_when_not_the_default(tmp_path):
    assert queue.annotate_command(StudyConfig()) == f"python phase2_annotate.py --model {MODEL}"
    assert queue.annotate_command(config_for(tmp_path)).endswith(
        f" --annotations-dir {tmp_path / 'annotations'}")


def test_gate_moves_flat_files_and_reports_broken_ones_as_user_errors(tmp_path, capsys):
    _, annotations, _ = flat_study(tmp_path)
    capsys.readouterr()
    assert queue.annotation_gate(config_for(tmp_path), "python run_all.py --all") == 3
    out = capsys.readouterr().out
    assert "annotations: moved 4 file(s)" in out and f"  {tsv(annotations, 256)}: 3 rows" in out
    tsv(annotations, 512).write_text("not\ta\ttable\n")
    with pytest.raises(UserError) as info:
        queue.annotation_gate(config_for(tmp_path), "python run_all.py --all")
    assert isinstance(info.value, AnnotationError) and info.value.problems
    assert str(info.value).startswith(f"{tsv(annotations, 512)}:1: ")
    assert "\n" not in str(info.value)  # one line, however many problems
