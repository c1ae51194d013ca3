"""Agreement statistics, bootstrap intervals and weighted sampling.

This is the public face of the Rust core (``persona_exp._core``). Every function
takes numpy arrays, polars Series or plain sequences; numeric arrays of a native
dtype (int8, uint8, int16, int32, int64 for labels; float64 for weights) reach
Rust without a copy, and the heavy loops run with the GIL released.

Conventions
-----------
* Labels are category indices ``0..k-1``; ``-1`` marks a missing label and the
  item is left out of that pair's statistics (pairwise deletion). A polars null
  counts as missing. ``k`` defaults to ``max(label) + 1``.
* ``weights`` for kappa is ``None`` (unweighted), ``"linear"`` or
  ``"quadratic"``; weights use the category *values* (0..k-1), so categories
  that happen to be absent still count in the distance between two labels.
* Bootstrap statistics are computed on sufficient statistics: the confusion
  table (item bootstrap = a multinomial draw over its cells) or one table per
  cluster (cluster bootstrap = resampling whole clusters, e.g. personas). The
  cost therefore does not grow with the number of judgments.
* Every random function takes an explicit ``seed`` and gives the same result
  for the same inputs and seed, whatever the number of threads or the platform.

Errors are ``persona_exp.errors`` classes whose message names the argument.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from persona_exp import _core
from persona_exp.errors import (
    CategoryError,
    DataError,
    EmptyInputError,
    InvalidArgumentError,
    LengthMismatchError,
    NaNError,
)

__all__ = [
    "Agreement",
    "Aligned",
    "Interval",
    "agreement",
    "align_judgments",
    "assign_prompts",
    "cohen_kappa",
    "confusion_matrix",
    "fleiss_kappa",
    "kappa_bootstrap",
    "kappa_ci",
    "kappa_diff_ci",
    "kappa_matrix",
    "weighted_sample",
    "win_rate",
]

_NATIVE_LABEL_DTYPES = (np.int8, np.uint8, np.int16, np.int32, np.int64)


class Agreement(NamedTuple):
    """Cohen's kappa with the agreement figures it is made of."""

    kappa: float
    observed: float  # (weighted) observed agreement p_o
    expected: float  # (weighted) chance agreement p_e from the marginals
    n: int  # items where both labels are present
    k: int  # number of categories


class Interval(NamedTuple):
    """A point estimate with the ends of its confidence interval."""

    estimate: float
    low: float
    high: float


class Aligned(NamedTuple):
    """Two annotators' labels on the items they share, in the order of ``a``."""

    keys: np.ndarray  # uint64 item keys (hashes when the keys given were not integers)
    a: np.ndarray  # int64 labels of annotator a
    b: np.ndarray  # int64 labels of annotator b
    index_a: np.ndarray  # int64 positions of the shared items in the inputs of a
    index_b: np.ndarray  # int64 positions of the shared items in the inputs of b


# --------------------------------------------------------------------------- inputs


def _is_polars(x: Any) -> bool:
    return type(x).__module__.startswith("polars")


def _array(x: Any, name: str) -> np.ndarray:
    if _is_polars(x):
        x = x.to_numpy()
    arr = np.asarray(x)
    if arr.size == 0:
        raise EmptyInputError(f"{name} is empty: at least one element is needed.")
    return arr


def _first_nan(arr: np.ndarray) -> int:
    return int(np.flatnonzero(np.isnan(arr.ravel()))[0])


def _labels(x: Any, name: str, ndim: int = 1) -> np.ndarray:
    """Labels as a C-contiguous array of a dtype the core reads without a copy."""
    if _is_polars(x) and hasattr(x, "fill_null") and x.null_count():
        x = x.fill_null(-1)
    arr = _array(x, name)
    if arr.ndim != ndim:
        raise DataError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}.")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    elif arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise NaNError(
                f"{name} contains NaN (first at flat index {_first_nan(arr)}); "
                "use -1 for a missing label."
            )
        if not np.all(np.mod(arr, 1) == 0):
            raise CategoryError(f"{name} holds non-integer values; labels are category indices 0..k-1.")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind in "iu":
        if arr.dtype.type not in _NATIVE_LABEL_DTYPES:
            if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
                raise CategoryError(f"{name} holds values too large to be category indices.")
            arr = arr.astype(np.int64)
    else:
        raise DataError(f"{name} must hold integer category labels, got dtype {arr.dtype}.")
    return np.ascontiguousarray(arr)


