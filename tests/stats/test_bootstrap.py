"""Bootstrap distributions and intervals: kappa_bootstrap, kappa_ci,
kappa_diff_ci and win_rate.

Each is compared with a slow reference bootstrap written here with numpy
(items, or whole clusters, drawn with replacement) or with
scipy.stats.bootstrap for BCa. The two sides use independent random streams,
so they can only agree within Monte-Carlo error; every tolerance below is a
multiple (Z) of the standard error of the difference between the two
Monte-Carlo estimates:

* mean of B draws: sd / sqrt(B);
* standard deviation of B draws: about sd / sqrt(2 B);
* empirical q-quantile of B draws: sqrt(q (1 - q) / B) * dQ/dq, the sparsity
  dQ/dq estimated from the reference draws (honest for skewed or lumpy
  distributions);
* BCa ends: twice the quantile error, since the bias correction z0 is
  estimated from the same draws (checked empirically over many seeds).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
import scipy.stats

from persona_exp import stats
from persona_exp.stats import Interval

Z = 5.0  # tolerance in standard errors of the Monte-Carlo difference
B_IMPL = 20_000  # resamples asked of the package (fast path)
B_REF = 4_000  # resamples of the slow reference
WEIGHTS = [None, "linear", "quadratic"]


def assert_distributions_agree(ref, got, expected, what=""):
    """Mean, sd and 2.5/50/97.5 % quantiles of two bootstrap samples agree."""
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    sd = expected.std(ddof=1)
    assert sd > 0
    se_mean = sd * math.sqrt(1 / got.size + 1 / expected.size)
    assert abs(got.mean() - expected.mean()) < Z * se_mean, f"{what}: means {got.mean()} vs {expected.mean()}"
    se_sd = sd * math.sqrt(1 / (2 * got.size) + 1 / (2 * expected.size))
    assert abs(got.std(ddof=1) - sd) < Z * se_sd, f"{what}: sds {got.std(ddof=1)} vs {sd}"
    for q in (0.025, 0.5, 0.975):
        se_q = math.hypot(ref.quantile_se(got, q), ref.quantile_se(expected, q))
        gq, eq = np.quantile(got, q), np.quantile(expected, q)
        assert abs(gq - eq) < Z * se_q, f"{what}: {q}-quantiles {gq} vs {eq} (se {se_q})"


def assert_end_close(ref, end, ref_end, draws_ref, q, b_impl, inflate=1.0, what=""):
    """One interval end against the reference quantile of ``draws_ref``.

    The standard error combines the Monte-Carlo errors of the reference
    (len(draws_ref) draws) and of the package (b_impl draws); ``inflate``
    widens it where more than the quantile is estimated (BCa's z0).
    """
    draws_ref = np.asarray(draws_ref, dtype=float)
    draws_ref = draws_ref[~np.isnan(draws_ref)]
    q = min(max(q, 0.005), 0.995)
    se = ref.quantile_se(draws_ref, q) * math.sqrt(1 + draws_ref.size / b_impl) * inflate
    assert abs(end - ref_end) < Z * se, f"{what}: end {end} vs reference {ref_end} (se {se:.5f})"


def assert_interval_close(ref, got, draws_ref, level, b_impl, what=""):
    """Percentile interval ends against the reference quantiles."""
    alpha = (1 - level) / 2
    low, high = np.nanquantile(draws_ref, [alpha, 1 - alpha])
    assert_end_close(ref, got.low, low, draws_ref, alpha, b_impl, what=what + " (low)")
    assert_end_close(ref, got.high, high, draws_ref, 1 - alpha, b_impl, what=what + " (high)")


# --------------------------------------------------------------------------- kappa_bootstrap / kappa_ci (items)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_item_bootstrap_distribution_matches_reference(ref, weights):
    rng = np.random.default_rng(1)
    a, b = ref.agreeing_labels(rng, 300, 4, 0.55, missing=0.08)
    k = 4
    got = stats.kappa_bootstrap(a, b, k=k, weights=weights, n_resamples=B_IMPL, seed=3)
    assert isinstance(got, np.ndarray)
    assert got.shape == (B_IMPL,)
    assert not np.isnan(got).any()
    expected = ref.reference_item_bootstrap(a, b, k, weights, B_REF, np.random.default_rng(99))
    assert_distributions_agree(ref, got, expected, f"item bootstrap, weights={weights}")


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("level", [0.95, 0.8])
def test_percentile_ci_matches_reference(ref, weights, level):
    rng = np.random.default_rng(2)
    a, b = ref.agreeing_labels(rng, 250, 3, 0.5, missing=0.05, dtype=np.int16)
    got = stats.kappa_ci(a, b, weights=weights, n_resamples=B_IMPL, level=level, method="percentile", seed=5)
    assert isinstance(got, Interval)
    assert got.estimate == pytest.approx(ref.sk_kappa(a, b, 3, weights), abs=1e-12)
    draws = ref.reference_item_bootstrap(a, b, 3, weights, B_REF, np.random.default_rng(7))
    assert got.low < got.estimate < got.high
    assert_interval_close(ref, got, draws, level, B_IMPL, f"percentile {weights} {level}")


def test_narrower_level_gives_narrower_interval(ref):
    rng = np.random.default_rng(4)
    a, b = ref.agreeing_labels(rng, 200, 3, 0.5)
    wide = stats.kappa_ci(a, b, level=0.99, n_resamples=5000, seed=1)
    mid = stats.kappa_ci(a, b, level=0.9, n_resamples=5000, seed=1)
    narrow = stats.kappa_ci(a, b, level=0.5, n_resamples=5000, seed=1)
    assert wide.low < mid.low < narrow.low < narrow.high < mid.high < wide.high
    assert wide.estimate == mid.estimate == narrow.estimate


def _kappa_statistic(k, weights, kappa_from_tables):
    """A vectorised kappa statistic for scipy.stats.bootstrap (paired data)."""

    def statistic(a, b, axis=-1):
        a = np.moveaxis(np.asarray(a), axis, -1)
        b = np.moveaxis(np.asarray(b), axis, -1)
        cells = [((a == i) & (b == j)).sum(axis=-1) for i in range(k) for j in range(k)]
        tables = np.stack(cells, axis=-1).reshape(a.shape[:-1] + (k, k))
        return kappa_from_tables(tables, weights)

    return statistic


BCA_INFLATE = 2.0  # BCa ends also carry the Monte-Carlo error of z0


def assert_bca_shift_agrees(ref, got_bca, got_pct, dist_ref, ref_bca, what=""):
    """BCa moves away from the percentile interval as the reference does.

    The percentile and BCa ends of one set of draws are strongly correlated,
    so the shift BCa - percentile is much less noisy than either end. Checked
    at the end where the reference shift is largest, when that shift is large
    compared with its Monte-Carlo error (a "bca" that returned the percentile
    interval, or one that ignored acceleration or bias, fails here).
    """
    ref_pct = np.nanquantile(dist_ref, [0.025, 0.975])
    shifts_ref = np.array(ref_bca) - ref_pct
    shifts_got = np.array([got_bca.low - got_pct.low, got_bca.high - got_pct.high])
    i = int(np.argmax(np.abs(shifts_ref)))
    se = ref.quantile_se(dist_ref, 0.025 if i == 0 else 0.975) * BCA_INFLATE
    assert abs(shifts_ref[i]) > Z * se, "test design: the reference shift is too small to test"
    assert shifts_got[i] == pytest.approx(shifts_ref[i], rel=0.5), f"{what}: BCa shift {shifts_got} vs {shifts_ref}"


@pytest.mark.parametrize(
    "n, k, p_agree, weights, skewed",
    [
        (300, 3, 0.85, None, False),
        (300, 3, 0.85, "quadratic", False),
        # high agreement: a skewed bootstrap distribution, where BCa lies many
        # standard errors away from the percentile interval
        (200, 3, 0.95, "quadratic", True),
        (250, 4, 0.93, "linear", True),
    ],
)
def test_bca_matches_scipy(ref, n, k, p_agree, weights, skewed):
    b_ref, b_impl = (10_000, 50_000) if skewed else (B_REF, B_IMPL)
    rng = np.random.default_rng(6)
    a, b = ref.agreeing_labels(rng, n, k, p_agree)
    statistic = _kappa_statistic(k, weights, ref.kappa_from_tables)
    assert statistic(a, b) == pytest.approx(ref.sk_kappa(a, b, k, weights), abs=1e-12)
    res = scipy.stats.bootstrap(
        (a, b),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=b_ref,
        method="BCa",
        confidence_level=0.95,
        rng=np.random.default_rng(8),
    )
    got = stats.kappa_ci(a, b, k=k, weights=weights, method="bca", n_resamples=b_impl, seed=9)
    assert got.estimate == pytest.approx(statistic(a, b), abs=1e-12)
    dist = res.bootstrap_distribution
    ref_ends = (res.confidence_interval.low, res.confidence_interval.high)
    for end, ref_end, name in zip((got.low, got.high), ref_ends, ("low", "high")):
        # the BCa ends are quantiles of the bootstrap distribution at adjusted
        # levels: recover the level from scipy's end to size the tolerance
        q = float(np.mean(dist <= ref_end))
        assert_end_close(ref, end, ref_end, dist, q, b_impl, inflate=BCA_INFLATE, what=f"BCa {name}")
    if skewed:
        pct = stats.kappa_ci(a, b, k=k, weights=weights, method="percentile", n_resamples=b_impl, seed=9)
        assert_bca_shift_agrees(ref, got, pct, dist, ref_ends, "BCa vs scipy")


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_output_different_seed_different(ref):
    rng = np.random.default_rng(10)
    a, b = ref.agreeing_labels(rng, 200, 4, 0.5, missing=0.1)
    clusters = rng.integers(0, 25, size=200)
    for kw in ({}, {"clusters": clusters}, {"weights": "linear"}):
        x = stats.kappa_bootstrap(a, b, n_resamples=500, seed=123, **kw)
        y = stats.kappa_bootstrap(a, b, n_resamples=500, seed=123, **kw)
        z = stats.kappa_bootstrap(a, b, n_resamples=500, seed=124, **kw)
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)
        # the two seeds give distributions, not one shifted copy of the other
        assert np.mean(x != z) > 0.5
        for method in ("percentile", "bca", "auto"):
            c1 = stats.kappa_ci(a, b, n_resamples=500, seed=123, method=method, **kw)
            c2 = stats.kappa_ci(a, b, n_resamples=500, seed=123, method=method, **kw)
            c3 = stats.kappa_ci(a, b, n_resamples=500, seed=124, method=method, **kw)
            assert c1 == c2
            assert c1.estimate == c3.estimate
            assert (c1.low, c1.high) != (c3.low, c3.high)
    d1 = stats.kappa_diff_ci(a, b, b, a[::-1].copy(), n_resamples=500, seed=5)
    d2 = stats.kappa_diff_ci(a, b, b, a[::-1].copy(), n_resamples=500, seed=5)
    d3 = stats.kappa_diff_ci(a, b, b, a[::-1].copy(), n_resamples=500, seed=6)
    assert d1 == d2 and (d1.low, d1.high) != (d3.low, d3.high)
    outcomes = rng.choice([0.0, 0.5, 1.0], size=200)
    w1 = stats.win_rate(outcomes, n_resamples=500, seed=5)
    assert w1 == stats.win_rate(outcomes, n_resamples=500, seed=5)
    assert (w1.low, w1.high) != (stats.win_rate(outcomes, n_resamples=500, seed=6)[1:])


def test_same_seed_same_output_whatever_the_thread_count():
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from persona_exp import stats
        rng = np.random.default_rng(77)
        a = rng.integers(0, 3, 500)
        b = np.where(rng.random(500) < 0.6, a, rng.integers(0, 3, 500))
        cl = rng.integers(0, 40, 500)
        out = {
            "boot": stats.kappa_bootstrap(a, b, n_resamples=3000, seed=11).tolist(),
            "cboot": stats.kappa_bootstrap(a, b, clusters=cl, n_resamples=3000, seed=11).tolist(),
            "ci": list(stats.kappa_ci(a, b, n_resamples=3000, seed=11, method="bca")),
            "win": list(stats.win_rate(rng.random(300) < 0.6, n_resamples=3000, seed=11)),
            "ws": stats.weighted_sample(rng.random(1000), 300, replace=False, seed=11).tolist(),
            "wr": stats.weighted_sample(rng.random(1000), 300, replace=True, seed=11).tolist(),
        }
        json.dump(out, sys.stdout)
        """
    )
    results = []
    for threads in ("1", "2", "4"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        proc = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout))
    assert results[0] == results[1] == results[2]


