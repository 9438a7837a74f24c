"""phase1b_stochastic: k-sample records from one rollout each, resume/reuse, and the summary
numbers (mean/std, pass@k, maj@k, paired verdict) on hand-built records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import phase1b_stochastic as p1b
import utils
from config import StatisticsConfig
from engine.hf import model as hf_model
from study import store
from study.analysis import plateau
from study.errors import ResultsError

K = 3
BUDGETS = (4, 8)


def stats_cfg(resamples: int) -> StatisticsConfig:
    """The default statistics settings with fewer bootstrap resamples (fast tests)."""
    return StatisticsConfig(bootstrap_resamples=resamples)


# ------------------------------------------------------------------ end to end (tiny model)


def cli_args(model_dir: Path, dataset: Path, results: Path, *extra: str) -> list[str]:
    return ["--model", str(model_dir), "--dataset", str(dataset), "--results-dir", str(results),
            "--budgets", *map(str, BUDGETS), "--samples", str(K), "--seed", "7", "--quiet",
            "--bootstrap-resamples", "200", *extra]


def record_files(results: Path) -> dict[int, list[dict]]:
    return {b: json.loads(next(results.glob(f"phase1b_stochastic_*_budget{b}.json")).read_text())
            for b in BUDGETS}


def summary_of(results: Path) -> dict:
    return json.loads(next(results.glob("phase1b_summary_*.json")).read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_model_dir, sums_file):
    """One finished run; tests that change it work on a copy of its results folder."""
    root = tmp_path_factory.mktemp("p1b")
    dataset = sums_file(root / "mini.jsonl", [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9)])
    results = root / "results"
    assert p1b.main(cli_args(tiny_model_dir, dataset, results)) == 0
    return tiny_model_dir, dataset, results


def copy_results(first_run, tmp_path) -> Path:
    return Path(shutil.copytree(first_run[2], tmp_path / "results"))


def no_model(*_args, **_kwargs):
    raise AssertionError("the model must not be loaded: nothing is left to generate")


def test_k_records_per_problem_and_smaller_budget_is_a_prefix(first_run):
    records = record_files(first_run[2])
    for budget, recs in records.items():
        assert len(recs) == 5 * K and {r["budget"] for r in recs} == {budget}
        rows = plateau.group_by_problem(recs)
        assert len(rows) == 5 and all([r["sample"] for r in row] == [0, 1, 2] for row in rows)
    for small, large in zip(records[4], records[8], strict=True):
        assert (small["problem_id"], small["sample"]) == (large["problem_id"], large["sample"])
        assert small["tokens_used"] == min(4, large["tokens_used"]) <= large["tokens_used"] <= 8
    texts = [{r["generated"] for r in row} for row in plateau.group_by_problem(records[8])]
    assert any(len(t) > 1 for t in texts)  # the k samples really are different draws
    log = store.rollouts_path(first_run[2], "phase1b", utils.model_tag(str(first_run[0])))
    assert len(log.read_text().splitlines()) == 1 + 5 * K  # one rollout per (problem, sample)


def test_summary_file_schema(first_run):
    summary = summary_of(first_run[2])
    assert summary["phase"] == "phase1b" and summary["samples"] == K
    assert set(summary["budgets"]) == {"4", "8"}
    row = summary["budgets"]["8"]
    assert row["n_problems"] == 5 and row["k"] == K and len(row["run_accuracies"]) == K
    assert set(row["pass_at_k"]) == set(row["maj_at_k"]) == {"1", "2", "3"}
    assert sum(row["success_histogram"].values()) == 5
    [comparison] = summary["comparisons"]
    assert (comparison["from"], comparison["to"]) == BUDGETS
    assert isinstance(comparison["is_plateau"], bool) and summary["verdict"]
    assert summary["provenance"]["rollouts_generated"] == 5 * K
    assert summary["analysis"]["bootstrap_resamples"] == 200


def test_second_run_reuses_and_overwrite_reproduces(first_run, tmp_path, monkeypatch, capsys):
    model_dir, dataset, _ = first_run
    results = copy_results(first_run, tmp_path)
    monkeypatch.setattr(hf_model, "load_model", no_model)
    assert p1b.main(cli_args(model_dir, dataset, results)) == 0
    assert "reusing finished results" in capsys.readouterr().out
    monkeypatch.undo()
    assert p1b.main(cli_args(model_dir, dataset, results, "--overwrite")) == 0
    assert record_files(results) == record_files(first_run[2])


def test_killed_run_resumes_from_the_rollout_log(first_run, tmp_path):
    model_dir, dataset, _ = first_run
    results = copy_results(first_run, tmp_path)
    summary_of(results)  # exists before we simulate the kill
    next(results.glob("phase1b_summary_*.json")).unlink()
    log = next((results / "rollouts").glob("phase1b_*.jsonl"))
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:6]) + lines[6][:20])  # 5 rollouts kept, a torn sixth line
    assert p1b.main(cli_args(model_dir, dataset, results)) == 0
    assert summary_of(results)["provenance"]["rollouts_generated"] == 5 * K - 5
    assert record_files(results) == record_files(first_run[2])


def test_new_min_effect_reanalyses_without_generating(first_run, tmp_path, monkeypatch):
    model_dir, dataset, _ = first_run
    results = copy_results(first_run, tmp_path)
    monkeypatch.setattr(hf_model, "load_model", no_model)
    assert p1b.main(cli_args(model_dir, dataset, results, "--min-effect", "0.1")) == 0
    summary = summary_of(results)
    assert summary["analysis"]["min_effect"] == 0.1 and "10 pp" in summary["criterion"]
    assert summary["provenance"] == summary_of(first_run[2])["provenance"]


def test_changed_sample_count_is_refused_without_overwrite(first_run, tmp_path, capsys):
    model_dir, dataset, _ = first_run
    results = copy_results(first_run, tmp_path)
    argv = cli_args(model_dir, dataset, results)
    argv[argv.index("--samples") + 1] = "2"
    assert p1b.main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--samples", "0"], ["--min-effect", "1.5"],
                                   ["--bootstrap-resamples", "-3"]])
def test_bad_flags_exit_2(flags):
    with pytest.raises(SystemExit) as exc:
        p1b.main(["--model", "smollm2-135m", "--dataset", "arith", *flags])
    assert exc.value.code == 2


# --------------------------------------------------------------------------- summary by hand


def make_records(budget: int, correct: list[list[int]], predicted: list[list[str | None]] | None =
                 None, gold: list[str] | None = None) -> list[dict]:
    gold = gold or ["4"] * len(correct)
    predicted = predicted or [[g if c else "0" for c in row] for row, g in zip(correct, gold)]
    return [{"problem_id": f"p{i}", "sample": s, "budget": budget, "ground_truth": gold[i],
             "predicted": predicted[i][s], "correct": bool(c), "correct_strict": False,
             "tokens_used": budget, "hit_budget": True}
            for i, row in enumerate(correct) for s, c in enumerate(row)]


# Problem p0 (gold 4): "5" x, "4" ok, "4.0" ok  -> 2/3; majority of 3 = the 4 / 4.0 group.
# Problem p1 (gold 7): "3" x, "7" ok, "3" x     -> 1/3; majority of 3 = "3" (wrong).
HAND = make_records(64, [[0, 1, 1], [0, 1, 0]], [["5", "4", "4.0"], ["3", "7", "3"]], ["4", "7"])


def test_budget_summary_by_hand():
    row = plateau.budget_summary(HAND, StatisticsConfig(bootstrap_resamples=500), 0)
    assert (row["budget"], row["n_problems"], row["k"]) == (64, 2, 3)
    assert row["run_accuracies"] == [0.0, 1.0, 0.5]  # sample runs 0, 1, 2
    assert row["mean_accuracy"] == pytest.approx(0.5)
    assert row["std_accuracy"] == pytest.approx(0.5)  # sample std of 0, 1, 0.5
    assert row["success_histogram"] == {"0/3": 0, "1/3": 1, "2/3": 1, "3/3": 0}
    # pass@2: p0 1 - C(1,2)/C(3,2) = 1; p1 1 - C(2,2)/C(3,2) = 2/3
    assert row["pass_at_k"] == pytest.approx({"1": 0.5, "2": 5 / 6, "3": 1.0})
    # maj@j over all j-subsets, ties split: maj@1 = pass@1; maj@2: p0 (1/2+1/2+1)/3, p1
    # (1/2+0+1/2)/3; maj@3 pools 4 with 4.0.
    assert row["maj_at_k"] == pytest.approx({"1": 0.5, "2": 0.5, "3": 0.5})
    assert 1 / 3 - 1e-9 <= row["ci_low"] <= 0.5 <= row["ci_high"] <= 2 / 3 + 1e-9
    assert row["maj_at_k_ci"]["3"][0] <= 0.5 <= row["maj_at_k_ci"]["3"][1]
    json.dumps(row, allow_nan=False)  # strict JSON


def test_single_sample_has_no_std():
    row = plateau.budget_summary(make_records(64, [[1], [0]]), stats_cfg(100), 0)
    assert row["std_accuracy"] is None and row["mean_accuracy"] == 0.5
    assert "n/a" in p1b.format_table({**plateau.summarize({64: make_records(64, [[1], [0]])},
                                                          stats_cfg(100), 0), "model": "m"})


def test_samples_must_be_0_to_k_minus_1():
    bad = make_records(64, [[1, 0], [1, 0]])
    bad[-1]["sample"] = 5
    with pytest.raises(ResultsError, match="expected 0..1"):
        plateau.group_by_problem(bad)


FLAT = [[1, 1, 0]] * 20 + [[0, 0, 0]] * 20
SOLVED = [[1, 1, 1]] * 40
UNSOLVED = [[0, 0, 0]] * 40


@pytest.mark.parametrize("grid, plateau_steps, verdict_start", [
    ([FLAT, FLAT], [True], "PLATEAU GENUINE over 512-1024 tokens"),
    ([UNSOLVED, SOLVED], [False], "PLATEAU NOT CONFIRMED over 512-1024 tokens"),
    ([UNSOLVED, FLAT, FLAT], [False, True], "PLATEAU NOT CONFIRMED over 256-1024 tokens "
                                            "(accuracy still moves at 256->512)"),
])
def test_plateau_verdict(grid, plateau_steps, verdict_start):
    budgets = [256, 512, 1024][-len(grid):]
    by_budget = {b: make_records(b, m) for b, m in zip(budgets, grid)}
    summary = plateau.summarize(by_budget, stats_cfg(300), 1)
    assert [c["is_plateau"] for c in summary["comparisons"]] == plateau_steps
    assert summary["verdict"].startswith(verdict_start)
    assert "criterion: a step is a plateau when" in summary["verdict"]
    assert "\n" not in summary["verdict"]
    table = p1b.format_table(summary)
    assert table.splitlines()[-1] == f"verdict: {summary['verdict']}"


def test_gain_step_numbers():
    summary = plateau.summarize({512: make_records(512, UNSOLVED),
                                1024: make_records(1024, SOLVED)}, stats_cfg(300), 1)
    [step] = summary["comparisons"]
    assert step["mean_diff"] == 1.0 and step["ci_low"] == step["ci_high"] == 1.0
    assert step["test"] == "mcnemar-exact" and step["p_value"] < 1e-6  # 0/1 success rates


def test_one_budget_gives_no_verdict():
    summary = plateau.summarize({512: make_records(512, FLAT)}, stats_cfg(100), 0)
    assert summary["comparisons"] == [] and summary["verdict"].startswith("no verdict")


def test_majority_votes_use_the_datasets_answer_kind():
    # A choice set: the extractor yields bare letters, so "(b)" is no answer "B" under the choice
    # rule (the records say so: correct False), while the numeric rule would call it equal.
    records = make_records(64, [[0, 0, 0]], [["(b)", "(b)", "A"]], ["B"])
    choice = plateau.budget_summary(records, stats_cfg(100), 0, "choice")
    assert choice["maj_at_k"]["1"] == choice["pass_at_k"]["1"] == 0.0
    assert choice["maj_at_k"]["3"] == 0.0
    numeric = plateau.budget_summary(records, stats_cfg(100), 0)
    assert numeric["maj_at_k"]["3"] == 1.0  # what the kind-blind vote reported before
    assert plateau.analysis_settings(stats_cfg(100), 0, "choice")["answer_kind"] == "choice"
    assert "answer_kind" not in plateau.analysis_settings(stats_cfg(100), 0)