def _label_pair(a: Any, b: Any, names: tuple[str, str] = ("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    a, b = _labels(a, names[0]), _labels(b, names[1])
    if a.shape != b.shape:
        raise LengthMismatchError(
            f"{names[0]} has {a.shape[0]} labels but {names[1]} has {b.shape[0]}; they must align item by item."
        )
    if a.dtype != b.dtype:
        common = np.promote_types(a.dtype, b.dtype)
        if common.type not in _NATIVE_LABEL_DTYPES:
            common = np.dtype(np.int64)
        a, b = a.astype(common), b.astype(common)
    return a, b


def _clusters(x: Any, n: int) -> np.ndarray | None:
    """Cluster ids as int64; any hashable values (strings too) are accepted."""
    if x is None:
        return None
    if _is_polars(x) and x.dtype.is_integer() is False:
        x = x.cast(str).to_numpy()
    arr = _array(x, "clusters")
    if arr.ndim != 1:
        raise DataError(f"clusters must be one-dimensional, got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise LengthMismatchError(f"clusters has {arr.shape[0]} ids but there are {n} items.")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise NaNError(f"clusters contains NaN (first at index {_first_nan(arr)}).")
    if arr.dtype.kind in "iub":
        return np.ascontiguousarray(arr, dtype=np.int64)
    return np.unique(arr, return_inverse=True)[1].astype(np.int64)


def _float_array(x: Any, name: str, ndim: int = 1) -> np.ndarray:
    arr = _array(x, name)
    if arr.ndim != ndim:
        raise DataError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}.")
    if arr.dtype.kind not in "iufb":
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}.")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _weights_name(weights: str | None) -> str:
    return "none" if weights is None else str(weights)


def _count(x: Any, name: str, minimum: int = 0) -> int:
    """A non-negative integer parameter, checked here so the message names it."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an integer, got {x!r}.")
    if x < minimum:
        raise InvalidArgumentError(f"{name} is {x}; it must be at least {minimum}.")
    return int(x)


def _k(k: int | None) -> int | None:
    return None if k is None else _count(k, "k", 1)


def _seed(seed: Any) -> int:
    """Any Python integer works as a seed; it is reduced to 64 bits."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgumentError(f"seed must be an integer, got {seed!r}.")
    return int(seed) & 0xFFFF_FFFF_FFFF_FFFF


# --------------------------------------------------------------------------- kappa


def confusion_matrix(a: Any, b: Any, *, k: int | None = None) -> np.ndarray:
    """The k x k table of counts, rows = labels of ``a``, columns = labels of ``b``.

    Items where either label is -1 are left out.
    """
    a, b = _label_pair(a, b)
    return _core.confusion(a, b, _k(k))


def agreement(a: Any, b: Any, *, k: int | None = None, weights: str | None = None) -> Agreement:
    """Cohen's kappa of two annotators with observed and chance agreement.

    kappa = (p_o - p_e) / (1 - p_e); NaN when p_e = 1 (both annotators used one
    and the same category throughout), as scikit-learn does.
    """
    a, b = _label_pair(a, b)
    kappa, po, pe, n, kk = _core.agreement(a, b, _k(k), _weights_name(weights))
    return Agreement(kappa, po, pe, n, kk)


def cohen_kappa(a: Any, b: Any, *, k: int | None = None, weights: str | None = None) -> float:
    """Cohen's kappa (unweighted, ``"linear"`` or ``"quadratic"``) of two label arrays."""
    return agreement(a, b, k=k, weights=weights).kappa


def kappa_matrix(labels: Any, *, k: int | None = None, weights: str | None = None) -> np.ndarray:
    """Pairwise Cohen's kappa of m annotators: ``labels`` is annotators x items.

    Each pair uses the items both annotators labelled (-1 = missing). The
    diagonal is each annotator's kappa with itself (1, or NaN for an annotator
    who used a single category). A pair that shares no item gets NaN.
    """
    if isinstance(labels, (list, tuple)) and labels and not np.isscalar(labels[0]):
        labels = np.vstack([_labels(row, f"labels[{i}]") for i, row in enumerate(labels)])
    arr = _labels(labels, "labels", ndim=2)
    return _core.kappa_matrix(arr, _k(k), _weights_name(weights))


def fleiss_kappa(counts: Any, *, method: str = "fleiss") -> float:
    """Fleiss' kappa from an items x categories table of rater counts.

    Every item must have the same number of raters (at least 2). ``method`` is
    ``"fleiss"`` (chance agreement from the category proportions) or
    ``"randolph"`` (free-marginal chance agreement 1/k).
    """
    arr = _float_array(counts, "counts", ndim=2)
    return _core.fleiss_kappa(arr, method)


def kappa_bootstrap(
    a: Any,
    b: Any,
    *,
    k: int | None = None,
    weights: str | None = None,
    clusters: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """The bootstrap distribution of Cohen's kappa (``n_resamples`` values).

    Without ``clusters`` items are resampled; with them, whole clusters are.
    Resamples whose kappa is undefined (NaN) are kept as NaN.
    """
    a, b = _label_pair(a, b)
    return _core.kappa_bootstrap(
        a, b, _k(k), _weights_name(weights), _clusters(clusters, a.shape[0]), _count(n_resamples, "n_resamples", 1), _seed(seed)
    )


def kappa_ci(
    a: Any,
    b: Any,
    *,
    k: int | None = None,
    weights: str | None = None,
    clusters: Any = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
) -> Interval:
    """Cohen's kappa with a bootstrap confidence interval.

    ``clusters`` (one id per item, e.g. the persona) switches to the cluster
    bootstrap, which respects the dependence of judgments that share a persona
    or prompt. ``method`` is ``"percentile"`` or ``"bca"`` (bias-corrected and
    accelerated, acceleration from the jackknife over items or clusters).
    Undefined resamples are dropped before the quantiles are taken.
    """
    a, b = _label_pair(a, b)
    est, low, high = _core.kappa_ci(
        a,
        b,
        _k(k),
        _weights_name(weights),
        _clusters(clusters, a.shape[0]),
        _count(n_resamples, "n_resamples", 2),
        float(level),
        str(method),
        _seed(seed),
    )
    return Interval(est, low, high)


def kappa_diff_ci(
    a1: Any,
    b1: Any,
    a2: Any,
    b2: Any,
    *,
    k: int | None = None,
    weights: str | None = None,
    clusters: Any = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
) -> Interval:
    """Paired bootstrap of kappa(a1, b1) - kappa(a2, b2) over the same items.

    Item i of all four arrays is the same item (e.g. one persona and question,
    judged in two runs); resampling keeps the four labels together, so the
    interval accounts for the correlation between the two kappas.
    """
    a1, b1 = _label_pair(a1, b1, ("a1", "b1"))
    a2, b2 = _label_pair(a2, b2, ("a2", "b2"))
    if a1.shape != a2.shape:
        raise LengthMismatchError(f"a1 has {a1.shape[0]} labels but a2 has {a2.shape[0]}; the runs must share items.")
    common = np.promote_types(a1.dtype, a2.dtype)
    if common.type not in _NATIVE_LABEL_DTYPES:
        common = np.dtype(np.int64)
    a1, b1, a2, b2 = (x.astype(common, copy=False) for x in (a1, b1, a2, b2))
    est, low, high = _core.kappa_diff_ci(
        a1,
        b1,
        a2,
        b2,
        _k(k),
        _weights_name(weights),
        _clusters(clusters, a1.shape[0]),
        _count(n_resamples, "n_resamples", 2),
        float(level),
        str(method),
        _seed(seed),
    )
    return Interval(est, low, high)


# --------------------------------------------------------------------------- win rate


def win_rate(
    outcomes: Any,
    *,
    clusters: Any = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
) -> Interval:
    """Win rate of A over B with a bootstrap CI; a tie counts half.

    ``outcomes`` holds 1 (A preferred), 0 (B preferred) or 0.5 (tie), or
    booleans. ``clusters`` switches to the cluster bootstrap.
    """
    arr = _float_array(outcomes, "outcomes")
    est, low, high = _core.win_rate_ci(
        arr, _clusters(clusters, arr.shape[0]), _count(n_resamples, "n_resamples", 2), float(level), str(method), _seed(seed)
    )
    return Interval(est, low, high)


# --------------------------------------------------------------------------- sampling and pairs


def weighted_sample(weights: Any, n: int, *, replace: bool, seed: int = 0) -> np.ndarray:
    """Row indices drawn with probability proportional to ``weights``.

    With replacement: Vose's alias method, in draw order. Without replacement:
    Efraimidis-Spirakis exponential keys (the n rows with the smallest
    ``Exp(1) / w``), returned in ascending row order. Rows of weight 0 are never
    drawn. Integer weights (census ``PWGTP``) and float weights are accepted.
    """
    w = _float_array(weights, "weights")
    return _core.weighted_sample(w, _count(n, "n"), bool(replace), _seed(seed))


def assign_prompts(n_personas: int, pool_size: int, n_per_persona: int, *, seed: int = 0) -> np.ndarray:
    """For each persona, ``n_per_persona`` distinct prompt indices from ``range(pool_size)``.

    Returns an int64 array of shape (n_personas, n_per_persona). Persona p's row
    depends only on (seed, p), so adding personas leaves earlier rows unchanged.
    """
    return _core.assign_prompts(
        _count(n_personas, "n_personas"), _count(pool_size, "pool_size"), _count(n_per_persona, "n_per_persona"), _seed(seed)
    )


def _keys(x: Any, name: str) -> np.ndarray:
    arr = _array(x, name)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if arr.dtype.kind in "iu":
        return np.ascontiguousarray(arr.astype(np.int64, copy=False)).view(np.uint64)
    import polars as pl

    return pl.Series(name, arr.astype(str)).hash(seed=0).to_numpy()


def align_judgments(keys_a: Any, labels_a: Any, keys_b: Any, labels_b: Any) -> Aligned:
    """Join two annotators' judgments on item keys (a hash join).

    Keys are integers or strings and must be unique within each side. Returns
    the shared items in the order they appear in ``a``.
    """
    ka, kb = _keys(keys_a, "keys_a"), _keys(keys_b, "keys_b")
    la = _labels(labels_a, "labels_a").astype(np.int64, copy=False)
    lb = _labels(labels_b, "labels_b").astype(np.int64, copy=False)
    for keys, labels, side in ((ka, la, "a"), (kb, lb, "b")):
        if keys.shape[0] != labels.shape[0]:
            raise LengthMismatchError(
                f"keys_{side} has {keys.shape[0]} keys but labels_{side} has {labels.shape[0]} labels."
            )
    keys, out_a, out_b, ia, ib = _core.align(ka, la, kb, lb)
    return Aligned(keys, out_a, out_b, ia, ib)

