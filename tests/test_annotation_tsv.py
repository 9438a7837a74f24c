"""study.annotation.tsv: escaping round-trips, spreadsheet tolerance, strict checks, fuzzing; and
study.annotation.folders: the per-study folders' names (from the phase-1 results when there are
some), and files from the old flat layout moved in, never over another."""

from __future__ import annotations

import json
import random

import pytest

from config import StudyConfig
from study.annotation.folders import study_folder, study_name, study_of
from study.annotation.tsv import (
    COLUMNS,
    AnnotationError,
    check_table,
    escape_text,
    has_human_work,
    list_tsvs,
    read_table,
    render_table,
    unescape_text,
    write_table,
)
from study.errors import UserError

_ALPHABET = ["\\", "n", "t", "r", "\n", "\t", "\r", '"', "'", " ", "a", "=", "é", "∑", "\x00",
             "\\n", "\\\\", "\r\n", "\u2028", ","]


def random_text(rng: random.Random, max_len: int = 30) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, max_len)))


def make_row(i: int, budget: int = 128, **labels: str) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(annotation_id=f"b{budget}-{i:03d}", problem_id=f"p{i}", budget=str(budget),
               question=f"Q{i}?", ground_truth=str(i), predicted="", tokens_used="20",
               hit_budget="false", generated=f"gen {i}")
    row.update(labels)
    return row


def test_escape_round_trips_random_strings():
    rng = random.Random(7)
    for _ in range(2000):
        text = random_text(rng)
        escaped = escape_text(text)
        assert unescape_text(escaped) == text
        assert not any(ch in escaped for ch in "\n\t\r")


@pytest.mark.parametrize("escaped, text", [
    (r"a\nb", "a\nb"), (r"a\\nb", "a\\nb"), (r"\\\n", "\\\n"), (r"C:\x", "C:\\x"),
    ("trailing\\", "trailing\\"), (r"\t\r", "\t\r"),
])
def test_unescape_cases(escaped, text):
    assert unescape_text(escaped) == text


def test_file_round_trip_keeps_text_exact_and_one_line_per_row(tmp_path):
    rng = random.Random(3)
    rows = [make_row(i, generated=random_text(rng, 200), question=random_text(rng),
                     notes=random_text(rng), predicted=random_text(rng, 5)) for i in range(60)]
    path = tmp_path / "annotate_errors_budget128.tsv"
    write_table(path, rows)
    assert len(path.read_bytes().split(b"\n")) == len(rows) + 2  # header, rows, final newline
    assert read_table(path).rows == rows


# ---------------------------------------------------------------- spreadsheet tolerance

def _spreadsheet_variants(text: str) -> dict[str, bytes]:
    lines = text.rstrip("\n").split("\n")
    header = lines[0].split("\t")
    order = list(reversed(range(len(header))))
    reordered = "\n".join("\t".join(line.split("\t")[i] for i in order) for line in lines)
    quoted = "\n".join("\t".join(f'"{c}"' for c in line.split("\t")) for line in lines)
    return {
        "bom": ("\ufeff" + text).encode("utf-8"),
        "crlf": text.replace("\n", "\r\n").encode("utf-8"),
        "utf16": text.encode("utf-16"),
        "reordered": (reordered + "\n").encode("utf-8"),
        "quoted": (quoted + "\n").encode("utf-8"),
        "trailing cells dropped": "\n".join(line.rstrip("\t") for line in lines).encode(),
        "blank lines": ("\n\n" + text.replace("\n", "\n\n")).encode("utf-8"),
        "messy labels": text.replace("\tarithmetic\t", "\t  ARITHMETIC \t").encode("utf-8"),
    }


@pytest.mark.parametrize("variant", list(_spreadsheet_variants(render_table([make_row(1)]))))
def test_spreadsheet_variants_read_back_the_same(tmp_path, variant):
    rows = [make_row(1, error_type="arithmetic", recoverable="yes", annotator="human"),
            make_row(2), make_row(3, error_type="logic", notes="x")]
    path = tmp_path / "annotate_errors_budget128.tsv"
    path.write_bytes(_spreadsheet_variants(render_table(rows))[variant])
    table = read_table(path)
    assert check_table(table, require_labels=False) == []
    expected = [dict(r) for r in rows]
    expected[2]["annotator"] = "human"  # a label typed without annotator counts as human
    assert table.rows == expected


# ---------------------------------------------------------------- strict checks

