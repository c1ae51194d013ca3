"""Many metrics, one decision: which changes or effects survive a correction
for testing them all at once.

With 33 attributes each tested at 5%, a run with no real effect shows at least
one "significant" attribute about 84% of the time; the spec's
``analysis.multiplicity`` chooses the correction: ``holm`` (family-wise error,
Holm 1979; the default), ``bh`` (false discovery rate, Benjamini and Hochberg
1995) or ``none``. The test level is 1 - the interval level.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from persona_exp import stats
from persona_exp.spec.models import Strict

Multiplicity = Literal["holm", "bh", "none"]
LABELS = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no correction"}


class AnalysisSpec(Strict):
    """The spec's ``analysis:`` block: how a run's many metrics are tested."""

    multiplicity: Multiplicity = Field("holm", description="correction over a headline's metrics: holm (family-wise), bh (false discovery rate) or none")


def adjust(p: Sequence[float], method: Multiplicity) -> list[float]:
    """Adjusted p-values; NaN (no test, e.g. no usable interval) stays NaN and
    does not count in the family's size."""
    arr = np.asarray(p, dtype=float)
    if method == "none" or arr.size == 0:
        return arr.tolist()
    return (stats.holm(arr) if method == "holm" else stats.benjamini_hochberg(arr)).tolist()


def survivors(p: Sequence[float], method: Multiplicity, alpha: float) -> tuple[list[float], list[bool]]:
    """Adjusted p-values and, per metric, whether it survives at ``alpha``."""
    adj = adjust(p, method)
    return adj, [math.isfinite(x) and x <= alpha for x in adj]


def describe(method: Multiplicity, alpha: float, family: int) -> str:
    """One line for a headline: what the marks mean."""
    if method == "none":
        return f"survives = p <= {alpha:g}, with no multiplicity correction over the {family} tests"
    return f"survives = passes the {LABELS[method]} correction at {alpha:g} over {family} tests"