# --------------------------------------------------------------------------- undefined resamples


def test_undefined_resamples_are_nan_and_counted_in_ci():
    # four items, one of them the only use of category 1: a resample that
    # misses it has both annotators on category 0 alone (kappa undefined);
    # P(miss) = (3/4)^4. Every other resample has kappa exactly 1.
    a = np.array([0, 0, 0, 1])
    b = np.array([0, 0, 0, 1])
    draws = stats.kappa_bootstrap(a, b, n_resamples=B_IMPL, seed=1)
    nan_share = np.isnan(draws).mean()
    p = 0.75**4
    assert abs(nan_share - p) < Z * math.sqrt(p * (1 - p) / B_IMPL)
    assert np.all(draws[~np.isnan(draws)] == pytest.approx(1.0))
    ci = stats.kappa_ci(a, b, n_resamples=2000, seed=1)
    assert ci.estimate == pytest.approx(1.0)
    # the undefined resamples are counted and reported, not silently dropped
    assert ci.n_resamples == 2000 and abs(ci.undefined / 2000 - p) < Z * math.sqrt(p * (1 - p) / 2000)
    assert f"{ci.undefined} of 2000 resamples had an undefined statistic" in ci.warning
    # every defined resample is 1: the interval is a score interval, not [1, 1]
    assert ci.high == 1.0 and ci.low < 0.5 and ci.method == "item-wilson"


