"""Phase 3: the cliff reuses phase-1 rollouts (one rollout, every budget), its statistics, and
the structure analysis on hand-built solutions."""

from __future__ import annotations

import json

import pytest

import phase1_main
import phase3_cliff
import phase3_structure as p3s
import utils
from config import StatisticsConfig, StudyConfig
from engine.hf import model as hf_model
from study import store
from study.analysis import cliff as cliff_stats
from study.analysis import structure_analysis as sa
from study.data.datasets import load_problems
from study.strategies import rollouts
from utils import model_tag

# ------------------------------------------------------------------ cliff: reuse end to end


def gen_args(model_dir, dataset, results, budgets, *extra) -> list[str]:
    return ["--model", str(model_dir), "--dataset", str(dataset), "--budgets", *map(str, budgets),
            "--results-dir", str(results), "--device", "cpu", "--batch-size", "3", "--quiet",
            *extra]


def cliff_records(results, model_dir, budgets) -> dict[int, list[dict]]:
    tag = model_tag(str(model_dir))
    return {b: store.read_json(store.phase3_cliff_record_path(results, tag, b)) for b in budgets}


def refuse_model_load(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("phase 3 loaded a model although phase-1 rollouts cover it")

    monkeypatch.setattr(hf_model, "load_model", boom)


def test_cliff_is_derived_from_phase1_rollouts_without_generating(
        tiny_model_dir, arith_file, tmp_path, monkeypatch, capsys):
    budgets = [4, 8, 12, 16]
    reused, fresh = tmp_path / "reused", tmp_path / "fresh"
    # Phase 1 over all 6 problems up to 24 tokens; phase 3 over the first 4, up to 16.
    assert phase1_main.main(gen_args(tiny_model_dir, arith_file, reused, [8, 24])) == 0
    capsys.readouterr()

    refuse_model_load(monkeypatch)
    cliff = gen_args(tiny_model_dir, arith_file, reused, budgets, "--num-samples", "4")
    assert phase3_cliff.main(cliff) == 0
    out = capsys.readouterr().out
    assert "derived from phase-1 rollouts (no new generation)" in out
    assert "Steepest improvements:" in out
    summary = store.read_json(store.phase3_cliff_summary_path(reused,
                                                              model_tag(str(tiny_model_dir))))
    prov = summary["provenance"]
    assert prov["rollouts_generated"] == 0 and prov["generated_tokens"] == 0
    assert "phase1_" in prov["reused_rollouts_from"] and "4 of 4" in prov["reused_rollouts_from"]

    # The same cliff generated from scratch (model loaded, no phase-1 rollouts around) is identical.
    monkeypatch.undo()
    assert phase3_cliff.main(gen_args(tiny_model_dir, arith_file, fresh, budgets,
                                      "--num-samples", "4")) == 0
    assert "Generated each problem once to 16 tokens" in capsys.readouterr().out
    fresh_summary = store.read_json(store.phase3_cliff_summary_path(
        fresh, model_tag(str(tiny_model_dir))))
    assert fresh_summary["provenance"]["rollouts_generated"] == 4
    assert cliff_records(reused, tiny_model_dir, budgets) == cliff_records(fresh, tiny_model_dir,
                                                                           budgets)
    assert fresh_summary["budgets"] == summary["budgets"]
    assert fresh_summary["gains"] == summary["gains"]


def test_cliff_generates_when_phase1_rollouts_are_too_short(tiny_model_dir, arith_file, tmp_path,
                                                           monkeypatch, capsys):
    results = tmp_path / "results"
    assert phase1_main.main(gen_args(tiny_model_dir, arith_file, results, [4, 8])) == 0
    loads = []
    real = utils.load_model
    monkeypatch.setattr(hf_model, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    assert phase3_cliff.main(gen_args(tiny_model_dir, arith_file, results, [8, 12])) == 0
    out = capsys.readouterr().out
    assert len(loads) == 1
    assert "Phase-1 rollouts not reused" in out and "below the largest budget 12" in out


# ------------------------------------------------------------------ cliff: the reuse rule

BASE = {"phase": "phase1", "model": "m", "dataset": "arith", "num_samples": 40, "seed": 1,
        "precision": "auto", "max_new_tokens": 512, "temperature": 0.0, "top_p": 1.0,
        "samples_per_problem": 1, "prompts": "abc", "prompt_format": 1}


@pytest.mark.parametrize("change, target_change, reason", [
    ({}, {}, None),
    ({"num_samples": 500}, {}, None),              # phase 1 over more problems covers fewer
    ({"phase": "other", "prompts": "zzz"}, {}, None),  # prompts are checked problem by problem
    ({"max_new_tokens": 256}, {}, None),           # exactly the largest cliff budget is enough
    ({"max_new_tokens": 128}, {}, "below the largest budget 256"),
    ({"model": "other"}, {}, "model differs"),
    ({"seed": 2}, {}, "seed differs"),
    ({"precision": "bf16"}, {}, "precision differs"),
    ({"temperature": 0.7, "top_p": 0.9}, {}, "temperature differs"),
    ({"prompt_format": 0}, {}, "prompt_format differs"),
    ({}, {"samples_per_problem": 2}, "samples per problem"),
])
def test_reuse_rule(change, target_change, reason):
    source = {**BASE, **change}
    target = {**BASE, "phase": "phase3", "num_samples": 10, "max_new_tokens": 256,
              **target_change}
    found = rollouts.reuse_mismatch(source, target)
    assert found is None if reason is None else reason in found


def study(dataset, results, **changes) -> StudyConfig:
    """A study config on a local dataset with seed 1, results under ``results``."""
    return StudyConfig().replace({"model.name": "m/x", "data.dataset": str(dataset), "seed": 1,
                                  "paths.results_dir": results, **changes})


def cliff_reuse(cfg: StudyConfig, problems) -> rollouts.ReusedRollouts:
    return rollouts.rollouts_from_phase(cfg, rollouts.plan_for(cfg, "phase3"), "phase1", problems)


def write_phase1_log(cfg: StudyConfig, problem_ids: list[str]) -> None:
    problems = load_problems(cfg.data.dataset, cfg.data.num_samples, cfg.seed,
                             cfg.paths.data_dir)
    config = rollouts.rollout_config(cfg, rollouts.plan_for(cfg, "phase1"), problems)
    log = store.RolloutLog(store.rollouts_path(cfg.paths.results_dir, "phase1", cfg.model_tag),
                           {"kind": "rollouts", "fingerprint": store.fingerprint(config),
                            "config": config})
    log.start()
    log.append([{"problem_id": pid, "sample": 0, "token_ids": [5, 6, 7], "eos": False,
                 "prompt_len": 3} for pid in problem_ids])


def test_partial_phase1_log_gives_what_it_has(arith_file, tmp_path):
    phase1 = study(arith_file, tmp_path, **{"phase1.budgets": [32]})
    ids = [p.problem_id for p in load_problems(str(arith_file), None, 1, tmp_path)]
    write_phase1_log(phase1, ids[:2])
    cliff = study(arith_file, tmp_path, **{"data.num_samples": 4, "phase3.budgets": [8, 16]})
    reuse = cliff_reuse(cliff, load_problems(str(arith_file), 4, 1, tmp_path))
    assert set(reuse.rollouts) == {(ids[0], 0), (ids[1], 0)}
    assert "2 of 4 rollouts" in reuse.source and "2 needed rollouts are not in" in reuse.reason


def test_changed_prompts_are_not_reused(arith_file, tmp_path):
    phase1 = study(arith_file, tmp_path, **{"phase1.budgets": [32], "phase3.budgets": [32]})
    problems = load_problems(str(arith_file), None, 1, tmp_path)
    write_phase1_log(phase1, [p.problem_id for p in problems])
    arith_file.write_text(arith_file.read_text().replace("What is", "Compute"))
    reuse = cliff_reuse(phase1, load_problems(str(arith_file), None, 1, tmp_path))
    assert reuse.rollouts == {} and "same prompts" in reuse.reason


def test_no_phase1_log_means_no_reuse(tmp_path, arith_file):
    cfg = study(arith_file, tmp_path)
    reuse = cliff_reuse(cfg, load_problems(str(arith_file), None, 1, tmp_path))
    assert reuse.rollouts == {} and reuse.source is None and "no phase1 rollouts" in reuse.reason


# ------------------------------------------------------------------ cliff: statistics


def records_with(correct_count: int, budget: int, n: int = 10) -> list[dict]:
    """n problems; the first ``correct_count`` are correct (so gains are monotone per problem)."""
    return [{"problem_id": f"p{i}", "sample": 0, "correct": i < correct_count,
             "correct_strict": False, "tokens_used": budget, "hit_budget": True, "budget": budget}
            for i in range(n)]


COUNTS = {96: 1, 112: 2, 128: 6, 144: 7, 160: 9}


def resamples(count: int) -> StatisticsConfig:
    return StatisticsConfig(bootstrap_resamples=count)


def test_summarize_gains_steepest_and_half_gain_window():
    summary = cliff_stats.summarize({b: records_with(c, b) for b, c in COUNTS.items()},
                                    resamples(300), 3)
    assert [summary["budgets"][str(b)]["accuracy"] for b in COUNTS] == [0.1, 0.2, 0.6, 0.7, 0.9]
    per_token = [round(g["gain_per_token"], 6) for g in summary["gains"]]
    assert per_token == [round(x / 16, 6) for x in (0.1, 0.4, 0.1, 0.2)]
    assert [(s["from"], s["to"]) for s in summary["steepest"]] == [(112, 128), (144, 160),
                                                                   (96, 112)]
    assert summary["total_gain"] == pytest.approx(0.8)
    assert summary["half_gain_window"] == [112, 128]
    assert summary["half_gain_window_gain"] == pytest.approx(0.4)
    for gain in summary["gains"]:  # every problem improves or stays: CI cannot go below zero
        assert 0 <= gain["ci_low"] <= gain["gain_per_token"] <= gain["ci_high"]


def test_summarize_without_overall_gain_has_no_window():
    summary = cliff_stats.summarize({16: records_with(5, 16), 32: records_with(3, 32)},
                                    resamples(50), 0)
    assert summary["half_gain_window"] is None and summary["total_gain"] == pytest.approx(-0.2)
    assert "No half-gain window" in phase3_cliff.format_steepest(summary)


def test_no_step_with_a_ci_above_zero_is_no_cliff():
    # One problem of 10 flips per step: a gain, but resamples without it show none.
    noisy = cliff_stats.summarize({16: records_with(0, 16), 32: records_with(1, 32),
                                   48: records_with(1, 48)}, resamples(200), 0)
    assert noisy["gains"][0]["gain"] > 0 and noisy["gains"][0]["ci_low"] <= 0
    assert not cliff_stats.has_cliff(noisy)
    assert "No cliff: no step's gain per token has a 95% CI above 0." in \
        phase3_cliff.format_steepest(noisy)
    clear = cliff_stats.summarize({b: records_with(c, b) for b, c in COUNTS.items()},
                                  resamples(200), 0)
    assert cliff_stats.has_cliff(clear) and "No cliff" not in phase3_cliff.format_steepest(clear)


def test_steepest_printed_like_the_spec():
    summary = cliff_stats.summarize({b: records_with(c, b) for b, c in COUNTS.items()},
                                    resamples(50), 0)
    text = phase3_cliff.format_steepest(summary)
    assert text.splitlines()[0] == "Steepest improvements:"
    assert text.splitlines()[1].startswith("  112 → 128: 0.0250 accuracy per token [")
    assert "Half of the total gain (+0.800) lies in 112 → 128 (16 tokens, +0.400)." in text


@pytest.mark.parametrize("source, generated, reason, expected", [
    ("log (4 of 4 rollouts)", 0, None, "derived from phase-1 rollouts (no new generation)"),
    ("log (2 of 4 rollouts)", 2, "2 missing", "the other 2 were generated once to 64"),
    (None, 4, "they stop at 32 tokens", "Phase-1 rollouts not reused: they stop at 32 tokens"),
    (None, 0, None, "Resumed stored phase-3 rollouts"),
])
def test_rollout_note(source, generated, reason, expected):
    summary = {"provenance": {"reused_rollouts_from": source, "rollouts_generated": generated,
                              "rollout_config": {"max_new_tokens": 64}}}
    assert expected in phase3_cliff.rollout_note(summary, reason)


# ------------------------------------------------------------------ structure

TAG = "tiny"


def rec(pid: str, budget: int, text: str, correct: bool, tokens: int, hit: bool) -> dict:
    """A full schema record (the store checks every key)."""
    return {"problem_id": pid, "question": "q", "ground_truth": "0", "generated": text,
            "predicted": None, "predicted_strict": None, "correct": correct,
            "correct_strict": False, "tokens_used": tokens, "budget": budget, "hit_budget": hit,
            "sample": 0}


FULL_P1 = ("We need to find the total. 5 + 6 = 11. Let's verify: 11 - 6 = 5. "
           "The answer is 11.")
RECORDS = {
    32: [rec("p0", 32, "3 + 4 = 7. The answer is 7.", True, 20, False),
         rec("p1", 32, "We need to find the total. 5 + 6 = 11.", False, 32, True),
         rec("p2", 32, "2 * 3 = 7.", False, 32, True)],
    64: [rec("p0", 64, "3 + 4 = 7. The answer is 7.", True, 20, False),
         rec("p1", 64, FULL_P1, True, 50, False),
         rec("p2", 64, "2 * 3 = 7. Then 7 + 1 = 8.", False, 64, True)],
}


def write_cliff(results, records=RECORDS, window=(32, 64), steepest=(), record_files=None):
    for budget, rows in records.items():
        store.write_json(store.phase3_cliff_record_path(results, TAG, budget), rows)
    summary = {"phase": "phase3", "model": TAG, "dataset": "hand",
               "budgets": {str(b): {"budget": b} for b in records},
               "half_gain_window": list(window) if window else None, "steepest": list(steepest),
               "provenance": {"seed": 7, "record_files": record_files or {}}}
    store.write_json(store.phase3_cliff_summary_path(results, TAG), summary)


def words(text: str) -> int:
    return len(text.split())


def test_structure_metrics_per_budget(tmp_path):
    write_cliff(tmp_path)
    result, paths, seed = sa.analyse(TAG, TAG, tmp_path, words, confidence=0.95)
    assert seed == 7 and len(paths) == 2
    at32, at64 = result["budgets"]["32"], result["budgets"]["64"]
    assert at32["accuracy"] == pytest.approx(1 / 3) and at64["accuracy"] == pytest.approx(2 / 3)
    assert at32["verification_share"] == 0 and at64["verification_share"] == pytest.approx(1 / 3)
    assert at32["with_verification"]["n"] == 0 and at32["with_verification"]["accuracy"] is None
    assert (at64["with_verification"]["n"], at64["with_verification"]["accuracy"]) == (1, 1.0)
    assert (at64["without_verification"]["n"], at64["without_verification"]["accuracy"]) == (2, 0.5)
    assert (at32["arith_steps_checked"], at32["arith_errors"]) == (3, 1)   # 2 * 3 = 7 is wrong
    assert (at64["arith_steps_checked"], at64["arith_errors"]) == (5, 1)
    assert at64["arith_error_rate"] == pytest.approx(0.2)
    verification_words = words("Let's verify: 11 - 6 = 5.")
    assert at64["tokens_per_phase"]["verification"] == pytest.approx(verification_words / 3)
    assert sum(at64["token_share_per_phase"].values()) == pytest.approx(1.0)
    assert at64["avg_operations"] == pytest.approx(5 / 3)  # one operator per explicit step


def test_structure_groups_around_the_window(tmp_path):
    write_cliff(tmp_path)
    result, _, _ = sa.analyse(TAG, TAG, tmp_path, words, confidence=0.95)
    assert result["window"] == {"from": 32, "to": 64, "chosen_by": "half_gain_window",
                                "measured_at_budget": 64}
    groups = result["groups"]
    assert {name: groups[name]["n"] for name in sa.GROUPS} == {"below": 1, "inside": 1,
                                                                  "above": 1}
    inside = groups["inside"]
    assert (inside["accuracy_at_window_start"], inside["accuracy_at_window_end"]) == (0.0, 1.0)
    assert inside["gain_share"] == 1.0 and inside["verification_share"] == 1.0
    assert groups["below"]["gain_share"] == 0.0 and groups["above"]["accuracy"] == 0.0
    table = p3s.format_window_table(result)
    assert "window 32 → 64" in table and "inside (33..64)" in table


@pytest.mark.parametrize("tokens, hit, group", [
    (10, False, "below"), (32, False, "below"), (33, False, "inside"), (64, False, "inside"),
    (65, False, "above"), (40, True, "above"),
])
def test_length_group(tokens, hit, group):
    assert sa.length_group({"tokens_used": tokens, "hit_budget": hit}, 32, 64) == group


@pytest.mark.parametrize("summary, expected", [
    ({"half_gain_window": [32, 64], "steepest": []}, (32, 64, "half_gain_window")),
    ({"half_gain_window": None, "steepest": [{"from": 48, "to": 64, "gain_per_token": 0.01}]},
     (48, 64, "steepest_step")),
    ({"half_gain_window": None, "steepest": [{"from": 48, "to": 64, "gain_per_token": 0.0}]},
     None),
])
def test_cliff_window_choice(summary, expected):
    window = sa.cliff_window(summary)
    assert (window and (window["from"], window["to"], window["chosen_by"])) == expected


def test_structure_without_window_still_reports_budgets(tmp_path):
    write_cliff(tmp_path, window=None)
    result, _, _ = sa.analyse(TAG, TAG, tmp_path, words, confidence=0.95)
    assert result["window"] is None and result["groups"] is None
    assert "no window" in p3s.format_window_table(result)


def test_include_phase1_adds_budgets_of_the_same_solutions(tmp_path):
    write_cliff(tmp_path)
    extra = [rec(r["problem_id"], 128, r["generated"], r["correct"], r["tokens_used"], False)
             for r in RECORDS[64]]
    store.write_json(store.phase1_record_path(tmp_path, TAG, 128), extra)
    store.write_json(store.phase1_record_path(tmp_path, TAG, 64), RECORDS[64])
    store.write_json(store.phase1_combined_path(tmp_path, TAG),
                     {"budgets": {"64": {}, "128": {}}})
    result, paths, _ = sa.analyse(TAG, TAG, tmp_path, words, confidence=0.95,
                                     include_phase1=True)
    assert [(r["budget"], r["source"]) for r in result["budgets"].values()] == [
        (32, "phase3"), (64, "phase3"), (128, "phase1")]
    assert result["window"]["measured_at_budget"] == 64  # groups use cliff records only
    assert len(paths) == 3 and "* = phase-1 budget" in p3s.format_budget_table(result)
    store.write_json(store.phase1_record_path(tmp_path, TAG, 128), extra[:2])
    result, _, _ = sa.analyse(TAG, TAG, tmp_path, words, confidence=0.95,
                                     include_phase1=True)
    assert "other problems" in result["phase1_note"] and len(result["budgets"]) == 2


def test_structure_cli_writes_json_and_prints_tables(tiny_model_dir, tmp_path, capsys):
    model = str(tiny_model_dir)
    tag = model_tag(model)
    for budget, rows in RECORDS.items():
        store.write_json(store.phase3_cliff_record_path(tmp_path, tag, budget), rows)
    store.write_json(store.phase3_cliff_summary_path(tmp_path, tag),
                     {"model": model, "budgets": {"32": {}, "64": {}},
                      "half_gain_window": [32, 64], "provenance": {"seed": 1}})
    assert p3s.main(["--model", model, "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Solution structure per budget" in out and "What changes at the cliff" in out
    saved = json.loads(store.phase3_structure_path(tmp_path, tag).read_text())
    assert saved["phase"] == "phase3_structure" and set(saved["groups"]) == set(sa.GROUPS)
    assert saved["budgets"]["64"]["verification_share"] == pytest.approx(1 / 3)
    assert set(saved["provenance"]["record_files"]) == {
        store.phase3_cliff_record_path(tmp_path, tag, b).name for b in RECORDS}


def test_structure_without_cliff_results_is_a_user_error(tmp_path, capsys):
    assert p3s.main(["--model", "qwen-1.5b", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no phase-3 results for model qwen-1.5b" in err
    assert "python phase3_cliff.py --model qwen-1.5b" in err


def test_structure_refuses_records_that_differ_from_the_summary(tmp_path):
    name = store.phase3_cliff_record_path(tmp_path, TAG, 32).name
    write_cliff(tmp_path, record_files={name: "0" * 64})
    with pytest.raises(store.ResultsError, match="differs from the file its summary lists"):
        sa.analyse(TAG, TAG, tmp_path, words, confidence=0.95)
