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
  table (item bootstrap = a multinomial draw over its cells), one table per
  cluster (cluster bootstrap = resampling whole clusters, e.g. personas), or
  one table per (persona, question) cell for a crossed design. The cost
  therefore does not grow with the number of judgments.
* Intervals are :class:`Interval` values: ``(estimate, low, high)`` with the
  standard error, method, design units and warnings attached.
* Every random function takes an explicit ``seed`` and gives the same result
  for the same inputs and seed, whatever the number of threads or the platform.

Errors are ``persona_exp.errors`` classes whose message names the argument.
"""

from __future__ import annotations

import math
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
    "benjamini_hochberg",
    "cohen_kappa",
    "confusion_matrix",
    "fleiss_kappa",
    "holm",
    "kappa_bootstrap",
    "kappa_ci",
    "kappa_diff_ci",
    "kappa_matrix",
    "mean_ci",
    "Raked",
    "rake",
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


class Interval(tuple):
    """A point estimate with the ends of its confidence interval.

    Unpacks and indexes as ``(estimate, low, high)``; the attributes say what
    the interval rests on: ``se`` (the standard error it is built from, NaN if
    none), ``method`` (e.g. ``"crossed-wilson"``, ``"cluster-bca"``), ``units``
    (levels resampled per factor; ``()`` for the item bootstrap), ``n`` (items
    used), ``undefined`` (resamples where the statistic was undefined, left
    out), ``n_resamples`` and ``warning`` (None, or why the interval deserves
    care or is missing: low = high = NaN when a factor has too few levels).
    """

    def __new__(
        cls,
        estimate: float,
        low: float,
        high: float,
        *,
        se: float = float("nan"),
        method: str = "",
        units: tuple[int, ...] = (),
        n: int = 0,
        undefined: int = 0,
        n_resamples: int = 0,
        warning: str | None = None,
    ) -> Interval:
        self = super().__new__(cls, (float(estimate), float(low), float(high)))
        self.se, self.method, self.units, self.n = float(se), method, tuple(units), int(n)
        self.undefined, self.n_resamples, self.warning = int(undefined), int(n_resamples), warning
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[float, float, float], dict[str, Any]]:
        return tuple(self), {k: getattr(self, k) for k in ("se", "method", "units", "n", "undefined", "n_resamples", "warning")}

    @property
    def estimate(self) -> float:
        return self[0]

    @property
    def low(self) -> float:
        return self[1]

    @property
    def high(self) -> float:
        return self[2]

    def p_value(self, null: float = 0.0) -> float:
        """Two-sided p-value of ``estimate == null`` from ``se`` (normal approximation).

        NaN when there is no standard error. For Holm or Benjamini-Hochberg
        corrections over many intervals (see :func:`holm`).
        """
        if not (math.isfinite(self.se) and self.se > 0 and math.isfinite(self.estimate)):
            return float("nan")
        return math.erfc(abs(self.estimate - null) / self.se / math.sqrt(2.0))

    def __repr__(self) -> str:
        note = f", warning={self.warning!r}" if self.warning else ""
        return (
            f"Interval(estimate={self.estimate!r}, low={self.low!r}, high={self.high!r}, se={self.se!r}, "
            f"method={self.method!r}, units={self.units!r}, n={self.n}{note})"
        )


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


def _clusters(x: Any, n: int, name: str = "clusters") -> np.ndarray:
    """Cluster ids as int64; any hashable values (strings too) are accepted."""
    if _is_polars(x) and x.dtype.is_integer() is False:
        x = x.cast(str).to_numpy()
    arr = _array(x, name)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise LengthMismatchError(f"{name} has {arr.shape[0]} ids but there are {n} items.")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise NaNError(f"{name} contains NaN (first at index {_first_nan(arr)}).")
    if arr.dtype.kind in "iub":
        return np.ascontiguousarray(arr, dtype=np.int64)
    return np.unique(arr, return_inverse=True)[1].astype(np.int64)


def _design(clusters: Any, n: int) -> tuple[list[np.ndarray], list[str]]:
    """The design's factors as (id arrays, names): [] for items, one array for
    clusters, two for a crossed design (a tuple/list of two arrays, or a dict
    ``{name: ids}`` whose names appear in warnings)."""
    if clusters is None:
        return [], []
    if isinstance(clusters, dict):
        named = list(clusters.items())
    elif isinstance(clusters, (tuple, list)) and clusters and not any(np.isscalar(c) for c in clusters):
        named = [(getattr(c, "name", None) or f"clusters[{i}] levels", c) for i, c in enumerate(clusters)]
    else:
        named = [(getattr(clusters, "name", None) or "clusters", clusters)]
    if not 1 <= len(named) <= 2:
        raise InvalidArgumentError(
            f"clusters holds {len(named)} id arrays; give one (e.g. personas) or two crossed factors (personas, questions)."
        )
    label = "clusters" if len(named) == 1 else "clusters[{}]"
    ids = [_clusters(c, n, label.format(i)) for i, (_, c) in enumerate(named)]
    return ids, [str(name) for name, _ in named]


def _resampling(n_resamples: Any, level: Any, method: Any, seed: Any) -> tuple[int, float, str, int]:
    """The resampling settings every interval function passes to the core, checked."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"level must be a number between 0 and 1 (e.g. 0.95), got {level!r}.")
    return _count(n_resamples, "n_resamples", 2), float(level), str(method), _seed(seed)


