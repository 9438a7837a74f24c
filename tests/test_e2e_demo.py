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


def test_demo_html_report_is_small_and_marks_budgets_at_token_offsets(hf_demo, smol_tokenizer):
    """The page's budget marks against the rollout log's token ids decoded as the engine does."""
    import importlib.util
    import os
    import re

    import utils

    page = hf_demo["results"] / f"report_{MODEL}.html"
    assert page.stat().st_size < 2_000_000
    blob = re.search(r'id="study-data">(.*?)</script>', page.read_text(), re.DOTALL).group(1)
    data = json.loads(blob)
    budgets = data["budgets"]
    assert len(data["problems"]) == DEMO.data.num_samples
    lines = store.rollouts_path(hf_demo["results"], "phase1", MODEL).read_text().splitlines()
    ids = {row["problem_id"]: row["token_ids"] for row in map(json.loads, lines[1:])}
    exact = 0
    for problem in data["problems"]:
        full = utils.decode_text(smol_tokenizer, ids[problem["id"]][:budgets[-1]])
        assert "".join(s[0] for s in problem["roll"]) == full
        for k, budget in enumerate(budgets):
            before = "".join(s[0] for s in problem["roll"] if s[1] <= k)
            decoded = utils.decode_text(smol_tokenizer, ids[problem["id"]][:budget])
            # Exact, unless the prefix ends inside a character (then the mark sits before it).
            assert before == os.path.commonprefix([decoded, full])
            exact += before == decoded
    assert exact >= 0.95 * len(budgets) * len(data["problems"])

    spec = importlib.util.spec_from_file_location(
        "screenshot_html", DEMO_CONFIG.parent.parent / "scripts" / "screenshot_html.py")
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    if shots.chromium() is None:
        pytest.skip("no chromium (scripts/setup.sh installs it with apt-get as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = shots.launch(playwright)
        errors: list[str] = []
        tab = browser.new_page(viewport=shots.VIEWPORT)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
        tab.goto(page.resolve().as_uri())
        tab.wait_for_selector("html[data-ready]")
        assert tab.locator("tr.problem").count() == len(data["problems"]) and errors == []
        shots.screenshot(tab, hf_demo["results"] / "report_html.png")
        browser.close()
