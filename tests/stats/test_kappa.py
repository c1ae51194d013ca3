"""Cohen's kappa, agreement figures, confusion matrix and the kappa matrix.

The reference values come from scikit-learn (cohen_kappa_score and
confusion_matrix, with ``labels=range(k)`` so that weighted kappa uses the
category values), statsmodels (cohens_kappa on a contingency table) and from
published worked examples.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa

from persona_exp import stats
from persona_exp.stats import Agreement

WEIGHTS = [None, "linear", "quadratic"]
SIGNED = [np.int8, np.int16, np.int32, np.int64]
LABEL_DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_]


def labels_from_table(table):
    """Expand a contingency table (rows = a, columns = b) into two label arrays."""
    table = np.asarray(table)
    k_rows, k_cols = table.shape
    a = np.repeat(np.repeat(np.arange(k_rows), k_cols), table.ravel())
    b = np.repeat(np.tile(np.arange(k_cols), k_rows), table.ravel())
    return a, b


def assert_same_float(got, expected, tol=1e-10):
    if math.isnan(expected):
        assert math.isnan(got), f"expected NaN, got {got}"
    else:
        assert got == pytest.approx(expected, abs=tol, rel=tol), f"got {got}, expected {expected}"


# --------------------------------------------------------------------------- random comparisons with sklearn


def _random_cases(dtype, seed, n_cases=12):
    """Random label pairs of the given dtype, with -1 missing where the dtype allows."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_cases):
        if dtype is np.bool_:
            k = 2
        else:
            k = int(rng.integers(2, 9))
        n = int(rng.choice([5, 17, 60, 250, 1000]))
        p_agree = float(rng.uniform(0.0, 0.95))
        a = rng.integers(0, k, size=n)
        b = np.where(rng.random(n) < p_agree, a, rng.integers(0, k, size=n))
        if dtype in SIGNED:
            miss = float(rng.choice([0.0, 0.1, 0.3]))
            a = np.where(rng.random(n) < miss, -1, a)
            b = np.where(rng.random(n) < miss, -1, b)
        out.append((k, a.astype(dtype), b.astype(dtype)))
    return out


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
def test_kappa_matches_sklearn_on_random_inputs(ref, dtype, weights):
    checked_defined = 0
    seed = [LABEL_DTYPES.index(dtype), WEIGHTS.index(weights)]
    for k, a, b in _random_cases(dtype, seed=seed):
        ca, cb = ref.complete_pairs(a, b)
        if ca.size == 0:
            continue
        k_default = int(max(a.max(), b.max())) + 1
        expected = ref.sk_kappa(a, b, k_default, weights)
        got = stats.cohen_kappa(a, b, weights=weights)
        assert_same_float(got, expected)
        # an explicit k (larger than what is used) must give the same kappa,
        # since the weights depend on the category values only
        got_k = stats.cohen_kappa(a, b, k=k + 2, weights=weights)
        assert_same_float(got_k, ref.sk_kappa(a, b, k + 2, weights))
        checked_defined += not math.isnan(expected)
    assert checked_defined >= 8


@pytest.mark.parametrize("weights", WEIGHTS)
def test_kappa_polars_series_with_nulls_match_sklearn(ref, weights):
    rng = np.random.default_rng(7)
    for dtype in (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8):
        k = 5
        a, b = ref.agreeing_labels(rng, 300, k, 0.6)
        a_list = [None if m else int(v) for v, m in zip(a, rng.random(300) < 0.15)]
        b_list = [None if m else int(v) for v, m in zip(b, rng.random(300) < 0.15)]
        sa, sb = pl.Series("a", a_list, dtype=dtype), pl.Series("b", b_list, dtype=dtype)
        a_np = np.array([-1 if v is None else v for v in a_list])
        b_np = np.array([-1 if v is None else v for v in b_list])
        expected = ref.sk_kappa(a_np, b_np, k, weights)
        assert_same_float(stats.cohen_kappa(sa, sb, k=k, weights=weights), expected)
        res = stats.agreement(sa, sb, k=k, weights=weights)
        assert res.n == int(((a_np != -1) & (b_np != -1)).sum())
    # polars without nulls
    a, b = ref.agreeing_labels(rng, 200, 4, 0.5)
    got = stats.cohen_kappa(pl.Series(a), pl.Series(b), weights=weights)
    assert_same_float(got, ref.sk_kappa(a, b, 4, weights))


