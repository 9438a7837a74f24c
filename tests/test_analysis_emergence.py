"""Emergence scores (study.analysis.emergence) against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from study.analysis import emergence


@pytest.mark.parametrize("y, default, bigbench", [
    ([0, 0, 1, 1], 1.0, 100.0),  # one jump: D = (1/3)^2 = L; BIG-bench D = 0 -> inf -> 100
    ([0, 0.25, 0.5, 0.75, 1], 0.25, 4.0),  # n = 4 equal steps: 1/n; BIG-bench 1 / 0.25
    ([0, 0.5, 1], 0.5, 2.0),  # two equal steps
    ([0, 1, 0, 1], 1 / 9, 1.0),  # flips: I = 1, D = 1, L = 1/9; median step^2 = 1
    ([1, 0, 0], 0.0, 0.0),  # a fall is clipped to 0
    ([1, 1, 1], 0.0, 0.0),  # flat: 0/0 -> NaN -> 0
    ([0.2, 0.4], 1.0, 1.0),  # one step of 0.2: 1 · 0.2 / 0.2
])
def test_breakthroughness_by_hand(y, default, bigbench):
    assert emergence.breakthroughness(y) == pytest.approx(default)
    assert emergence.breakthroughness(y, "bigbench") == pytest.approx(bigbench)


def test_skew_by_hand():
    # Steps 0, 1, 0: g1 = (2/27) / (2/9)^1.5 = 1/sqrt(2); G1 = g1 · sqrt(3·2) / 1 = sqrt(3).
    assert emergence.skew([0, 0, 1, 1]) == pytest.approx(math.sqrt(3))
    assert emergence.skew([0, 1, 1]) is None  # two steps: n must exceed 2
    assert emergence.skew([0, 0.25, 0.5, 0.75, 1]) is None  # equal steps: undefined


def test_jumps_and_window_gain_by_hand():
    ids = ["a", "b", "c"]
    trajectories = np.array([[0, 0, 1, 1], [0, 1 / 3, 2 / 3, 1], [1, 1, 1, 1]])
    block = emergence.summarize(ids, [16, 32, 64, 128], trajectories, "correct", 2, (32, 64))
    assert [p["jumps"] for p in block["problems"]] == [True, False, False]
    assert block["problems"][1]["breakthroughness"] == pytest.approx(1 / 3)
    assert block["top"] == ["a", "b"]  # c never rises
    assert block["share_jumping"] == pytest.approx(1 / 3)
    gain = block["window_gain"]
    # Gains over 32 -> 64: a 1, b 1/3, c 0 -> mean 4/9, of which a's 1/3 (three quarters).
    assert gain["gain"] == pytest.approx(4 / 9)
    assert gain["from_jumping"] == pytest.approx(1 / 3)
    assert gain["from_gradual"] == pytest.approx(1 / 9)
    assert gain["jumping_share"] == pytest.approx(0.75)
    assert not emergence.jumps([0, 0.5, 1])  # two equal steps are not a jump
    assert not emergence.jumps([0, 0, 0.2, 0.2])  # sharp but small


def test_rank_agreement():
    a = {"p1": 0.1, "p2": 0.5, "p3": 0.9, "p4": 0.3}
    assert emergence.rank_agreement(a, {k: 2 * v for k, v in a.items()}) == (1.0, 4)
    rho, n = emergence.rank_agreement(a, {"p1": 3, "p2": 2, "p3": 1, "x": 0})
    assert (rho, n) == (pytest.approx(-1.0), 3)
    assert emergence.rank_agreement(a, {"p1": 1}) == (None, 1)


def test_scaling_summary_scores_correctness_and_p_gold_from_stored_records(tmp_path):
    """study.analysis.scaling on hand-made phase-1 records that carry p_gold (as budget forcing
    adds)."""
    import phase1_main
    from config import StudyConfig
    from study import store
    from study.analysis import scaling

    budgets = [16, 32, 64, 128]
    correct = {"a": [0, 0, 1, 1], "b": [0, 1, 0, 1], "c": [1, 1, 1, 1]}
    p_gold = {"a": [0.1, 0.2, 0.9, 0.9], "b": [0.0, 0.25, 0.5, 0.75], "c": [1.0] * 4}
    by_budget = {b: [{"problem_id": pid, "question": "q", "ground_truth": "1", "generated": "",
                      "predicted": None, "predicted_strict": None, "correct": bool(ys[j]),
                      "correct_strict": False, "tokens_used": b, "budget": b,
                      "hit_budget": True, "sample": 0, "p_gold": p_gold[pid][j]}
                     for pid, ys in correct.items()] for j, b in enumerate(budgets)}
    for b, recs in by_budget.items():
        store.write_json(store.phase1_record_path(tmp_path, "smollm2-135m", b), recs)
    store.write_json(store.phase1_combined_path(tmp_path, "smollm2-135m"),
                     {"phase": "phase1", "model": "smollm2-135m", "dataset": "arith",
                      **phase1_main.summarize(by_budget, 0.95), "provenance": {}})
    cfg = StudyConfig().replace({"model.name": "smollm2-135m", "paths.results_dir": tmp_path,
                                 "statistics.fit_bootstrap_resamples": 5})
    summary = scaling.analyse(cfg)
    assert set(summary["emergence"]) == {"correct", "p_gold"}
    scores = {p["problem_id"]: p for p in summary["emergence"]["p_gold"]["problems"]}
    # p_gold of b: four equal steps of 0.25 -> 1/n = 1/3; of a: steps 0.1, 0.7, 0 ->
    # I = 0.8, D = ((sqrt(.1) + sqrt(.7)) / 3)^2, L = 1/9.
    assert scores["b"]["breakthroughness"] == pytest.approx(1 / 3)
    want = (1 / 9) * 0.8 / ((math.sqrt(0.1) + math.sqrt(0.7)) / 3) ** 2
    assert scores["a"]["breakthroughness"] == pytest.approx(want)
    assert summary["emergence"]["correct"]["top"][0] == "a"
    assert summary["fits"]["n_outcomes"] == 12
    path = store.scaling_path(tmp_path, "smollm2-135m")
    written = path.stat().st_mtime_ns
    assert scaling.analyse(cfg) == store.read_json(path)  # same settings: reused, not redone
    assert path.stat().st_mtime_ns == written
