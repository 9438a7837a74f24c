"""maj@k over all k-subsets (study.grading.majority) against a brute-force count, and maj@1 ==
pass@1."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pytest

from study.analysis import stats
from study.grading import majority


def brute_force(answers: list[str | None], gold: str, k: int) -> float:
    """Every k-subset, exact-string votes, ties split evenly among the tied answers."""
    scores = []
    for subset in combinations(answers, k):
        votes = Counter(a for a in subset if a is not None)
        if not votes:
            scores.append(0.0)
            continue
        top = max(votes.values())
        tied = [a for a, c in votes.items() if c == top]
        scores.append(sum(a == gold for a in tied) / len(tied))
    return float(np.mean(scores))


def _same(a: str, b: str) -> bool:
    return a == b


def _random_rows(seed: int, problems: int, n: int) -> tuple[list[list[str | None]], list[str]]:
    rng = np.random.default_rng(seed)
    pool = np.array(["1", "2", "3", None], dtype=object)
    rows = [list(rng.choice(pool, size=n, p=[0.4, 0.25, 0.2, 0.15])) for _ in range(problems)]
    return rows, ["1"] * problems


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_matches_brute_force_on_random_votes(k):
    rows, gold = _random_rows(k, 30, 6)
    got = majority.maj_at_k_per_problem(rows, gold, k, _same, group_equivalent=False)
    want = [brute_force(row, g, k) for row, g in zip(rows, gold)]
    assert got == pytest.approx(want, abs=1e-12)


def test_maj_at_1_is_pass_at_1():
    rows, gold = _random_rows(7, 50, 5)
    correct = [[a == "1" for a in row] for row in rows]
    pass1 = np.mean([stats.pass_at_k(5, sum(c), 1) for c in correct])
    assert stats.maj_at_k(rows, gold, 1, _same) == pytest.approx(pass1, abs=1e-12)


def test_a_tie_splits_the_credit():
    # {"1", "2"} tie in the only 2-subset: half credit; three-way tie with one right: a third.
    assert majority.problem_maj_at_k(["1", "2"], "1", 2, _same) == pytest.approx(0.5)
    assert majority.problem_maj_at_k(["1", "2", "3"], "1", 3, _same) == pytest.approx(1 / 3)
    assert majority.problem_maj_at_k([None, None], "1", 1, _same) == 0.0


def test_sampled_subsets_approach_the_exact_value():
    rows, gold = _random_rows(3, 1, 14)
    exact = majority.problem_maj_at_k(rows[0], gold[0], 7, _same)  # C(14, 7) = 3432 subsets
    chosen = majority.subsets(14, 7, seed=5, max_exact=100, n_draws=20_000)
    assert chosen.shape == (20_000, 7)
    assert all(len(set(row)) == 7 for row in chosen[:200])  # no repeated sample in a subset
    labels, right = majority.vote_groups(rows[0], gold[0], _same, None)
    sampled = majority.subset_scores(labels, right, chosen).mean()
    assert sampled == pytest.approx(exact, abs=0.015)
    again = majority.subsets(14, 7, seed=5, max_exact=100, n_draws=20_000)
    assert np.array_equal(chosen, again)  # seeded


def test_k_out_of_range():
    with pytest.raises(ValueError):
        majority.problem_maj_at_k(["1"], "1", 2, _same)
