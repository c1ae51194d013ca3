"""Weighted row sampling and prompt assignment.

With replacement the draw frequencies are checked with a chi-square
goodness-of-fit test; without replacement the first-order inclusion
frequencies are compared with the exact inclusion probabilities of successive
weighted sampling (which the exponential-keys method is equivalent to),
computed here by enumerating all ordered draws of a small population.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from scipy.stats import chi2, chisquare

from persona_exp import stats
from persona_exp.errors import PersonaExpError

Z = 5.0


# --------------------------------------------------------------------------- with replacement


@pytest.mark.parametrize("kind", ["integer", "float"])
@pytest.mark.parametrize("seed", [0, 12345])
def test_with_replacement_frequencies_match_weights(kind, seed):
    rng = np.random.default_rng(40)
    if kind == "integer":
        # census-like person weights (PWGTP), some rows with weight 0
        weights = rng.integers(1, 400, size=40)
        weights[[3, 17, 29]] = 0
    else:
        weights = rng.gamma(0.7, 2.0, size=40)
        weights[[5, 6]] = 0.0
    n = 200_000
    draws = stats.weighted_sample(weights, n, replace=True, seed=seed)
    assert draws.dtype == np.int64
    assert draws.shape == (n,)
    assert draws.min() >= 0 and draws.max() < weights.size
    counts = np.bincount(draws, minlength=weights.size)
    assert counts[weights == 0].sum() == 0
    positive = weights > 0
    expected = n * weights[positive] / weights[positive].sum()
    assert chisquare(counts[positive], expected).pvalue > 0.001
    # draws come in draw order, not sorted
    assert np.any(np.diff(draws) < 0)


def test_with_replacement_skewed_weights():
    # one very heavy row and many light rows (alias tables must handle this)
    weights = np.ones(1000)
    weights[123] = 5000.0
    n = 100_000
    draws = stats.weighted_sample(weights, n, replace=True, seed=3)
    counts = np.bincount(draws, minlength=1000)
    p_heavy = 5000.0 / 5999.0
    assert abs(counts[123] / n - p_heavy) < Z * math.sqrt(p_heavy * (1 - p_heavy) / n)
    light = np.delete(counts, 123)
    assert chisquare(light).pvalue > 0.001


def test_with_replacement_single_positive_row_and_input_types():
    weights = np.array([0.0, 0.0, 3.5, 0.0])
    np.testing.assert_array_equal(stats.weighted_sample(weights, 50, replace=True, seed=1), np.full(50, 2))
    rng = np.random.default_rng(41)
    w = rng.integers(1, 100, size=25)
    base = stats.weighted_sample(w, 1000, replace=True, seed=9)
    for variant in (w.astype(np.float64), w.astype(np.int32), w.tolist(), pl.Series(w), pl.Series(w.astype(float))):
        np.testing.assert_array_equal(stats.weighted_sample(variant, 1000, replace=True, seed=9), base)


def test_with_replacement_more_draws_than_rows_and_zero_draws():
    draws = stats.weighted_sample([1, 2, 3], 30, replace=True, seed=2)
    assert draws.shape == (30,)
    assert set(np.unique(draws)) <= {0, 1, 2}
    assert stats.weighted_sample([1, 2, 3], 0, replace=True, seed=2).shape == (0,)


# --------------------------------------------------------------------------- without replacement


def exact_inclusion_probabilities(weights, n):
    """First-order inclusion probabilities of successive weighted sampling."""
    weights = np.asarray(weights, dtype=float)
    total = weights.sum()
    incl = np.zeros(weights.size)
    positive = [i for i in range(weights.size) if weights[i] > 0]
    for order in itertools.permutations(positive, n):
        p, left = 1.0, total
        for i in order:
            p *= weights[i] / left
            left -= weights[i]
        incl[list(order)] += p
    return incl


@pytest.mark.parametrize(
    "weights, n",
    [
        ([1.0, 2.0, 4.0, 8.0, 16.0, 0.0, 3.0], 3),
        ([5, 1, 1, 1, 0, 2, 9, 3], 4),
    ],
)
def test_without_replacement_inclusion_probabilities(weights, n):
    weights = np.asarray(weights)
    exact = exact_inclusion_probabilities(weights, n)
    assert exact.sum() == pytest.approx(n)
    n_seeds = 4000
    hits = np.zeros(weights.size)
    for seed in range(n_seeds):
        rows = stats.weighted_sample(weights, n, replace=False, seed=seed)
        assert rows.shape == (n,)
        assert np.all(np.diff(rows) > 0)  # distinct, ascending row order
        assert np.all(weights[rows] > 0)  # weight-0 rows never drawn
        hits[rows] += 1
    freq = hits / n_seeds
    se = np.sqrt(np.maximum(exact * (1 - exact), 1e-12) / n_seeds)
    assert np.all(np.abs(freq - exact) < Z * se + 1e-12), (freq, exact)
    # heavier rows are included more often
    positive = weights > 0
    by_weight = np.argsort(weights[positive], kind="stable")
    assert np.all(np.diff(exact[positive][by_weight]) >= -1e-12)
    strictly_heavier = np.diff(weights[positive][by_weight]) > 0
    assert np.all(np.diff(freq[positive][by_weight])[strictly_heavier] > 0)


def test_without_replacement_large_population():
    rng = np.random.default_rng(42)
    weights = rng.integers(0, 300, size=100_000).astype(float)
    rows = stats.weighted_sample(weights, 5000, replace=False, seed=5)
    assert rows.dtype == np.int64
    assert rows.shape == (5000,)
    assert np.all(np.diff(rows) > 0)
    assert np.all(weights[rows] > 0)
    # heavier rows are over-represented: mean weight of the sample exceeds the
    # population mean by a wide margin (size-biased sampling)
    assert weights[rows].mean() > 1.2 * weights[weights > 0].mean()


def test_without_replacement_all_positive_rows():
    weights = np.array([0.0, 2.0, 0.0, 1.0, 7.0])
    np.testing.assert_array_equal(stats.weighted_sample(weights, 3, replace=False, seed=4), [1, 3, 4])
    assert stats.weighted_sample(weights, 0, replace=False, seed=4).shape == (0,)


@pytest.mark.parametrize("weights", [np.array([0.0, 2.0, 0.0, 1.0]), np.array([1, 1, 1])])
def test_without_replacement_more_rows_than_positive_weights_raises(weights):
    n = int((weights > 0).sum()) + 1
    with pytest.raises(PersonaExpError) as exc:
        stats.weighted_sample(weights, n, replace=False, seed=0)
    assert isinstance(exc.value, ValueError)
    assert "n" in str(exc.value)


@pytest.mark.parametrize("replace", [True, False])
def test_weighted_sample_seeds(replace):
    rng = np.random.default_rng(43)
    weights = rng.random(500)
    a = stats.weighted_sample(weights, 100, replace=replace, seed=77)
    b = stats.weighted_sample(weights, 100, replace=replace, seed=77)
    c = stats.weighted_sample(weights, 100, replace=replace, seed=78)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # large seeds work and are not truncated to the same stream
    big1 = stats.weighted_sample(weights, 100, replace=replace, seed=2**40 + 1)
    big2 = stats.weighted_sample(weights, 100, replace=replace, seed=1)
    assert not np.array_equal(big1, big2)


# --------------------------------------------------------------------------- assign_prompts


def test_assign_prompts_shape_range_distinct():
    out = stats.assign_prompts(300, 25, 6, seed=1)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.int64
    assert out.shape == (300, 6)
    assert out.min() >= 0 and out.max() < 25
    for row in out:
        assert len(set(row.tolist())) == 6
    # personas do not all get the same prompts
    assert len({tuple(sorted(r)) for r in out.tolist()}) > 250


def test_assign_prompts_deterministic_and_seed_dependent():
    a = stats.assign_prompts(100, 50, 4, seed=3)
    np.testing.assert_array_equal(a, stats.assign_prompts(100, 50, 4, seed=3))
    b = stats.assign_prompts(100, 50, 4, seed=4)
    assert np.mean(np.any(a != b, axis=1)) > 0.9


def test_assign_prompts_adding_personas_keeps_earlier_rows():
    small = stats.assign_prompts(40, 30, 5, seed=11)
    large = stats.assign_prompts(250, 30, 5, seed=11)
    np.testing.assert_array_equal(large[:40], small)
    one = stats.assign_prompts(1, 30, 5, seed=11)
    np.testing.assert_array_equal(one[0], small[0])


def test_assign_prompts_uniform_use_of_the_pool():
    pool, per, personas = 40, 5, 8000
    out = stats.assign_prompts(personas, pool, per, seed=21)
    counts = np.bincount(out.ravel(), minlength=pool)
    # Each row holds `per` distinct prompts, so the counts are less dispersed
    # than a multinomial: under uniform rows the chi-square statistic is
    # (pool - per) / (pool - 1) times a chi-square with pool - 1 degrees of
    # freedom. Undo that factor before taking the p-value.
    expected = personas * per / pool
    statistic = ((counts - expected) ** 2 / expected).sum() * (pool - 1) / (pool - per)
    assert chi2.sf(statistic, pool - 1) > 0.001
    # Pairs: one randomly chosen pair of positions per row is a uniformly
    # random pair of prompts when rows are uniformly random subsets (and not,
    # e.g., windows of consecutive prompts); rows are independent, so the
    # pair counts are multinomial.
    pick = np.random.default_rng(22)
    pair_index = {pair: i for i, pair in enumerate(itertools.combinations(range(pool), 2))}
    pair_counts = np.zeros(len(pair_index))
    for row in out:
        i, j = pick.choice(per, size=2, replace=False)
        pair_counts[pair_index[tuple(sorted((int(row[i]), int(row[j]))))]] += 1
    assert chisquare(pair_counts).pvalue > 0.001


def test_assign_prompts_whole_pool_and_empty():
    full = stats.assign_prompts(20, 7, 7, seed=2)
    for row in full:
        assert sorted(row.tolist()) == list(range(7))
    assert stats.assign_prompts(0, 7, 3, seed=2).shape == (0, 3)
    assert stats.assign_prompts(5, 7, 0, seed=2).shape == (5, 0)


def test_assign_prompts_more_than_the_pool_raises():
    with pytest.raises(PersonaExpError) as exc:
        stats.assign_prompts(10, 5, 6, seed=0)
    assert isinstance(exc.value, ValueError)
    message = str(exc.value)
    assert "n_per_persona" in message or "pool_size" in message
