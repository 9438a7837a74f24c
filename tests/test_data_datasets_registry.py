"""The dataset registry: entries, shipped copies (sha256-checked), answer kinds, provenance, and
phase 1 on MATH-500 through the CLI."""

from __future__ import annotations

import csv
import json
import shutil
import sys
import time

import pytest

import config
import phase1_main
from study import cli, store
from study.data import datasets
from study.data.problems import Problem
from study.errors import ConfigError, DatasetError
from study.run import phase_run
from study.strategies import rollouts
from study.strategies.base import BudgetOutcome

LEGACY_ROLLOUT_KEYS = {"phase", "model", "dataset", "num_samples", "seed", "precision",
                       "max_new_tokens", "temperature", "top_p", "samples_per_problem",
                       "prompts", "prompt_format"}


def test_config_datasets_come_from_the_registry():
    assert config.DATASETS == tuple(datasets.REGISTRY)
    assert {"gsm8k", "math500", "gsm-symbolic", "arith"} <= set(config.DATASETS)
    for spec in datasets.REGISTRY.values():
        assert spec.answer_kind in datasets.ANSWER_KINDS
        assert "{question}" in spec.template.text and spec.template.version >= 1
        assert spec.origin and spec.license


def test_shipped_copies_match_sources_md():
    for spec in datasets.REGISTRY.values():
        if spec.shipped_file:
            path = datasets.SHIPPED_DIR / spec.shipped_file
            assert store.file_sha256(path) == datasets.expected_sha256(spec.shipped_file,
                                                                       datasets.SHIPPED_DIR)


def test_gsm8k_provenance_names_the_shipped_copy_and_its_sha256(tmp_path):
    loaded = datasets.load_dataset("gsm8k", 4, 0, tmp_path)
    info = loaded.info
    assert info["source"] == "shipped" and info["location"].endswith("data/gsm8k_test.jsonl")
    assert info["sha256"] == "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"
    assert (info["n"], info["rows_available"], info["answer_kind"]) == (4, 1319, "numeric")
    assert info["template_version"] == 1


