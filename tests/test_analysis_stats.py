"""Tests for study.analysis.stats (and the intervals/comparisons modules it re-exports):
hand-computed tables, scipy and brute-force cross-checks, seeded determinism.

The confidence level, resample count and seed are required arguments in the product (their one
source is config.StatisticsConfig), so every call here passes them explicitly.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections import Counter
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from scipy import stats as sps

from study.analysis import comparisons, intervals, stats

CONF = 0.95  # the usual two-sided level; the hand values below are computed for it
BOOT = {"n_resamples": 2000, "confidence": CONF, "seed": 0}  # the study's bootstrap settings

# --------------------------------------------------------------------------- Wilson


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return center - half, center + half


def test_wilson_8_of_10_by_hand():
    low, high = stats.wilson_ci(8, 10, CONF)
    assert (low, high) == pytest.approx(_wilson_by_hand(8, 10), abs=1e-12)
    assert (low, high) == pytest.approx((0.4901625, 0.9433178), abs=1e-6)


@pytest.mark.parametrize("k,n", [(0, 1), (0, 10), (1, 10), (5, 10), (10, 10), (37, 1319), (3, 7)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, confidence):
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert stats.wilson_ci(k, n, confidence) == pytest.approx((ref.low, ref.high), abs=1e-10)


def test_wilson_edges_and_errors():
    assert stats.wilson_ci(0, 0, CONF) == (0.0, 1.0)
    assert stats.wilson_ci(0, 5, CONF)[0] == 0.0
    assert stats.wilson_ci(5, 5, CONF)[1] == 1.0
    for bad in [(-1, 5), (6, 5), (1, -1)]:
        with pytest.raises(ValueError):
            stats.wilson_ci(*bad, CONF)
    with pytest.raises(ValueError):
        stats.wilson_ci(1, 2, confidence=1.0)


def test_proportion_summary():
    summary = stats.proportion_summary([True, False, True, True], CONF)
    assert summary["n"] == 4 and summary["n_correct"] == 3
    assert summary["accuracy"] == 0.75
    assert (summary["ci_low"], summary["ci_high"]) == stats.wilson_ci(3, 4, CONF)
    assert math.isnan(stats.proportion_summary([], CONF)["accuracy"])
    wide = stats.proportion_summary([True, False, True, True], confidence=0.99)
    assert wide["ci_low"] < summary["ci_low"] and summary["ci_high"] < wide["ci_high"]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_given_seed():
    values = np.random.default_rng(7).normal(size=60)
    first = stats.bootstrap_ci(values, **{**BOOT, "seed": 3})
    assert stats.bootstrap_ci(values, **{**BOOT, "seed": 3}) == first
    assert stats.bootstrap_ci(values, **{**BOOT, "seed": 4}) != first
    assert first[0] < values.mean() < first[1]


def test_bootstrap_constant_values_give_point_interval():
    assert stats.bootstrap_ci([0.5] * 20, **BOOT) == pytest.approx((0.5, 0.5))
    assert all(math.isnan(x) for x in stats.bootstrap_ci([], **BOOT))


def test_bootstrap_2d_resamples_whole_rows():
    # Rows are either all-correct or all-wrong: any row resampling keeps the pooled mean
    # equal to the mean of row means, and a 2-D CI equals the 1-D CI of row means.
    matrix = np.array([[1, 1, 1]] * 4 + [[0, 0, 0]] * 6, dtype=float)
    ci_2d = stats.bootstrap_ci(matrix, np.mean, n_resamples=500, confidence=CONF, seed=1)
    ci_1d = stats.bootstrap_ci(matrix.mean(axis=1), np.mean, n_resamples=500, confidence=CONF,
                               seed=1)
    assert ci_2d == pytest.approx(ci_1d)


def test_bootstrap_custom_statistic_and_width_shrinks_with_confidence():
    values = np.arange(50, dtype=float)
    wide = stats.bootstrap_ci(values, np.median, n_resamples=1000, confidence=0.99, seed=0)
    narrow = stats.bootstrap_ci(values, np.median, n_resamples=1000, confidence=0.5, seed=0)
    assert wide[0] <= narrow[0] <= narrow[1] <= wide[1]
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


def test_bootstrap_coverage_is_roughly_nominal():
    rng = np.random.default_rng(123)
    true_mean, hits, trials = 1.0, 0, 150
    for trial in range(trials):
        sample = rng.normal(true_mean, 2.0, size=40)
        low, high = stats.bootstrap_ci(sample, n_resamples=400, confidence=CONF, seed=trial)
        hits += low <= true_mean <= high
    assert 0.85 <= hits / trials <= 0.99


# --------------------------------------------------------------------------- pass@k


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2)),  # = 0.7
        (5, 2, 1, 0.4),
        (5, 0, 3, 0.0),
        (5, 5, 1, 1.0),
        (5, 3, 3, 1.0),  # k > n - c: every 3-subset has a correct sample
        (10, 1, 10, 1.0),
        (100, 7, 10, 1 - math.comb(93, 10) / math.comb(100, 10)),
    ],
)
def test_pass_at_k_table(n, c, k, expected):
    assert stats.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_hand_value_and_errors():
    assert stats.pass_at_k(5, 2, 2) == pytest.approx(0.7)
    for bad in [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)]:
        with pytest.raises(ValueError):
            stats.pass_at_k(*bad)


def test_pass_at_k_large_n_is_stable():
    value = stats.pass_at_k(2000, 1000, 50)
    assert 0.999999 < value <= 1.0


def _pass_at_k_brute(row: list[bool], k: int) -> Fraction:
    """Reference pass@k of one problem: the share of its k-sample subsets holding a correct one."""
    subsets = list(combinations(row, k))
    return Fraction(sum(any(subset) for subset in subsets), len(subsets))


def _mean_pass_at_k(matrix: np.ndarray, k: int) -> float:
    """Mean over problems of the product's pass@k (the study averages it the same way)."""
    n = matrix.shape[1]
    return float(np.mean([stats.pass_at_k(n, int(c), k) for c in matrix.sum(axis=1)]))


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_pass_at_k_equals_brute_force_over_subsets(n):
    for c in range(n + 1):
        row = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert stats.pass_at_k(n, c, k) == pytest.approx(float(_pass_at_k_brute(row, k)),
                                                             abs=1e-12)


