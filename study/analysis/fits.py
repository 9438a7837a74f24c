"""Curve fits of accuracy against log2(budget): log-linear, piecewise (one breakpoint), saturating,
and the constant (no budget dependence) they are all compared with.

Pure numbers in, numbers out. The data are per-problem outcomes: ``outcomes[i, j]`` is how many
of problem i's ``samples`` generations were correct at budget j. Each model gives a success
probability p(x) at x = log2(budget) and is fitted by maximum likelihood under the Bernoulli
model of every single outcome (not least squares on the plotted means), so a budget with 40
problems and one with 400 weigh what they should. Per budget the log-likelihood is
``s log p + (t - s) log(1 - p)`` (s correct of t outcomes): the per-problem likelihood summed.

Models (x0 / x1: smallest / largest log2 budget; every parameter that is a probability is kept
in [0, 1], so no fitted curve leaves the unit interval on the budget range):

* ``log-linear``: p = a + b (x - x0); 2 parameters (a, b = accuracy per doubling);
* ``piecewise``: continuous, linear on [x0, tau] and on [tau, x1]; 4 parameters (the value at
  x0, at tau and at x1, and tau). tau is chosen by profile likelihood: the model is refitted for
  each tau on a grid of ``TAU_STEP`` octaves strictly inside the budget range, and the best
  kept. Its CI is a percentile bootstrap over problems (each resample refits the profile);
* ``saturating``: p = a + (L - a)(1 - exp(-c (x - x0))); 3 parameters; L is the fitted
  saturation level (the accuracy it approaches as the budget grows);
* ``constant``: p = c at every budget; 1 parameter (c = all correct / all outcomes, its maximum
  likelihood). It is the null model: the other three contain it, so it never fits better, and
  it wins only when their extra parameters buy less likelihood than BIC charges for them.

AIC = 2k - 2 log L and BIC = k ln(N) - 2 log L with N the number of outcomes, for every model
from the same Bernoulli likelihood (``log_likelihood``, the same clipping to [eps, 1 - eps]);
the best model has the lowest BIC (AIC is reported beside it). When the constant is best the
curve is *flat*: no breakpoint and no saturation level is reported, since none is in the data.

The breakpoint's bootstrap interval says when it is no interval: a resample whose profile
likelihood is the same at every breakpoint (a resample of flat trajectories) identifies no
breakpoint and is left out, and when no resample is left, or every one left gives the same
breakpoint, ``breakpoint_ci_note`` says so instead of an [x, x] interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from study.analysis.intervals import degenerate_note

# The constant goes last, so the three curves keep their rows, order and figure colours.
MODELS = ("log-linear", "piecewise", "saturating", "constant")
TAU_STEP = 0.125  # breakpoint grid: 8 candidates per doubling
_EPS = 1e-6  # probabilities are kept in [eps, 1 - eps] so every log is finite
_RATE = (1e-3, 20.0)  # saturating rate c per doubling: from almost linear to a step
_RATE_STARTS = (0.25, 1.0, 4.0)  # c is not concave in the likelihood: a few starts
# A resample's profile log-likelihood that varies by less than this over the breakpoint grid
# identifies no breakpoint (flat data give the same fit at every tau, up to float noise ~1e-15).
_FLAT_PROFILE = 1e-6


def counts(outcomes: np.ndarray, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(correct outcomes, all outcomes) per budget from a problems x budgets matrix."""
    outcomes = np.asarray(outcomes, dtype=float)
    return outcomes.sum(axis=0), np.full(outcomes.shape[1], float(samples * outcomes.shape[0]))


