"""Shared reference implementations for the statistics tests.

Everything here is written with plain numpy (and scikit-learn for Cohen's
kappa) so that the package under test is always compared with an independent
computation, never with itself.
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest


# --------------------------------------------------------------------------- kappa


def complete_pairs(a, b):
    """The pairwise-complete subset of two label arrays (-1 = missing)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    keep = (a != -1) & (b != -1)
    return a[keep], b[keep]


def sk_kappa(a, b, k, weights=None):
    """scikit-learn's Cohen's kappa on the pairwise-complete items.

    ``labels=range(k)`` makes the weights use the category values; an empty
    overlap or an undefined kappa gives NaN.
    """
    from sklearn.metrics import cohen_kappa_score

    a, b = complete_pairs(a, b)
    if a.size == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(a, b, labels=list(range(k)), weights=weights))


def disagreement_weights(k, weights=None):
    """Disagreement weights on the category values 0..k-1."""
    i = np.arange(k, dtype=float)
    d = np.abs(i[:, None] - i[None, :])
    if weights is None:
        return (d > 0).astype(float)
    if weights == "linear":
        return d
    if weights == "quadratic":
        return d**2
    raise ValueError(weights)


def kappa_from_tables(tables, weights=None):
    """Cohen's kappa of one k x k table or of a stack (..., k, k) of tables.

    kappa = 1 - sum(w * observed) / sum(w * expected) with disagreement weights
    w; NaN where the table is empty or the chance disagreement is zero.
    """
    t = np.asarray(tables, dtype=float)
    k = t.shape[-1]
    w = disagreement_weights(k, weights)
    n = t.sum(axis=(-2, -1))
    rows = t.sum(axis=-1)
    cols = t.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = rows[..., :, None] * cols[..., None, :] / n[..., None, None]
        num = (w * t).sum(axis=(-2, -1))
        den = (w * expected).sum(axis=(-2, -1))
        out = 1.0 - num / den
    out = np.where((n == 0) | (den <= 1e-12 * np.maximum(n, 1)), np.nan, out)
    return out if out.ndim else float(out)


def table_of(a, b, k):
    """k x k confusion counts of the pairwise-complete items."""
    a, b = complete_pairs(a, b)
    return np.bincount(a * k + b, minlength=k * k).reshape(k, k)


# --------------------------------------------------------------------------- bootstrap references


def reference_item_bootstrap(a, b, k, weights, n_resamples, rng):
    """Slow-path item bootstrap: resample complete items with replacement."""
    a, b = complete_pairs(a, b)
    n = a.size
    codes = a * k + b
    idx = rng.integers(0, n, size=(n_resamples, n))
    flat = (np.arange(n_resamples)[:, None] * (k * k) + codes[idx]).ravel()
    tables = np.bincount(flat, minlength=n_resamples * k * k).reshape(n_resamples, k, k)
    return kappa_from_tables(tables, weights)


def cluster_tables(a, b, k, clusters):
    """One k x k table per cluster (cluster order = sorted unique ids)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    _, inv = np.unique(np.asarray(clusters), return_inverse=True)
    keep = (a != -1) & (b != -1)
    g = inv.max() + 1
    flat = inv[keep] * (k * k) + a[keep] * k + b[keep]
    return np.bincount(flat, minlength=g * k * k).reshape(g, k, k)


def resample_counts(n_units, n_resamples, rng):
    """How often each unit is drawn in each resample (n_resamples x n_units)."""
    idx = rng.integers(0, n_units, size=(n_resamples, n_units))
    flat = (np.arange(n_resamples)[:, None] * n_units + idx).ravel()
    return np.bincount(flat, minlength=n_resamples * n_units).reshape(n_resamples, n_units)


def reference_cluster_bootstrap(a, b, k, weights, clusters, n_resamples, rng):
    """Slow-path cluster bootstrap: resample whole clusters with replacement."""
    per_cluster = cluster_tables(a, b, k, clusters).astype(float)
    counts = resample_counts(per_cluster.shape[0], n_resamples, rng)
    tables = np.einsum("bg,gij->bij", counts, per_cluster)
    return kappa_from_tables(tables, weights)


def quantile_se(draws, q, n_draws=None, h=0.0125):
    """Monte-Carlo standard error of an empirical q-quantile.

    sqrt(q (1 - q) / B) times the sparsity dQ/dq, the latter estimated from
    ``draws`` as (Q(q + h) - Q(q - h)) / 2h, which stays honest for skewed or
    lumpy bootstrap distributions. ``n_draws`` is the B whose error is wanted
    (default: the number of draws given). A small floor keeps a tolerance
    above zero where the quantile sits on a mass point.
    """
    from scipy.stats import norm

    draws = np.asarray(draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    b = draws.size if n_draws is None else n_draws
    lo, hi = max(q - h, 0.0), min(q + h, 1.0)
    sparsity = (np.quantile(draws, hi) - np.quantile(draws, lo)) / (hi - lo)
    normal_sparsity = draws.std(ddof=1) / norm.pdf(norm.ppf(min(max(q, 1e-3), 1 - 1e-3)))
    return float(np.sqrt(q * (1 - q) / b) * max(sparsity, 0.1 * normal_sparsity))


def agreeing_labels(rng, n, k, p_agree, missing=0.0, dtype=np.int64):
    """Two annotators: b copies a with probability p_agree, else is uniform."""
    a = rng.integers(0, k, size=n)
    b = np.where(rng.random(n) < p_agree, a, rng.integers(0, k, size=n))
    if missing:
        a = np.where(rng.random(n) < missing, -1, a)
        b = np.where(rng.random(n) < missing, -1, b)
    return a.astype(dtype), b.astype(dtype)


@pytest.fixture(scope="session")
def ref():
    """The reference helpers above, handed to tests as one namespace."""
    return types.SimpleNamespace(
        complete_pairs=complete_pairs,
        sk_kappa=sk_kappa,
        disagreement_weights=disagreement_weights,
        kappa_from_tables=kappa_from_tables,
        table_of=table_of,
        reference_item_bootstrap=reference_item_bootstrap,
        cluster_tables=cluster_tables,
        resample_counts=resample_counts,
        reference_cluster_bootstrap=reference_cluster_bootstrap,
        quantile_se=quantile_se,
        agreeing_labels=agreeing_labels,
    )