@pytest.fixture()
def shipped_copy(tmp_path, monkeypatch):
    """A copy of data/ the loader reads instead of the repository's."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("gsm8k_test.jsonl", "math500_test.jsonl", "SOURCES.md"):
        shutil.copy(datasets.SHIPPED_DIR / name, folder / name)
    monkeypatch.setattr(datasets, "SHIPPED_DIR", folder)
    return folder


def test_a_corrupted_shipped_copy_is_one_clear_line(shipped_copy, tmp_path):
    path = shipped_copy / "gsm8k_test.jsonl"
    path.write_bytes(path.read_bytes().replace(b"#### 18", b"#### 19", 1))
    with pytest.raises(DatasetError) as caught:
        datasets.load_problems("gsm8k", 3, 0, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "sha256" in message and "git checkout -- data/gsm8k_test.jsonl" in message


def test_a_missing_shipped_copy_says_how_to_restore_it(shipped_copy, tmp_path):
    (shipped_copy / "math500_test.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"git checkout -- data/math500_test.jsonl"):
        datasets.load_problems("math500", 3, 0, tmp_path)


def test_math500_has_500_problems_with_subject_and_level(tmp_path):
    problems = datasets.load_problems("math500", None, 0, tmp_path)
    assert len(problems) == 500
    assert [p.problem_id for p in problems[:2]] == ["math500-00000", "math500-00001"]
    first = problems[0]
    assert first.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"  # LaTeX gold, as given
    assert first.answer_kind == "latex" and first.subject == "Precalculus" and first.level == 2
    assert first.prompt == first.question + datasets.BOXED.fill("")
    assert all(p.subject and p.level in {1, 2, 3, 4, 5} for p in problems)
    assert datasets.load_problems("math500", 7, 0, tmp_path) == problems[:7]


@pytest.mark.parametrize("kind,answer,gold", [
    ("numeric", "work\n#### 1,234", "1234"),
    ("latex", " \\frac{14}{3} ", "\\frac{14}{3}"),
    ("choice", "(b)", "B"),
])
def test_local_file_with_answer_kind(tmp_path, kind, answer, gold):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"question": "Q?", "answer": answer}) + "\n")
    loaded = datasets.load_dataset(str(path), None, 0, tmp_path, answer_kind=kind)
    problem = loaded.problems[0]
    assert (problem.problem_id, problem.answer, problem.answer_kind) == ("mine-00000", gold, kind)
    assert problem.prompt == datasets.TEMPLATES_BY_KIND[kind].fill("Q?")
    assert loaded.info["source"] == "local file"
    assert loaded.info["sha256"] == store.file_sha256(path)


def test_answer_kind_flag_is_for_local_files_only(tmp_path):
    cfg = config.StudyConfig().replace({"data.dataset": "gsm8k", "data.answer_kind": "latex",
                                        "model.name": "smollm2-135m"})
    with pytest.raises(ConfigError, match="--answer-kind latex: only for a local"):
        cli.validate(cfg)
    with pytest.raises(ConfigError, match="not one of numeric, latex, choice"):
        config.StudyConfig().replace({"data.answer_kind": "words"})


def test_a_hub_only_set_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert datasets.REGISTRY["aime24"].load is datasets._hub  # no shipped copy
    with pytest.raises(DatasetError, match=r"HuggingFaceH4/aime_2024.*--dataset FILE.jsonl "
                                           r"--answer-kind numeric"):
        datasets.load_problems("aime24", 3, 0, tmp_path)


def _rollout_config(dataset: str, answer_kind: str = "numeric") -> dict:
    cfg = config.StudyConfig().replace({"data.dataset": dataset, "data.answer_kind": answer_kind,
                                        "data.num_samples": 3})
    plan = rollouts.plan_for(cfg, "phase1")
    problems = datasets.load_problems(dataset, 3, cfg.seed, cfg.paths.data_dir, answer_kind)
    return rollouts.rollout_config(cfg, plan, problems)


def test_legacy_datasets_keep_their_rollout_fingerprint_keys(tmp_path):
    assert set(_rollout_config("gsm8k")) == LEGACY_ROLLOUT_KEYS
    assert set(_rollout_config("arith")) == LEGACY_ROLLOUT_KEYS
    math = _rollout_config("math500")
    assert set(math) == LEGACY_ROLLOUT_KEYS | {"answer_kind"} and math["answer_kind"] == "latex"
    local = tmp_path / "set.jsonl"
    local.write_text(json.dumps({"question": "Q?", "answer": "B"}) + "\n")
    assert _rollout_config(str(local), "choice")["answer_kind"] == "choice"
    assert "answer_kind" not in _rollout_config(str(local))


def test_records_are_graded_by_their_problems_answer_kind():
    problem = Problem("p", "q", "\\frac{1}{2}", "prompt", answer_kind="latex")
    text = "So the answer is \\boxed{\\dfrac{1}{2}}."
    outcome = BudgetOutcome(problem, 0, text, 9, False, 9)
    record = phase_run.graded_record(outcome, 16)
    assert record["correct"] and record["predicted"] is not None
    numeric = BudgetOutcome(Problem("n", "q", "2", "prompt"), 0, "1 + 1 = 2", 5, False, 5)
    assert phase_run.graded_record(numeric, 16)["correct"]


def test_phase1_on_math500_through_the_cli(tiny_model_dir, tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    code = phase1_main.main(["--model", str(tiny_model_dir), "--dataset", "math500",
                             "--num-samples", "3", "--budgets", "4", "8", "--results-dir",
                             str(results), "--data-dir", str(tmp_path), "--quiet"])
    assert code == 0, capsys.readouterr().err
    summary = store.read_json(next(results.glob("phase1_combined_*.json")))
    info = summary["provenance"]["dataset"]
    assert (info["name"], info["source"], info["n"]) == ("math500", "shipped", 3)
    assert info["sha256"] == datasets.expected_sha256("math500_test.jsonl", datasets.SHIPPED_DIR)
    assert summary["provenance"]["rollout_config"]["answer_kind"] == "latex"
    records = store.read_json(next(results.glob("phase1_main_*_budget4.json")))
    assert [r["problem_id"] for r in records] == [f"math500-{i:05d}" for i in range(3)]
    assert "subject" not in records[0] and "level" not in records[0]  # record schema unchanged


# ------------------------------------------------------------- hub sets, gated sets, offline


class FakeHub:
    """Stands in for the `datasets` package: records calls, returns the given tables."""

    def __init__(self, tables=None, error=None):
        self.tables, self.error, self.calls = tables or {}, error, []

    def load_dataset(self, repo, config, split, cache_dir):
        self.calls.append((repo, config, split))
        if self.error is not None:
            raise self.error
        return self.tables[config]


@pytest.fixture()
def reachable_hub(monkeypatch):
    monkeypatch.setattr("engine.hub.hub_unreachable", lambda timeout=2.0: None)
    monkeypatch.setattr("utils.hub_unreachable", lambda timeout=2.0: None)


def test_aime25_concatenates_both_papers_in_order(tmp_path, monkeypatch, reachable_hub):
    hub = FakeHub({"AIME2025-I": [{"question": f"I.{i}", "answer": str(i)} for i in range(15)],
                   "AIME2025-II": [{"question": f"II.{i}", "answer": "7"} for i in range(15)]})
    monkeypatch.setitem(sys.modules, "datasets", hub)
    loaded = datasets.load_dataset("aime25", None, 0, tmp_path)
    assert hub.calls == [("opencompass/AIME2025", "AIME2025-I", "test"),
                         ("opencompass/AIME2025", "AIME2025-II", "test")]
    problems = loaded.problems
    assert len(problems) == 30 and problems[0].problem_id == "aime25-00000"
    assert (problems[3].question, problems[3].answer) == ("I.3", "3")
    assert problems[15].question == "II.0" and problems[0].answer_kind == "numeric"
    assert loaded.info["location"] == "opencompass/AIME2025:AIME2025-I+AIME2025-II:test"


GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                "Incorrect Answer 3")


def write_gpqa_csv(path, n):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(GPQA_COLUMNS)
        for i in range(n):
            writer.writerow([f"Question {i}?", f"right {i}", f"wrong a{i}", f"wrong b{i}",
                             f"wrong c{i}"])


def test_gpqa_local_copy_shuffles_choices_per_problem_and_seed(tmp_path):
    write_gpqa_csv(tmp_path / "gpqa_diamond.csv", 200)
    first = datasets.load_dataset("gpqa-diamond", None, 0, tmp_path)
    again = datasets.load_dataset("gpqa-diamond", None, 0, tmp_path)
    other = datasets.load_dataset("gpqa-diamond", None, 1, tmp_path)
    assert first.info["source"] == "local file" and first.problems[0].answer_kind == "choice"
    assert [p.question for p in first.problems] == [p.question for p in again.problems]
    assert [p.question for p in first.problems] != [p.question for p in other.problems]
    for index, problem in enumerate(first.problems):
        lines = problem.question.splitlines()
        assert lines[0] == f"Question {index}?"
        choices = dict(line.split(") ", 1) for line in lines[2:])
        assert sorted(choices) == ["A", "B", "C", "D"]
        assert choices[problem.answer] == f"right {index}"  # the gold letter names the right one
    counts = {letter: sum(p.answer == letter for p in first.problems) for letter in "ABCD"}
    assert min(counts.values()) >= 30  # a permutation per problem, not one fixed position
    assert "end with the line" in first.problems[0].prompt


def test_gpqa_gated_error_says_how_to_get_access(tmp_path, monkeypatch, reachable_hub):
    hub = FakeHub(error=FileNotFoundError("Dataset 'Idavidrein/gpqa' is a gated dataset on "
                                          "the Hub. You must be authenticated to access it."))
    monkeypatch.setitem(sys.modules, "datasets", hub)
    with pytest.raises(DatasetError, match=r"gated: accept its terms.*hf auth login.*"
                                           r"gpqa_diamond\.csv"):
        datasets.load_problems("gpqa-diamond", 3, 0, tmp_path)


def test_unreachable_hub_fails_at_once_without_calling_datasets(tmp_path, monkeypatch):
    def no_route(*args, **kwargs):
        raise OSError(-2, "Name or service not known")

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("engine.hub.socket.create_connection", no_route)
    monkeypatch.setitem(sys.modules, "datasets", FakeHub(error=AssertionError("not called")))
    started = time.perf_counter()
    for name in ("aime24", "aime25", "gpqa-diamond"):
        with pytest.raises(DatasetError, match=rf"{name}: the Hugging Face hub is unreachable"):
            datasets.load_problems(name, 3, 0, tmp_path)
    with pytest.raises(DatasetError, match="drop --data-source hub to use the shipped copy"):
        datasets.load_problems("gsm8k", 3, 0, tmp_path, source="hub")
    assert time.perf_counter() - started < 5