# --------------------------------------------------------------------------- cluster bootstrap


def _clustered_data(rng, n_clusters=40):
    """Strong within-cluster correlation: each cluster (persona) is either a
    cluster where the annotators agree almost always or one where they answer
    at random; cluster sizes vary."""
    a_parts, b_parts, ids = [], [], []
    for g in range(n_clusters):
        size = int(rng.integers(4, 16))
        p_agree = 0.95 if rng.random() < 0.5 else 0.0
        a = rng.integers(0, 3, size=size)
        b = np.where(rng.random(size) < p_agree, a, rng.integers(0, 3, size=size))
        a_parts.append(a)
        b_parts.append(b)
        ids.append(np.full(size, g))
    return np.concatenate(a_parts), np.concatenate(b_parts), np.concatenate(ids)


@pytest.mark.parametrize("weights", [None, "linear"])
def test_cluster_bootstrap_matches_reference(ref, weights):
    rng = np.random.default_rng(12)
    a, b, clusters = _clustered_data(rng)
    got = stats.kappa_bootstrap(a, b, k=3, weights=weights, clusters=clusters, n_resamples=B_IMPL, seed=4)
    assert got.shape == (B_IMPL,)
    expected = ref.reference_cluster_bootstrap(a, b, 3, weights, clusters, B_REF, np.random.default_rng(13))
    assert_distributions_agree(ref, got, expected, f"cluster bootstrap, weights={weights}")
    ci = stats.kappa_ci(a, b, k=3, weights=weights, clusters=clusters, n_resamples=B_IMPL, method="percentile", seed=4)
    assert ci.estimate == pytest.approx(ref.sk_kappa(a, b, 3, weights), abs=1e-12)
    assert_interval_close(ref, ci, expected, 0.95, B_IMPL, "cluster percentile")


