"""Representativeness of a population (PERSONA, Fig. 2): sample beside census.

For every census attribute, the share of personas in each category (every
persona counts once) beside the weighted share in the source the personas were
drawn from (after the filters), and their total variation distance
``TVD = 1/2 * sum |p_sample - p_source|`` (0 = identical, 1 = disjoint). Age is
grouped into brackets and income into dollar bands; other attributes use their
values. Attributes with many rare values (occupation, ancestry...) have a
larger TVD at a given sample size simply because each value is seen few times.
An attribute the source holds no value of (the household attributes without a
housing file) is reported missing, with why, never as a match.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import polars as pl

from persona_exp.population.attributes import CENSUS_ATTRIBUTES, NOT_APPLICABLE

__all__ = ["AGE_BRACKETS", "INCOME_BANDS", "grouped", "print_representativeness", "representativeness", "tvd"]

AGE_BRACKETS: tuple[tuple[int, int | None, str], ...] = (
    (0, 17, "Under 18"),
    (18, 24, "18 to 24"),
    (25, 34, "25 to 34"),
    (35, 44, "35 to 44"),
    (45, 54, "45 to 54"),
    (55, 64, "55 to 64"),
    (65, 74, "65 to 74"),
    (75, None, "75 and over"),
)
INCOME_BANDS: tuple[tuple[int, str], ...] = (
    (1, "$1 to $9,999 or loss"),
    (10_000, "$10,000 to $24,999"),
    (25_000, "$25,000 to $49,999"),
    (50_000, "$50,000 to $74,999"),
    (75_000, "$75,000 to $99,999"),
    (100_000, "$100,000 or more"),
)
UNKNOWN = "(unknown)"
OTHER = "(other values)"


def _age_bracket() -> pl.Expr:
    age = pl.col("age")
    expr = pl.when(age.is_null()).then(pl.lit(UNKNOWN))
    for lo, hi, label in AGE_BRACKETS:
        expr = expr.when(age <= hi if hi is not None else age >= lo).then(pl.lit(label))
    return expr.otherwise(pl.lit(UNKNOWN))


def _income_band() -> pl.Expr:
    value = pl.col("_income")
    text = pl.col("income")
    expr = pl.when(value.is_null()).then(pl.when(text == NOT_APPLICABLE).then(pl.lit(NOT_APPLICABLE)).otherwise(pl.lit(UNKNOWN)))
    expr = expr.when(text == "No income").then(pl.lit("No income"))
    expr = expr.when(value < INCOME_BANDS[1][0]).then(pl.lit(INCOME_BANDS[0][1]))
    for (lo, label), nxt in zip(INCOME_BANDS[1:], [*INCOME_BANDS[2:], None]):
        expr = expr.when(value < nxt[0] if nxt else value >= lo).then(pl.lit(label))
    return expr.otherwise(pl.lit(UNKNOWN))


def grouped(frame: pl.DataFrame, attribute: str) -> pl.Expr:
    """The value an attribute is compared on: age brackets, income bands, else the value itself."""
    if attribute == "age":
        return _age_bracket().alias(attribute)
    if attribute == "income" and "_income" in frame.columns:
        return _income_band().alias(attribute)
    return pl.col(attribute).cast(pl.String).fill_null(UNKNOWN).alias(attribute)


def _shares(frame: pl.DataFrame, attribute: str, weight: str | None) -> dict[str, float]:
    w = pl.col(weight).cast(pl.Float64) if weight else pl.lit(1.0)
    table = frame.select(grouped(frame, attribute), w.alias("_w")).group_by(attribute).agg(pl.col("_w").sum())
    total = float(table["_w"].sum())
    if total <= 0:
        return {}
    return {row[attribute]: row["_w"] / total for row in table.iter_rows(named=True)}


def tvd(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total variation distance of two distributions given as {category: share}."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def representativeness(
    sample: pl.DataFrame,
    source: pl.DataFrame,
    attributes: Sequence[str] = CENSUS_ATTRIBUTES,
    *,
    weight: str = "weight",
    top: int = 12,
    missing: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Per attribute: TVD, category count and the ``top`` largest source categories (rest pooled).
    An attribute the source has no values for gets ``tvd: None`` and ``missing``:
    why (from ``missing``, e.g. "no housing file"), never a perfect match."""
    out = []
    for name in attributes:
        if name not in sample.columns or name not in source.columns:
            continue
        if source[name].null_count() == source.height:  # no data is not a match: say so, and why
            why = (missing or {}).get(name, "the source has no values for it")
            out.append({"attribute": name, "tvd": None, "categories": 0, "distribution": [], "missing": why})
            continue
        p, q = _shares(sample, name, None), _shares(source, name, weight)
        order = sorted(set(p) | set(q), key=lambda k: (-q.get(k, 0.0), -p.get(k, 0.0), k))
        rows = [{"value": k, "sample": round(p.get(k, 0.0), 6), "source": round(q.get(k, 0.0), 6)} for k in order[:top]]
        if len(order) > top:
            rest = order[top:]
            rows.append({"value": OTHER, "sample": round(sum(p.get(k, 0.0) for k in rest), 6),
                         "source": round(sum(q.get(k, 0.0) for k in rest), 6)})
        out.append({"attribute": name, "tvd": round(tvd(p, q), 6), "categories": len(order), "distribution": rows})
    return out


def print_representativeness(report: Any, *, console: Any = None, detail: bool = False) -> None:
    """Print the representativeness table with rich.

    ``report`` is a Population, its ``report`` dict, or the list itself. With
    ``detail=True`` every attribute's categories are listed under it. When the
    language-model consistency check dropped personas (``report["llm"]``), the
    table is of the kept personas and a column shows each TVD before the check.
    """
    from rich.console import Console
    from rich.table import Table

    if hasattr(report, "report"):
        report = report.report
    before: Mapping[str, float] = {}
    if isinstance(report, Mapping):
        before = ((report.get("llm") or {}).get("check") or {}).get("tvd_before") or {}
        report = report.get("representativeness", [])
    console = console or Console()
    kept = " (personas kept by the language-model check)" if before else ""
    table = Table(title=f"Representativeness: personas vs weighted census source (TVD, lower is closer){kept}")
    table.add_column("attribute")
    table.add_column("TVD", justify="right")
    if before:
        table.add_column("before check", justify="right")
    table.add_column("values", justify="right")
    table.add_column("largest category")
    table.add_column("personas", justify="right")
    table.add_column("census", justify="right")
    for entry in report:
        rows = entry["distribution"]
        first = rows[0] if rows else {"value": "", "sample": 0.0, "source": 0.0}
        was = [f"{before[entry['attribute']]:.3f}" if before.get(entry["attribute"]) is not None else "-"] if before else []
        if entry.get("tvd") is None:
            table.add_row(entry["attribute"], "missing", *(["-"] if before else []), "0", f"({entry.get('missing', 'no data')})", "-", "-")
            continue
        table.add_row(entry["attribute"], f"{entry['tvd']:.3f}", *was, str(entry["categories"]), str(first["value"]),
                      f"{100 * first['sample']:.1f}%", f"{100 * first['source']:.1f}%")
        if detail:
            for row in rows[1:]:
                table.add_row("", "", *([""] if before else []), "", str(row["value"]), f"{100 * row['sample']:.1f}%", f"{100 * row['source']:.1f}%")
    console.print(table)
