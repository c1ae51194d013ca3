"""Real ACS 2018 PUMS files and independent readings of them.

The files live in ``../shared/data`` next to the checkout (never in the
repository); tests that need them are skipped, with the reason, when absent.
The "raw" fixtures read the same files with the standard library's ``zipfile``
and ``csv`` modules only, so the package is always compared with an
independent reading, never with itself.
"""

from __future__ import annotations

import csv
import io
import types
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"

# The variables persona-exp decodes (the brief's list, and ADJINC, which incomes need); HHL, HHT and HUPAC are housing variables.
LISTED = (
    "AGEP", "SEX", "RAC1P", "HISP", "ANC1P", "HHL", "SCHL", "ESR", "COW", "INDP", "OCCP", "PINCP",
    "MAR", "HHT", "HUPAC", "POBP", "CIT", "MIL", "DIS", "HICOV", "DREM", "DEYE", "DEAR", "ENG",
    "FER", "ST", "NATIVITY", "WKHP", "DDRS", "DOUT", "DPHY", "ADJINC",
)  # fmt: skip
NUMERIC = ("AGEP", "PINCP", "WKHP")
HOUSING_VARS = ("HHL", "HHT", "HUPAC")


def _need(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"real census data {name} not found in {DATA} (the ../shared/data folder next to the checkout)")
    return path


def _raw_rows(zip_path: Path, member: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(zip_path) as zf, zf.open(member) as f:
        return list(csv.DictReader(io.TextIOWrapper(f, encoding="ascii", newline="")))


@pytest.fixture(scope="session")
def person_zip() -> Path:
    return _need("csv_pwy.zip")


@pytest.fixture(scope="session")
def housing_zip() -> Path:
    return _need("csv_hak.zip")


@pytest.fixture(scope="session")
def dictionary_csv() -> Path:
    return _need("PUMS_Data_Dictionary_2018.csv")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One extraction cache for the session, so each zip is extracted once."""
    return tmp_path_factory.mktemp("pums-cache")


@pytest.fixture(scope="session")
def raw_persons(person_zip) -> list[dict[str, str]]:
    return _raw_rows(person_zip, "psam_p56.csv")


@pytest.fixture(scope="session")
def raw_housing(housing_zip) -> list[dict[str, str]]:
    return _raw_rows(housing_zip, "psam_h02.csv")


@pytest.fixture(scope="session")
def raw_dictionary(dictionary_csv):
    """The dictionary read with the csv module: single-code labels, blank labels, NAME rows."""
    labels: dict[str, dict[str, str]] = {}
    blanks: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    with open(dictionary_csv, newline="", encoding="ascii") as f:
        for row in csv.reader(f):
            if row[0] == "NAME":
                names.setdefault(row[1], row)
            elif row[0] == "VAL" and row[4] == row[5]:
                if set(row[4]) == {"b"}:
                    blanks.setdefault(row[1], row[6])
                else:
                    labels.setdefault(row[1], {}).setdefault(row[4], row[6])
    return types.SimpleNamespace(labels=labels, blanks=blanks, names=names)


@pytest.fixture(scope="session")
def dictionary(dictionary_csv):
    from persona_exp.census.dictionary import read_dictionary

    return read_dictionary(dictionary_csv)


@pytest.fixture(scope="session")
def census():
    """The variable lists, for tests (conftest modules are not importable in importlib mode)."""
    return types.SimpleNamespace(LISTED=LISTED, NUMERIC=NUMERIC, HOUSING_VARS=HOUSING_VARS)


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path_factory, monkeypatch):
    """A test that forgets cache_dir extracts into a temporary folder, never into the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