@pytest.mark.parametrize("weights", WEIGHTS)
def test_kappa_accepts_lists_floats_strided_and_mixed_dtypes(ref, weights):
    rng = np.random.default_rng(11)
    a, b = ref.agreeing_labels(rng, 400, 6, 0.5, missing=0.1)
    expected = ref.sk_kappa(a, b, 6, weights)
    variants = [
        (a.tolist(), b.tolist()),
        (a.astype(np.float64), b.astype(np.float64)),
        (a.astype(np.int8), b.astype(np.int64)),
        (a.astype(np.int16), b.astype(np.int32)),
        (np.ascontiguousarray(np.repeat(a, 2))[::2], np.repeat(b, 2)[::2]),  # strided views
    ]
    for va, vb in variants:
        assert_same_float(stats.cohen_kappa(va, vb, k=6, weights=weights), expected)
    # unsigned non-native dtypes (no missing values possible)
    a2, b2 = ref.agreeing_labels(rng, 300, 4, 0.5)
    exp2 = ref.sk_kappa(a2, b2, 4, weights)
    for dt in (np.uint16, np.uint32, np.uint64):
        assert_same_float(stats.cohen_kappa(a2.astype(dt), b2.astype(dt), weights=weights), exp2)


def test_kappa_does_not_modify_inputs(ref):
    rng = np.random.default_rng(3)
    a, b = ref.agreeing_labels(rng, 100, 3, 0.5, missing=0.2, dtype=np.int8)
    a0, b0 = a.copy(), b.copy()
    stats.cohen_kappa(a, b, weights="quadratic")
    stats.kappa_ci(a, b, n_resamples=50)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("weights", WEIGHTS)
def test_perfect_agreement_is_one(weights):
    a = np.array([0, 1, 2, 2, 1, 0, 3, 3, 0])
    res = stats.agreement(a, a.copy(), weights=weights)
    assert res.kappa == pytest.approx(1.0, abs=1e-12)
    assert res.observed == pytest.approx(1.0, abs=1e-12)
    assert res.n == a.size
    assert res.k == 4


def test_total_disagreement(ref):
    a = np.array([0, 1] * 10)
    b = 1 - a
    assert stats.cohen_kappa(a, b) == pytest.approx(-1.0, abs=1e-12)
    for w in WEIGHTS:
        assert_same_float(stats.cohen_kappa(a, b, weights=w), ref.sk_kappa(a, b, 2, w))
    # the two annotators never use the same category: p_o = p_e = 0 -> kappa 0
    c = np.zeros(12, dtype=np.int64)
    d = np.ones(12, dtype=np.int64)
    res = stats.agreement(c, d)
    assert res.kappa == pytest.approx(0.0, abs=1e-12)
    assert res.observed == pytest.approx(0.0, abs=1e-12)
    assert res.expected == pytest.approx(0.0, abs=1e-12)
    # three categories, a cyclic shift: every judgment disagrees
    e = np.array([0, 1, 2] * 7)
    f = (e + 1) % 3
    for w in WEIGHTS:
        assert_same_float(stats.cohen_kappa(e, f, weights=w), ref.sk_kappa(e, f, 3, w))
    assert stats.cohen_kappa(e, f) == pytest.approx(-0.5, abs=1e-12)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("k", [None, 1, 3, 10])
def test_single_category_used_by_both_is_nan(ref, weights, k):
    a = np.zeros(15, dtype=np.int64)
    if k == 1 and weights is not None:
        pytest.skip("weighted kappa with a single category has no distance to scale")
    got = stats.cohen_kappa(a, a.copy(), k=k, weights=weights)
    assert math.isnan(got)
    # scikit-learn agrees (it returns NaN when chance disagreement is zero)
    assert math.isnan(ref.sk_kappa(a, a, k or 1, weights))
    # same with a category other than 0 and missing values around it
    b = np.array([2, 2, -1, 2, 2, -1, 2])
    c = np.array([2, -1, 2, 2, 2, 2, 2])
    assert math.isnan(stats.cohen_kappa(b, c, weights=weights))


@pytest.mark.parametrize("weights", WEIGHTS)
def test_k_larger_than_labels_present(ref, weights):
    rng = np.random.default_rng(5)
    a, b = ref.agreeing_labels(rng, 200, 3, 0.6)
    base = stats.agreement(a, b, weights=weights)
    assert base.k == 3
    for k in (3, 4, 9, 50):
        res = stats.agreement(a, b, k=k, weights=weights)
        assert res.k == k
        assert res.n == 200
        assert res.kappa == pytest.approx(base.kappa, abs=1e-12)
        assert_same_float(res.kappa, ref.sk_kappa(a, b, k, weights))
    np.testing.assert_array_equal(stats.confusion_matrix(a, b, k=6)[:3, :3], stats.confusion_matrix(a, b))
    assert stats.confusion_matrix(a, b, k=6)[3:].sum() == 0


