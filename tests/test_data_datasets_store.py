"""Datasets (ids, templates, local files) and the results store; the registry and the shipped
copies are tested in test_data_datasets_registry.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import config
import utils
from study import errors, store
from study.data import datasets
from study.data import problems as problems_io


def test_arith_demo_set_is_seeded_and_stable():
    a = datasets.load_problems("arith", 5, 7, config.REPO_ROOT / "data")
    b = datasets.load_problems("arith", 8, 7, config.REPO_ROOT / "data")
    assert a == b[:5]  # smaller runs are prefixes of larger ones
    assert [p.problem_id for p in a] == [f"arith-s7-{i:05d}" for i in range(5)]
    for problem in a:
        assert problem.prompt == problem.question + " Let's think step by step."
        assert problem.answer.lstrip("-").isdigit()
        assert "*" in problem.question or "+" in problem.question
    assert datasets.load_problems("arith", 5, 8, config.REPO_ROOT / "data") != a


def test_gsm_symbolic_is_offline_with_numeric_gold():
    problems = datasets.load_problems("gsm-symbolic", 3, 1, config.REPO_ROOT / "data")
    assert len(problems) == 3 and all(p.answer.lstrip("-").replace(".", "").isdigit()
                                      for p in problems)
    assert problems[0].prompt.endswith("\\boxed{}.")


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_local_files_in_every_format(tmp_path, suffix):
    rows = [{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=7\n#### 7"},
            {"question": "What is 1,000 + 250?", "answer": "1,250"}]
    path = tmp_path / f"set{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    problems = datasets.load_problems(str(path), None, 0, tmp_path)
    assert [p.answer for p in problems] == ["7", "1250"]
    assert [p.problem_id for p in problems] == ["set-00000", "set-00001"]
    assert datasets.load_problems(str(path), 1, 0, tmp_path) == problems[:1]


def test_local_file_without_answer_column_names_the_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    # A blank line between the rows: the message names the file's line (3), not the row (2).
    path.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n\n" + json.dumps({"q": 1}))
    with pytest.raises(problems_io.DatasetError, match=r"bad.jsonl:3: needs 'question'"):
        datasets.load_problems(str(path), None, 0, tmp_path)
    csv_path = tmp_path / "bad.csv"  # other formats have no lines of their own per row
    csv_path.write_text("question,solution\nq,1\n")
    with pytest.raises(problems_io.DatasetError, match=r"bad.csv: row 1: needs 'question'"):
        datasets.load_problems(str(csv_path), None, 0, tmp_path)


def test_a_malformed_jsonl_row_is_named_by_its_line_in_the_file(tmp_path):
    path = tmp_path / "broken.jsonl"
    good = json.dumps({"question": "q", "answer": "1"})
    path.write_text(f"{good}\n\n{good}\n" + '{"question": "unterminated' + "\n" + good + "\n")
    with pytest.raises(problems_io.DatasetError) as info:
        datasets.load_problems(str(path), None, 0, tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}:4: cannot read this row as JSON (Unterminated string")
    assert "line 1" not in message  # json's position inside the row is not the file's


def test_dataset_errors_are_user_errors():
    assert problems_io.DatasetError is errors.DatasetError
    assert issubclass(problems_io.DatasetError, errors.UserError)
    with pytest.raises(errors.UserError, match="unknown dataset"):
        datasets.load_problems("no-such-set", 1, 0, config.REPO_ROOT / "data")


def test_gsm8k_is_offline_from_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    problems = datasets.load_problems("gsm8k", 3, 0, tmp_path / "no-cache-here")
    assert [p.problem_id for p in problems] == [f"gsm8k-test-{i:05d}" for i in range(3)]
    assert problems[0].answer == "18"
    assert problems[0].prompt.startswith("Janet")
    assert problems[0].prompt.endswith("\nPlease reason step by step, and put your final answer "
                                       "within \\boxed{}.")


def test_gsm8k_from_the_hub_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(problems_io.DatasetError, match="drop --data-source hub.*gsm8k_test.jsonl"):
        datasets.load_problems("gsm8k", 3, 0, tmp_path / "data", source="hub")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    store.write_json(path, [1, 2])
    with pytest.raises(TypeError):
        store.write_json(path, [object()])
    assert store.read_json(path) == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_corrupt_json_is_a_clear_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"a": ')
    with pytest.raises(store.ResultsError, match=r"r.json:1: not valid JSON"):
        store.read_json(path)


def test_rollout_log_resumes_and_ignores_a_torn_line(tmp_path):
    header = {"kind": "rollouts", "fingerprint": "abc", "config": {"seed": 1}}
    log = store.RolloutLog(tmp_path / "r.jsonl", header)
    log.start()
    log.append([{"problem_id": "p1", "sample": 0, "token_ids": [1, 2], "eos": True}])
    with open(log.path, "a") as handle:
        handle.write('{"problem_id": "p2", "sam')  # killed mid-write
    assert set(log.load()) == {("p1", 0)}
    log.start()  # restart trims the torn tail before appending
    log.append([{"problem_id": "p2", "sample": 0, "token_ids": [3], "eos": False}])
    assert set(log.load()) == {("p1", 0), ("p2", 0)}
    other = store.RolloutLog(log.path, {**header, "fingerprint": "xyz",
                                        "config": {"seed": 2}})
    with pytest.raises(store.ResultsError, match=r"seed: 1 -> 2.*--overwrite"):
        other.load()


def test_provenance_block_has_what_a_reviewer_asks_for(tmp_path):
    record = tmp_path / "rec.json"
    store.write_json(record, [])
    block = store.provenance({"model": "m"}, seed=3, wall_time_s=1.23456, device="cpu",
                             record_files=[record])
    assert block["seed"] == 3 and block["wall_time_s"] == 1.235 and block["device"] == "cpu"
    assert block["packages"]["torch"] and block["python"]
    assert block["record_files"] == {"rec.json": store.file_sha256(record)}
    assert store.fingerprint({"a": 1, "b": 2}) == store.fingerprint({"b": 2, "a": 1})


@pytest.mark.parametrize("model,tag", [
    ("qwen-1.5b", "qwen-1.5b"),
    ("Qwen/Qwen2.5-1.5B-Instruct", "Qwen--Qwen2.5-1.5B-Instruct"),
    ("org/we ird:name", "org--we--ird--name"),
])
def test_model_tags_are_filesystem_safe(model, tag):
    assert utils.model_tag(model) == tag


def test_unknown_model_lists_the_aliases():
    with pytest.raises(utils.ModelLoadError, match="qwen-1.5b, qwen-7b"):
        utils.resolve_model("gpt-5")
    assert utils.resolve_model("qwen-7b").path == "Qwen/Qwen2.5-7B-Instruct"