def test_cluster_ci_wider_than_item_ci_under_within_cluster_correlation(ref):
    rng = np.random.default_rng(14)
    a, b, clusters = _clustered_data(rng, n_clusters=30)
    item = stats.kappa_ci(a, b, n_resamples=5000, method="percentile", seed=2)
    clus = stats.kappa_ci(a, b, clusters=clusters, n_resamples=5000, method="percentile", seed=2)
    assert item.estimate == clus.estimate
    # the slow references give the expected ratio of widths; the package must
    # show the same inflation (here about 2x)
    r_item = ref.reference_item_bootstrap(a, b, 3, None, B_REF, np.random.default_rng(1))
    r_clus = ref.reference_cluster_bootstrap(a, b, 3, None, clusters, B_REF, np.random.default_rng(2))
    ratio_ref = np.subtract(*np.quantile(r_clus, [0.975, 0.025])) / np.subtract(*np.quantile(r_item, [0.975, 0.025]))
    assert ratio_ref > 1.5
    ratio = (clus.high - clus.low) / (item.high - item.low)
    assert ratio > 1.5
    assert ratio == pytest.approx(ratio_ref, rel=0.2)
    for method in ("percentile", "bca", "auto"):
        i = stats.kappa_ci(a, b, n_resamples=5000, seed=3, method=method)
        c = stats.kappa_ci(a, b, clusters=clusters, n_resamples=5000, seed=3, method=method)
        assert (c.high - c.low) > 1.5 * (i.high - i.low)


