"""Curve fits (study.analysis.fits): known curves are recovered from simulated per-problem outcomes
and the right model wins; the batched solver agrees with scipy's bounded optimiser."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from study.analysis import fits

BUDGETS = [2 ** i for i in range(4, 12)]  # 16 .. 2048
X = np.log2(BUDGETS)


def simulate(p: np.ndarray, problems: int = 3000, seed: int = 0) -> np.ndarray:
    """Per-problem 0/1 outcomes: problem i is right at budget j with probability p[j]."""
    return (np.random.default_rng(seed).random((problems, len(p))) < p).astype(float)


def fit(p: np.ndarray) -> dict:
    return fits.fit_all(BUDGETS, simulate(p), n_resamples=30, confidence=0.95, seed=1)


def test_log_linear_curve():
    result = fit(0.1 + 0.1 * (X - 4))
    params = result["models"]["log-linear"]["params"]
    assert params["a"] == pytest.approx(0.1, abs=0.02)
    assert params["b"] == pytest.approx(0.1, abs=0.01)  # accuracy per doubling
    assert result["best"] == "log-linear"


def test_piecewise_curve_with_a_known_breakpoint():
    result = fit(np.where(X <= 7, 0.05, 0.05 + 0.2 * (X - 7)))  # flat, then +20 pp/doubling
    params = result["models"]["piecewise"]["params"]
    assert result["best"] == "piecewise"
    assert params["tau"] == pytest.approx(7.0, abs=0.25)
    assert 110 <= result["breakpoint"] <= 150
    low, high = result["breakpoint_ci"]
    assert low <= result["breakpoint"] <= high and low <= 128 * 1.1 and high >= 128 / 1.1
    assert params["slope_before"] == pytest.approx(0.0, abs=0.02)
    assert params["slope_after"] == pytest.approx(0.2, abs=0.02)


def test_saturating_curve():
    result = fit(0.1 + 0.7 * (1 - np.exp(-0.8 * (X - 4))))
    params = result["models"]["saturating"]["params"]
    assert result["best"] == "saturating"
    assert result["saturation_level"] == pytest.approx(0.8, abs=0.02)
    assert params["a"] == pytest.approx(0.1, abs=0.03)
    assert params["rate"] == pytest.approx(0.8, rel=0.15)


def test_information_criteria_follow_their_definitions():
    result = fit(0.2 + 0.05 * (X - 4))
    n = result["n_outcomes"]
    assert n == 3000 * len(BUDGETS)
    for model in result["models"].values():
        k, ll = model["n_params"], model["log_likelihood"]
        assert model["aic"] == pytest.approx(2 * k - 2 * ll)
        assert model["bic"] == pytest.approx(k * np.log(n) - 2 * ll)
    # Nested models: the piecewise curve contains the line, so it never fits worse.
    assert (result["models"]["piecewise"]["log_likelihood"]
            >= result["models"]["log-linear"]["log_likelihood"] - 1e-6)


def test_batched_solver_matches_scipy_at_a_fixed_breakpoint():
    outcomes = simulate(np.array([0.0, 0.0, 0.02, 0.1, 0.4, 0.5, 0.55, 0.6]), problems=200)
    s, t = fits.counts(outcomes, 1)
    taus, theta, ll = fits.profile_breakpoints(X, s[None], t[None])
    for j in (3, len(taus) // 2, len(taus) - 2):
        knots = [X[0], taus[j], X[-1]]

        def neg(th, knots=knots):
            return -fits.log_likelihood(np.interp(X, knots, th), s, t)

        ref = minimize(neg, [0.3, 0.3, 0.3], method="L-BFGS-B", bounds=[(1e-6, 1 - 1e-6)] * 3,
                       options={"ftol": 1e-14, "gtol": 1e-10})
        assert ll[0, j] == pytest.approx(-ref.fun, abs=1e-3)
        assert ll[0, j] >= -ref.fun - 1e-3


def test_predict_passes_through_the_fitted_values():
    result = fit(np.where(X <= 7, 0.05, 0.05 + 0.2 * (X - 7)))
    params = result["models"]["piecewise"]["params"]
    assert fits.predict("piecewise", params, np.array([params["tau"]]))[0] == pytest.approx(
        params["p_tau"])
    with pytest.raises(ValueError):
        fits.fit_all([16, 32], np.zeros((3, 2)), n_resamples=0, confidence=0.95, seed=0)
