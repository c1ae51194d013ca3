"""The personas of the released PERSONA dataset, read from a file.

The paper's data are published as preference rows, each carrying its persona
as a block of ``Label: value`` lines ("Age: 73\\nSex: Female\\n..."), and the
personas alone as one row each. Either form is read here (JSONL, CSV or
parquet), so the paper's own 1,586 personas can stand in for a drawn
population (``population: {source: persona, path: personas.jsonl}``).

Accepted columns:

* a persona text column: the first of ``persona``, ``persona_text``,
  ``profile`` (or the one named); each line ``Label: value`` whose label is
  one of the 33 attributes (the paper's label, e.g. ``Big five scores``, or its
  snake_case name, any case) fills that attribute; other lines are kept, in
  order, in the ``other_attributes`` column and added to the persona's text;
* or, without a text column, one column per attribute (labels or names, e.g.
  ``age``, ``big five scores``); other columns are ignored;
* optionally an id column, ``persona_id`` or ``id``; otherwise personas are
  numbered ``p0001``... in order of first appearance.

Rows with the same persona (same id, or the same text when there is no id)
are one persona: a preference file repeats it on each of its rows. Values
``nan``, ``None`` and empty ones are unknown (null). Age must be a whole
number where given.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from persona_exp.errors import DataError
from persona_exp.population.attributes import ATTRIBUTE_NAMES, attribute
from persona_exp.population.stored import Population, population_key

TEXT_COLUMNS = ("persona", "persona_text", "profile")
ID_COLUMNS = ("persona_id", "id")
OTHER = "other_attributes"
_MISSING = {"", "nan", "none", "null", "n/a"}
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _read(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise DataError(f"persona file {path} does not exist or is not a file; set population.path to the released personas "
                        "(JSONL, CSV or parquet).")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"persona file {path} has an unsupported extension '{path.suffix}'; use one of {', '.join(sorted(_FORMATS))}.")
    try:
        if fmt == "jsonl":
            return pl.read_ndjson(path, infer_schema_length=None)
        if fmt == "csv":
            return pl.read_csv(path, infer_schema=False)
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated classes on corrupt input
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read persona file {path} as {fmt}: {first}") from None


def _known(label: str) -> str | None:
    try:
        return attribute(label).name
    except Exception:  # not one of the 33 attributes
        return None


def _value(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return None if text.casefold() in _MISSING else text


def parse_persona(text: str) -> tuple[dict[str, str | None], list[str]]:
    """The attributes of one persona text block, and its other lines (kept as written)."""
    values: dict[str, str | None] = {}
    other: list[str] = []
    for line in str(text).splitlines():
        if not line.strip():
            continue
        label, sep, value = line.partition(":")
        name = _known(label) if sep else None
        if name is None or name in values:
            other.append(line.strip())
        else:
            values[name] = _value(value)
    return values, other


def load_released_personas(path: str | Path, *, text_column: str | None = None) -> Population:
    """The personas of a released PERSONA file (see the module docstring for its columns)."""
    path = Path(path)
    data = _read(path)
    cols = data.columns
    if text_column is not None and text_column not in cols:
        raise DataError(f"persona file {path} has no column '{text_column}'; its columns are: {', '.join(cols)}.")
    text_col = text_column or next((c for c in TEXT_COLUMNS if c in cols), None)
    id_col = next((c for c in ID_COLUMNS if c in cols and c != text_col), None)
    by_column = {name: c for c in cols if c not in (text_col, id_col) and (name := _known(c)) is not None}
    if text_col is None and not by_column:
        raise DataError(f"persona file {path} has neither a persona text column ({', '.join(TEXT_COLUMNS)}) nor attribute columns "
                        f"(e.g. age, sex); its columns are: {', '.join(cols) or 'none'}.")
    rows: dict[str, dict] = {}
    for n, rec in enumerate(data.iter_rows(named=True), start=1):
        if text_col is not None:
            text = rec[text_col]
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"persona file {path}, record {n}: column '{text_col}' is empty; every row needs its persona text.")
            values, other = parse_persona(text)
        else:
            values, other = {name: _value(rec[c]) for name, c in by_column.items()}, []
        key = str(rec[id_col]) if id_col is not None and rec[id_col] is not None else (text if text_col else repr(sorted(values.items())))
        if key in rows:
            continue
        age = values.get("age")
        if age is not None and not age.isdigit():
            raise DataError(f"persona file {path}, record {n}: age is {age!r}, not a whole number of years.")
        rows[key] = {"_id": key if id_col is not None else None, **values, OTHER: "\n".join(other) or None}
    if not rows:
        raise DataError(f"persona file {path} has no personas.")
    ids = [r["_id"] or f"p{i:04d}" for i, r in enumerate(rows.values(), start=1)]
    frame = pl.DataFrame(
        {"persona_id": ids, "weight": [1.0] * len(ids),
         **{name: [r.get(name) for r in rows.values()] for name in ATTRIBUTE_NAMES},
         OTHER: [r[OTHER] for r in rows.values()]},
        schema={"persona_id": pl.String, "weight": pl.Float64, **{n: pl.String for n in ATTRIBUTE_NAMES}, OTHER: pl.String},
    ).with_columns(pl.col("age").cast(pl.Int64))
    found = {name: frame.height - frame[name].null_count() for name in ATTRIBUTE_NAMES}
    report = {
        "source": f"released PERSONA personas {path} ({len(ids):,} personas from {data.height:,} rows)",
        "size": frame.height,
        "attributes_found": found,
        "other_lines": int(frame[OTHER].is_not_null().sum()),
        "notes": [f"{sum(1 for v in found.values() if v == 0)} of the 33 attributes appear in no persona of the file"]
                 if any(v == 0 for v in found.values()) else [],
    }
    return Population(frame, report, population_key(frame))


def persona_text(row: dict) -> str:
    """A released persona as prompt text: its attribute lines, then the lines
    the file had beyond the 33 attributes."""
    from persona_exp.population.render import render_persona

    text = render_persona(row)
    extra = row.get(OTHER)
    return f"{text}\n{extra}" if extra else text


def released_population(spec) -> Population:
    """The population of ``population: {source: persona, path: ..., size: N}``:
    the file's personas, the first ``size`` of them when a size is given."""
    pop = load_released_personas(spec.path)
    if spec.size is not None:
        if spec.size > pop.frame.height:
            raise DataError(f"population.size is {spec.size:,} but the persona file {spec.path} has {pop.frame.height:,} personas; "
                            "lower the size or leave it out (every persona of the file).")
        frame = pop.frame.head(spec.size)
        pop = Population(frame, {**pop.report, "size": frame.height}, population_key(frame))
    return pop
