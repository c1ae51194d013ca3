"""Reading ACS PUMS person and housing files, lazily and with explicit dtypes.

A file is a CSV (``psam_p56.csv``) or one of the Bureau's zips (``csv_pwy.zip``,
``csv_hak.zip``, or the national ``csv_pus.zip`` whose persons are split over
``psam_pusa.csv``, ``psam_pusb.csv``...). In a zip every member named
``psam_p*.csv`` (persons) or ``psam_h*.csv`` (housing) is read and the parts are
concatenated.

Zips are extracted, by a streaming copy, to a cache directory and the CSV is
then scanned with ``polars.scan_csv``. This keeps memory low for the national
file (3 million rows x 286 columns, several GB of text): the copy holds one
buffer at a time, and the scan parses only the selected columns, so memory is
proportional to the columns asked for, not to the file. Reading the member into
memory instead would hold the whole decompressed file. The extracted file is
named by the member's CRC and size, so it is reused by later runs and a new
download is extracted again; the CRC is verified while copying.

Dtypes are explicit, never inferred (inference would read SCHL ``01`` as the
integer 1): variables the dictionary types ``C`` are strings, exactly as
written (leading zeros kept, blanks null); ``N`` variables (AGEP, PINCP, WKHP,
the weights) are Int64, so sums of weights cannot overflow. ``SERIALNO`` is a
string (``2018GQ0000024``).

Persons are joined to housing records on SERIALNO with a left join: group
quarters have housing records too (blank HHL/HHT/HUPAC, WGTP 0), so in a
matching pair of files every person finds one; persons without one keep nulls
and ``has_housing`` False, and the join report counts them.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import os
import re
import shutil
import tempfile
import warnings
import zipfile
import zlib
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any, Callable, NamedTuple, Sequence

import polars as pl

from persona_exp.census.dictionary import EMBEDDED_VARIABLES, DataDictionary, embedded, resolve
from persona_exp.errors import DataError, InvalidArgumentError

__all__ = [
    "HOUSING_KEYS",
    "MATCH_COLUMN",
    "PERSON_KEYS",
    "JoinReport",
    "Pums",
    "default_cache_dir",
    "file_columns",
    "join_housing",
    "read_pums",
    "scan_housing",
    "scan_persons",
    "weighted_counts",
    "weighted_total",
]

PERSON_KEYS: tuple[str, ...] = ("SERIALNO", "SPORDER", "PWGTP")
HOUSING_KEYS: tuple[str, ...] = ("SERIALNO", "WGTP")
MATCH_COLUMN = "has_housing"  # added by the join: True when the person's SERIALNO has a housing record

_KINDS = {
    "person": ("P", "psam_p*.csv", PERSON_KEYS, "csv_pxx.zip"),
    "housing": ("H", "psam_h*.csv", HOUSING_KEYS, "csv_hxx.zip"),
}
_REPLICATE_WEIGHT = re.compile(r"P?WGTP\d+")  # replicate weights PWGTP1..80, WGTP1..80
_COPY_BUFFER = 16 << 20

Source = str | PathLike[str]


class JoinReport(NamedTuple):
    """How many persons found their housing record."""

    persons: int
    matched: int
    unmatched: int
    housing_records: int
    unmatched_serials: tuple[str, ...]  # up to five SERIALNO values without a housing record


class Pums(NamedTuple):
    """Persons (with housing columns when a housing file was given) and the join report."""

    frame: pl.DataFrame
    join: JoinReport | None


# --------------------------------------------------------------------------- files


def default_cache_dir() -> Path:
    """Where extracted zip members go: ``$XDG_CACHE_HOME/persona-exp/pums`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "persona-exp" / "pums"


def _is_zip(path: Path) -> bool:
    if path.suffix.lower() == ".zip":
        return True
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _check_exists(path: Path, kind: str) -> None:
    if not path.exists():
        raise DataError(f"PUMS {kind} file {path} does not exist; pass a psam_*.csv file or the Bureau's {_KINDS[kind][3]}.")
    if not path.is_file():
        raise DataError(f"PUMS {kind} file {path} is not a file; pass a psam_*.csv file or the Bureau's {_KINDS[kind][3]}.")


def _parse_header(line: str, where: str) -> list[str]:
    if not line.strip():
        raise DataError(f"{where} is empty: expected a CSV header line starting with RT,SERIALNO,...")
    return [c.strip() for c in next(csv.reader([line]))]


def _corrupt(zip_path: Path, member: str | None, e: Exception) -> DataError:
    what = f"member {member} of {zip_path} cannot be decompressed" if member else f"{zip_path} is not a readable zip archive"
    return DataError(
        f"{what} ({type(e).__name__}: {e}); the download is probably truncated or damaged: "
        "download it again, or pass the extracted psam_*.csv."
    )


class _Part(NamedTuple):
    path: Path  # the CSV to scan
    name: str  # how errors name it
    header: list[str]


def _members(zf: zipfile.ZipFile, zip_path: Path, kind: str) -> list[zipfile.ZipInfo]:
    pattern = _KINDS[kind][1]
    found = [i for i in zf.infolist() if fnmatch.fnmatch(PurePosixPath(i.filename).name.lower(), pattern)]
    if not found:
        names = ", ".join(i.filename for i in zf.infolist()[:10]) or "nothing"
        other = "psam_h*.csv" if kind == "person" else "psam_p*.csv"
        hint = f" (it holds {other}: is this the {'housing' if kind == 'person' else 'person'} file?)" if any(
            fnmatch.fnmatch(PurePosixPath(i.filename).name.lower(), other) for i in zf.infolist()
        ) else ""
        raise DataError(f"{zip_path} has no {pattern} member for the {kind} file{hint}; it holds {names}.")
    return sorted(found, key=lambda i: i.filename)


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, zip_path: Path, cache_dir: Path) -> Path:
    """The member as a file in ``cache_dir``, extracted once (streaming, CRC-checked, atomic)."""
    stem = PurePosixPath(info.filename).stem
    target = cache_dir / f"{stem}-{info.CRC:08x}-{info.file_size}.csv"
    if target.is_file() and target.stat().st_size == info.file_size:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{stem}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with zf.open(info) as member:
                    shutil.copyfileobj(member, out, _COPY_BUFFER)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
                raise _corrupt(zip_path, info.filename, e) from None
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache holds public data
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _parts(
    path: Source,
    kind: str,
    cache_dir: Source | None,
    check: Callable[[str, list[str]], None] | None = None,
    extract: bool = True,
) -> list[_Part]:
    """The CSV file(s) behind ``path``; ``check(name, header)`` runs before anything is extracted.

    With ``extract=False`` only the headers are read (the parts' paths are then the zip).
    """
    path = Path(path)
    _check_exists(path, kind)
    if not _is_zip(path):
        with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as f:
            header = _parse_header(f.readline(), f"PUMS {kind} file {path}")
        if check:
            check(str(path), header)
        return [_Part(path, str(path), header)]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        with zipfile.ZipFile(path) as zf:
            found = []
            for info in _members(zf, path, kind):
                name = f"{info.filename} in {path}"
                try:
                    with zf.open(info) as member:
                        line = io.TextIOWrapper(member, encoding="utf-8-sig", errors="replace", newline="").readline()
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
                    raise _corrupt(path, info.filename, e) from None
                header = _parse_header(line, f"PUMS {kind} file {name}")
                if check:
                    check(name, header)
                found.append((info, name, header))
            if not extract:
                return [_Part(path, name, header) for _, name, header in found]
            return [_Part(_extract(zf, info, path, cache), name, header) for info, name, header in found]
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise _corrupt(path, None, e) from None


def file_columns(path: Source, kind: str = "person") -> list[str]:
    """The header of a PUMS file (of the first part of a split national zip), without extracting anything."""
    _check_kind(kind)
    return _parts(path, kind, None, extract=False)[0].header


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise InvalidArgumentError(f"kind is {kind!r}; expected 'person' or 'housing'.")


# --------------------------------------------------------------------------- scanning


def _dtype(name: str, codes: DataDictionary, fallback: DataDictionary) -> pl.DataType:
    v = codes.get(name) or fallback.get(name)
    if v is not None:
        return pl.Int64 if v.numeric else pl.String
    return pl.Int64 if _REPLICATE_WEIGHT.fullmatch(name) else pl.String


def _columns(requested: Sequence[str] | None, kind: str, header: list[str]) -> list[str]:
    record, _, keys, _ = _KINDS[kind]
    if requested is None:
        table = embedded()
        # persons: every person variable (ST too); housing: the housing-only ones (the rest comes from persons)
        keep = (lambda r: record in r) if kind == "person" else (lambda r: r == {record})
        wanted = [n for n in EMBEDDED_VARIABLES if keep(table[n].records) and n in header]
    else:
        if isinstance(requested, str):
            raise InvalidArgumentError(f"columns must be a list of column names, got the string {requested!r}.")
        wanted = [str(c) for c in requested]
    out: list[str] = []
    for c in (*keys, *wanted):
        if c not in out:
            out.append(c)
    return out


def _missing_message(
    name: str, header: list[str], kind: str, missing: list[str], codes: DataDictionary, fallback: DataDictionary
) -> str:
    required = [c for c in missing if c in _KINDS[kind][2]]
    text = f"PUMS {kind} file {name} lacks column(s) {', '.join(missing)}"
    if required:
        text += f" ({', '.join(required)} {'is' if len(required) == 1 else 'are'} required in every {kind} file)"
    other = "housing" if kind == "person" else "person"
    elsewhere = [c for c in missing if (v := codes.get(c) or fallback.get(c)) is not None and v.records == {_KINDS[other][0]}]
    if elsewhere:
        noun = f"is a {other}-record variable" if len(elsewhere) == 1 else f"are {other}-record variables"
        text += f"; {', '.join(elsewhere)} {noun}: read it from the {other} file and join"
    if kind == "person" and "WGTP" in header and "PWGTP" not in header:
        text += "; this looks like a housing file"
    if kind == "housing" and "PWGTP" in header and "WGTP" not in header:
        text += "; this looks like a person file"
    return text + "."


def _scan(
    path: Source,
    kind: str,
    columns: Sequence[str] | None,
    dictionary: DataDictionary | Source | None,
    cache_dir: Source | None,
) -> pl.LazyFrame:
    codes = resolve(dictionary)
    fallback = embedded()
    selected: dict[str, list[str]] = {}

    def check(name: str, header: list[str]) -> None:
        cols = _columns(columns, kind, header)
        missing = [c for c in cols if c not in header]
        if missing:
            raise DataError(_missing_message(name, header, kind, missing, codes, fallback))
        selected[name] = cols

    frames = []
    for part in _parts(path, kind, cache_dir, check):
        cols = selected[part.name]
        overrides = {c: t for c in cols if (t := _dtype(c, codes, fallback)) != pl.String}
        lf = pl.scan_csv(part.path, infer_schema=False, schema_overrides=overrides, glob=False)
        frames.append(lf.select(cols))
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def scan_persons(
    path: Source,
    columns: Sequence[str] | None = None,
    *,
    dictionary: DataDictionary | Source | None = None,
    cache_dir: Source | None = None,
) -> pl.LazyFrame:
    """A lazy frame of the person file: SERIALNO, SPORDER, PWGTP and ``columns``.

    ``columns=None`` selects the embedded person variables the file has. The
    header is checked now (missing columns raise DataError naming the file and
    the columns); the rows are read when the frame is collected.
    ``dictionary`` (a DataDictionary or a dictionary CSV) sets the dtypes; the
    embedded 2018 tables are used otherwise and for variables it lacks.
    """
    return _scan(path, "person", columns, dictionary, cache_dir)


def scan_housing(
    path: Source,
    columns: Sequence[str] | None = None,
    *,
    dictionary: DataDictionary | Source | None = None,
    cache_dir: Source | None = None,
) -> pl.LazyFrame:
    """A lazy frame of the housing file: SERIALNO, WGTP and ``columns`` (default HHL, HHT, HUPAC)."""
    return _scan(path, "housing", columns, dictionary, cache_dir)


# --------------------------------------------------------------------------- joining


def join_housing(persons: pl.LazyFrame | pl.DataFrame, housing: pl.LazyFrame | pl.DataFrame) -> Any:
    """Left join of housing columns onto persons by SERIALNO, in person order.

    Columns the persons already have (SERIALNO, ST, PUMA...) are taken from
    the persons. Adds ``has_housing`` (False where no housing record matched;
    those persons keep nulls in the housing columns). A SERIALNO repeated in
    the housing frame is an error (polars raises when the frame is collected;
    :func:`read_pums` checks it first and names the file).
    """
    eager = isinstance(persons, pl.DataFrame)
    p, h = persons.lazy(), housing.lazy()
    p_cols = p.collect_schema().names()
    h_cols = [c for c in h.collect_schema().names() if c == "SERIALNO" or c not in p_cols]
    if MATCH_COLUMN in p_cols:
        raise DataError(f"the persons already have a {MATCH_COLUMN} column: they were joined to housing records before.")
    order = "__person_row"
    out = (
        p.with_row_index(order)
        .join(h.select(h_cols).with_columns(pl.lit(True).alias(MATCH_COLUMN)), on="SERIALNO", how="left", validate="m:1")
        .sort(order)
        .drop(order)
        .with_columns(pl.col(MATCH_COLUMN).fill_null(False))
    )
    return out.collect() if eager else out


def _collect(lf: pl.LazyFrame, what: str) -> pl.DataFrame:
    """Reads into one contiguous chunk per column: the CSV reader returns about a
    thousand chunks for a national file, and every later expression (decoding,
    deriving, gathering the sample) pays for them."""
    try:
        return lf.collect().rechunk()
    except pl.exceptions.PolarsError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"{what} could not be read with the expected column types (codes as text, numeric variables "
            f"as integers): {first}"
        ) from None


def _describe(path: Source, kind: str) -> str:
    return f"PUMS {kind} file {Path(path)}"


def read_pums(
    persons: Source,
    housing: Source | None = None,
    *,
    columns: Sequence[str] | None = None,
    housing_columns: Sequence[str] | None = None,
    dictionary: DataDictionary | Source | None = None,
    cache_dir: Source | None = None,
) -> Pums:
    """Read persons (and optionally join their housing records) into memory.

    Returns the frame and, when ``housing`` is given, a JoinReport. No match
    at all (e.g. persons of one state, housing of another) is reported with a
    warning, not raised: the frame is still returned, housing columns null.
    """
    codes = resolve(dictionary)
    p_lazy = scan_persons(persons, columns, dictionary=codes, cache_dir=cache_dir)
    h_lazy = None if housing is None else scan_housing(housing, housing_columns, dictionary=codes, cache_dir=cache_dir)
    p = _collect(p_lazy, _describe(persons, "person"))
    if h_lazy is None:
        return Pums(p, None)
    h = _collect(h_lazy, _describe(housing, "housing"))
    dup = h.filter(pl.col("SERIALNO").is_duplicated())["SERIALNO"]
    if len(dup):
        raise DataError(
            f"{_describe(housing, 'housing')} has {dup.n_unique()} SERIALNO value(s) on more than one row "
            f"(e.g. {dup[0]}); a housing file has one row per housing unit or group quarters."
        )
    joined = join_housing(p, h)
    matched = int(joined[MATCH_COLUMN].sum())
    unmatched = joined.filter(~pl.col(MATCH_COLUMN))["SERIALNO"].head(5).to_list()
    report = JoinReport(joined.height, matched, joined.height - matched, h.height, tuple(unmatched))
    if joined.height and matched == 0:
        warnings.warn(
            f"none of the {joined.height} persons in {Path(persons)} has a housing record in {Path(housing)} "
            "(no common SERIALNO): are the two files from the same state and year? Housing columns are null.",
            stacklevel=2,
        )
    return Pums(joined, report)


# --------------------------------------------------------------------------- weights


def weighted_total(frame: pl.DataFrame | pl.LazyFrame, weight: str = "PWGTP") -> int:
    """The sum of the person weights: the population the rows represent."""
    lf = frame.lazy()
    if weight not in lf.collect_schema().names():
        raise DataError(f"the frame has no weight column {weight!r}.")
    return int(lf.select(pl.col(weight).cast(pl.Int64).sum()).collect().item())


def weighted_counts(frame: pl.DataFrame | pl.LazyFrame, by: str | Sequence[str], weight: str = "PWGTP") -> pl.DataFrame:
    """Rows and weighted totals per value of ``by``, sorted by ``by``."""
    by = [by] if isinstance(by, str) else list(by)
    lf = frame.lazy()
    names = lf.collect_schema().names()
    missing = [c for c in (*by, weight) if c not in names]
    if missing:
        raise DataError(f"the frame has no column(s) {', '.join(missing)}.")
    return (
        lf.group_by(by)
        .agg(pl.len().alias("rows"), pl.col(weight).cast(pl.Int64).sum().alias("weight"))
        .sort(by, nulls_last=True)
        .collect()
    )
