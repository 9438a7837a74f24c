"""phase2_annotate driven with scripted input: labels, skip, quit, resume, atomic saves."""

from __future__ import annotations

import io

import pytest
from phase2_fixtures import MODEL, dirs, standard_results, study_dir, tsv

import phase2_annotate as annot
import phase2_prepare as prep
from study.annotation import labelling, queue
from study.annotation.tsv import read_table


@pytest.fixture()
def prepared(tmp_path):
    results, annotations, flags = dirs(tmp_path)
    standard_results(results)
    assert prep.main(flags) == 0
    return annotations, ["--annotations-dir", str(annotations)]  # labelling reads TSVs only


def run(monkeypatch, flags, script: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    return annot.main(flags)


def labels(annotations, budget=128):
    return [(r["error_type"], r["recoverable"], r["error_location"], r["notes"], r["annotator"])
            for r in read_table(tsv(annotations, budget)).rows]


def test_label_skip_and_quit(prepared, monkeypatch, capsys):
    annotations, flags = prepared
    # row 1: arithmetic / no / location / notes with a tab; row 2: skip; row 3: quit.
    assert run(monkeypatch, flags, "a\nn\nstep 2\nslip\tagain\nk\nq\n") == 0
    assert labels(annotations) == [
        ("arithmetic", "no", "step 2", "slip\tagain", "human"),
        ("", "", "", "", ""), ("", "", "", "", ""), ("", "", "", "", "")]
    out = capsys.readouterr().out
    assert "9 unlabelled row(s) in 3 file(s)" in out and "8 still unlabelled" in out
    assert "resume: python phase2_annotate.py" in out


def test_resume_enter_takes_suggestion_and_bad_keys_reask(prepared, monkeypatch, capsys):
    annotations, flags = prepared
    run(monkeypatch, flags, "s\ny\n\n\n")  # label row 1, then input ends (quit)
    capsys.readouterr()
    # resume at row 2 (suggestion 'incomplete'): a bad key, Enter = suggestion, Enter = unknown
    assert run(monkeypatch, flags, "z\n\n\n\n\nq\n") == 0
    out = capsys.readouterr().out
    assert "8 unlabelled row(s)" in out and "unknown key 'z'" in out
    assert labels(annotations)[:2] == [("setup", "yes", "", "", "human"),
                                       ("incomplete", "unknown", "", "", "human")]


def test_quit_in_the_notes_prompt_does_not_save_the_row(prepared, monkeypatch):
    annotations, flags = prepared
    before = tsv(annotations, 128).read_bytes()
    assert run(monkeypatch, flags, "l\nn\nstep 1\nq\n") == 0
    assert tsv(annotations, 128).read_bytes() == before


def test_every_row_is_saved_before_the_next_is_shown(prepared, monkeypatch):
    annotations, flags = prepared
    seen = []

    def spy(path, rows):
        seen.append(sum(bool(r["error_type"]) for r in rows))
        return original(path, rows)

    original = labelling.write_table
    monkeypatch.setattr(labelling, "write_table", spy)
    run(monkeypatch, flags, "a\ny\n\n\nl\nn\n\n\nq\n")
    assert seen == [1, 2]


def test_labels_everything_across_files_then_points_to_analyze(prepared, monkeypatch, capsys):
    annotations, flags = prepared
    assert run(monkeypatch, flags, "h\nn\n\n\n" * 9) == 0
    assert "next: python phase2_analyze.py" in capsys.readouterr().out
    assert set(queue.pending_labels(study_dir(annotations)).values()) == {0}
    assert {r[0] for b in (128, 256, 512) for r in labels(annotations, b)} == {"hallucination"}


def test_shows_the_row_with_wrong_steps_marked(prepared, monkeypatch, capsys):
    _, flags = prepared
    run(monkeypatch, flags, "q\n")
    out = capsys.readouterr().out
    assert "problem p0" in out and "gold: 0" in out and "predicted: 1" in out
    assert ">>0 + 0 = 1<<" in out and "'0 + 0 = 1' is false: left side = 0" in out
    assert "\x1b[" not in out  # no colour when stdout is not a terminal


@pytest.mark.parametrize("colour, expected", [
    (False, "so >>2 + 2 = 5<< and 3 * 3 = 9"),
    (True, "so \x1b[1;31m2 + 2 = 5\x1b[0m and \x1b[32m3 * 3 = 9\x1b[0m"),
])
def test_mark_steps(colour, expected):
    assert labelling.mark_steps("so 2 + 2 = 5 and 3 * 3 = 9", colour) == expected


@pytest.mark.parametrize("argv, fragment", [
    (["--budgets", "64"], "--budgets 64"),
])
def test_missing_tsv_for_budget_is_a_user_error(prepared, monkeypatch, capsys, argv, fragment):
    _, flags = prepared
    assert run(monkeypatch, [*flags, *argv], "") == 2
    assert fragment in capsys.readouterr().err


def test_no_tsvs_is_a_user_error(tmp_path, monkeypatch, capsys):
    _, annotations, _ = dirs(tmp_path)
    assert run(monkeypatch, ["--annotations-dir", str(annotations)], "") == 2
    err = capsys.readouterr().err
    assert f"{study_dir(annotations)}: no annotate_errors_budget*.tsv" in err
    assert f"phase2_prepare.py --model {MODEL}" in err


def test_single_keys_on_a_terminal():
    """On a tty each key acts at once (cbreak mode); Ctrl-D quits."""
    import os
    import pty
    import signal
    import tty

    master, replica = pty.openpty()
    tty.setcbreak(replica)  # keys typed before the prompt must not wait in a line buffer
    signal.alarm(10)  # a regression here would block on read; fail loudly instead
    with open(replica, encoding="utf-8") as stdin:
        prompter = labelling.Prompter(stdin, io.StringIO())
        assert prompter.single_key
        os.write(master, b"zS\r\x04")
        assert prompter.key("type? ", "asl") == "s"  # 'z' re-asks, case ignored
        assert prompter.key("recoverable? ", "ynu") == ""  # Enter
        with pytest.raises(labelling.Quit):
            prompter.key("type? ", "asl")
    signal.alarm(0)
    os.close(master)


def test_run_takes_a_prompter_and_moves_flat_files_first(prepared, capsys):
    from config import StudyConfig

    annotations, _ = prepared
    for path in study_dir(annotations).iterdir():
        path.rename(annotations / path.name)
    cfg = StudyConfig().replace({"paths.annotations_dir": annotations,
                                 "annotation.budgets": [256]})
    out = io.StringIO()
    summary = annot.run(cfg, prompter=labelling.Prompter(io.StringIO("f\ny\n\n\nq\n"), out))
    assert summary["labelled"] == 1 and summary["unlabelled"] == 2
    assert summary["files"] == [str(tsv(annotations, 256))]
    assert "annotations: moved 3 file(s)" in capsys.readouterr().out
    assert "3 unlabelled row(s) in 1 file(s)" in out.getvalue()
    assert labels(annotations, 256)[0] == ("format", "yes", "", "", "human")


def test_unreadable_tsv_is_a_one_line_user_error(prepared, monkeypatch, capsys):
    annotations, flags = prepared
    tsv(annotations, 256).write_text("annotation_id\tmine\n", encoding="utf-8")
    assert run(monkeypatch, flags, "") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {tsv(annotations, 256)}:1: ")
    assert err.strip().endswith("; fix the file, then run again")
