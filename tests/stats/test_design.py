"""Intervals over crossed designs, the Interval value, and multiplicity corrections.

The crossed variance V = 2 (V_1 + V_2) - V_12 is checked against exact
formulas (a rate over a balanced persona x question grid is linear in the
resampling weights, so each bootstrap variance has a closed form) and against
a slow numpy bootstrap of kappa; the score intervals against statsmodels'
Wilson interval; Holm and Benjamini-Hochberg against statsmodels'
multipletests.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import polars as pl
import pytest
import scipy.stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from persona_exp import stats
from persona_exp.errors import InvalidArgumentError, LengthMismatchError
from persona_exp.stats import Interval

Z = 5.0  # tolerance in standard errors of the Monte-Carlo difference


def grid(p, q):
    return np.repeat(np.arange(p), q), np.tile(np.arange(q), p)


def crossed_outcomes(rng, p, q, sp, sq, sc):
    eta = rng.normal(0, sp, (p, 1)) + rng.normal(0, sq, (1, q)) + rng.normal(0, sc, (p, q))
    return (rng.random((p, q)) < 1 / (1 + np.exp(-eta))).astype(float)


def bootstrap_variances(y):
    """Exact V_1, V_2, V_12 of the mean of a balanced grid y (p x q, one item per
    cell) under multinomial resampling of rows, of columns, and of both."""
    p, q = y.shape
    s = y - y.mean()
    rows, cols = s.sum(1), s.sum(0)
    n2 = (p * q) ** 2
    v1, v2 = (rows**2).sum() / n2, (cols**2).sum() / n2
    v12 = ((s**2).sum() + (1 - 1 / p) * (cols**2).sum() + (1 - 1 / q) * (rows**2).sum()) / n2
    return v1, v2, v12


@pytest.mark.parametrize("sp, sq, sc", [(1.0, 1.0, 0.5), (0.3, 0.0, 1.0), (0.0, 1.0, 0.2)])
def test_crossed_rate_variance_matches_the_exact_formula(sp, sq, sc):
    rng = np.random.default_rng(1)
    y = crossed_outcomes(rng, 30, 15, sp, sq, sc)
    b = 20_000
    got = stats.win_rate(y.ravel(), clusters=grid(30, 15), n_resamples=b, seed=3)
    v1, v2, v12 = bootstrap_variances(y)
    want = min(max(2 * (v1 + v2) - v12, max(v1, v2)), v1 + v2)
    # Monte-Carlo error of a variance from b draws: about v * sqrt(2 / b)
    se = math.sqrt(2 / b) * math.sqrt(4 * v1**2 + 4 * v2**2 + v12**2)
    assert got.se**2 == pytest.approx(want, abs=Z * se)
    assert got.method == "crossed-wilson" and got.units == (30, 15) and got.n == 450
    assert got.n_resamples == 3 * b and got.undefined == 0 and got.warning is None
    # the product bootstrap alone would be wider: its cell term counts three times
    assert v12 > want


def test_large_crossed_designs_use_the_exact_first_order_variances():
    # 300 x 200 cells at 1000 resamples is past the product-resampling budget:
    # the variances are then the first-order ones, exact for a rate on a grid
    rng = np.random.default_rng(3)
    y = crossed_outcomes(rng, 300, 200, 0.7, 0.7, 0.5)
    got = stats.win_rate(y.ravel(), clusters=grid(300, 200), n_resamples=1000, seed=3)
    v1, v2, v12 = bootstrap_variances(y)
    want = min(max(2 * (v1 + v2) - v12, max(v1, v2)), v1 + v2)
    assert got.method == "crossed-linearized-wilson" and got.n_resamples == 0
    assert got.se**2 == pytest.approx(want, rel=1e-6)


def test_crossed_kappa_variance_matches_a_numpy_bootstrap(ref):
    rng = np.random.default_rng(2)
    p, q = 20, 12
    eta = rng.normal(0, 0.8, (p, 1)) + rng.normal(0, 0.8, (1, q)) + rng.normal(0, 0.5, (p, q))
    a = (rng.random((p, q)) < 0.5).astype(np.int64)
    b = np.where(rng.random((p, q)) < 1 / (1 + np.exp(-(1 + eta))), a, rng.random((p, q)) < 0.5).astype(np.int64)
    cells = np.zeros((p, q, 2, 2))
    np.add.at(cells, (np.arange(p)[:, None], np.arange(q)[None, :], a, b), 1)
    n_ref = 4000
    draws = lambda n: ref.resample_counts(n, n_ref, rng).astype(float)  # noqa: E731
    w, v = draws(p), draws(q)
    ones_p, ones_q = np.ones((n_ref, p)), np.ones((n_ref, q))
    k1 = ref.kappa_from_tables(np.einsum("bp,bq,pqij->bij", w, ones_q, cells))
    k2 = ref.kappa_from_tables(np.einsum("bp,bq,pqij->bij", ones_p, v, cells))
    k12 = ref.kappa_from_tables(np.einsum("bp,bq,pqij->bij", w, v, cells))
    v1, v2, v12 = (np.nanvar(x, ddof=1) for x in (k1, k2, k12))
    want = min(max(2 * (v1 + v2) - v12, max(v1, v2)), v1 + v2)
    n_impl = 20_000
    got = stats.kappa_ci(a.ravel(), b.ravel(), clusters=grid(p, q), n_resamples=n_impl, seed=4)
    assert got.estimate == pytest.approx(ref.sk_kappa(a.ravel(), b.ravel(), 2), abs=1e-12)
    mc = math.sqrt(2 / n_ref + 2 / n_impl) * math.sqrt(4 * v1**2 + 4 * v2**2 + v12**2)
    assert got.se**2 == pytest.approx(want, abs=Z * mc)


def test_item_wilson_interval_matches_statsmodels():
    # 5000 items: the bootstrap's effective sample size is the item count
    # (within Monte-Carlo error) and Student's t with 4999 df is the normal
    rng = np.random.default_rng(5)
    y = (rng.random(5000) < 0.07).astype(float)
    got = stats.win_rate(y, n_resamples=20_000, seed=1)
    low, high = proportion_confint(int(y.sum()), y.size, alpha=0.05, method="wilson")
    assert got.method == "item-wilson"
    assert got.low == pytest.approx(low, abs=0.03 * (high - low))
    assert got.high == pytest.approx(high, abs=0.03 * (high - low))


@pytest.mark.parametrize("clusters, units", [(None, 40), ("one", 8)])
def test_constant_outcomes_give_the_worst_case_wilson_interval(clusters, units):
    # every outcome a win: no resample differs, so the interval is Wilson's
    # over the independent units (items, or clusters) with Student's t quantile
    ids = np.repeat(np.arange(8), 5) if clusters else None
    got = stats.win_rate(np.ones(40), clusters=ids, n_resamples=200)
    t = scipy.stats.t.ppf(0.975, units - 1)
    low, high = proportion_confint(units, units, alpha=2 * scipy.stats.norm.sf(t), method="wilson")
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-9)
    assert got.high == 1.0 and "same value" in got.warning
    if clusters:
        assert "only 8 clusters" in got.warning


def test_conditioning_style_all_ties_is_not_a_point():
    # 300 answers, all judged ties, over 10 personas: today's [0.5, 0.5]
    got = stats.win_rate(np.full(300, 0.5), clusters=np.repeat(np.arange(10), 30), n_resamples=300)
    assert got.estimate == 0.5 and got.low < 0.3 and got.high > 0.7
    assert got.low == pytest.approx(1 - got.high, abs=1e-12)


# --------------------------------------------------------------------------- designs and their checks


def test_cluster_forms_give_the_same_crossed_interval():
    rng = np.random.default_rng(6)
    p, q = grid(12, 8)
    a = rng.integers(0, 2, p.size)
    b = np.where(rng.random(p.size) < 0.8, a, 1 - a)
    base = stats.kappa_ci(a, b, clusters=(p, q), n_resamples=300, seed=1)
    names = np.array([f"persona-{i}" for i in p])
    for form in ([p, q], {"personas": p, "questions": q}, (pl.Series("persona_id", names), pl.Series("q", q))):
        other = stats.kappa_ci(a, b, clusters=form, n_resamples=300, seed=1)
        assert other == base and other.se == base.se and other.units == (12, 8)


def test_a_factor_with_too_few_levels_gets_no_interval():
    p, q = grid(30, 4)
    y = (np.random.default_rng(7).random(p.size) < 0.4).astype(float)
    got = stats.win_rate(y, clusters={"personas": p, "questions": q}, n_resamples=100)
    assert got.estimate == pytest.approx(y.mean())
    assert math.isnan(got.low) and math.isnan(got.high) and math.isnan(got.se)
    assert got.warning == "only 4 questions: too few for a bootstrap interval (at least 5 are needed)"
    assert math.isnan(got.p_value())
    few = stats.win_rate(y, clusters={"personas": p % 6, "questions": q * 0 + np.arange(p.size) % 9}, n_resamples=100)
    assert few.low < few.high and "only 6 personas: the interval rests on few clusters" in few.warning


def test_crossed_design_errors_name_the_argument():
    x = np.array([0, 1, 1, 0, 1, 0])
    p, q = np.arange(6) % 3, np.arange(6) % 2
    with pytest.raises(InvalidArgumentError, match="clusters"):
        stats.kappa_ci(x, x, clusters=(p, q, p), n_resamples=10)
    with pytest.raises(InvalidArgumentError, match="method"):
        stats.kappa_ci(x, x, clusters=(p, q), method="percentile", n_resamples=10)
    with pytest.raises(InvalidArgumentError, match="clusters"):
        stats.kappa_bootstrap(x, x, clusters=(p, q), n_resamples=10)
    with pytest.raises(LengthMismatchError, match=r"clusters\[1\]"):
        stats.win_rate(x, clusters=(p, q[:5]), n_resamples=10)


def test_crossed_kappa_diff_has_a_paired_interval():
    # run 2 copies most of run 1: pairing makes the interval much narrower
    # than the two kappas' own intervals combined
    rng = np.random.default_rng(8)
    p, q = grid(30, 12)
    a1 = rng.integers(0, 2, p.size)
    b1 = np.where(rng.random(p.size) < 0.8, a1, 1 - a1)
    b2 = np.where(rng.random(p.size) < 0.9, b1, 1 - b1)
    d = stats.kappa_diff_ci(a1, b1, a1, b2, clusters=(p, q), n_resamples=1000, seed=2)
    k1 = stats.kappa_ci(a1, b1, clusters=(p, q), n_resamples=1000, seed=2)
    k2 = stats.kappa_ci(a1, b2, clusters=(p, q), n_resamples=1000, seed=2)
    assert d.estimate == pytest.approx(k1.estimate - k2.estimate, abs=1e-12)
    assert d.method == "crossed-normal" and d.low < d.estimate < d.high
    assert d.se < 0.6 * math.hypot(k1.se, k2.se)


# --------------------------------------------------------------------------- Interval


def test_interval_is_a_three_tuple_with_attributes():
    got = stats.win_rate([1, 0, 1, 1, 0, 1, 1, 1] * 10, n_resamples=500, seed=1)
    est, low, high = got
    assert (est, low, high) == (got.estimate, got.low, got.high) == (got[0], got[1], got[2])
    assert len(got) == 3 and tuple(got) == got and isinstance(got, tuple)
    assert got.units == () and got.n == 80 and got.n_resamples == 500 and got.se > 0
    back = pickle.loads(pickle.dumps(got))
    assert back == got and back.se == got.se and back.method == got.method and back.warning == got.warning
    plain = Interval(0.1, 0.0, 0.2)
    assert plain == (0.1, 0.0, 0.2) and math.isnan(plain.se) and plain.warning is None
    assert "estimate=0.1" in repr(plain)


def test_p_value_is_two_sided_normal():
    iv = Interval(0.3, 0.1, 0.5, se=0.1)
    assert iv.p_value() == pytest.approx(2 * scipy.stats.norm.sf(3.0))
    assert iv.p_value(0.5) == pytest.approx(2 * scipy.stats.norm.sf(2.0))
    assert iv.p_value(0.3) == 1.0


# --------------------------------------------------------------------------- multiplicity


@pytest.mark.parametrize("seed", range(4))
def test_holm_and_bh_match_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 25), rng.uniform(0, 0.01, 8), [0.02, 0.02, 1.0]])
    rng.shuffle(p)
    p[rng.choice(p.size, 3, replace=False)] = np.nan
    ok = ~np.isnan(p)
    for ours, name in ((stats.holm(p), "holm"), (stats.benjamini_hochberg(p), "fdr_bh")):
        assert np.isnan(ours[~ok]).all()
        np.testing.assert_allclose(ours[ok], multipletests(p[ok], method=name)[1], rtol=0, atol=1e-12)


def test_multiplicity_input_is_checked():
    with pytest.raises(InvalidArgumentError, match="pvalues"):
        stats.holm([0.1, 1.2])
    assert np.isnan(stats.benjamini_hochberg([np.nan, np.nan])).all()
    np.testing.assert_array_equal(stats.holm([0.04]), [0.04])


def test_interval_ends_stay_inside_the_statistics_range():
    # 8 x 6 personas x questions, kappa near its boundary: the worst-case and
    # normal intervals would reach below -1 (kappa) or past +-2 (a difference).
    rng = np.random.default_rng(1)
    p, q = np.repeat(np.arange(8), 6), np.tile(np.arange(6), 8)
    a = (rng.random(48) < 0.93).astype(np.int8)
    b = a.copy()
    flip = rng.random(48) < 0.1
    b[flip] = 1 - b[flip]
    k = stats.kappa_ci(a, b, k=2, clusters=(p, q), seed=1)
    assert -1.0 <= k.low < k.estimate < k.high <= 1.0
    d = stats.kappa_diff_ci(a, b, a, b, k=2, clusters=(p, q), seed=1)
    assert d.low == -2.0 and d.high == 2.0 and d.warning
    r = stats.win_rate(np.ones(48), clusters=(p, q), seed=1)
    assert 0.0 < r.low < r.high == 1.0