def _interval(t: tuple, bounds: tuple[float, float]) -> Interval:
    """The core's interval, its ends kept inside the statistic's range
    (``bounds``): a normal or worst-case interval can reach past it (kappa
    below -1) where the statistic cannot."""
    est, low, high, se, method, units, n, undefined, n_resamples, warnings = t
    low, high = (float(np.clip(x, *bounds)) if np.isfinite(x) else x for x in (low, high))
    warning = "; ".join(warnings) or None
    return Interval(est, low, high, se=se, method=method, units=tuple(units), n=n, undefined=undefined,
                    n_resamples=n_resamples, warning=warning)


def _float_array(x: Any, name: str, ndim: int = 1) -> np.ndarray:
    arr = _array(x, name)
    if arr.ndim != ndim:
        raise DataError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}.")
    if arr.dtype.kind not in "iufb":
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}.")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _weights_name(weights: str | None) -> str:
    return "none" if weights is None else str(weights)


_MAX_COUNT = 2**63 - 1  # what the core's sizes can hold; the core itself caps arrays far lower (2^31 elements)


def _count(x: Any, name: str, minimum: int = 0) -> int:
    """A non-negative integer parameter, checked here so the message names it
    (a value beyond 64 bits would otherwise fail inside the binding with a
    bare OverflowError)."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an integer, got {x!r}.")
    if x < minimum:
        raise InvalidArgumentError(f"{name} is {x}; it must be at least {minimum}.")
    if x > _MAX_COUNT:
        raise InvalidArgumentError(f"{name} is {x}, far more than any array can hold; ask for fewer.")
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

    Without ``clusters`` items are resampled; with one id array, whole clusters
    are. (A crossed design has no single bootstrap distribution; see
    :func:`kappa_ci`.) Resamples whose kappa is undefined (NaN) are kept as NaN.
    """
    a, b = _label_pair(a, b)
    ids, names = _design(clusters, a.shape[0])
    return _core.kappa_bootstrap(
        a, b, _k(k), _weights_name(weights), ids, names, _count(n_resamples, "n_resamples", 1), _seed(seed)
    )


_DESIGN_DOC = """
    ``clusters`` states the design: None resamples items; one id array (e.g.
    the persona of each item) resamples whole clusters; two id arrays
    ``(personas, questions)`` (or a dict ``{"personas": ..., "questions": ...}``)
    give a crossed design where both are random samples. A factor with fewer
    than 5 levels gets no interval (low = high = NaN, and a ``warning``).

    ``method="auto"`` (default) builds the interval from the design's bootstrap
    standard error. For a crossed design the variance is
    V = 2 (V_1 + V_2) - V_12 from the resamples of each factor alone (V_1, V_2)
    and of both (V_12), clamped to [max(V_1, V_2), V_1 + V_2]: the plain
    product bootstrap counts the cell-level variance three times (McCullagh
    2000; Owen 2007), and this combination counts it once, like the two-way
    cluster-robust variance of Cameron, Gelbach & Miller (2011). The quantile
    is Student's t with the design's degrees of freedom (clusters - 1;
    Satterthwaite's for two factors). Kappa, rates and means use a Wilson score
    interval on the [0, 1] scale (kappa's observed disagreement, or the value)
    with the effective sample size that standard error implies, so intervals
    near 0 or 1 keep their coverage and never collapse to a point; when every
    resample is identical the worst-case variance over the smallest number of
    units is used, and ``warning`` says so. ``"percentile"`` and ``"bca"``
    (items or one factor only) give the bootstrap quantile intervals, with the
    score interval in their place when those have zero width.
"""


