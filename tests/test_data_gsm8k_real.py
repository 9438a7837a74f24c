"""Phase 1 of the real SmolLM2 on 16 real GSM8K problems, offline, from the shipped copy (slow)."""

from __future__ import annotations

import json

import pytest

import phase1_main
from study import store
from study.data import datasets
from study.grading import grader

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"
BUDGETS = (32, 160)


def test_smollm2_phase1_on_16_shipped_gsm8k_problems(tmp_path, capsys):
    results = tmp_path / "results"
    argv = ["--model", MODEL, "--dataset", "gsm8k", "--num-samples", "16", "--budgets",
            *map(str, BUDGETS), "--results-dir", str(results), "--batch-size", "16", "--quiet"]
    assert phase1_main.main(argv) == 0
    out = capsys.readouterr().out
    assert "Budget" in out and "n = 16 problems" in out

    summary = store.read_json(store.phase1_combined_path(results, MODEL))
    dataset = summary["provenance"]["dataset"]
    assert dataset["source"] == "shipped" and dataset["n"] == 16
    assert dataset["sha256"] == datasets.expected_sha256("gsm8k_test.jsonl",
                                                         datasets.SHIPPED_DIR)
    # Gold answers are the shipped file's own "#### N" lines, read here independently.
    shipped = [json.loads(line) for line in
               (datasets.SHIPPED_DIR / "gsm8k_test.jsonl").read_text().splitlines()[:16]]
    golds = [row["answer"].split("####")[-1].strip().replace(",", "") for row in shipped]
    for budget in BUDGETS:
        records = store.read_json(store.phase1_record_path(results, MODEL, budget))
        assert [r["problem_id"] for r in records] == [f"gsm8k-test-{i:05d}" for i in range(16)]
        assert [r["ground_truth"] for r in records] == golds
        assert all(r["tokens_used"] <= budget for r in records)
        for r in records:  # every verdict is the grader's on the stored text
            assert r["correct"] == grader.grade(r["generated"], r["ground_truth"]).correct
        row = summary["budgets"][str(budget)]
        assert row["n"] == 16 and row["accuracy"] == sum(r["correct"] for r in records) / 16
    short, long = (summary["budgets"][str(b)] for b in BUDGETS)
    # 32 tokens cut nearly every GSM8K solution; a longer budget lets answers finish.
    assert short["hit_budget_rate"] > 0.9 and long["hit_budget_rate"] < short["hit_budget_rate"]
    assert long["avg_tokens"] > short["avg_tokens"]
