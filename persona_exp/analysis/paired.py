"""Paired changes between two runs over the items both judged, the part of a
diff that needs the experiment's tables (``diff`` decides how to use them)."""

from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from persona_exp.analysis.estimate import interval, real_units
from persona_exp.errors import DataError


def change_row(metric: str, est: Any, items_a: int, items_b: int) -> dict[str, Any]:
    """One paired change as the experiments' ``diff`` functions return it:
    ``items`` shared, ``items_a`` / ``items_b`` in each run."""
    return {"metric": metric, "delta": est.estimate, "low": est.low, "high": est.high, "se": est.se, "p": est.p, "items": est.n,
            "items_a": items_a, "items_b": items_b, "over": est.over(), "method": est.method, "warning": est.warning}


def paired_rates(
    ta: dict[str, pl.DataFrame],
    tb: dict[str, pl.DataFrame],
    *,
    table: str,
    ids: list[str],
    outcome: str,
    group: list[str],
    units: Mapping[str, str],
    metric: str,
    n_resamples: int,
    level: float = 0.95,
    seed: int,
    examples: int,
    overall: bool = True,
    key: str | None = None,
) -> dict[str, Any]:
    """The change of a rate (mean of an ``outcome`` in [0, 1]) between two runs,
    per group (and overall), over the items both runs judged (matched on
    ``ids``), with a paired bootstrap over ``units`` ({unit name: column});
    with ``key`` (the call behind each row) a unit the calls do not vary with
    is left out (see ``real_units``). Also the items whose outcome flipped."""
    for t, run in ((ta, "A"), (tb, "B")):
        if table not in t:
            raise DataError(f"run {run} has no {table} table, so its {metric} cannot be compared.")
    cols = list(dict.fromkeys([*ids, *group, *units.values(), outcome, *([key] if key and key in ta[table].columns else [])]))
    sa = ta[table].select(cols).filter(pl.col(outcome).is_not_null())
    sb = tb[table].select([c for c in cols if c in tb[table].columns]).filter(pl.col(outcome).is_not_null())

    def label(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.concat_str([pl.col(g).cast(pl.String) for g in group], separator="/").alias("_group"))

    sa, sb = label(sa), label(sb)
    shared = sa.join(sb.select([*ids, outcome]), on=ids, suffix="_b", validate="1:1")
    names = list(dict.fromkeys([*sa["_group"].unique(maintain_order=True).to_list(), *sb["_group"].unique(maintain_order=True).to_list()]))
    groups = [(g, pl.col("_group") == g) for g in names]
    if overall and len(groups) > 1:
        groups.append(("all", pl.lit(True)))
    metrics = []
    for name, cond in groups:
        g = shared.filter(cond)
        use = real_units(g, units, key) if key and key in g.columns and g.height else dict(units)
        est = interval("rate_diff", g[outcome].cast(pl.Float64).to_numpy(), g[f"{outcome}_b"].cast(pl.Float64).to_numpy(),
                       units={u: g[c].cast(pl.String).to_numpy() for u, c in use.items()}, n_resamples=n_resamples, level=level, seed=seed, null=0.0)
        metrics.append(change_row(f"{metric}[{name}]", est, sa.filter(cond).height, sb.filter(cond).height))
    flipped = shared.filter(pl.col(outcome) != pl.col(f"{outcome}_b"))
    by_group = flipped.group_by("_group").len().sort("len", descending=True).select(pl.col("_group").alias("group"), pl.col("len").alias("flips")).to_dicts()
    ex = [" / ".join(f"{c} {r[c]}" for c in ids) + f": {r[outcome]} -> {r[outcome + '_b']}" for r in flipped.head(examples).iter_rows(named=True)]
    return {"metrics": metrics, "flips": {"shared": shared.height, "a": sa.height, "b": sb.height, "total": flipped.height, "by_group": by_group, "examples": ex}}