def kappa_ci(
    a: Any,
    b: Any,
    *,
    k: int | None = None,
    weights: str | None = None,
    clusters: Any = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    method: str = "auto",
    seed: int = 0,
) -> Interval:
    """Cohen's kappa with a confidence interval over the design.
    {design}
    Resamples with an undefined kappa are counted in ``undefined`` and left out.
    """
    a, b = _label_pair(a, b)
    ids, names = _design(clusters, a.shape[0])
    return _interval(
        _core.kappa_ci(
            a,
            b,
            _k(k),
            _weights_name(weights),
            ids,
            names,
            *_resampling(n_resamples, level, method, seed),
        ),
        (-1.0, 1.0),
    )


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
    method: str = "auto",
    seed: int = 0,
) -> Interval:
    """Paired interval of kappa(a1, b1) - kappa(a2, b2) over the same items.

    Item i of all four arrays is the same item (e.g. one persona and question,
    judged in two runs); resampling keeps the four labels together, so the
    interval accounts for the correlation between the two kappas. With
    ``method="auto"`` the interval is normal (t) with the design's standard
    error; if no resample changes the difference, each kappa's worst-case
    spread is used instead.
    {design}"""
    a1, b1 = _label_pair(a1, b1, ("a1", "b1"))
    a2, b2 = _label_pair(a2, b2, ("a2", "b2"))
    if a1.shape != a2.shape:
        raise LengthMismatchError(f"a1 has {a1.shape[0]} labels but a2 has {a2.shape[0]}; the runs must share items.")
    common = np.promote_types(a1.dtype, a2.dtype)
    if common.type not in _NATIVE_LABEL_DTYPES:
        common = np.dtype(np.int64)
    a1, b1, a2, b2 = (x.astype(common, copy=False) for x in (a1, b1, a2, b2))
    ids, names = _design(clusters, a1.shape[0])
    return _interval(
        _core.kappa_diff_ci(
            a1,
            b1,
            a2,
            b2,
            _k(k),
            _weights_name(weights),
            ids,
            names,
            *_resampling(n_resamples, level, method, seed),
        ),
        (-2.0, 2.0),
    )


# --------------------------------------------------------------------------- win rate


def win_rate(
    outcomes: Any,
    *,
    clusters: Any = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    method: str = "auto",
    seed: int = 0,
) -> Interval:
    """Win rate of A over B with a confidence interval over the design; a tie counts half.

    ``outcomes`` holds 1 (A preferred), 0 (B preferred) or 0.5 (tie), or
    booleans; any rate of 0/1 outcomes works the same way. A paired difference
    of two rates d in [-1, 1] is the win rate of (d + 1) / 2.
    {design}"""
    arr = _float_array(outcomes, "outcomes")
    ids, names = _design(clusters, arr.shape[0])
    return _interval(
        _core.win_rate_ci(
            arr, ids, names, *_resampling(n_resamples, level, method, seed)
        ),
        (0.0, 1.0),
    )


def mean_ci(
    values: Any,
    *,
    clusters: Any = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    method: str = "auto",
    seed: int = 0,
) -> Interval:
    """Mean of values in [0, 1] (ROUGE, a rescaled score) with a confidence interval over the design.

    The rates' machinery with real-valued sums: each unit (item, cluster, or
    persona x question cell) is reduced to its count and sum of values, so
    the design's resampling, crossed variance and score interval are those
    of :func:`win_rate` (0/1 values give exactly its interval). Values must
    lie in [0, 1]; rescale a bounded score to (x - lo) / (hi - lo) first.
    {design}"""
    arr = _float_array(values, "values")
    ids, names = _design(clusters, arr.shape[0])
    return _interval(_core.mean_ci(arr, ids, names, *_resampling(n_resamples, level, method, seed)), (0.0, 1.0))


for _f in (kappa_ci, kappa_diff_ci, win_rate, mean_ci):
    _f.__doc__ = _f.__doc__.replace("{design}", _DESIGN_DOC)


# --------------------------------------------------------------------------- multiple testing


