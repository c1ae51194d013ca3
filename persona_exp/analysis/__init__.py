"""Statistics the experiments and ``diff`` share: intervals over a design's
units, multiplicity corrections, paired changes between runs.

It sits below ``experiments`` and ``diff`` (it imports neither), so both can
use it without importing each other.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from persona_exp.analysis.estimate import Estimate, interval, normal_p, real_units, unpaired_difference, z_of
from persona_exp.analysis.multiple import LABELS, AnalysisSpec, Multiplicity, adjust, describe, survivors
from persona_exp.analysis.paired import change_row, paired_rates

__all__ = ["LABELS", "AnalysisSpec", "Estimate", "Multiplicity", "adjust", "change_row", "describe",
           "design_sentence", "interval", "mark", "normal_p", "paired_rates", "real_units", "settings", "survivors", "tested", "unpaired_difference",
           "with_test", "z_of"]


def settings(ctx: Any) -> AnalysisSpec:
    """The run's ``analysis:`` block (defaults when the context has none)."""
    return getattr(ctx, "analysis", None) or AnalysisSpec()


def tested(named: Sequence[tuple[str, Estimate]], method: Multiplicity, alpha: float) -> list[dict[str, Any]]:
    """Per metric: the estimate, its interval and units, the p-value against
    its null, the adjusted p-value and whether it survives the correction over
    the whole list (the family)."""
    adj, keep = survivors([e.p for _, e in named], method, alpha)
    return [{"metric": m, **e.to_dict(), "p_adjusted": a, "survives": s} for (m, e), a, s in zip(named, adj, keep)]


def mark(rows: Sequence[dict[str, Any]], named: Sequence[tuple[str, Estimate]], method: Multiplicity, alpha: float) -> tuple[list[dict[str, Any]], str]:
    """Tests the named estimates as one family, writes each row's ``p_adjusted``
    and ``survives`` (rows in the order of ``named``), and says what the marks mean."""
    marked = tested(named, method, alpha)
    for r, m in zip(rows, marked):
        r.update(p_adjusted=m["p_adjusted"], survives=m["survives"])
    return marked, describe(method, alpha, sum(math.isfinite(e.p) for _, e in named))


def with_test(e: Estimate, null: float | None, p: float) -> Estimate:
    """The same estimate tested against another null (e.g. a comparison)."""
    return dataclasses.replace(e, null=null, p=p)


def design_sentence(estimates: Sequence[Estimate], level: float) -> str:
    """ "95% CI over 40 personas x 20 questions", or per row when rows differ."""
    overs = list(dict.fromkeys(e.over() for e in estimates))
    if len(overs) == 1:
        return f"{level:.0%} CI over {overs[0]}"
    return f"{level:.0%} CI over each row's units (column over: {', '.join(overs[:3])}{', ...' if len(overs) > 3 else ''})"
