"""The real SmolLM2 under a stand-in thinking template, end to end (slow: the real model).

SmolLM2 does not think in markers; here its chat template opens the assistant turn with
"<think>\\n" as DeepSeek-R1's distills do, so the study reads it as a reasoning model (markers
from the template, as text: SmolLM2's vocabulary has no such tokens). The model will not really
think, but every piece of the path runs: generation under the template, thinking spans found
in real tokens (the marker as a token sequence or inside merged tokens), thinking-aware
records, the summary block, the table column, force-end's cue and the figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import phase1_main
from study import store
from study.figures.style import save_figure
from study.figures.thinking import fig12_thinking_budget

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
BUDGETS = ("16", "32", "64")
STAND_IN = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
            "{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}"
            "<|im_start|>assistant\n<think>\n{% endif %}")


@pytest.fixture(scope="module")
def smollm2_thinking(tmp_path_factory, smol_tokenizer) -> Path:
    """SmolLM2's weights (linked, not copied) with the stand-in template."""
    import copy

    from engine.loading import prepare_smollm2

    source = prepare_smollm2(REPO / "data")
    folder = tmp_path_factory.mktemp("smollm2-thinking")
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        os.symlink(source / name, folder / name)
    tok = copy.deepcopy(smol_tokenizer)
    tok.chat_template = STAND_IN
    tok.save_pretrained(folder)
    return folder


def args(model: Path, results: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--dataset", "arith", "--num-samples", "6", "--budgets",
            *BUDGETS, "--batch-size", "6", "--results-dir", str(results), "--quiet",
            "--bootstrap-resamples", "50", *extra]


def records(results: Path, tag: str, budget: str) -> list[dict]:
    return store.read_records(store.phase1_record_path(results, tag, int(budget)))


def test_stand_in_thinking_template_end_to_end(smollm2_thinking, tmp_path, capsys):
    results = tmp_path / "results"
    tag = "smollm2-thinking0"
    assert phase1_main.main(args(smollm2_thinking, results)) == 0
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("Budget")).endswith("Closed")
    for budget in BUDGETS:
        for r in records(results, tag, budget):
            assert 0 <= r["thinking_tokens"] <= r["tokens_used"] <= int(budget)
            if not r["closed_thinking"]:  # nothing is read while thinking is open
                assert r["thinking_tokens"] == r["tokens_used"]
                assert r["predicted"] is None and r["answer_present"] is False
    summary = store.read_json(store.phase1_combined_path(results, tag))
    assert summary["thinking"]["markers"] == ["<think>", "</think>"]

    # Markers the model does write ("=" in "3 + 4 = 7"): found in real tokens, closed more
    # often as the budget grows, and the answer read after them.
    other = tmp_path / "equals"
    assert phase1_main.main(args(smollm2_thinking, other, "--thinking-markers", "<think>",
                                 "=")) == 0
    summary = store.read_json(store.phase1_combined_path(other, tag))
    shares = [summary["thinking"]["budgets"][b]["closed_thinking_rate"] for b in BUDGETS]
    assert shares == sorted(shares) and shares[-1] > 0
    for r in records(other, tag, BUDGETS[-1]):
        if r["closed_thinking"]:
            assert "=" in r["generated"] and r["thinking_tokens"] < r["tokens_used"]
    paths = save_figure(fig12_thinking_budget(summary), "fig12", tmp_path / "figures")
    assert all(p.stat().st_size > 10_000 for p in paths)

    # Force-end on the same rollouts: the cue opens with the end-of-thinking marker.
    assert phase1_main.main(args(smollm2_thinking, results, "--budget-mode", "force-end",
                                 "--answer-tokens", "8")) == 0
    forced = records(results, f"{tag}-force-end", BUDGETS[-1])
    assert all("</think>" in r["generated"] and r["answer_present"] is
               (r["predicted"] is not None) for r in forced)
