"""Continuous metrics: table tests against hand-computed values and numpy/scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from study.analysis import continuous


@pytest.mark.parametrize("answers, expected", [
    ([], ["42"]),
    (["42", None, "7", "7", "42.0", "8"], ["42", "7", "8"]),  # 42.0 is gold by the rule
    ([None, None], ["42"]),
    (["3", "1", "3"], ["42", "3", "1"]),
])
def test_solution_set(answers, expected):
    same = lambda a: float(a) == 42.0  # noqa: E731
    assert continuous.solution_set(answers, "42", same) == expected


@pytest.mark.parametrize("logps", [[0.0], [-1.0, -2.0, -3.0], [-0.1, -50.0, -400.0],
                                   [-2.0, -2.0]])
def test_metrics_against_numpy_and_scipy(logps):
    p = np.exp(np.array(logps)) + 1e-10
    p = p / p.sum()
    got = continuous.metrics(logps, 0)
    assert got["p_gold"] == pytest.approx(p[0], rel=1e-12)
    assert got["entropy_bits"] == pytest.approx(scipy_entropy(p, base=2), abs=1e-12)
    assert got["gold_rank"] == 1 + int((p > p[0]).sum())


def test_hand_values():
    # two candidates with p = 0.5 and 0.25 -> p~ = 2/3, 1/3
    m = continuous.metrics([math.log(0.25), math.log(0.5)], 0)
    assert m["p_gold"] == pytest.approx(1 / 3)
    assert m["gold_rank"] == 2
    third = 1 / 3
    assert m["entropy_bits"] == pytest.approx(-third * math.log2(third)
                                              - 2 * third * math.log2(2 * third))
    # both underflow: the smoothing makes them equal
    m = continuous.metrics([-1e4, -1e4], 1)
    assert m["p_gold"] == pytest.approx(0.5) and m["gold_rank"] == 1
    assert m["entropy_bits"] == pytest.approx(1.0)


def test_budget_metrics():
    records = [{"p_gold": 0.2, "entropy_bits": 1.0, "gold_rank": 2},
               {"p_gold": 0.6, "entropy_bits": 0.0, "gold_rank": 1},
               {"correct": True}]  # a record without metrics is left out
    out = continuous.budget_metrics(records, 500, 0.95, 0)
    assert out["n"] == 2 and out["p_gold"] == pytest.approx(0.4)
    assert out["entropy_bits"] == pytest.approx(0.5) and out["gold_rank"] == pytest.approx(1.5)
    assert 0.2 <= out["p_gold_ci_low"] <= 0.4 <= out["p_gold_ci_high"] <= 0.6
    assert continuous.budget_metrics([{"correct": False}], 10, 0.95, 0)["p_gold"] is None