def test_weights_use_category_values_not_ranks(ref):
    # categories 0, 1 and 3 are used, 2 is absent; weighted kappa must count the
    # gap (|3 - 1| = 2), so relabelling 3 -> 2 changes the weighted kappa but not
    # the unweighted one
    rng = np.random.default_rng(9)
    base_a = rng.choice([0, 1, 3], size=300)
    base_b = np.where(rng.random(300) < 0.5, base_a, rng.choice([0, 1, 3], size=300))
    ranked_a = np.where(base_a == 3, 2, base_a)
    ranked_b = np.where(base_b == 3, 2, base_b)
    for w in ("linear", "quadratic"):
        got = stats.cohen_kappa(base_a, base_b, weights=w)
        assert_same_float(got, ref.sk_kappa(base_a, base_b, 4, w))
        ranked = stats.cohen_kappa(ranked_a, ranked_b, weights=w)
        assert_same_float(ranked, ref.sk_kappa(ranked_a, ranked_b, 3, w))
        assert abs(got - ranked) > 1e-3
    assert stats.cohen_kappa(base_a, base_b) == pytest.approx(stats.cohen_kappa(ranked_a, ranked_b), abs=1e-12)


def test_missing_on_either_side_is_dropped_pairwise(ref):
    a = np.array([0, 1, -1, 2, 1, 0, 2, -1, 1, 0])
    b = np.array([0, -1, 1, 2, 1, 1, 2, -1, 0, 0])
    res = stats.agreement(a, b)
    keep = (a != -1) & (b != -1)
    assert res.n == int(keep.sum()) == 7
    assert_same_float(res.kappa, ref.sk_kappa(a[keep], b[keep], 3))
    # changing the label of an item whose partner is missing changes nothing
    a2 = a.copy()
    a2[1] = 0
    assert stats.cohen_kappa(a2, b) == pytest.approx(res.kappa, abs=1e-12)


# --------------------------------------------------------------------------- agreement fields and confusion matrix


