"""The offline demo end to end on the real SmolLM2-135M model (slow: a few minutes on CPU)."""

from __future__ import annotations

import json

import pytest

from config import DEMO_CONFIG, load_yaml
from study import store
from study.annotation.folders import study_name

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"
DEMO = load_yaml(DEMO_CONFIG)


def test_demo_prints_a_real_saturation_curve(hf_demo):
    summary = store.read_json(store.phase1_combined_path(hf_demo["results"], MODEL))
    rows = {int(b): r for b, r in summary["budgets"].items()}
    assert tuple(sorted(rows)) == DEMO.phase1.budgets
    smallest, largest = rows[min(rows)], rows[max(rows)]
    # The curve rises: 16 tokens cut almost every answer; the plateau is clearly higher.
    assert smallest["hit_budget_rate"] > 0.9
    assert largest["accuracy"] > smallest["accuracy"] + 0.1
    assert largest["avg_tokens"] > smallest["avg_tokens"]
    records = store.read_json(store.phase1_record_path(hf_demo["results"], MODEL, 512))
    assert len(records) == DEMO.data.num_samples
    assert all(r["generated"] for r in records)
    prov = summary["provenance"]
    assert prov["device"].startswith("cpu") and prov["tokens_per_s"] > 0


def test_demo_runs_every_later_phase(hf_demo):
    results = hf_demo["results"]
    assert store.phase1b_summary_path(results, MODEL).exists()
    cliff = store.read_json(store.phase3_cliff_summary_path(results, MODEL))
    assert cliff["provenance"]["rollouts_generated"] == 0  # derived from phase-1 rollouts
    assert store.phase3_structure_path(results, MODEL).exists()
    assert store.phase2_analysis_path(results, MODEL).exists()
    folder = hf_demo["annotations"] / study_name(MODEL, DEMO.data.dataset, DEMO.seed)
    tsvs = sorted(folder.glob("annotate_errors_budget*.tsv"))
    assert tsvs, "phase 2 wrote no annotation files"
    figures = {p.name for p in hf_demo["figures"].glob("*.png")}
    assert f"fig1_saturation_curve_{MODEL}.png" in figures
    assert (results / f"report_{MODEL}.md").exists()
    json.dumps(cliff)  # the summary is plain JSON
