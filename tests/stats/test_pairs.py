"""align_judgments: a hash join of two annotators' judgments on item keys,
checked against polars' DataFrame.join."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from persona_exp import stats
from persona_exp.errors import PersonaExpError


def polars_reference(keys_a, labels_a, keys_b, labels_b):
    """Inner join on the key, rows in the order of a."""
    left = pl.DataFrame({"key": keys_a, "la": labels_a, "ia": np.arange(len(keys_a), dtype=np.int64)})
    right = pl.DataFrame({"key": keys_b, "lb": labels_b, "ib": np.arange(len(keys_b), dtype=np.int64)})
    joined = left.join(right, on="key", how="inner").sort("ia")
    return joined


def check_against_polars(out, keys_a, labels_a, keys_b, labels_b):
    joined = polars_reference(keys_a, labels_a, keys_b, labels_b)
    np.testing.assert_array_equal(out.index_a, joined["ia"].to_numpy())
    np.testing.assert_array_equal(out.index_b, joined["ib"].to_numpy())
    np.testing.assert_array_equal(out.a, joined["la"].to_numpy())
    np.testing.assert_array_equal(out.b, joined["lb"].to_numpy())
    for arr in (out.a, out.b, out.index_a, out.index_b):
        assert arr.dtype == np.int64
    assert out.keys.dtype == np.uint64
    assert out.keys.shape == out.a.shape == out.b.shape == out.index_a.shape == out.index_b.shape
    return joined


def random_int_keys(rng, n_a, n_b, shared, low=-(2**40), high=2**40):
    step = (high - low) // (4 * (n_a + n_b))
    universe = rng.choice(np.arange(low, high, step, dtype=np.int64), size=n_a + n_b, replace=False)
    common = universe[:shared]
    only_a = universe[shared:n_a]
    only_b = universe[n_a : n_a + n_b - shared]
    keys_a = rng.permutation(np.concatenate([common, only_a]))
    keys_b = rng.permutation(np.concatenate([common, only_b]))
    return keys_a, keys_b


@pytest.mark.parametrize("seed", range(5))
def test_integer_keys_match_polars_join(seed):
    rng = np.random.default_rng(700 + seed)
    n_a, n_b = int(rng.integers(1, 3000)), int(rng.integers(1, 3000))
    shared = int(rng.integers(0, min(n_a, n_b) + 1))
    keys_a, keys_b = random_int_keys(rng, n_a, n_b, shared)
    labels_a = rng.integers(0, 5, size=n_a)
    labels_b = rng.integers(0, 5, size=n_b)
    out = stats.align_judgments(keys_a, labels_a, keys_b, labels_b)
    joined = check_against_polars(out, keys_a, labels_a, keys_b, labels_b)
    assert joined.height == shared
    # order follows a
    assert np.all(np.diff(out.index_a) > 0)
    # integer keys come back as the same 64-bit values
    np.testing.assert_array_equal(out.keys, keys_a[out.index_a].view(np.uint64))
    np.testing.assert_array_equal(keys_a[out.index_a], keys_b[out.index_b])


@pytest.mark.parametrize("seed", range(4))
def test_string_keys_match_polars_join(seed):
    rng = np.random.default_rng(800 + seed)
    n_a, n_b = int(rng.integers(1, 2000)), int(rng.integers(1, 2000))
    shared = int(rng.integers(0, min(n_a, n_b) + 1))
    ints_a, ints_b = random_int_keys(rng, n_a, n_b, shared, low=0, high=10**9)
    keys_a = np.array([f"persona-{k}/question-{k % 97}" for k in ints_a])
    keys_b = np.array([f"persona-{k}/question-{k % 97}" for k in ints_b])
    labels_a = rng.integers(0, 3, size=n_a)
    labels_b = rng.integers(0, 3, size=n_b)
    out = stats.align_judgments(keys_a, labels_a, keys_b, labels_b)
    check_against_polars(out, keys_a, labels_a, keys_b, labels_b)
    np.testing.assert_array_equal(keys_a[out.index_a], keys_b[out.index_b])
    assert np.all(np.diff(out.index_a) > 0)
    # the returned keys (hashes here) identify the items: distinct, and the
    # same string always gives the same key
    assert np.unique(out.keys).size == out.keys.size
    self_join = stats.align_judgments(keys_a, labels_a, keys_a, labels_a)
    np.testing.assert_array_equal(self_join.keys[out.index_a], out.keys)


def test_input_types_give_the_same_join():
    rng = np.random.default_rng(900)
    keys_a, keys_b = random_int_keys(rng, 500, 400, 250, low=0, high=10**6)
    labels_a = rng.integers(0, 4, size=500)
    labels_b = rng.integers(0, 4, size=400)
    base = stats.align_judgments(keys_a, labels_a, keys_b, labels_b)
    variants = [
        (pl.Series(keys_a), pl.Series(labels_a), pl.Series(keys_b), pl.Series(labels_b)),
        (keys_a.tolist(), labels_a.tolist(), keys_b.tolist(), labels_b.tolist()),
        (keys_a.astype(np.int32), labels_a.astype(np.int8), keys_b, labels_b.astype(np.int16)),
        (keys_a.astype(np.uint32), labels_a, keys_b.astype(np.int64), labels_b),
    ]
    for ka, la, kb, lb in variants:
        out = stats.align_judgments(ka, la, kb, lb)
        for x, y in zip(out, base):
            np.testing.assert_array_equal(x, y)
    # string keys as a polars Series and as a list
    skeys_a = np.array([f"k{k}" for k in keys_a])
    skeys_b = np.array([f"k{k}" for k in keys_b])
    s_base = stats.align_judgments(skeys_a, labels_a, skeys_b, labels_b)
    np.testing.assert_array_equal(s_base.index_a, base.index_a)
    np.testing.assert_array_equal(s_base.index_b, base.index_b)
    for ka, kb in ((pl.Series(skeys_a), pl.Series(skeys_b)), (list(skeys_a), list(skeys_b))):
        out = stats.align_judgments(ka, labels_a, kb, labels_b)
        for x, y in zip(out, s_base):
            np.testing.assert_array_equal(x, y)


def test_no_shared_items_gives_empty_arrays():
    out = stats.align_judgments([1, 2, 3], [0, 1, 0], [4, 5], [1, 1])
    for arr in out:
        assert arr.shape == (0,)


def test_order_follows_a_not_b():
    keys_a = np.array([30, 10, 20, 40])
    keys_b = np.array([40, 20, 10, 99])
    out = stats.align_judgments(keys_a, [3, 1, 2, 4], keys_b, [14, 12, 11, 19])
    np.testing.assert_array_equal(out.index_a, [1, 2, 3])
    np.testing.assert_array_equal(out.index_b, [2, 1, 0])
    np.testing.assert_array_equal(out.a, [1, 2, 4])
    np.testing.assert_array_equal(out.b, [11, 12, 14])
    np.testing.assert_array_equal(out.keys, np.array([10, 20, 40], dtype=np.uint64))


@pytest.mark.parametrize("side", ["a", "b"])
@pytest.mark.parametrize("kind", ["int", "str"])
def test_duplicate_keys_raise(side, kind):
    unique = [1, 2, 3, 4]
    dup = [1, 2, 3, 2]
    if kind == "str":
        unique = [f"item-{k}" for k in unique]
        dup = [f"item-{k}" for k in dup]
    keys_a, keys_b = (dup, unique) if side == "a" else (unique, dup)
    with pytest.raises(PersonaExpError) as exc:
        stats.align_judgments(keys_a, [0, 1, 0, 1], keys_b, [1, 1, 0, 0])
    assert isinstance(exc.value, ValueError)
    assert f"keys_{side}" in str(exc.value)


def test_aligned_labels_feed_kappa():
    rng = np.random.default_rng(901)
    keys_a, keys_b = random_int_keys(rng, 300, 300, 200, low=0, high=10**6)
    labels_a = rng.integers(0, 3, size=300)
    labels_b = rng.integers(0, 3, size=300)
    out = stats.align_judgments(keys_a, labels_a, keys_b, labels_b)
    joined = polars_reference(keys_a, labels_a, keys_b, labels_b)
    assert stats.cohen_kappa(out.a, out.b) == pytest.approx(
        stats.cohen_kappa(joined["la"].to_numpy(), joined["lb"].to_numpy()), abs=1e-12
    )