@pytest.mark.parametrize("seed", range(6))
def test_agreement_fields_unweighted(ref, seed):
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(2, 7))
    a, b = ref.agreeing_labels(rng, int(rng.integers(30, 400)), k, 0.5, missing=0.1)
    res = stats.agreement(a, b)
    assert isinstance(res, Agreement)
    t = ref.table_of(a, b, k).astype(float)
    n = t.sum()
    po = np.trace(t) / n
    pe = float((t.sum(1) * t.sum(0)).sum() / n**2)
    assert res.n == int(n)
    assert isinstance(res.n, int) and isinstance(res.k, int)
    k_default = int(max(a.max(), b.max())) + 1
    assert res.k == k_default
    assert res.observed == pytest.approx(po, abs=1e-12)
    assert res.expected == pytest.approx(pe, abs=1e-12)
    assert res.kappa == pytest.approx((po - pe) / (1 - pe), abs=1e-12)


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
@pytest.mark.parametrize("seed", range(4))
def test_agreement_fields_weighted(ref, weights, seed):
    rng = np.random.default_rng(200 + seed)
    k = int(rng.integers(3, 7))
    a, b = ref.agreeing_labels(rng, 250, k, 0.4, missing=0.1)
    res = stats.agreement(a, b, k=k, weights=weights)
    # internal consistency of the figures, whatever the weight scaling
    assert 0.0 <= res.observed <= 1.0 + 1e-12
    assert 0.0 <= res.expected <= 1.0 + 1e-12
    assert res.kappa == pytest.approx((res.observed - res.expected) / (1 - res.expected), abs=1e-12)
    assert_same_float(res.kappa, ref.sk_kappa(a, b, k, weights))
    # the usual agreement weights on category values (Cicchetti-Allison for
    # linear, Fleiss-Cohen for quadratic): w_ij = 1 - |i-j|/(k-1) or
    # 1 - (i-j)^2/(k-1)^2
    t = ref.table_of(a, b, k).astype(float)
    p = t / t.sum()
    w = 1.0 - ref.disagreement_weights(k, weights) / ref.disagreement_weights(k, weights).max()
    po = float((w * p).sum())
    pe = float((w * np.outer(p.sum(1), p.sum(0))).sum())
    assert res.observed == pytest.approx(po, abs=1e-12)
    assert res.expected == pytest.approx(pe, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_confusion_matrix_matches_sklearn(ref, seed):
    rng = np.random.default_rng(300 + seed)
    k = int(rng.integers(2, 9))
    dtype = [np.int8, np.int16, np.int32, np.int64][seed % 4]
    a, b = ref.agreeing_labels(rng, int(rng.integers(10, 600)), k, 0.5, missing=0.15, dtype=dtype)
    ca, cb = ref.complete_pairs(a, b)
    k_default = int(max(a.max(), b.max())) + 1
    got = stats.confusion_matrix(a, b)
    assert got.shape == (k_default, k_default)
    np.testing.assert_array_equal(got, sk_confusion_matrix(ca, cb, labels=list(range(k_default))))
    got_k = stats.confusion_matrix(a, b, k=k + 3)
    assert got_k.shape == (k + 3, k + 3)
    np.testing.assert_array_equal(got_k, sk_confusion_matrix(ca, cb, labels=list(range(k + 3))))
    assert got.sum() == ca.size


def test_confusion_matrix_rows_are_a():
    a = np.array([0, 0, 0, 1, 2])
    b = np.array([1, 1, 2, 1, 2])
    got = stats.confusion_matrix(a, b)
    expected = np.array([[0, 2, 1], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(stats.confusion_matrix(b, a), expected.T)


@pytest.mark.parametrize("seed", range(10))
def test_kappa_matches_statsmodels_contingency_table(ref, seed):
    rng = np.random.default_rng(400 + seed)
    k = int(rng.integers(2, 8))
    a, b = ref.agreeing_labels(rng, int(rng.integers(50, 500)), k, float(rng.uniform(0.1, 0.9)))
    # make sure every category is used by someone so the table has no empty margin on both sides
    a[:k] = np.arange(k)
    table = stats.confusion_matrix(a, b, k=k)
    unweighted = sm_cohens_kappa(table, return_results=False)
    assert stats.cohen_kappa(a, b, k=k) == pytest.approx(unweighted, abs=1e-10)
    # statsmodels with wt='linear'/'quadratic' and no explicit scores uses the
    # scores 0..k-1, i.e. the category values
    lin = sm_cohens_kappa(table, wt="linear", return_results=False)
    quad = sm_cohens_kappa(table, wt="quadratic", return_results=False)
    assert stats.cohen_kappa(a, b, k=k, weights="linear") == pytest.approx(lin, abs=1e-10)
    assert stats.cohen_kappa(a, b, k=k, weights="quadratic") == pytest.approx(quad, abs=1e-10)


# --------------------------------------------------------------------------- published worked examples


def test_published_example_grant_proposals():
    # Worked example of the Wikipedia article "Cohen's kappa" (section "Simple
    # example"), also reproduced in many statistics tutorials: 50 grant
    # proposals read by readers A and B; A yes/B yes 20, A yes/B no 5, A no/B yes
    # 10, A no/B no 15. Published: p_o = 0.70, p_e = 0.50, kappa = 0.40.
    a, b = labels_from_table([[20, 5], [10, 15]])
    res = stats.agreement(a, b)
    assert res.n == 50
    assert res.observed == pytest.approx(0.70, abs=1e-12)
    assert res.expected == pytest.approx(0.50, abs=1e-12)
    assert res.kappa == pytest.approx(0.40, abs=1e-12)


def test_published_example_sas_three_categories():
    # SAS PROC FREQ (AGREE option) printout for the 3x3 table
    # [[0, 4, 1], [0, 8, 0], [0, 1, 5]] as reproduced in the statsmodels test
    # suite (statsmodels/stats/tests/test_inter_rater.py): simple kappa 0.4842,
    # weighted kappa (Cicchetti-Allison, i.e. linear weights) 0.4701.
    a, b = labels_from_table([[0, 4, 1], [0, 8, 0], [0, 1, 5]])
    assert stats.cohen_kappa(a, b, k=3) == pytest.approx(0.4842, abs=5e-5)
    assert stats.cohen_kappa(a, b, k=3, weights="linear") == pytest.approx(0.4701, abs=5e-5)


def test_published_example_irr_anxiety():
    # Anxiety ratings of 20 subjects (R package irr, data set "anxiety"),
    # raters 2 and 3. R irr::kappa2 output as published in the statsmodels test
    # suite: unweighted -0.006289308, weight "equal" 0.1459075, weight
    # "squared" 0.2520325. irr spaces the *levels present* equally, so the
    # ratings are mapped to the ranks 0..4 of the five levels used (1,2,3,4,6).
    rater2 = [3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4]
    rater3 = [2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2]
    levels = sorted(set(rater2) | set(rater3))
    assert levels == [1, 2, 3, 4, 6]
    a = np.searchsorted(levels, rater2)
    b = np.searchsorted(levels, rater3)
    assert stats.cohen_kappa(a, b) == pytest.approx(-0.006289308, abs=1e-8)
    assert stats.cohen_kappa(a, b, weights="linear") == pytest.approx(0.1459075, abs=1e-7)
    assert stats.cohen_kappa(a, b, weights="quadratic") == pytest.approx(0.2520325, abs=1e-7)


# --------------------------------------------------------------------------- kappa matrix


def _reference_kappa_matrix(ref, labels, k, weights):
    m = labels.shape[0]
    out = np.empty((m, m))
    for i, j in itertools.product(range(m), range(m)):
        out[i, j] = ref.sk_kappa(labels[i], labels[j], k, weights)
    return out


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("seed", range(3))
def test_kappa_matrix_matches_pairwise_sklearn(ref, weights, seed):
    rng = np.random.default_rng(500 + seed)
    m, n, k = int(rng.integers(3, 7)), int(rng.integers(40, 300)), int(rng.integers(2, 6))
    truth = rng.integers(0, k, size=n)
    labels = np.empty((m, n), dtype=np.int64)
    for r in range(m):
        quality = rng.uniform(0.2, 0.95)
        labels[r] = np.where(rng.random(n) < quality, truth, rng.integers(0, k, size=n))
        labels[r, rng.random(n) < rng.uniform(0.0, 0.4)] = -1
    k_default = int(labels.max()) + 1
    got = stats.kappa_matrix(labels, weights=weights)
    assert got.shape == (m, m)
    expected = _reference_kappa_matrix(ref, labels, k_default, weights)
    np.testing.assert_allclose(got, expected, atol=1e-10, equal_nan=True)
    np.testing.assert_allclose(got, got.T, atol=1e-12, equal_nan=True)
    # with an explicit k, as int16, and as a list of rows
    got_k = stats.kappa_matrix(labels.astype(np.int16), k=k + 2, weights=weights)
    np.testing.assert_allclose(got_k, _reference_kappa_matrix(ref, labels, k + 2, weights), atol=1e-10, equal_nan=True)
    got_list = stats.kappa_matrix([row for row in labels], weights=weights)
    np.testing.assert_allclose(got_list, expected, atol=1e-10, equal_nan=True)


def test_kappa_matrix_diagonal_and_special_pairs(ref):
    labels = np.array(
        [
            [0, 1, 2, 1, 0, 2, 1, -1, -1, -1],  # ordinary annotator
            [2, 2, 2, 2, -1, 2, 2, 2, -1, -1],  # uses a single category
            [0, 1, 1, 1, 0, 2, 2, 0, -1, -1],  # ordinary annotator
            [-1, -1, -1, -1, -1, -1, -1, -1, 0, 1],  # shares no item with rows 0-2
        ]
    )
    got = stats.kappa_matrix(labels)
    # diagonal: 1, NaN for the single-category annotator
    assert got[0, 0] == pytest.approx(1.0)
    assert math.isnan(got[1, 1])
    assert got[2, 2] == pytest.approx(1.0)
    assert got[3, 3] == pytest.approx(1.0)
    # pairs sharing no item are NaN
    for i in range(3):
        assert math.isnan(got[i, 3]) and math.isnan(got[3, i])
    # ordinary pair against sklearn on the shared items
    assert got[0, 2] == pytest.approx(ref.sk_kappa(labels[0], labels[2], 3), abs=1e-12)
    # the single-category annotator against an ordinary one: p_e < 1, defined
    assert got[0, 1] == pytest.approx(ref.sk_kappa(labels[0], labels[1], 3), abs=1e-12)


def test_kappa_matrix_polars_dataframe_rows_and_bool():
    a = np.array([True, False, True, True, False, False])
    b = np.array([True, False, False, True, False, True])
    got = stats.kappa_matrix(np.vstack([a, b]))
    assert got[0, 1] == pytest.approx(stats.cohen_kappa(a.astype(int), b.astype(int)), abs=1e-12)
    got2 = stats.kappa_matrix([pl.Series(a.astype(np.int8)), pl.Series(b.astype(np.int8))])
    np.testing.assert_allclose(got2, got, atol=1e-12)