@pytest.mark.parametrize("change, fragment", [
    ({"error_type": "arithmatic"}, ":2: error_type: unknown label 'arithmatic'"),
    ({"recoverable": "maybe", "error_type": "logic"}, ":2: recoverable: unknown label 'maybe'"),
    ({"annotator": "robot", "error_type": "logic"}, ":2: annotator: unknown label"),
    ({"suggested_error_type": "typo"}, ":2: suggested_error_type: unknown label"),
    ({"problem_id": " "}, ":2: problem_id: empty"),
    ({"question": ""}, ":2: question: empty"),
    ({"budget": "256"}, ":2: budget: '256' but the file is for budget 128"),
    ({"tokens_used": "lots"}, ":2: tokens_used: 'lots' is not a whole number"),
    ({"hit_budget": "perhaps"}, ":2: hit_budget: 'perhaps' is not true/false"),
    ({"recoverable": "no"}, ":2: error_type: empty while recoverable"),
])
def test_check_table_reports_file_line_column(tmp_path, change, fragment):
    path = tmp_path / "annotate_errors_budget128.tsv"
    write_table(path, [make_row(1, **change), make_row(2, error_type="logic")])
    problems = check_table(read_table(path), require_labels=False)
    assert len(problems) == 1 and fragment in problems[0] and problems[0].startswith(str(path))


def test_duplicate_ids_and_required_labels(tmp_path):
    path = tmp_path / "annotate_errors_budget128.tsv"
    rows = [make_row(1, error_type="logic"), make_row(1, error_type="setup"), make_row(2)]
    write_table(path, rows)
    problems = check_table(read_table(path), require_labels=True)
    assert any(":3: annotation_id: duplicate id 'b128-001' (first on line 2)" in p
               for p in problems)
    assert any(":4: error_type: empty" in p for p in problems)
    assert len(problems) == 2


@pytest.mark.parametrize("mutate, fragment", [
    (lambda h: h.replace("\tnotes", ""), "notes: column missing"),
    (lambda h: h + "\textra", "extra: unknown column"),
    (lambda h: h.replace("notes", "error_type"), "error_type: column appears twice"),
])
def test_header_problems(tmp_path, mutate, fragment):
    path = tmp_path / "annotate_errors_budget128.tsv"
    header, body = render_table([make_row(1)]).split("\n", 1)
    path.write_text(mutate(header) + "\n" + body, encoding="utf-8")
    with pytest.raises(AnnotationError) as info:
        read_table(path)
    assert any(f"{path}:1: {fragment}" in p for p in info.value.problems)


def test_stray_tab_and_bad_encoding_are_reported(tmp_path):
    path = tmp_path / "annotate_errors_budget128.tsv"
    path.write_text(render_table([make_row(1)]).rstrip("\n") + "\tsurplus\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r":2: row: 16 cells but the header names 15"):
        read_table(path)
    path.write_bytes(b"annotation_id\t\xff\xfe\xfd\n")
    with pytest.raises(AnnotationError, match="not UTF-8"):
        read_table(path)


def test_fuzz_malformed_files_raise_only_annotation_errors(tmp_path):
    """Random damage to a valid file: reading either fails with AnnotationError or the strict
    check lists problems or the file is still valid; never another exception."""
    rng = random.Random(11)
    base = render_table([make_row(i, error_type="logic") for i in range(1, 6)])
    path = tmp_path / "annotate_errors_budget128.tsv"
    outcomes = {"read error": 0, "check problems": 0, "valid": 0}
    for _ in range(300):
        text = list(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(text))
            op = rng.choice(["delete", "insert", "replace"])
            char = rng.choice(["\t", "\n", '"', "x", "\\", "\r", "\x00", "é", ""])
            if op == "delete":
                del text[pos]
            elif op == "insert":
                text.insert(pos, char)
            else:
                text[pos] = char
        path.write_text("".join(text), encoding="utf-8")
        try:
            table = read_table(path)
        except AnnotationError as exc:
            assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)
            outcomes["read error"] += 1
            continue
        problems = check_table(table, require_labels=True)
        outcomes["check problems" if problems else "valid"] += 1
    assert outcomes["read error"] > 0 and outcomes["check problems"] > 0


@pytest.mark.parametrize("labels, human", [
    ({}, False),
    ({"error_type": "logic", "annotator": "auto"}, False),
    ({"error_type": "logic", "annotator": "human"}, True),
    ({"error_type": "logic"}, True),
    ({"recoverable": "no"}, True),
    ({"error_type": "logic", "annotator": "auto", "notes": "checked"}, True),
])
def test_has_human_work(labels, human):
    assert has_human_work(make_row(1, **labels)) is human