def _pvalues(pvalues: Any) -> np.ndarray:
    p = _float_array(pvalues, "pvalues")
    bad = ~np.isnan(p) & ((p < 0) | (p > 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(f"pvalues holds {p[i]} at index {i}; p-values lie in [0, 1] (NaN passes through).")
    return p


def holm(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error); NaN passes through.

    Compare each adjusted p-value with alpha: those below it survive the
    correction over the family of the non-NaN p-values.
    """
    p = _pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    order = ok[np.argsort(p[ok], kind="stable")]
    out[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    return out


def benjamini_hochberg(pvalues: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate); NaN passes through."""
    p = _pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


# --------------------------------------------------------------------------- sampling and pairs


def weighted_sample(weights: Any, n: int, *, replace: bool, seed: int = 0, in_draw_order: bool = False) -> np.ndarray:
    """Row indices drawn with probability proportional to ``weights``.

    With replacement: Vose's alias method, in draw order. Without replacement:
    Efraimidis-Spirakis exponential keys (the n rows with the smallest
    ``Exp(1) / w``), returned in ascending row order, or with ``in_draw_order``
    by ascending key (the first n places of a weighted random permutation).
    Either way the first n draws of a larger request are these (prefix-stable).
    Rows of weight 0 are never drawn. Integer weights (census ``PWGTP``) and
    float weights are accepted.
    """
    w = _float_array(weights, "weights")
    return _core.weighted_sample(w, _count(n, "n"), bool(replace), _seed(seed), bool(in_draw_order))


class Raked(NamedTuple):
    """Weights calibrated by :func:`rake` and how the fit ended."""

    weights: np.ndarray  # float64, one per record
    iterations: int  # full sweeps over the margins
    max_rel_error: float  # largest |achieved - target| / target left
    converged: bool  # max_rel_error <= tolerance
    scales: tuple[float, ...]  # per margin, the factor its targets were scaled by to the first margin's total


def rake(initial: Any, margins: Any, *, tolerance: float = 1e-8, max_iterations: int = 1000) -> Raked:
    """Calibrate ``initial`` weights to known margins by raking (iterative
    proportional fitting), in the Rust core.

    ``margins`` is a sequence of ``(categories, targets)`` pairs: ``categories``
    gives each record its category index ``0..k-1`` in that margin (every
    record belongs to one category of every margin), ``targets`` the ``k``
    target totals. Sweeps scale the weights margin by margin until every
    category is within ``tolerance`` (relative) of its target, or
    ``max_iterations`` sweeps are done (then ``converged`` is False: margins
    that no positive weights can meet at once never converge). Margins whose
    totals differ are scaled to the first one's total (``scales`` says by how
    much). A category with a positive target and no record of positive weight
    raises :class:`DataError`.
    """
    w = _float_array(initial, "initial")
    if isinstance(margins, (str, bytes)) or not hasattr(margins, "__iter__"):
        raise InvalidArgumentError("margins must be a list of (categories, targets) pairs, one per margin.")
    cats, targets = [], []
    for i, margin in enumerate(margins):
        if not (isinstance(margin, (tuple, list)) and len(margin) == 2):
            raise InvalidArgumentError(f"margins[{i}] must be a (categories, targets) pair, got {type(margin).__name__}.")
        c, t = margin
        if _is_polars(c) and c.null_count():
            raise CategoryError(f"margins[{i}] categories hold {c.null_count()} null(s); every record needs a category in every margin.")
        c = _labels(c, f"margins[{i}] categories")
        if c.shape[0] != w.shape[0]:
            raise LengthMismatchError(f"margins[{i}] categories has {c.shape[0]} entries but initial has {w.shape[0]}; one per record.")
        cats.append(np.ascontiguousarray(c, dtype=np.int64))
        targets.append(_float_array(t, f"margins[{i}] targets"))
    if not cats:
        raise EmptyInputError("margins is empty: give at least one (categories, targets) pair.")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, (int, np.integer)) or max_iterations < 1:
        raise InvalidArgumentError(f"max_iterations must be a positive integer, got {max_iterations!r}.")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating)):
        raise InvalidArgumentError(f"tolerance must be a positive number such as 1e-8, got {tolerance!r}.")
    weights, iterations, error, converged, scales = _core.rake(w, cats, targets, float(tolerance), int(max_iterations))
    return Raked(weights, iterations, error, converged, tuple(scales))


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

