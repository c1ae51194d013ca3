"""Fleiss' kappa (and Randolph's free-marginal kappa) on items x categories counts.

References: statsmodels.stats.inter_rater.fleiss_kappa on random tables, two
published worked examples, and Scott's pi computed by hand for two raters.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from persona_exp import stats

# Worked example of the Wikipedia article "Fleiss' kappa" (14 raters assign 10
# subjects to 5 categories); the article gives P-bar = 0.378, P-bar_e = 0.213
# and kappa = 0.210. The same table is the statsmodels test-suite example.
WIKIPEDIA_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)

# Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
# Psychological Bulletin, 76(5), 378-382, Table 1: 30 patients, 6 psychiatric
# diagnoses each, categories 1 depression, 2 personality disorder,
# 3 schizophrenia, 4 neurosis, 5 other. The per-rater layout below is the one
# distributed as the "diagnoses" data set of the R package irr. Fleiss reports
# category proportions p_j = .144, .144, .167, .306, .239 and kappa = .430
# (irr::kappam.fleiss prints 0.4302445).
FLEISS_1971_DIAGNOSES = np.array(
    [
        [4, 4, 4, 4, 4, 4],
        [2, 2, 2, 5, 5, 5],
        [2, 3, 3, 3, 3, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4],
        [1, 1, 3, 3, 3, 3],
        [3, 3, 3, 3, 5, 5],
        [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4],
        [5, 5, 5, 5, 5, 5],
        [1, 4, 4, 4, 4, 4],
        [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3],
        [1, 4, 4, 4, 4, 4],
        [2, 2, 4, 4, 4, 5],
        [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5],
        [1, 1, 1, 1, 1, 2],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 4, 4, 4, 4, 4],
        [2, 2, 4, 5, 5, 5],
        [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5],
        [2, 2, 2, 2, 2, 4],
        [1, 1, 1, 1, 5, 5],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3],
        [5, 5, 5, 5, 5, 5],
    ]
)


def counts_from_ratings(ratings, k, first=0):
    """items x raters category labels -> items x categories counts."""
    ratings = np.asarray(ratings) - first
    return np.stack([np.bincount(row, minlength=k) for row in ratings])


def sm(table, method="fleiss"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sm_fleiss_kappa(np.asarray(table, dtype=float), method=method))


def random_counts(rng, n_items, k, m, concentration):
    """Counts of m raters per item; items have their own category preferences."""
    probs = rng.dirichlet(np.full(k, concentration), size=n_items)
    return np.stack([rng.multinomial(m, p) for p in probs])


# --------------------------------------------------------------------------- published examples


def test_wikipedia_fleiss_example():
    assert WIKIPEDIA_TABLE.sum(axis=1).tolist() == [14] * 10
    got = stats.fleiss_kappa(WIKIPEDIA_TABLE)
    assert got == pytest.approx(0.210, abs=5e-4)
    assert got == pytest.approx(sm(WIKIPEDIA_TABLE), abs=1e-12)
    # Randolph's free-marginal kappa against statsmodels for the same table
    assert stats.fleiss_kappa(WIKIPEDIA_TABLE, method="randolph") == pytest.approx(
        sm(WIKIPEDIA_TABLE, "randolph"), abs=1e-12
    )


def test_fleiss_1971_example():
    counts = counts_from_ratings(FLEISS_1971_DIAGNOSES, 5, first=1)
    # the marginal proportions printed by Fleiss (1971)
    p = counts.sum(axis=0) / counts.sum()
    np.testing.assert_allclose(p, [0.144, 0.144, 0.167, 0.306, 0.239], atol=5e-4)
    got = stats.fleiss_kappa(counts)
    assert got == pytest.approx(0.430, abs=5e-4)
    assert got == pytest.approx(0.4302445, abs=1e-7)
    assert got == pytest.approx(sm(counts), abs=1e-12)


# --------------------------------------------------------------------------- random tables


@pytest.mark.parametrize("method", ["fleiss", "randolph"])
@pytest.mark.parametrize("seed", range(8))
def test_fleiss_matches_statsmodels_random(method, seed):
    rng = np.random.default_rng(600 + seed)
    for _ in range(6):
        n_items = int(rng.integers(3, 300))
        k = int(rng.integers(2, 9))
        m = int(rng.integers(2, 15))
        counts = random_counts(rng, n_items, k, m, float(rng.choice([0.2, 1.0, 5.0])))
        expected = sm(counts, method)
        if math.isnan(expected):
            continue
        assert stats.fleiss_kappa(counts, method=method) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("method", ["fleiss", "randolph"])
def test_fleiss_input_types(method):
    rng = np.random.default_rng(42)
    counts = random_counts(rng, 50, 4, 7, 1.0)
    expected = sm(counts, method)
    for variant in (
        counts,
        counts.astype(np.int32),
        counts.astype(np.uint8),
        counts.astype(np.float64),
        counts.tolist(),
        np.asfortranarray(counts),
        pl.DataFrame(counts, schema=[f"c{j}" for j in range(4)]),
    ):
        assert stats.fleiss_kappa(variant, method=method) == pytest.approx(expected, abs=1e-12)


def test_fleiss_two_raters_is_scotts_pi():
    # With two raters per item Fleiss' kappa reduces to Scott's pi:
    # (p_o - p_e) / (1 - p_e) with p_e from the pooled category proportions.
    rng = np.random.default_rng(8)
    a = rng.integers(0, 4, size=200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 4, size=200))
    counts = np.zeros((200, 4), dtype=np.int64)
    np.add.at(counts, (np.arange(200), a), 1)
    np.add.at(counts, (np.arange(200), b), 1)
    po = np.mean(a == b)
    pooled = (np.bincount(a, minlength=4) + np.bincount(b, minlength=4)) / 400
    pe = np.sum(pooled**2)
    assert stats.fleiss_kappa(counts) == pytest.approx((po - pe) / (1 - pe), abs=1e-12)


def test_fleiss_invariances():
    rng = np.random.default_rng(9)
    counts = random_counts(rng, 40, 5, 6, 0.5)
    base = stats.fleiss_kappa(counts)
    # item order and category order do not matter
    assert stats.fleiss_kappa(counts[rng.permutation(40)]) == pytest.approx(base, abs=1e-12)
    assert stats.fleiss_kappa(counts[:, rng.permutation(5)]) == pytest.approx(base, abs=1e-12)
    # an unused category changes Fleiss' kappa not at all, Randolph's kappa yes
    padded = np.hstack([counts, np.zeros((40, 1), dtype=counts.dtype)])
    assert stats.fleiss_kappa(padded) == pytest.approx(base, abs=1e-12)
    assert stats.fleiss_kappa(padded, method="randolph") == pytest.approx(sm(padded, "randolph"), abs=1e-12)
    assert stats.fleiss_kappa(padded, method="randolph") != pytest.approx(
        stats.fleiss_kappa(counts, method="randolph"), abs=1e-6
    )


def test_fleiss_perfect_agreement_and_single_category():
    perfect = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 5], [5, 0, 0]])
    assert stats.fleiss_kappa(perfect) == pytest.approx(1.0, abs=1e-12)
    assert stats.fleiss_kappa(perfect, method="randolph") == pytest.approx(1.0, abs=1e-12)
    # everybody always picks the same category: chance agreement is 1, so
    # Fleiss' kappa is undefined (NaN) while Randolph's is 1
    single = np.array([[4, 0], [4, 0], [4, 0]])
    assert math.isnan(stats.fleiss_kappa(single))
    assert stats.fleiss_kappa(single, method="randolph") == pytest.approx(sm(single, "randolph"), abs=1e-12)


def test_fleiss_maximal_disagreement_is_negative():
    # two raters who always disagree, categories balanced: p_o = 0, kappa < 0
    counts = np.array([[1, 1], [1, 1], [1, 1], [1, 1]])
    got = stats.fleiss_kappa(counts)
    assert got == pytest.approx(sm(counts), abs=1e-12)
    assert got == pytest.approx(-1.0, abs=1e-12)
