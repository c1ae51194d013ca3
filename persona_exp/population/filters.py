"""Declarative population filters: ``"age >= 18"``, ``"sex == Female"``, ``"state == Wyoming"``,
``"education in [Bachelor's degree, Master's degree]"``.

A filter is ``<field> <operator> <value>``. Fields are the census attributes
(snake_case name or the paper's label, any case) and ``state``; the
procedural attributes do not exist yet when filters run (before sampling).
Operators: ``==`` (or ``=``), ``!=``, ``<``, ``<=``, ``>``, ``>=`` and ``in``,
``not in`` with a bracketed list. Text values compare without regard to case
and may be quoted ('...' or "..."); list items are separated by commas and
must be double-quoted when they contain one (``["Some college, less than 1
year"]``). ``<`` and friends need a number and a numeric field: ``age``, or
``income`` (personal income in dollars, after ADJINC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import polars as pl

from persona_exp.errors import DataError, InvalidArgumentError, did_you_mean
from persona_exp.population.attributes import CENSUS_ATTRIBUTES, attribute

__all__ = ["Filter", "apply_filters", "parse_filter"]

_OPERATORS = ("not in", "in", "==", "!=", ">=", "<=", ">", "<", "=")
_SYNTAX = re.compile(
    r"^\s*(?P<field>[A-Za-z][A-Za-z0-9_ ]*?)\s*(?P<op>==|!=|>=|<=|=|>|<|\s(?:not\s+in|in)(?=[\s\[(]))\s*(?P<value>.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_NUMERIC = {"age": "age", "income": "_income"}
_ITEM = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^,]*))\s*(?:,|$)')


@dataclass(frozen=True)
class Filter:
    """One parsed filter."""

    text: str
    field: str  # column name: an attribute name or "state"
    op: str  # "==", "!=", "<", "<=", ">", ">=", "in", "not in"
    value: Any  # str, float, or a tuple of str

    def expr(self) -> pl.Expr:
        """The polars predicate (True = the row is kept)."""
        if self.op in ("<", "<=", ">", ">="):
            col = pl.col(_NUMERIC[self.field])
            return {"<": col < self.value, "<=": col <= self.value, ">": col > self.value, ">=": col >= self.value}[self.op].fill_null(False)
        if self.field in _NUMERIC and isinstance(self.value, float):
            col = pl.col(_NUMERIC[self.field])
            return (col == self.value).fill_null(False) if self.op == "==" else (col != self.value).fill_null(True)
        text = pl.col(self.field).cast(pl.String).str.to_lowercase()
        if self.op in ("in", "not in"):
            hit = text.is_in([v.lower() for v in self.value]).fill_null(False)
            return hit if self.op == "in" else ~hit
        hit = (text == str(self.value).lower()).fill_null(False)
        return hit if self.op == "==" else ~hit


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _items(text: str, where: str) -> tuple[str, ...]:
    body = text.strip()
    if not (len(body) >= 2 and body[0] in "[(" and body[-1] in "])"):
        raise InvalidArgumentError(f"filter {where!r}: 'in' needs a bracketed list, e.g. education in [Bachelor's degree, Master's degree].")
    body = body[1:-1].strip()
    if not body:
        raise InvalidArgumentError(f"filter {where!r}: the list after 'in' is empty.")
    out: list[str] = []
    pos = 0
    while pos < len(body):
        m = _ITEM.match(body, pos)
        if m is None or m.end() == pos:
            raise InvalidArgumentError(f"filter {where!r}: cannot read the list item at {body[pos:]!r}.")
        item = m.group(1) if m.group(1) is not None else _unquote(m.group(2))
        if item.strip():
            out.append(item.strip())
        pos = m.end()
    return tuple(out)


def _field(name: str, where: str) -> str:
    key = name.strip().lower().replace(" ", "_")
    if key == "state":
        return "state"
    try:
        found = attribute(name)
    except InvalidArgumentError:
        fields = ("state", *CENSUS_ATTRIBUTES)
        raise InvalidArgumentError(
            f"filter {where!r}: unknown field {name.strip()!r}{did_you_mean(key, fields)}; filters can use: {', '.join(fields)}."
        ) from None
    if found.kind != "census":
        raise InvalidArgumentError(
            f"filter {where!r}: {found.name} is a procedural attribute, drawn after sampling; "
            f"filters can use the census attributes and state."
        )
    return found.name


def parse_filter(text: str) -> Filter:
    """Parse one filter string; a malformed one raises InvalidArgumentError naming it."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"filter {text!r}: expected a string such as 'age >= 18'.")
    m = _SYNTAX.match(text)
    if m is None:
        raise InvalidArgumentError(
            f"filter {text!r}: expected '<field> <operator> <value>' with an operator among "
            f"{', '.join(o for o in _OPERATORS if o != '=')}, e.g. 'age >= 18' or 'sex == Female'."
        )
    field = _field(m.group("field"), text)
    op = " ".join(m.group("op").lower().split())
    op = "==" if op == "=" else op
    raw = m.group("value")
    if not raw.strip():
        raise InvalidArgumentError(f"filter {text!r}: no value after {op!r}.")
    value: Any
    if op in ("in", "not in"):
        value = _items(raw, text)
    elif op in ("<", "<=", ">", ">="):
        if field not in _NUMERIC:
            raise InvalidArgumentError(f"filter {text!r}: {op!r} compares numbers; only {', '.join(_NUMERIC)} are numeric (use == or in for {field}).")
        try:
            value = float(_unquote(raw).replace(",", "").lstrip("$"))
        except ValueError:
            raise InvalidArgumentError(f"filter {text!r}: {raw.strip()!r} is not a number.") from None
    else:
        value = _unquote(raw)
        if field in _NUMERIC:
            try:
                value = float(value.replace(",", "").lstrip("$"))
            except ValueError:
                if field == "age":
                    raise InvalidArgumentError(f"filter {text!r}: {raw.strip()!r} is not a number.") from None
    return Filter(text, field, op, value)


def apply_filters(frame: pl.DataFrame, filters: Sequence[str]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rows passing every filter, and a report: rows and weight before and after, rows kept by each filter."""
    parsed = [parse_filter(f) for f in filters]
    report: dict[str, Any] = {
        "applied": [f.text for f in parsed],
        "rows_before": frame.height,
        "weight_before": float(frame["weight"].sum()) if frame.height else 0.0,
    }
    kept = frame
    per_filter = []
    for f in parsed:
        kept = kept.filter(f.expr())
        per_filter.append({"filter": f.text, "rows_after": kept.height})
    report["steps"] = per_filter
    report["rows_after"] = kept.height
    report["weight_after"] = float(kept["weight"].sum()) if kept.height else 0.0
    if parsed and kept.height == 0:
        steps = "; ".join(f"{s['filter']!r} leaves {s['rows_after']}" for s in per_filter)
        raise DataError(f"the population filters leave no person out of {frame.height} ({steps}); check their values.", field="population.filters")
    return kept, report

