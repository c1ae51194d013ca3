"""One family of interval functions for every experiment and for diff.

An experiment names the units its observations are drawn from (``units``: per
factor, one id per observation, e.g. ``{"persona": ..., "question": ...}``);
``interval`` resamples those units with the statistics core: the crossed
(two-way) interval when two factors vary, the one-way cluster bootstrap when
one does. This is the one place that decides how a design reaches
``persona_exp.stats``. Every result says over which units it was drawn; a
factor with fewer than 5 levels (the statistics core's rule) gets no interval but a warning
(from the core), since a bootstrap over two or three levels cannot describe
the population they come from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from persona_exp import stats
from persona_exp.errors import InvalidArgumentError

KINDS = ("rate", "mean", "kappa", "rate_diff", "kappa_diff")


@dataclass(frozen=True)
class Estimate:
    """A statistic with its interval, the units it was resampled over (levels
    per factor), and, when a null value was given, a two-sided p-value."""

    estimate: float
    low: float
    high: float
    se: float
    units: dict[str, int] = field(default_factory=dict)
    n: int = 0
    method: str = ""
    warning: str | None = None
    undefined: int = 0
    null: float | None = None
    p: float = float("nan")

    @property
    def usable(self) -> bool:
        """A real interval: finite, of positive width, without a warning that voids it."""
        return math.isfinite(self.low) and math.isfinite(self.high) and self.high > self.low

    def over(self) -> str:
        """The units in words: "40 personas x 20 questions"."""
        return " x ".join(f"{n} {name}{'' if n == 1 else 's'}" for name, n in self.units.items()) or f"{self.n} items"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["over"] = self.over()
        return out


def real_units(frame: pl.DataFrame, factors: Mapping[str, str], key: str) -> dict[str, str]:
    """The factors the observations really vary with: a factor is dropped when
    the call behind each observation (``key``) is the same across its levels,
    e.g. an answer the persona never saw is one observation per question, not
    one per persona. Returns {unit name: column}, in the given order."""
    out = {}
    for name, col in factors.items():
        others = [c for n, c in factors.items() if n != name]
        if others:
            varies = frame.group_by(others).agg(pl.col(key).n_unique().alias("_k"))["_k"].max()
        else:
            varies = frame[key].n_unique()
        if varies is not None and varies > 1:
            out[name] = col
    return out


def z_of(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def normal_p(est: float, null: float, se: float) -> float:
    from statistics import NormalDist

    if not (math.isfinite(est) and math.isfinite(se)) or se <= 0:
        return float("nan")
    return 2 * NormalDist().cdf(-abs(est - null) / se)


def _point(kind: str, data: Sequence[np.ndarray]) -> float:
    if kind in ("rate", "mean"):
        return float(np.mean(data[0]))
    if kind == "rate_diff":
        return float(np.mean(data[1] - data[0]))
    first = stats.cohen_kappa(data[0], data[1], k=2)
    return first - stats.cohen_kappa(data[2], data[3], k=2) if kind == "kappa_diff" else first


def interval(
    kind: str,
    *data: Any,
    units: Mapping[str, Any],
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    null: float | None = None,
) -> Estimate:
    """The estimate and bootstrap interval of one statistic over ``units``.

    ``kind``: ``rate`` (mean of outcomes 0, 0.5 or 1; ``data`` = outcomes),
    ``mean`` (mean of real values in [0, 1] such as ROUGE; ``data`` = values),
    ``kappa`` (Cohen's kappa of two binary label arrays), ``rate_diff`` (mean of
    b - a over paired outcomes ``a, b``), ``kappa_diff`` (kappa(a1, b1) -
    kappa(a2, b2) over the same items). ``units`` maps each factor that varies
    to its ids, one per observation. With ``null`` the estimate also gets a
    two-sided p-value against it (from the bootstrap standard error).
    """
    if kind not in KINDS:
        raise InvalidArgumentError(f"interval kind {kind!r} is not one of {', '.join(KINDS)}.")
    arrays = [np.asarray(d) for d in data]
    n = len(arrays[0]) if arrays else 0
    ids = {name: np.asarray(v) for name, v in units.items()}
    levels = {name: int(len(np.unique(v))) for name, v in ids.items()}
    nan = float("nan")
    if n < 2:
        return Estimate(_point(kind, arrays) if n else nan, nan, nan, nan, levels, n, "none", f"{n} observation(s): no interval", null=null)
    names = list(ids)
    clusters = {f"{name}s": ids[name] for name in names} or None  # named, so the core's warnings name the factors
    method = ("crossed bootstrap over " + " x ".join(names) if len(names) == 2 else f"cluster bootstrap over {names[0]}s") if names else "item bootstrap"
    opts = {"clusters": clusters, "n_resamples": n_resamples, "level": level, "seed": seed}
    scale, shift = 1.0, 0.0
    if kind == "rate":
        res = stats.win_rate(arrays[0].astype(float), **opts)
    elif kind == "mean":
        res = stats.mean_ci(arrays[0].astype(float), **opts)
    elif kind == "rate_diff":  # (b - a + 1) / 2 is a rate in [0, 1]; map its interval back
        res = stats.win_rate((arrays[1].astype(float) - arrays[0].astype(float) + 1) / 2, **opts)
        scale, shift = 2.0, -1.0
    elif kind == "kappa":
        res = stats.kappa_ci(arrays[0], arrays[1], k=2, **opts)
    else:
        res = stats.kappa_diff_ci(*arrays, k=2, **opts)
    est, low, high = (scale * float(v) + shift for v in res)
    warning = res.warning
    if math.isfinite(low) and math.isfinite(high) and high <= low:
        warning = warning or f"zero-width interval: every resample gave {est:.3f}"
    usable = math.isfinite(low) and math.isfinite(high) and high > low
    p = float(res.p_value(null=(null - shift) / scale)) if null is not None and usable else nan
    return Estimate(est, low, high, scale * res.se, levels, n, f"{method} ({res.method})", warning, res.undefined, null, p)


def unpaired_difference(a: Mapping[str, Any], b: Mapping[str, Any], level: float) -> Estimate:
    """B - A from two independent estimates (each resampled on its own
    design): the normal interval with se = sqrt(se_a^2 + se_b^2)."""
    est = float(b["estimate"]) - float(a["estimate"])
    ses = [_se_of(m, level) if _width(m) > 0 else float("nan") for m in (a, b)]  # a zero-width interval says nothing about its se
    se = math.sqrt(ses[0] ** 2 + ses[1] ** 2)
    warning = None
    if not math.isfinite(se) or se <= 0:
        warning = "no usable interval in " + " and ".join(side for side, s in zip("AB", ses) if not (math.isfinite(s) and s > 0))
        return Estimate(est, float("nan"), float("nan"), float("nan"), method="unpaired (normal, independent runs)", warning=warning, null=0.0)
    z = z_of(level)
    return Estimate(est, est - z * se, est + z * se, se, method="unpaired (normal, independent runs)", null=0.0, p=normal_p(est, 0.0, se))


def _width(m: Mapping[str, Any]) -> float:
    low, high = m.get("low"), m.get("high")
    return float("nan") if low is None or high is None else float(high) - float(low)


def _se_of(m: Mapping[str, Any], level: float) -> float:
    """A stored metric's standard error; runs stored without one give it from
    the interval's width (normal approximation)."""
    se = m.get("se")
    if se is not None and math.isfinite(float(se)):
        return float(se)
    low, high = m.get("low"), m.get("high")
    if low is None or high is None or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return float("nan")
    return (float(high) - float(low)) / (2 * z_of(level))