def test_singleton_clusters_behave_like_item_bootstrap(ref):
    rng = np.random.default_rng(15)
    a, b = ref.agreeing_labels(rng, 300, 3, 0.6)
    got = stats.kappa_bootstrap(a, b, clusters=np.arange(300), n_resamples=B_IMPL, seed=8)
    expected = ref.reference_item_bootstrap(a, b, 3, None, B_REF, np.random.default_rng(16))
    assert_distributions_agree(ref, got, expected, "singleton clusters")


def test_cluster_ids_of_any_type_give_the_same_result(ref):
    rng = np.random.default_rng(17)
    a, b, clusters = _clustered_data(rng, n_clusters=20)
    names = np.array([f"persona-{c:03d}" for c in clusters])
    codes = np.unique(names, return_inverse=True)[1]
    base = stats.kappa_bootstrap(a, b, clusters=codes, n_resamples=300, seed=1)
    np.testing.assert_array_equal(stats.kappa_bootstrap(a, b, clusters=names, n_resamples=300, seed=1), base)
    np.testing.assert_array_equal(stats.kappa_bootstrap(a, b, clusters=pl.Series(names), n_resamples=300, seed=1), base)
    np.testing.assert_array_equal(stats.kappa_bootstrap(a, b, clusters=list(names), n_resamples=300, seed=1), base)
    ci = stats.kappa_ci(a, b, clusters=codes, n_resamples=300, seed=1)
    assert stats.kappa_ci(a, b, clusters=pl.Series(names), n_resamples=300, seed=1) == ci


@pytest.mark.parametrize("weights", [None, "quadratic"])
def test_cluster_bca_matches_reference(ref, weights):
    # BCa for the cluster bootstrap: acceleration from the jackknife over
    # clusters, bias correction from the share of draws below the estimate
    rng = np.random.default_rng(18)
    a, b, clusters = _clustered_data(rng, n_clusters=40)
    per_cluster = ref.cluster_tables(a, b, 3, clusters).astype(float)
    total = per_cluster.sum(axis=0)
    est = ref.kappa_from_tables(total, weights)
    draws = ref.reference_cluster_bootstrap(a, b, 3, weights, clusters, B_REF, np.random.default_rng(19))
    jack = ref.kappa_from_tables(total[None] - per_cluster, weights)
    d = jack.mean() - jack
    accel = (d**3).sum() / (6 * ((d**2).sum()) ** 1.5)
    z0 = scipy.stats.norm.ppf((np.sum(draws < est) + 0.5 * np.sum(draws == est)) / draws.size)
    za = scipy.stats.norm.ppf([0.025, 0.975])
    q = scipy.stats.norm.cdf(z0 + (z0 + za) / (1 - accel * (z0 + za)))
    low, high = np.quantile(draws, q)
    got = stats.kappa_ci(a, b, weights=weights, clusters=clusters, method="bca", n_resamples=B_IMPL, seed=20)
    assert got.estimate == pytest.approx(est, abs=1e-12)
    assert_end_close(ref, got.low, low, draws, q[0], B_IMPL, inflate=BCA_INFLATE, what="cluster BCa low")
    assert_end_close(ref, got.high, high, draws, q[1], B_IMPL, inflate=BCA_INFLATE, what="cluster BCa high")


# --------------------------------------------------------------------------- kappa_diff_ci


