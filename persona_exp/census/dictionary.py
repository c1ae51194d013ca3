"""The Census Bureau's PUMS data dictionary: value labels, types and descriptions.

The Bureau publishes the dictionary as a CSV of two record kinds::

    NAME,SCHL,C,2,"Educational attainment"
    VAL,SCHL,C,2,"bb","bb","N/A (less than 3 years old)"
    VAL,SCHL,C,2,"01","01","No schooling completed"
    VAL,PINCP,N,7,"-19997","-1","Loss $1 to $19997 (Rounded components)"

``NAME`` rows give a variable's type (``C`` character code, ``N`` numeric),
width and description; ``VAL`` rows give a low code, a high code and a label.
When the two codes differ the row labels a whole range (incomes, weights,
PUMAs); a code made only of ``b`` characters is the label of a blank field.
The file holds a housing section and a person section, each opened by an
``RT`` (record type) variable; variables such as ``SERIALNO`` or ``ST`` appear
in both.

:func:`read_dictionary` parses such a file; :func:`embedded` loads the tables
shipped with the package (``codes_2018.json``), so decoding works without a
dictionary file. Both return a :class:`DataDictionary`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from persona_exp.errors import DataError, InvalidArgumentError

__all__ = [
    "DataDictionary",
    "ValueRange",
    "Variable",
    "EMBEDDED_VARIABLES",
    "EMBEDDED_YEARS",
    "embedded",
    "parse_dictionary",
    "read_dictionary",
    "resolve",
]

# The variables whose labels ship with the package (see _build_codes.py). The
# record keys and weights come first: the reader needs their types even when
# nobody decodes them.
EMBEDDED_VARIABLES: tuple[str, ...] = (
    "SERIALNO", "SPORDER", "PWGTP", "WGTP", "ST", "ADJINC",
    "AGEP", "SEX", "RAC1P", "HISP", "ANC1P", "NATIVITY", "CIT", "POBP",
    "MAR", "SCHL", "ESR", "COW", "INDP", "OCCP", "WKHP", "PINCP",
    "MIL", "DIS", "HICOV", "DREM", "DEYE", "DEAR", "DDRS", "DOUT", "DPHY",
    "ENG", "FER",
    "HHL", "HHT", "HUPAC",
)  # fmt: skip

EMBEDDED_YEARS: tuple[int, ...] = (2018,)

_BLANK = re.compile(r"b+")
_INT = re.compile(r"-?\d+")
_EXPECTED_LAYOUT = (
    "expected NAME/VAL records as in the Census Bureau's PUMS data dictionary CSV "
    '(NAME,variable,type,width,"description" and VAL,variable,type,width,"low","high","label", '
    'e.g. VAL,SCHL,C,2,"01","01","No schooling completed")'
)


def is_blank_code(code: str) -> bool:
    """True for the dictionary's blank-field codes ``b``, ``bb``, ``bbbb``..."""
    return bool(_BLANK.fullmatch(code))


@dataclass(frozen=True)
class ValueRange:
    """A VAL row whose low and high codes differ: one label for every code in between."""

    low: str
    high: str
    label: str

    def contains(self, code: str, numeric: bool) -> bool:
        """Whether ``code`` lies in the range (numerically, or as fixed-width codes)."""
        if numeric or (_INT.fullmatch(self.low) and _INT.fullmatch(self.high) and len(self.low) != len(self.high)):
            if not (_INT.fullmatch(code) and _INT.fullmatch(self.low) and _INT.fullmatch(self.high)):
                return False
            return int(self.low) <= int(code) <= int(self.high)
        # Character codes are fixed width ("00100".."70301", "2018GQ0000001"..):
        # same width and lexicographic order is the Bureau's ordering.
        return len(code) == len(self.low) == len(self.high) and self.low <= code <= self.high


@dataclass
class Variable:
    """One dictionary variable with its value labels."""

    name: str
    type: str  # "C" (character code) or "N" (numeric)
    width: int
    description: str
    records: frozenset[str] = frozenset()  # "H" housing, "P" person, both, or unknown (empty)
    labels: dict[str, str] = field(default_factory=dict)  # single codes, as written in the dictionary
    ranges: tuple[ValueRange, ...] = ()
    blank_label: str | None = None  # label of the blank field ("b", "bb", ...), if the dictionary gives one

    @property
    def numeric(self) -> bool:
        return self.type == "N"

    def label(self, code: str | int | None) -> str | None:
        """The dictionary's label of one code (a single value first, then a range); None if none.

        ``None`` or an empty string is the blank field. Numeric variables match
        codes by value, so ``5`` and ``"05"`` are the same code.
        """
        if code is None or code == "":
            return self.blank_label
        code = str(code)
        if is_blank_code(code):
            return self.blank_label
        if self.numeric and _INT.fullmatch(code):
            for key, label in self.labels.items():
                if _INT.fullmatch(key) and int(key) == int(code):
                    return label
        elif code in self.labels:
            return self.labels[code]
        for r in self.ranges:
            if r.contains(code, self.numeric):
                return r.label
        return None

    def values(self) -> list[list[str]]:
        """The VAL rows in compact form: ``[code, label]`` or ``[low, high, label]``."""
        out: list[list[str]] = []
        if self.blank_label is not None:
            blank = "b" * self.width
            out.append([blank, self.blank_label])
        out.extend([code, label] for code, label in self.labels.items())
        out.extend([r.low, r.high, r.label] for r in self.ranges)
        return out