def test_list_tsvs_ignores_backups_and_other_files(tmp_path):
    for name in ["annotate_errors_budget256.tsv", "annotate_errors_budget64.tsv",
                 "annotate_errors_budget64.tsv.20240101-000000.bak", "SCHEMA.md", "x.tsv"]:
        (tmp_path / name).write_text("")
    assert list(list_tsvs(tmp_path)) == [64, 256]


# ---------------------------------------------------------------- per-study folders

FLAT = ["annotate_errors_budget64.tsv", "annotate_errors_budget256.tsv",
        "annotate_errors_budget64.tsv.20240101-000000.bak"]
OTHERS = ["SCHEMA.md", "x.tsv", "annotate_errors_budget64.tsv.notes"]


def config(tmp_path, model="m", **changes):
    return StudyConfig().replace({"paths.annotations_dir": tmp_path, "model.name": model,
                                  "paths.results_dir": tmp_path / "results", **changes})


@pytest.mark.parametrize("dataset, seed, name", [
    ("gsm8k", 1234, "m__gsm8k-s1234"), ("arith", 7, "m__arith-s7"),
    ("/data/my set (v2).jsonl", 1, "m__my-set-v2-s1"),  # a local file: its stem, made safe
])
def test_study_names(dataset, seed, name):
    assert study_name("m", dataset, seed) == name


def test_the_study_is_read_from_the_phase1_summary_else_the_config(tmp_path):
    cfg = config(tmp_path, **{"data.dataset": "math500", "seed": 3})
    assert study_of(cfg) == ("math500", 3)  # no phase-1 results yet
    summary = tmp_path / "results" / "phase1_combined_m.json"
    summary.parent.mkdir()
    summary.write_text(json.dumps({"dataset": "arith", "provenance": {"seed": 9}}))
    assert study_of(cfg) == ("arith", 9)  # what the records were made from wins
    assert study_folder(cfg, print) == tmp_path / "m__arith-s9"


def test_flat_files_and_their_backups_move_into_the_study_folder(tmp_path):
    for name in FLAT + OTHERS:
        (tmp_path / name).write_text(name)
    said: list[str] = []
    folder = study_folder(config(tmp_path, "Qwen/Qwen2.5-7B"), said.append)
    assert folder == tmp_path / "Qwen--Qwen2.5-7B__gsm8k-s1234"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FLAT)
    assert all((folder / name).read_text() == name for name in FLAT)  # contents untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(OTHERS)
    assert "--model Qwen/Qwen2.5-7B's (this run)" in said[0] and len(said) == 1 + len(FLAT)
    assert f"  {tmp_path / FLAT[0]} -> {folder / FLAT[0]}" in said
    assert list_tsvs(folder) == {64: folder / FLAT[0], 256: folder / FLAT[1]}


def test_no_earlier_files_creates_nothing_and_says_nothing(tmp_path):
    said: list[str] = []
    folder = study_folder(config(tmp_path / "none"), said.append)
    assert folder == tmp_path / "none" / "m__gsm8k-s1234"
    assert not (tmp_path / "none").exists() and said == []


def test_flat_files_never_move_over_a_file_and_then_nothing_moves(tmp_path):
    for name in FLAT:
        (tmp_path / name).write_text("flat " + name)
    folder = tmp_path / "m__gsm8k-s1234"
    folder.mkdir()
    (folder / FLAT[1]).write_text("labelled in the folder")
    with pytest.raises(AnnotationError) as info:
        study_folder(config(tmp_path), print)
    assert isinstance(info.value, UserError) and len(info.value.problems) == 1
    message = str(info.value)
    assert f"{tmp_path / FLAT[1]} and {folder / FLAT[1]} both exist" in message
    assert "\n" not in message
    assert all((tmp_path / name).read_text() == "flat " + name for name in FLAT)
    assert [p.name for p in folder.iterdir()] == [FLAT[1]]
    assert (folder / FLAT[1]).read_text() == "labelled in the folder"


def test_annotation_error_is_a_one_line_user_error():
    error = AnnotationError(["a.tsv:1: x: bad", "a.tsv:2: y: bad"])
    assert isinstance(error, UserError) and error.problems == ["a.tsv:1: x: bad", "a.tsv:2: y: bad"]
    assert str(error) == "a.tsv:1: x: bad (and 1 more problem(s))"
    assert str(AnnotationError(["p"], "summary")) == "summary"