@pytest.mark.parametrize("method", ["percentile", "bca", "auto"])
@pytest.mark.parametrize("use_clusters", [False, True])
def test_diff_of_a_run_with_itself_is_zero_but_not_a_point(ref, method, use_clusters):
    # every resample gives exactly 0; the interval is the unpaired worst-case
    # spread of the two kappas, symmetric about 0, and says so
    rng = np.random.default_rng(21)
    a, b = ref.agreeing_labels(rng, 200, 4, 0.5)
    clusters = rng.integers(0, 20, 200) if use_clusters else None
    got = stats.kappa_diff_ci(a, b, a.copy(), b.copy(), clusters=clusters, n_resamples=1000, method=method, seed=1)
    assert got.estimate == 0.0
    assert got.low == pytest.approx(-got.high, abs=1e-12) and 0.05 < got.high < 1.0
    assert "no resample changed the difference" in got.warning


def _two_runs(rng, n=300):
    """Two runs on the same items: run 2 keeps part of run 1's judgments."""
    a1 = rng.integers(0, 3, size=n)
    b1 = np.where(rng.random(n) < 0.6, a1, rng.integers(0, 3, size=n))
    keep = rng.random(n) < 0.5
    a2 = np.where(keep, a1, rng.integers(0, 3, size=n))
    b2 = np.where(rng.random(n) < 0.7, a2, rng.integers(0, 3, size=n))
    b2 = np.where(keep & (rng.random(n) < 0.5), b1, b2)
    return a1, b1, a2, b2


@pytest.mark.parametrize("weights", [None, "linear"])
def test_paired_diff_ci_matches_reference(ref, weights):
    rng = np.random.default_rng(22)
    a1, b1, a2, b2 = _two_runs(rng)
    est = ref.sk_kappa(a1, b1, 3, weights) - ref.sk_kappa(a2, b2, 3, weights)
    got = stats.kappa_diff_ci(a1, b1, a2, b2, weights=weights, n_resamples=B_IMPL, method="percentile", seed=2)
    assert got.estimate == pytest.approx(est, abs=1e-12)
    # reference: the same resampled items feed both kappas
    idx = np.random.default_rng(23).integers(0, a1.size, size=(B_REF, a1.size))

    def tables(x, y):
        codes = (x * 3 + y)[idx]
        flat = (np.arange(B_REF)[:, None] * 9 + codes).ravel()
        return np.bincount(flat, minlength=B_REF * 9).reshape(B_REF, 3, 3)

    diffs = ref.kappa_from_tables(tables(a1, b1), weights) - ref.kappa_from_tables(tables(a2, b2), weights)
    assert_interval_close(ref, got, diffs, 0.95, B_IMPL, "paired diff")
    # pairing matters here: an unpaired interval would be clearly wider
    sd1 = ref.reference_item_bootstrap(a1, b1, 3, weights, B_REF, np.random.default_rng(24)).std()
    sd2 = ref.reference_item_bootstrap(a2, b2, 3, weights, B_REF, np.random.default_rng(25)).std()
    assert (got.high - got.low) < 0.9 * 2 * 1.96 * math.hypot(sd1, sd2)


def test_paired_diff_ci_with_clusters_matches_reference(ref):
    rng = np.random.default_rng(26)
    a1, b1, a2, b2 = _two_runs(rng, n=300)
    clusters = np.repeat(np.arange(30), 10)
    got = stats.kappa_diff_ci(a1, b1, a2, b2, clusters=clusters, n_resamples=B_IMPL, method="percentile", seed=3)
    t1 = ref.cluster_tables(a1, b1, 3, clusters).astype(float)
    t2 = ref.cluster_tables(a2, b2, 3, clusters).astype(float)
    counts = ref.resample_counts(30, B_REF, np.random.default_rng(27))
    diffs = ref.kappa_from_tables(np.einsum("bg,gij->bij", counts, t1)) - ref.kappa_from_tables(
        np.einsum("bg,gij->bij", counts, t2)
    )
    assert got.estimate == pytest.approx(ref.sk_kappa(a1, b1, 3) - ref.sk_kappa(a2, b2, 3), abs=1e-12)
    assert_interval_close(ref, got, diffs, 0.95, B_IMPL, "cluster paired diff")