@dataclass
class DataDictionary:
    """Value labels, types and descriptions of PUMS variables, from one source."""

    variables: dict[str, Variable]
    source: str  # the file it was read from, or "embedded 2018 tables"

    def __contains__(self, name: object) -> bool:
        return name in self.variables

    def __getitem__(self, name: str) -> Variable:
        try:
            return self.variables[name]
        except KeyError:
            raise DataError(f"{self.source} has no variable {name!r}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)

    def get(self, name: str) -> Variable | None:
        return self.variables.get(name)

    @property
    def labels(self) -> dict[str, dict[str, str]]:
        """``{variable: {code: label}}`` for the single codes (ranges and blanks excluded)."""
        return {name: dict(v.labels) for name, v in self.variables.items()}

    @property
    def descriptions(self) -> dict[str, str]:
        return {name: v.description for name, v in self.variables.items()}

    @property
    def types(self) -> dict[str, str]:
        """``{variable: "C" or "N"}``."""
        return {name: v.type for name, v in self.variables.items()}

    def subset(self, names: Iterable[str]) -> DataDictionary:
        """The same source restricted to ``names`` (those it has)."""
        return DataDictionary({n: self.variables[n] for n in names if n in self.variables}, self.source)


# --------------------------------------------------------------------------- building


class _Builder:
    """Collects NAME/VAL records; shared by the CSV parser and the embedded loader."""

    def __init__(self, source: str, sections: bool = True) -> None:
        self.source = source
        self._track_sections = sections
        self.variables: dict[str, Variable] = {}
        self._seen: dict[str, set[tuple[str, str, str]]] = {}
        self._sections: list[set[str]] = []

    def name(self, where: str, var: str, typ: str, width: str, description: str) -> None:
        var = var.strip()
        self._check_head(where, "NAME", var, typ, width)
        if self._track_sections:
            if var == "RT" or not self._sections:
                self._sections.append(set())
            self._sections[-1].add(var)
        if var not in self.variables:
            self.variables[var] = Variable(var, typ.strip(), int(width), description.strip())
            self._seen[var] = set()

    def val(self, where: str, var: str, typ: str, width: str, low: str, high: str, label: str) -> None:
        var = var.strip()
        self._check_head(where, "VAL", var, typ, width)
        v = self.variables.get(var)
        if v is None:
            raise DataError(f"{self.source} {where}: VAL record for {var} comes before any NAME record for it; {_EXPECTED_LAYOUT}.")
        low, high, label = low.strip(), high.strip(), label.strip()
        if not low or not high:
            raise DataError(f"{self.source} {where}: VAL record for {var} has an empty low or high code.")
        key = (low, high, label)
        if key in self._seen[var]:  # the same row in the housing and the person section
            return
        self._seen[var].add(key)
        if is_blank_code(low):
            if v.blank_label is None:
                v.blank_label = label
        elif low == high:
            v.labels.setdefault(low, label)
        else:
            if v.numeric and not (_INT.fullmatch(low) and _INT.fullmatch(high)):
                raise DataError(
                    f"{self.source} {where}: range {low!r}..{high!r} of numeric variable {var} is not a pair of integers."
                )
            v.ranges = (*v.ranges, ValueRange(low, high, label))

    def _check_head(self, where: str, kind: str, var: str, typ: str, width: str) -> None:
        if not var:
            raise DataError(f"{self.source} {where}: {kind} record has an empty field 'variable'.")
        if typ.strip() not in ("C", "N"):
            raise DataError(
                f"{self.source} {where}: field 'type' of the {kind} record for {var} is {typ!r}; "
                "expected C (character code) or N (numeric)."
            )
        if not width.strip().isdigit():
            raise DataError(f"{self.source} {where}: field 'width' of the {kind} record for {var} is {width!r}; expected a whole number.")

    def finish(self) -> DataDictionary:
        if not self.variables:
            raise DataError(f"{self.source}: no NAME/VAL records found; {_EXPECTED_LAYOUT}.")
        records: dict[str, set[str]] = {}
        for section in self._sections:
            kind = "H" if "WGTP" in section else "P" if "PWGTP" in section else None
            if kind:
                for var in section:
                    records.setdefault(var, set()).add(kind)
        for var, v in self.variables.items():
            if not v.records:
                v.records = frozenset(records.get(var, ()))
        for var in GROUPED:
            if var in self.variables:
                _prefix_orphans(self.variables[var])
        return DataDictionary(self.variables, self.source)


# Occupation and industry labels begin with their major group ("ENG-", "RET-"),
# which persona-exp reads (the field of a job description, occupation groups).
GROUPED = ("OCCP", "INDP")
_GROUP = re.compile(r"^([A-Z]{3})-")


def _prefix_orphans(v: Variable) -> None:
    """A label the Bureau printed without its group prefix (2018: OCCP 1555
    "Other Engineering Technologists And Technicians, Except Drafters", 8000
    "Grinding, Lapping, ...") gets the prefix its neighbours share: codes are
    numbered by group, so a label between two of one group is of that group.
    Labels between groups, and codes that name no job (N/A, 9920), stay as
    they are."""
    codes = sorted((c for c in v.labels if _INT.fullmatch(c)), key=int)
    groups = [m.group(1) if (m := _GROUP.match(v.labels[c])) else None for c in codes]
    for i, c in enumerate(codes):
        if groups[i] is not None:
            continue
        before = next((g for g in reversed(groups[:i]) if g), None)
        after = next((g for g in groups[i + 1:] if g), None)
        if before is not None and before == after:
            v.labels[c] = f"{before}-{v.labels[c]}"


# --------------------------------------------------------------------------- the CSV file


def _text(path: Path) -> str:
    """The file's text; the Bureau's files are ASCII, older ones Windows-1252."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"PUMS data dictionary {path} does not exist; pass the path of PUMS_Data_Dictionary_YYYY.csv.") from None
    except IsADirectoryError:
        raise DataError(f"PUMS data dictionary {path} is a directory, not the dictionary CSV.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_dictionary(lines: Iterable[str], source: str = "<dictionary>") -> DataDictionary:
    """Parse NAME/VAL records (the lines of the Bureau's CSV); ``source`` names them in errors."""
    b = _Builder(source)
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # NUL bytes, a runaway quote: not a text CSV
            raise DataError(f"{source} line {reader.line_num}: not a readable CSV ({e}); {_EXPECTED_LAYOUT}.") from None
        where = f"line {reader.line_num}"
        if not row or all(not cell.strip() for cell in row):
            continue
        kind = row[0].strip().upper()
        if kind == "NAME":
            if len(row) < 5:
                raise DataError(
                    f"{source} {where}: NAME record has {len(row)} fields, expected 5 "
                    "(NAME, variable, type, width, description)."
                )
            b.name(where, row[1], row[2], row[3], row[4])
        elif kind == "VAL":
            if len(row) < 7:
                raise DataError(
                    f"{source} {where}: VAL record has {len(row)} fields, expected 7 "
                    "(VAL, variable, type, width, low code, high code, label)."
                )
            b.val(where, row[1], row[2], row[3], row[4], row[5], row[6])
        else:
            shown = ascii(",".join(row[:4])[:60])
            raise DataError(f"{source} {where}: {_EXPECTED_LAYOUT}; got {shown}.")
    return b.finish()


def read_dictionary(path: str | PathLike[str]) -> DataDictionary:
    """Read the Bureau's ``PUMS_Data_Dictionary_YYYY.csv``.

    Raises DataError naming the file, line and field when it has another layout.
    """
    path = Path(path)
    return parse_dictionary(io.StringIO(_text(path), newline=""), str(path))


# --------------------------------------------------------------------------- embedded tables


def from_json(obj: Mapping, source: str) -> DataDictionary:
    """A dictionary from the compact JSON form written by ``_build_codes.py``."""
    b = _Builder(source, sections=False)
    try:
        for name, spec in obj["variables"].items():
            typ, width = spec["type"], str(spec["width"])
            b.name(f"variable {name}", name, typ, width, spec["description"])
            for row in spec["values"]:
                low, high, label = (row[0], row[0], row[1]) if len(row) == 2 else row
                b.val(f"variable {name}", name, typ, width, low, high, label)
            b.variables[name].records = frozenset(spec.get("records", ""))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{source}: not a persona-exp code table ({type(e).__name__}: {e}).") from None
    return b.finish()


@lru_cache(maxsize=None)
def embedded(year: int = 2018) -> DataDictionary:
    """The value labels shipped with the package (public facts from the Bureau's dictionary)."""
    if year not in EMBEDDED_YEARS:
        raise InvalidArgumentError(
            f"year is {year!r}; embedded PUMS code tables exist for {', '.join(map(str, EMBEDDED_YEARS))}. "
            "For another year pass the Bureau's data dictionary file."
        )
    name = f"codes_{year}.json"
    text = resources.files("persona_exp.census").joinpath(name).read_text(encoding="utf-8")
    return from_json(json.loads(text), f"embedded {year} code tables ({name})")


def resolve(dictionary: DataDictionary | str | PathLike[str] | None) -> DataDictionary:
    """A DataDictionary from an instance, a dictionary file path, or None (embedded 2018)."""
    if dictionary is None:
        return embedded()
    if isinstance(dictionary, DataDictionary):
        return dictionary
    if isinstance(dictionary, (str, PathLike)):
        return read_dictionary(dictionary)
    raise InvalidArgumentError(
        f"dictionary must be a DataDictionary, the path of a PUMS data dictionary CSV, or None; got {type(dictionary).__name__}."
    )
