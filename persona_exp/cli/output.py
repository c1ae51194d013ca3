"""Printing tables and summaries for people (rich) or machines (--json)."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import polars as pl


def console(stderr: bool = False):
    """A rich console; when output is not a terminal, wide enough for whole tables."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=None if stream.isatty() else 200)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _compact(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Columns that say nothing row by row leave the table: empty ones are
    dropped, and a text column with one value on every row becomes one line
    under the table."""
    notes = []
    keep = []
    for name in frame.columns:
        col = frame[name]
        if col.dtype == pl.String:
            values = col.drop_nulls().filter(col.drop_nulls() != "")
            if values.len() == 0:
                continue
            if frame.height > 1 and values.len() == frame.height and values.n_unique() == 1:
                notes.append(f"{name}: {values[0]} (every row)")
                continue
        keep.append(col)
    return pl.DataFrame(keep) if keep else frame, notes


def print_frame(frame: pl.DataFrame, title: str | None = None, limit: int = 50) -> None:
    from rich.table import Table
    from rich.text import Text

    frame, notes = _compact(frame)
    table = Table(title=title, title_justify="left")
    for name in frame.columns:
        table.add_column(Text(name), justify="right" if frame[name].dtype.is_numeric() else "left")
    for row in frame.head(limit).iter_rows():
        table.add_row(*(Text(_cell(v)) for v in row))  # Text: values are never read as markup
    console().print(table)
    if frame.height > limit:
        print(f"... {frame.height - limit} more rows")
    for note in notes:
        print(note)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