def test_mean_pass_at_k_over_problems():
    matrix = np.array([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    brute = [np.mean([float(_pass_at_k_brute(list(row), k)) for row in matrix]) for k in (1, 2)]
    assert _mean_pass_at_k(matrix, 2) == pytest.approx((0.7 + 0.0 + 1.0) / 3) == brute[1]
    assert _mean_pass_at_k(matrix, 1) == pytest.approx(matrix.mean()) == brute[0]
    with pytest.raises(ValueError):
        _mean_pass_at_k(matrix, 6)


# --------------------------------------------------------------------------- majority / maj@k


@pytest.mark.parametrize(
    "answers,expected",
    [
        (["3", "4", "3"], "3"),
        (["4", "3", "3", "4"], "4"),  # tie: first occurrence wins
        (["3", "4", "4", "3"], "3"),
        ([None, None, "7"], "7"),  # None ignored
        ([None, "5", None, "6", "6"], "6"),
        ([None, None], None),
        ([], None),
    ],
)
def test_majority_vote_table(answers, expected):
    assert stats.majority_vote(answers) == expected


def _numeric_equal(a: str, b: str) -> bool:
    return float(a) == float(b)


def test_majority_vote_groups_equivalent_answers():
    answers = ["2", "0.5", "0.50", "2"]
    assert stats.majority_vote(answers) == "2"  # exact strings: "2" x2 beats singletons
    # Grouped: "0.5" and "0.50" pool to 2 votes, tying with "2", which appeared first.
    assert stats.majority_vote(answers, same=_numeric_equal) == "2"
    assert stats.majority_vote(["0.5", "2", "0.50"], same=_numeric_equal) == "0.5"


def test_maj_at_k():
    answers = [
        ["1", "2", "2", "1", "1"],  # 3 of 5 right; every 5-subset -> "1"
        [None, None, "9", "9", "9"],  # 3 of 5 right; no-answer samples do not vote
        ["5", "5.0", "6", "6", "6"],  # grouped: "5"/"5.0" x2 against "6" x3
    ]
    gold = ["1", "9", "5"]
    # maj@1 over all 1-subsets is the share of right samples (= pass@1): (3 + 3 + 2) / 15.
    assert stats.maj_at_k(answers, gold, 1, _numeric_equal) == pytest.approx(8 / 15)
    assert stats.maj_at_k(answers, gold, 5, _numeric_equal) == pytest.approx(2 / 3)
    # k = 3 over all 10 subsets (ties split evenly): brute force in tests/test_grading_majority.py.
    assert stats.maj_at_k(answers, gold, 3, _numeric_equal) == pytest.approx(2 / 3)
    exact = stats.maj_at_k(answers, gold, 3, _numeric_equal, group_equivalent=False)
    assert exact == pytest.approx(19 / 30)
    assert stats.maj_at_k([["4", "6", "6"]], ["4"], 3, _numeric_equal) == 0.0


def test_maj_at_k_errors():
    with pytest.raises(ValueError):
        stats.maj_at_k([["1"]], ["1", "2"], 1, _numeric_equal)
    with pytest.raises(ValueError):
        stats.maj_at_k([["1"]], ["1"], 2, _numeric_equal)


# --------------------------------------------------------------------------- run variability

RUNS = np.array(
    [
        [1, 1, 1, 1, 1],
        [1, 0, 1, 0, 1],
        [0, 0, 0, 0, 0],
        [1, 1, 0, 1, 1],
    ],
    dtype=bool,
)


def test_run_and_problem_accuracies():
    np.testing.assert_allclose(stats.per_sample_run_accuracy(RUNS), [0.75, 0.5, 0.5, 0.5, 0.75])
    mean, std = stats.mean_std_over_runs(RUNS)
    assert mean == pytest.approx(0.6)
    # Sample std of [.75, .5, .5, .5, .75]: deviations +-.15/.1, sum sq = 3*.01 + 2*.0225 = .075
    assert std == pytest.approx(math.sqrt(0.075 / 4))
    assert math.isnan(stats.mean_std_over_runs(RUNS[:, :1])[1])


def test_success_rate_histogram():
    hist = stats.success_rate_histogram(RUNS)
    assert hist == {"0/5": 1, "1/5": 0, "2/5": 0, "3/5": 1, "4/5": 1, "5/5": 1}
    assert list(hist) == [f"{i}/5" for i in range(6)]


def _per_problem_success(matrix: np.ndarray) -> list[Fraction]:
    """Reference: the exact share of samples each problem got right."""
    return [Fraction(int(sum(row)), len(row)) for row in matrix]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_success_rate_histogram_counts_per_problem_success(seed):
    matrix = np.random.default_rng(seed).random((40, 4)) < 0.5
    counts = Counter(_per_problem_success(matrix))
    expected = {f"{i}/4": counts.get(Fraction(i, 4), 0) for i in range(5)}
    assert stats.success_rate_histogram(matrix) == expected
    assert _per_problem_success(RUNS) == [1, Fraction(3, 5), 0, Fraction(4, 5)]


# --------------------------------------------------------------------------- paired tests


def test_mcnemar_on_known_table():
    # 10 problems only b solves, 2 only a solves, 8 both, 5 neither.
    a = [0] * 10 + [1] * 2 + [1] * 8 + [0] * 5
    b = [1] * 10 + [0] * 2 + [1] * 8 + [0] * 5
    result = stats.paired_difference(a, b, n_resamples=500, confidence=CONF, seed=0)
    assert result["test"] == "mcnemar-exact"
    assert (result["b_only"], result["a_only"], result["n"]) == (10, 2, 25)
    # Two-sided exact binomial: 2 * P(X <= 2 | 12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    assert result["p_value"] == pytest.approx(158 / 4096)
    assert result["mean_diff"] == pytest.approx(8 / 25)
    assert result["ci_low"] < 8 / 25 < result["ci_high"]


def test_mcnemar_no_discordant_pairs():
    result = stats.paired_difference([1, 0, 1], [1, 0, 1], **{**BOOT, "n_resamples": 100})
    assert result["p_value"] == 1.0 and result["mean_diff"] == 0.0
    assert (result["ci_low"], result["ci_high"]) == (0.0, 0.0)


def test_wilcoxon_branch():
    a = np.array([0.2, 0.4, 0.0, 0.6, 0.8, 0.2, 0.5])
    b = a + np.array([0.2, 0.4, 0.6, 0.8, 0.1, 0.3, 0.0])  # six positive, one zero
    result = stats.paired_difference(a, b, n_resamples=300, confidence=CONF, seed=0)
    assert result["test"] == "wilcoxon"
    # Zero dropped, six distinct positive differences: exact two-sided p = 2 / 2**6.
    assert result["p_value"] == pytest.approx(2 / 64)
    assert stats.paired_difference(a, a, **{**BOOT, "n_resamples": 50})["p_value"] == 1.0


def test_paired_difference_is_seeded_and_validates():
    a = np.random.default_rng(0).random(30)
    b = a + 0.05
    boot = {**BOOT, "seed": 5}
    assert stats.paired_difference(a, b, **boot) == stats.paired_difference(a, b, **boot)
    with pytest.raises(ValueError):
        stats.paired_difference([1, 0], [1], **BOOT)
    with pytest.raises(ValueError):
        stats.paired_difference([], [], **BOOT)


@pytest.mark.parametrize(
    "diff,expected",
    [
        # CI inside +-0.02 -> plateau even if significant.
        ({"mean_diff": 0.01, "ci_low": 0.005, "ci_high": 0.015, "p_value": 0.001}, True),
        # Not significant and small mean -> plateau although the CI is wide.
        ({"mean_diff": 0.01, "ci_low": -0.05, "ci_high": 0.07, "p_value": 0.4}, True),
        # Not significant but large observed change -> not a plateau (underpowered).
        ({"mean_diff": 0.05, "ci_low": -0.01, "ci_high": 0.11, "p_value": 0.08}, False),
        # Significant and large -> not a plateau.
        ({"mean_diff": 0.10, "ci_low": 0.06, "ci_high": 0.14, "p_value": 0.0001}, False),
        # Significant small change with wide CI -> not a plateau.
        ({"mean_diff": 0.01, "ci_low": -0.03, "ci_high": 0.05, "p_value": 0.01}, False),
        # NaNs never satisfy a criterion.
        (
            {
                "mean_diff": float("nan"),
                "ci_low": float("nan"),
                "ci_high": float("nan"),
                "p_value": float("nan"),
            },
            False,
        ),
    ],
)
def test_plateau_verdict_table(diff, expected):
    is_plateau, reason = stats.plateau_verdict({**diff, "test": "wilcoxon"}, min_effect=0.02,
                                               alpha=0.05)
    assert is_plateau is expected
    assert reason.startswith("plateau" if expected else "not a plateau")
    assert "min effect 0.02" in reason


# --------------------------------------------------------------------------- budget curves

ACC = {96: 0.30, 112: 0.32, 128: 0.40, 144: 0.58, 160: 0.62, 176: 0.63}


def test_gain_per_token_and_steepest():
    gains = stats.gain_per_token(ACC)
    assert [(g["from"], g["to"]) for g in gains] == [
        (96, 112),
        (112, 128),
        (128, 144),
        (144, 160),
        (160, 176),
    ]
    assert gains[2]["gain"] == pytest.approx(0.18)
    assert gains[2]["gain_per_token"] == pytest.approx(0.18 / 16)
    top = stats.steepest_windows(gains, top=2)
    assert [(g["from"], g["to"]) for g in top] == [(128, 144), (112, 128)]
    assert stats.gain_per_token({64: 0.5}) == []


def test_steepest_windows_tie_goes_to_earlier_window():
    gains = stats.gain_per_token({0: 0.0, 10: 0.1, 20: 0.2, 30: 0.2})
    assert [g["from"] for g in stats.steepest_windows(gains, top=3)] == [0, 10, 20]


@pytest.mark.parametrize(
    "acc,expected",
    [
        (ACC, (128, 144)),  # total 0.33, half 0.165; 0.18 in one 16-token step
        ({32: 0.1, 64: 0.2, 128: 0.3, 256: 0.4}, (32, 128)),  # 0.2 >= 0.15 in 96 tokens
        ({0: 0.0, 10: 0.1, 20: 0.2, 30: 0.3, 40: 0.4}, (0, 20)),  # ties on width: earliest
        ({0: 0.5, 10: 0.4, 20: 0.5}, None),  # no total gain
        ({0: 0.5, 10: 0.2}, None),  # decline
        ({0: 0.0, 10: 0.3, 20: 0.1, 30: 0.2}, (0, 10)),  # non-monotone: 0.3 >= 0.1
    ],
)
def test_half_gain_window(acc, expected):
    assert stats.half_gain_window(acc) == expected


@pytest.mark.parametrize(
    "table,expected",
    [
        (
            {
                32: (0.1, 0.05, 0.2),
                64: (0.5, 0.4, 0.6),
                128: (0.66, 0.56, 0.75),
                256: (0.68, 0.58, 0.77),
                512: (0.67, 0.57, 0.76),
            },
            128,
        ),  # 0.66 >= 0.58
        ({32: (0.1, 0.05, 0.2), 64: (0.3, 0.2, 0.4)}, 64),  # best is the last
        ({32: (0.5, 0.4, 0.6), 64: (0.5, 0.4, 0.6)}, 32),  # flat curve
        ({}, None),
    ],
)
def test_saturation_budget(table, expected):
    assert stats.saturation_budget(table) == expected


def test_bootstrap_gain_per_token_paired_and_seeded():
    rng = np.random.default_rng(0)
    low = rng.random(80) < 0.3
    high = low | (rng.random(80) < 0.4)  # every problem solved at 96 stays solved at 112
    rows = stats.bootstrap_gain_per_token({112: high, 96: low}, **{**BOOT, "n_resamples": 400,
                                                                   "seed": 2})
    assert len(rows) == 1 and (rows[0]["from"], rows[0]["to"]) == (96, 112)
    gain = (high.mean() - low.mean()) / 16
    assert rows[0]["gain_per_token"] == pytest.approx(gain)
    # Paired resampling of a dominating budget can never give a negative gain.
    assert 0.0 <= rows[0]["ci_low"] < gain < rows[0]["ci_high"]
    again = stats.bootstrap_gain_per_token({96: low, 112: high}, **{**BOOT, "n_resamples": 400,
                                                                    "seed": 2})
    assert again == rows


def test_bootstrap_gain_per_token_2d_and_mismatch():
    matrix = np.array([[1, 0], [1, 1], [0, 0]], dtype=bool)
    rows = stats.bootstrap_gain_per_token({10: matrix, 20: np.ones(3)}, **BOOT)
    assert rows[0]["gain"] == pytest.approx(1 - 0.5)
    with pytest.raises(ValueError):
        stats.bootstrap_gain_per_token({10: np.ones(3), 20: np.ones(4)}, **BOOT)


# --------------------------------------------------------------------------- agreement


def _labels_from_2x2(yy: int, yn: int, ny: int, nn: int) -> tuple[list[str], list[str]]:
    pairs = [("y", "y")] * yy + [("y", "n")] * yn + [("n", "y")] * ny + [("n", "n")] * nn
    return [a for a, _ in pairs], [b for _, b in pairs]


def test_cohens_kappa_classic_example():
    # po = (20 + 15) / 50 = 0.7; pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    a, b = _labels_from_2x2(20, 5, 10, 15)
    assert stats.cohens_kappa(a, b) == pytest.approx(0.4)
    assert stats.confusion_table(a, b) == {"n": {"n": 15, "y": 10}, "y": {"n": 5, "y": 20}}


@pytest.mark.parametrize(
    "a,b,expected",
    [
        (["x", "y", "z"], ["x", "y", "z"], 1.0),
        (["x", "x", "x"], ["x", "x", "x"], 1.0),  # pe == 1 and po == 1
        (["y", "n"], ["n", "y"], -1.0),  # po 0, pe 0.5
        ([], [], float("nan")),
    ],
)
def test_cohens_kappa_edges(a, b, expected):
    value = stats.cohens_kappa(a, b)
    if math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == pytest.approx(expected)


def test_confusion_table_includes_labels_seen_by_either_rater():
    table = stats.confusion_table(["logic", "setup"], ["logic", "arithmetic"])
    assert set(table) == {"arithmetic", "logic", "setup"}
    assert table["setup"]["arithmetic"] == 1 and table["arithmetic"]["setup"] == 0
    with pytest.raises(ValueError):
        stats.confusion_table(["a"], [])


# --------------------------------------------------------------------------- one source of defaults

RESAMPLING = [stats.bootstrap_ci, stats.paired_difference, stats.bootstrap_gain_per_token]
CONFIG_DRIVEN = {  # parameter -> the StatisticsConfig field (or the study seed) it comes from
    "n_resamples": "bootstrap_resamples", "confidence": "confidence", "seed": "seed",
    "min_effect": "min_effect", "alpha": "alpha", "top": "top_steepest",
}


@pytest.mark.parametrize("function", [*RESAMPLING, stats.wilson_ci, stats.proportion_summary,
                                      stats.plateau_verdict, stats.steepest_windows])
def test_config_driven_parameters_have_no_default(function):
    params = inspect.signature(function).parameters
    driven = [name for name in params if name in CONFIG_DRIVEN]
    assert driven, function.__name__
    assert all(params[name].default is inspect.Parameter.empty for name in driven)


@pytest.mark.parametrize("function", RESAMPLING)
def test_resampling_settings_are_keyword_only(function):
    params = inspect.signature(function).parameters
    for name in ("n_resamples", "confidence", "seed"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_stats_reexports_the_split_modules():
    assert stats.wilson_ci is intervals.wilson_ci and stats.bootstrap_ci is intervals.bootstrap_ci
    assert stats.paired_difference is comparisons.paired_difference
    assert stats.cohens_kappa is comparisons.cohens_kappa
    assert not hasattr(stats, "mean_pass_at_k") and not hasattr(stats, "per_problem_success")
    assert all(hasattr(stats, name) for name in stats.__all__)


def test_each_config_driven_parameter_names_a_statistics_setting():
    import config  # imported here so that the pure-statistics tests do not depend on it

    fields = {f.name for f in dataclasses.fields(config.StatisticsConfig)}
    assert {v for v in CONFIG_DRIVEN.values() if v != "seed"} <= fields