def test_diff_ci_sign_follows_argument_order(ref):
    rng = np.random.default_rng(28)
    a1, b1, a2, b2 = _two_runs(rng)
    fwd = stats.kappa_diff_ci(a1, b1, a2, b2, n_resamples=2000, seed=4)
    back = stats.kappa_diff_ci(a2, b2, a1, b1, n_resamples=2000, seed=4)
    assert back.estimate == pytest.approx(-fwd.estimate, abs=1e-12)
    assert back.low == pytest.approx(-fwd.high, abs=0.02)
    assert back.high == pytest.approx(-fwd.low, abs=0.02)


# --------------------------------------------------------------------------- win rate


def test_win_rate_estimate_is_wins_plus_half_ties():
    rng = np.random.default_rng(29)
    outcomes = rng.choice([0.0, 0.5, 1.0], p=[0.3, 0.2, 0.5], size=333)
    wins = int((outcomes == 1.0).sum())
    ties = int((outcomes == 0.5).sum())
    got = stats.win_rate(outcomes, n_resamples=200)
    assert got.estimate == pytest.approx((wins + ties / 2) / outcomes.size, abs=1e-12)
    assert got.low <= got.estimate <= got.high
    booleans = rng.random(101) < 0.7
    got_b = stats.win_rate(booleans, n_resamples=200)
    assert got_b.estimate == pytest.approx(booleans.sum() / 101, abs=1e-12)
    assert stats.win_rate(pl.Series(booleans), n_resamples=200, seed=3) == stats.win_rate(
        booleans.astype(np.float64), n_resamples=200, seed=3
    )
    # all wins: a score interval over the 3 items, not the point [1, 1]
    three = stats.win_rate([1, 1, 1], n_resamples=100)
    assert three.estimate == three.high == 1.0 and 0.0 < three.low < 0.6
    assert "same value" in three.warning and "only 3 items" in three.warning


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_win_rate_ci_matches_reference(ref, level):
    rng = np.random.default_rng(30)
    outcomes = rng.choice([0.0, 0.5, 1.0], p=[0.35, 0.15, 0.5], size=300)
    got = stats.win_rate(outcomes, n_resamples=B_IMPL, level=level, method="percentile", seed=6)
    idx = np.random.default_rng(31).integers(0, 300, size=(B_REF, 300))
    draws = outcomes[idx].mean(axis=1)
    assert_interval_close(ref, got, draws, level, B_IMPL, "win rate")


def test_win_rate_cluster_ci_matches_reference(ref):
    rng = np.random.default_rng(32)
    n_clusters = 40
    sizes = rng.integers(2, 12, size=n_clusters)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    pref = rng.choice([0.1, 0.9], size=n_clusters)[clusters]  # strong persona effect
    outcomes = (rng.random(clusters.size) < pref).astype(float)
    got = stats.win_rate(outcomes, clusters=clusters, n_resamples=B_IMPL, method="percentile", seed=7)
    assert got.estimate == pytest.approx(outcomes.mean(), abs=1e-12)
    sums = np.bincount(clusters, weights=outcomes)
    counts = ref.resample_counts(n_clusters, B_REF, np.random.default_rng(33))
    draws = (counts @ sums) / (counts @ sizes)
    assert_interval_close(ref, got, draws, 0.95, B_IMPL, "cluster win rate")
    item = stats.win_rate(outcomes, n_resamples=5000, seed=7)
    assert (got.high - got.low) > 1.5 * (item.high - item.low)


def test_win_rate_bca_matches_scipy(ref):
    rng = np.random.default_rng(34)
    # a rate near 0.8: a mildly skewed distribution of the mean
    outcomes = rng.choice([0.0, 0.5, 1.0], p=[0.12, 0.1, 0.78], size=300)
    res = scipy.stats.bootstrap(
        (outcomes,), np.mean, vectorized=True, n_resamples=B_REF, method="BCa", rng=np.random.default_rng(35)
    )
    got = stats.win_rate(outcomes, method="bca", n_resamples=B_IMPL, seed=8)
    dist = res.bootstrap_distribution
    ref_ends = (res.confidence_interval.low, res.confidence_interval.high)
    assert got.estimate == pytest.approx(outcomes.mean(), abs=1e-12)
    for end, ref_end in zip((got.low, got.high), ref_ends):
        q = float(np.mean(dist <= ref_end))
        assert_end_close(ref, end, ref_end, dist, q, B_IMPL, inflate=BCA_INFLATE, what="win-rate BCa")
