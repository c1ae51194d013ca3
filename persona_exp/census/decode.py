"""Turning PUMS code columns into the Bureau's labels.

Labels come from a parsed data dictionary or, by default, from the embedded
2018 tables. Rules, applied as polars expressions (so a LazyFrame stays lazy):

* character-code variables (``C``) become the label of their code; a code that
  lies in one of the dictionary's *ranges* (PUMAs, serial numbers) stays the
  code itself, since the range's label ("Public use microdata area codes")
  describes the range, not the value;
* numeric variables (``N``: AGEP, PINCP, WKHP...) stay numeric (Int64);
* a blank field (null; ``b``/``bb`` in the dictionary) becomes the dictionary's
  own blank label, e.g. SCHL -> "N/A (less than 3 years old)"; numeric blanks
  stay null;
* after a housing join, housing-only variables of persons without a housing
  record (``has_housing`` False) stay null: their value is unknown, not "N/A";
* a code without a label becomes null; :func:`unmapped_codes` lists such codes
  per variable, and ``decode(..., strict=True)`` raises instead.
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Sequence

import polars as pl

from persona_exp.census.dictionary import DataDictionary, ValueRange, Variable, is_blank_code, resolve
from persona_exp.census.pums import HOUSING_KEYS, MATCH_COLUMN, PERSON_KEYS
from persona_exp.errors import DataError

__all__ = ["decode", "label_expr", "unmapped_codes"]

Frame = Any  # pl.DataFrame or pl.LazyFrame; the result has the same kind
_IDENTIFIERS = frozenset((*PERSON_KEYS, *HOUSING_KEYS))


_BLANK_TEXT = r"^(b+|\s*)$"  # the dictionary's blank codes, or an empty field


def _blank_to_null(col: pl.Expr) -> pl.Expr:
    return pl.when(col.str.contains(_BLANK_TEXT)).then(pl.lit(None, dtype=pl.String)).otherwise(col)


def _code(var: Variable, column: str, dtype: pl.DataType) -> pl.Expr:
    """The column as text codes (blanks null); integer-typed codes get back their leading zeros."""
    col = pl.col(column)
    if dtype.is_integer():
        return col.cast(pl.String).str.zfill(var.width)
    return _blank_to_null(col if dtype == pl.String else col.cast(pl.String))


def _number(var: Variable, column: str, dtype: pl.DataType) -> pl.Expr:
    """The column as Int64 (blanks null); text that is not an integer is an error."""
    col = pl.col(column)
    if dtype.is_integer():
        return col.cast(pl.Int64)
    return _blank_to_null(col.cast(pl.String)).str.strip_chars().cast(pl.Int64, strict=True)


def _in_range(code: pl.Expr, r: ValueRange) -> pl.Expr:
    """Mirrors ValueRange.contains for character codes."""
    low, high = r.low, r.high
    if low.lstrip("-").isdigit() and high.lstrip("-").isdigit() and len(low) != len(high):
        return code.str.contains(r"^-?\d+$") & code.cast(pl.Int64, strict=False).is_between(int(low), int(high))
    return (code.str.len_bytes() == len(low)) & (code >= low) & (code <= high)


def _numeric_valid(var: Variable, value: pl.Expr) -> pl.Expr:
    singles = [int(k) for k in var.labels if k.lstrip("-").isdigit()]
    valid = value.is_in(singles) if singles else pl.lit(False)
    for r in var.ranges:
        valid = valid | value.is_between(int(r.low), int(r.high))
    return valid


def _label(var: Variable, code: pl.Expr) -> pl.Expr:
    """Label of a non-null code, null when the dictionary has none."""
    default: pl.Expr = pl.lit(None, dtype=pl.String)
    if var.ranges:
        chain = None
        for r in var.ranges:
            chain = (pl.when if chain is None else chain.when)(_in_range(code, r)).then(code)
        default = chain.otherwise(default)
    labels = {k: v for k, v in var.labels.items() if not is_blank_code(k)}
    if not labels:
        return default
    return code.replace_strict(labels, default=default, return_dtype=pl.String)


def _housing_gap(var: Variable, names: Sequence[str]) -> pl.Expr | None:
    """True where a housing-only variable is null because the person had no housing record."""
    if MATCH_COLUMN in names and var.records == {"H"}:
        return ~pl.col(MATCH_COLUMN).fill_null(False)
    return None


def label_expr(var: Variable, column: str | None = None, dtype: pl.DataType = pl.String, names: Sequence[str] = ()) -> pl.Expr:
    """The decoding expression of one column (see the module docstring for the rules)."""
    column = column or var.name
    if var.numeric:
        return _number(var, column, dtype).alias(column)
    code = _code(var, column, dtype)
    blank = pl.lit(var.blank_label, dtype=pl.String)
    out = pl.when(code.is_null()).then(blank).otherwise(_label(var, code))
    gap = _housing_gap(var, names)
    if gap is not None:
        out = pl.when(gap).then(pl.lit(None, dtype=pl.String)).otherwise(out)
    return out.alias(column)


def _unmapped_expr(var: Variable, column: str, dtype: pl.DataType, names: Sequence[str]) -> tuple[pl.Expr, pl.Expr]:
    """The code of ``column`` and whether it has no label (nulls count when the variable has no blank label)."""
    if var.numeric:
        value = _number(var, column, dtype)
        bad = value.is_not_null() & ~_numeric_valid(var, value)
    else:
        value = _code(var, column, dtype)
        bad = value.is_not_null() & _label(var, value).is_null()
    if var.blank_label is None:
        null_bad = value.is_null()
        gap = _housing_gap(var, names)
        if gap is not None:
            null_bad = null_bad & ~gap
        bad = bad | null_bad
    return value.alias(column), bad.alias("_bad")


def _check_numeric_text(frame: Frame, dictionary: DataDictionary, schema: dict[str, pl.DataType], chosen: list[str]) -> None:
    """Numeric variables held as text must be integers or blanks (checked here to name the column)."""
    text = [c for c in chosen if dictionary[c].numeric and not schema[c].is_integer()]
    if not text:
        return
    ok = r"^\s*(-?\d+|b*)\s*$"
    bad = frame.lazy().select(
        [pl.col(c).cast(pl.String).filter(~pl.col(c).cast(pl.String).str.contains(ok)).first().alias(c) for c in text]
    ).collect().row(0, named=True)
    for c in text:
        if bad[c] is not None:
            raise DataError(
                f"column {c} holds {bad[c]!r}, but {c} is numeric in {dictionary.source}: expected integers or blanks."
            )


def _plan(frame: Frame, dictionary: DataDictionary, columns: Sequence[str] | None) -> tuple[dict[str, pl.DataType], list[str]]:
    schema = dict(frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema)
    if columns is None:
        chosen = [c for c in schema if c in dictionary and c not in _IDENTIFIERS]
    else:
        if isinstance(columns, str):
            columns = [columns]
        absent = [c for c in columns if c not in schema]
        if absent:
            raise DataError(f"the frame has no column(s) {', '.join(absent)} to decode.")
        unknown = [c for c in columns if c not in dictionary]
        if unknown:
            raise DataError(f"{dictionary.source} has no value labels for {', '.join(unknown)}.")
        chosen = list(columns)
    _check_numeric_text(frame, dictionary, schema, chosen)
    return schema, chosen


def unmapped_codes(
    frame: Frame,
    dictionary: DataDictionary | str | PathLike[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> dict[str, dict[Any, int]]:
    """``{variable: {code: rows}}`` for codes the dictionary does not label.

    Variables with every code labelled are left out, so an empty dict means the
    frame decodes completely. Codes are strings for ``C`` variables, integers
    for ``N`` variables, and None for a blank where the dictionary gives no
    blank label. ``columns=None`` checks every column the dictionary knows
    (except the keys and weights).
    """
    codes = resolve(dictionary)
    schema, chosen = _plan(frame, codes, columns)
    if not chosen:
        return {}
    names = list(schema)
    lf = frame.lazy()
    # Each column is checked on its distinct values with their row counts (one
    # cheap group-by per column, run in parallel), not row by row.
    grouped = pl.collect_all([
        lf.group_by([c] + ([MATCH_COLUMN] if _housing_gap(codes[c], names) is not None else [])).agg(pl.len().alias("_rows")) for c in chosen
    ])
    out: dict[str, dict[Any, int]] = {}
    for c, g in zip(chosen, grouped):
        value, bad = _unmapped_expr(codes[c], c, schema[c], names)
        found = g.select(value, bad, "_rows").filter("_bad").group_by(c).agg(pl.col("_rows").sum()).sort(["_rows", c], descending=[True, False], nulls_last=True)
        if found.height:
            out[c] = {code: int(n) for code, n in found.iter_rows()}
    return out


def _describe_unmapped(found: dict[str, dict[Any, int]], source: str) -> str:
    parts = []
    for var, counts in found.items():
        shown = ", ".join(f"{code!r} ({n} row{'s' if n != 1 else ''})" for code, n in list(counts.items())[:5])
        more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
        parts.append(f"{var}: {shown}{more}")
    return f"codes without a label in {source}: " + "; ".join(parts) + "."


def decode(
    frame: Frame,
    dictionary: DataDictionary | str | PathLike[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
    strict: bool = False,
    suffix: str | None = None,
) -> Frame:
    """Replace code columns by their labels (a DataFrame or a LazyFrame, same kind back).

    ``dictionary`` is a DataDictionary, the path of the Bureau's dictionary CSV,
    or None for the embedded 2018 tables. ``columns=None`` decodes every column
    the dictionary knows except the keys and weights. With ``suffix`` the labels
    go to new columns (``SCHL`` -> ``SCHL_label``) and the codes stay.
    ``strict=True`` raises DataError listing unmapped codes instead of
    decoding them to null.
    """
    codes = resolve(dictionary)
    schema, chosen = _plan(frame, codes, columns)
    if strict:
        found = unmapped_codes(frame, codes, columns=chosen)
        if found:
            raise DataError(_describe_unmapped(found, codes.source))
    names = list(schema)
    exprs = []
    for c in chosen:
        expr = label_expr(codes[c], c, schema[c], names)
        exprs.append(expr.alias(c + suffix) if suffix else expr)
    return frame.with_columns(exprs) if exprs else frame
