"""A population as stored: the frame, its build report and a content key;
saving and loading with the key checked.

Kept apart from the builders so that every source (census, famous people)
can return a :class:`Population` without importing another source's module.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import xxhash

from persona_exp.errors import DataError
from persona_exp.plan.keys import canonical_json


@dataclass
class Population:
    """Personas (one row each: persona_id, weight, one column per attribute), a report, a content key."""

    frame: pl.DataFrame
    report: dict = field(default_factory=dict)
    key: str = ""

    def __len__(self) -> int:
        return self.frame.height



KEY_SCHEME = "xxh3-128 columns v2"  # recorded in sidecars; a population saved under another scheme is rebuilt


class StalePopulationError(DataError):
    """A saved population whose key was computed under another ``KEY_SCHEME``:
    its content cannot be checked, so callers that can rebuild it do."""


def _column_chunks(column: pl.Series):
    """The bytes a column contributes to the key: its null mask, then its
    values in a fixed binary form (little-endian numbers; strings as their
    byte lengths and their concatenated UTF-8), so that no two different
    columns give the same stream."""
    yield np.packbits(column.is_null().to_numpy()).tobytes()
    dtype = column.dtype
    if dtype == pl.String:
        filled = column.fill_null("")
        yield filled.str.len_bytes().to_numpy().astype("<u8").tobytes()
        yield filled.str.join("").item().encode("utf-8") if len(filled) else b""
    elif dtype.is_float():
        values = column.cast(pl.Float64).fill_null(0.0).to_numpy().astype("<f8")
        yield np.where(np.isnan(values), np.nan, values).tobytes()  # one NaN bit pattern
    elif dtype.is_integer() or dtype == pl.Boolean:
        yield column.cast(pl.Int64).fill_null(0).to_numpy().astype("<i8").tobytes()
    else:  # dates and the like: not in a population today; hashed through their text
        yield canonical_json(column.cast(pl.String).to_list())


def population_key(frame: pl.DataFrame) -> str:
    """xxh3-128 of the frame's columns, dtypes and values, column by column
    (about a second for a million personas; turning the rows into JSON took
    some twenty)."""
    h = xxhash.xxh3_128()
    h.update(canonical_json({"scheme": KEY_SCHEME, "columns": frame.columns, "dtypes": [str(t) for t in frame.dtypes], "height": frame.height}))
    for name in frame.columns:
        for chunk in _column_chunks(frame.get_column(name)):
            h.update(len(chunk).to_bytes(8, "little"))
            h.update(chunk)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json") if path.suffix != ".parquet" else path.with_suffix(".json")


def save_population(pop: Population, path: str | os.PathLike[str]) -> Path:
    """Write ``path`` (parquet) and its sidecar ``<stem>.json`` (report and key); returns the parquet path.

    Safe when two runs store the same population at once: each writes its own
    temporary files, and the sidecar lands before the parquet file, so whoever
    sees the parquet file also finds its sidecar."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = pop.key or population_key(pop.frame)
    mine = f"{os.getpid()}-{secrets.token_hex(4)}.tmp"
    side = _sidecar(path)
    tmp_side = side.with_name(f".{side.name}.{mine}")
    tmp = path.with_name(f".{path.name}.{mine}")
    try:
        tmp_side.write_text(json.dumps({"key": key, "key_scheme": KEY_SCHEME, "report": pop.report}, indent=1, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp_side, side)
        pop.frame.write_parquet(tmp)
        os.replace(tmp, path)
    finally:
        for t in (tmp, tmp_side):
            t.unlink(missing_ok=True)
    return path


def load_population(path: str | os.PathLike[str]) -> Population:
    """Read a saved population; the frame's key must match the sidecar's (DataError otherwise)."""
    path = Path(path)
    side = _sidecar(path)
    if not path.is_file():
        raise DataError(f"population file {path} does not exist.")
    if not side.is_file():
        raise DataError(f"population file {path} has no sidecar {side.name} with its key and report.")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
        frame = pl.read_parquet(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as e:
        raise DataError(f"cannot read the population {path}: {e}") from None
    if meta.get("key_scheme") != KEY_SCHEME:
        raise StalePopulationError(
            f"population {path} was saved with the key scheme {meta.get('key_scheme', 'v1 (rows as JSON)')!r}, not {KEY_SCHEME!r}, "
            "so its content cannot be checked; build it again (the pipeline does so by itself)."
        )
    key = population_key(frame)
    if meta.get("key") != key:
        raise DataError(
            f"population {path} does not match its sidecar {side.name}: key {key} of the data, "
            f"{meta.get('key')!r} recorded; the file was changed or belongs to another population."
        )
    return Population(frame, meta.get("report", {}), key)