def log_likelihood(p: np.ndarray, s: np.ndarray, t: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(np.sum(s * np.log(p) + (t - s) * np.log1p(-p)))


def predict(model: str, params: dict, x: np.ndarray) -> np.ndarray:
    """p(x) of a fitted model (``params`` as stored in its fit)."""
    x = np.asarray(x, dtype=float)
    x0 = params["x0"]
    if model == "log-linear":
        return params["a"] + params["b"] * (x - x0)
    if model == "piecewise":
        tau = params["tau"]
        return np.where(x <= tau, params["p0"] + params["slope_before"] * (x - x0),
                        params["p_tau"] + params["slope_after"] * (x - tau))
    if model == "saturating":
        return params["a"] + (params["level"] - params["a"]) * (
            1 - np.exp(-params["rate"] * (x - x0)))
    if model == "constant":
        return np.full_like(x, params["p"])
    raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")


def _maximise(curve: Callable[[np.ndarray], np.ndarray], start: Sequence[float],
              bounds: Sequence[tuple[float, float]], s: np.ndarray,
              t: np.ndarray) -> tuple[np.ndarray, float]:
    """Bounded maximum likelihood of ``curve(theta)`` (p at each budget); (theta, log L)."""
    from scipy.optimize import minimize  # imported on first use: slow to import

    result = minimize(lambda th: -log_likelihood(curve(th), s, t), np.asarray(start, float),
                      method="L-BFGS-B", bounds=bounds)
    return result.x, -float(result.fun)


def _start_values(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.clip(s / t, 0.01, 0.99)


def box_mle(basis: np.ndarray, s: np.ndarray, t: np.ndarray, start: np.ndarray,
            iterations: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Many small fits at once: maximise sum_k s log p + (t - s) log(1 - p), p = basis @ theta,
    theta in [eps, 1 - eps]^q, for each of M problems (basis M x K x q, s and t M x K).

    The likelihood is concave in theta (p is linear in it), so projected Newton steps converge:
    a coordinate at a bound whose gradient points outwards is held there, the others take a
    Newton step, and each problem keeps the best of a few step lengths (never a worse one).
    Returns (theta M x q, log-likelihood M).
    """
    lo, hi = _EPS, 1 - _EPS

    def loglik(theta: np.ndarray) -> np.ndarray:
        p = np.clip(np.einsum("mkq,mq->mk", basis, theta), lo, hi)
        return np.sum(s * np.log(p) + (t - s) * np.log1p(-p), axis=1)

    theta = np.clip(start, lo, hi)
    best = loglik(theta)
    eye = np.eye(theta.shape[1])
    steps = np.array([1.0, 0.5, 0.25, 0.1, 0.03, 0.01])
    for _ in range(iterations):
        p = np.clip(np.einsum("mkq,mq->mk", basis, theta), lo, hi)
        slope = s / p - (t - s) / (1 - p)
        weight = s / p ** 2 + (t - s) / (1 - p) ** 2
        grad = np.einsum("mkq,mk->mq", basis, slope)
        held = ((theta <= lo * 1.0001) & (grad < 0)) | ((theta >= hi - 1e-9) & (grad > 0))
        grad = np.where(held, 0.0, grad)
        hess = np.einsum("mkq,mk,mkr->mqr", basis, weight, basis)
        free = ~held
        hess = np.where(free[:, :, None] & free[:, None, :], hess, 0.0) + \
            eye * (held[:, :, None] | (np.abs(hess).sum(axis=2, keepdims=True) == 0)) + eye * 1e-9
        direction = np.linalg.solve(hess, grad[..., None])[..., 0]
        trials = np.clip(theta[None] + steps[:, None, None] * direction[None], lo, hi)
        values = np.stack([loglik(trial) for trial in trials])  # steps x M
        pick = values.argmax(axis=0)
        improved = values[pick, np.arange(len(pick))] > best
        theta = np.where(improved[:, None], trials[pick, np.arange(len(pick))], theta)
        best = np.maximum(best, values[pick, np.arange(len(pick))])
    return theta, best


def _hat_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """K x len(knots) matrix: linear interpolation between the knots (values at the knots)."""
    return np.stack([np.interp(x, knots, np.eye(len(knots))[j]) for j in range(len(knots))],
                    axis=1)


def fit_linear(x: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[dict, float]:
    knots = np.array([x[0], x[-1]])
    basis = _hat_basis(x, knots)[None]
    theta, ll = box_mle(basis, s[None], t[None], np.interp(knots, x, _start_values(s, t))[None])
    a, end = theta[0]
    return {"x0": x[0], "a": a, "b": (end - a) / (x[-1] - x[0])}, float(ll[0])


def tau_grid(x: np.ndarray) -> np.ndarray:
    """Breakpoint candidates: every TAU_STEP octave strictly inside the budget range."""
    return np.arange(x[0] + TAU_STEP, x[-1] - TAU_STEP / 2, TAU_STEP)


def profile_breakpoints(x: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """The piecewise fit of each row of s/t (R x K) at each breakpoint of the grid.

    Returns (taus T, theta R x T x 3 = values at x0, tau, x1, log-likelihood R x T).
    """
    taus = tau_grid(x)
    rows = s.shape[0]
    bases = np.stack([_hat_basis(x, np.array([x[0], tau, x[-1]])) for tau in taus])  # T K 3
    basis = np.broadcast_to(bases[None], (rows, *bases.shape)).reshape(-1, len(x), 3)
    rate = np.clip(s / t, 0.01, 0.99)
    start = np.stack([[np.interp([x[0], tau, x[-1]], x, r) for tau in taus] for r in rate])
    theta, ll = box_mle(basis, np.repeat(s, len(taus), axis=0), np.repeat(t, len(taus), axis=0),
                        start.reshape(-1, 3))
    return taus, theta.reshape(rows, len(taus), 3), ll.reshape(rows, len(taus))


def fit_piecewise(x: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[dict, float]:
    """Profile likelihood over the breakpoint grid; the best breakpoint's fit."""
    taus, theta, ll = profile_breakpoints(x, s[None], t[None])
    best = int(np.argmax(ll[0]))  # first maximum on ties: the earliest breakpoint
    tau, (p0, p_tau, p1) = taus[best], theta[0, best]
    return {"x0": x[0], "tau": tau, "p0": p0, "p_tau": p_tau,
            "slope_before": (p_tau - p0) / (tau - x[0]),
            "slope_after": (p1 - p_tau) / (x[-1] - tau)}, float(ll[0, best])


def fit_saturating(x: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[dict, float]:
    x0, rate = x[0], _start_values(s, t)

    def curve(th: np.ndarray) -> np.ndarray:
        return th[0] + (th[1] - th[0]) * (1 - np.exp(-th[2] * (x - x0)))

    bounds = [(_EPS, 1 - _EPS), (_EPS, 1 - _EPS), _RATE]
    best = max((_maximise(curve, [rate[0], rate.max(), c], bounds, s, t) for c in _RATE_STARTS),
               key=lambda f: f[1])
    theta, ll = best
    return {"x0": x0, "a": theta[0], "level": theta[1], "rate": theta[2]}, ll


def fit_constant(x: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[dict, float]:
    """The closed-form maximum likelihood: one rate for every budget (kept in [eps, 1 - eps]
    like every other model's probabilities, so all four share one likelihood)."""
    p = float(np.clip(s.sum() / t.sum(), _EPS, 1 - _EPS))
    return {"x0": x[0], "p": p}, log_likelihood(np.full(len(x), p), s, t)


N_PARAMS = {"log-linear": 2, "piecewise": 4, "saturating": 3, "constant": 1}
_FITTERS = {"log-linear": fit_linear, "piecewise": fit_piecewise, "saturating": fit_saturating,
            "constant": fit_constant}


def breakpoint_ci(outcomes: np.ndarray, samples: int, x: np.ndarray, n_resamples: int,
                  confidence: float, seed: int
                  ) -> tuple[float | None, float | None, str | None]:
    """Percentile bootstrap CI of the breakpoint (log2 budget), resampling problems, over the
    resamples that identify one; (low, high, None), or (None, None, why there is no interval)."""
    if n_resamples < 2:
        return None, None, None
    rng = np.random.default_rng(seed)
    outcomes = np.asarray(outcomes, dtype=float)
    draws = rng.integers(0, len(outcomes), (n_resamples, len(outcomes)))
    s = np.stack([outcomes[rows].sum(axis=0) for rows in draws])
    t = np.full_like(s, float(samples * len(outcomes)))
    grid, _, ll = profile_breakpoints(x, s, t)
    identified = np.ptp(ll, axis=1) >= _FLAT_PROFILE
    taus = np.where(identified, grid[np.argmax(ll, axis=1)], np.nan)
    note = degenerate_note(taus, lambda tau: f"{2 ** tau:.0f} tokens", "a breakpoint")
    if note:
        return None, None, note
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(taus[identified], [tail, 100 - tail])
    return float(low), float(high), None


def fit_all(budgets: Sequence[int], outcomes: np.ndarray, samples: int = 1, *,
            n_resamples: int, confidence: float, seed: int) -> dict:
    """Every model fitted to per-problem outcomes, with AIC/BIC, the best model, whether the
    curve is flat (the constant is best), and unless it is, the breakpoint (budget, with its
    bootstrap CI or the note saying why there is none) and the saturation level. Needs >= 3
    budgets."""
    x = np.log2(np.asarray(budgets, dtype=float))
    if len(x) < 3 or np.any(np.diff(x) <= 0):
        raise ValueError("curve fits need at least three increasing budgets")
    s, t = counts(outcomes, samples)
    n_obs = float(t.sum())
    models = {}
    for name, fitter in _FITTERS.items():
        params, ll = fitter(x, s, t)
        k = N_PARAMS[name]
        models[name] = {"params": {key: float(v) for key, v in params.items()},
                        "log_likelihood": ll, "n_params": k, "aic": 2 * k - 2 * ll,
                        "bic": k * np.log(n_obs) - 2 * ll}
    # min() keeps the first of equal BICs and the constant is listed last, so it is best only
    # when strictly lower (on all-equal data every model fits alike, and its one parameter
    # makes it so).
    best = min(models, key=lambda m: models[m]["bic"])
    flat = best == "constant"
    # On a flat curve the bootstrap is not run: there is no breakpoint to put an interval on.
    low, high, note = (None, None, None) if flat else breakpoint_ci(
        outcomes, samples, x, n_resamples, confidence, seed)
    tau = models["piecewise"]["params"]["tau"]
    return {
        "n_problems": int(np.asarray(outcomes).shape[0]), "samples": samples,
        "n_outcomes": int(n_obs), "models": models, "best": best,
        "best_aic": min(models, key=lambda m: models[m]["aic"]),
        "flat": flat,
        "breakpoint": None if flat else float(2 ** tau),
        "breakpoint_ci": None if low is None else [float(2 ** low), float(2 ** high)],
        "breakpoint_ci_note": note,
        "saturation_level": None if flat else models["saturating"]["params"]["level"],
        "bootstrap_resamples": n_resamples,
    }
