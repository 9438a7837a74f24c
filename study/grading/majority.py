"""maj@k as an estimate over every k-subset of a problem's n samples (pure; no grading here).

Taking the first k samples, as a single draw, makes maj@k depend on sample order and gives
maj@1 != pass@1. Here maj@k of a problem is the average, over all C(n, k) subsets of its n
samples, of "the subset's majority answer is correct":

* votes: answers are grouped once over all n samples (by exact string, or by ``same`` so that
  "0.5" and "1/2" vote together; a group's first answer is its representative, and the group is
  correct when ``equivalent(representative, gold)``); a sample without an answer does not vote;
* tie rule: when several groups share the most votes, the subset counts as (correct tied groups)
  / (tied groups), the expected score of breaking the tie uniformly at random; a subset with no
  answer at all scores 0;
* exact over all subsets when C(n, k) <= ``max_exact``; otherwise the mean over ``n_draws``
  subsets drawn uniformly with a seeded generator.

With k = 1 every subset is one sample, so maj@1 is the share of correct samples, i.e. pass@1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from math import comb

import numpy as np

# Enumerate every subset up to this many (n = 16, k = 8 is 12,870); sample beyond it.
MAX_EXACT_SUBSETS = 20_000
# Subsets drawn when enumeration is too costly: Monte-Carlo error <= 0.5/sqrt(20000) < 0.4 pp.
SAMPLED_SUBSETS = 20_000


def vote_groups(answers: Sequence[str | None], gold: str,
                equivalent: Callable[[str, str], bool],
                same: Callable[[str, str], bool] | None) -> tuple[np.ndarray, np.ndarray]:
    """(group id of each sample, -1 for no answer; whether each group is correct)."""
    representatives: list[str] = []
    labels = []
    for answer in answers:
        if answer is None:
            labels.append(-1)
            continue
        for i, rep in enumerate(representatives):
            if answer == rep or (same is not None and same(rep, answer)):
                labels.append(i)
                break
        else:
            representatives.append(answer)
            labels.append(len(representatives) - 1)
    correct = np.array([bool(equivalent(rep, gold)) for rep in representatives], dtype=bool)
    return np.array(labels, dtype=int), correct


def subsets(n: int, k: int, seed: int, max_exact: int = MAX_EXACT_SUBSETS,
            n_draws: int = SAMPLED_SUBSETS) -> np.ndarray:
    """Index subsets (rows) of size k from n: all of them, or ``n_draws`` seeded random ones."""
    if comb(n, k) <= max_exact:
        return np.array(list(combinations(range(n), k)), dtype=int).reshape(-1, k)
    rng = np.random.default_rng(seed)
    # argsort of uniform keys gives a uniform random permutation per row; keep its first k.
    return np.argsort(rng.random((n_draws, n)), axis=1)[:, :k]


def subset_scores(labels: np.ndarray, correct: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Score of each subset (rows of ``chosen``) under the tie rule of the module docstring."""
    if correct.size == 0:
        return np.zeros(len(chosen))
    votes = labels[chosen]  # subsets x k group ids
    counts = (votes[..., None] == np.arange(correct.size)).sum(axis=1)  # subsets x groups
    top = counts.max(axis=1, keepdims=True)
    tied = (counts == top) & (top > 0)
    n_tied = tied.sum(axis=1)
    return np.where(n_tied > 0, (tied & correct).sum(axis=1) / np.maximum(n_tied, 1), 0.0)


def problem_maj_at_k(answers: Sequence[str | None], gold: str, k: int,
                     equivalent: Callable[[str, str], bool],
                     same: Callable[[str, str], bool] | None = None, seed: int = 0) -> float:
    """maj@k of one problem: the mean score over its k-subsets (see the module docstring)."""
    n = len(answers)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} out of range for a problem with {n} samples")
    labels, correct = vote_groups(answers, gold, equivalent, same)
    return float(subset_scores(labels, correct, subsets(n, k, seed)).mean())


def maj_at_k_per_problem(answers_matrix: Sequence[Sequence[str | None]], gold: Sequence[str],
                         k: int, equivalent: Callable[[str, str], bool],
                         group_equivalent: bool = True, seed: int = 0) -> np.ndarray:
    """maj@k of every problem (row); problem i draws its subsets with seed ``seed + i``."""
    if len(answers_matrix) != len(gold):
        raise ValueError(f"{len(answers_matrix)} answer rows but {len(gold)} gold answers")
    same = equivalent if group_equivalent else None
    return np.array([problem_maj_at_k(row, truth, k, equivalent, same, seed + i)
                     for i, (row, truth) in enumerate(zip(answers_matrix, gold, strict=True))],
                    dtype=float)
