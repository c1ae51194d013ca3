"""Downloading the Census Bureau's ACS 1-year PUMS zips (``persona-exp census fetch``).

The Bureau publishes one zip per state and record type under a fixed pattern
(:data:`URL_PATTERN`), e.g. the 2018 Wyoming person file at
``https://www2.census.gov/programs-surveys/acs/data/pums/2018/1-Year/csv_pwy.zip``:
``csv_p<st>.zip`` holds persons, ``csv_h<st>.zip`` housing units, ``<st>`` being
the state's lower-case postal abbreviation (``us`` for the national files,
which hold two parts, ``psam_pusa.csv`` and ``psam_pusb.csv``).

A download streams to a temporary file next to the target, is checked (a
readable zip archive holding the expected ``psam_p<fips>.csv`` or
``psam_h<fips>.csv`` member, whose first line is a PUMS header) and only then
renamed into place, so an interrupted or damaged download never leaves a
file that looks complete. A target that is already present and passes the same
check is not downloaded again.

Only years from 2017 are offered: earlier zips name their CSVs ``ss16pwy.csv``
and so on, which the reader (:mod:`persona_exp.census.pums`) does not read;
the standard 2020 1-year files were never released (the Bureau published
files with experimental weights instead, elsewhere on its site).
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Iterable, NamedTuple, Sequence

from persona_exp.census.pums import default_cache_dir
from persona_exp.errors import DataError, InvalidArgumentError

__all__ = [
    "FIRST_YEAR",
    "KINDS",
    "PUMS_BASE_URL",
    "STATES",
    "URL_PATTERN",
    "Fetched",
    "State",
    "check_pums_zip",
    "default_download_dir",
    "fetch_pums",
    "pums_url",
    "resolve_state",
    "zip_name",
]

PUMS_BASE_URL = "https://www2.census.gov/programs-surveys/acs/data/pums"
URL_PATTERN = "{base}/{year}/1-Year/{name}"  # name: csv_p<st>.zip or csv_h<st>.zip
FIRST_YEAR = 2017  # the first year whose CSV members are named psam_*.csv
NOT_RELEASED = {2020: "the Bureau did not release standard 2020 1-year PUMS files (COVID-19 data collection); "
                      "it published files with experimental weights on its experimental-data pages instead"}
KINDS = ("person", "housing")
_CHUNK = 1 << 20
_TIMEOUT = 60.0


@dataclass(frozen=True)
class State:
    """A PUMS geography: postal abbreviation (lower case, as in the file names), name and FIPS code."""

    abbr: str
    name: str
    fips: str  # "" for the national files


# The 50 states, the District of Columbia and Puerto Rico (published as a state equivalent), and the nation.
STATES: tuple[State, ...] = tuple(
    State(a, n, f)
    for a, n, f in (
        ("al", "Alabama", "01"), ("ak", "Alaska", "02"), ("az", "Arizona", "04"), ("ar", "Arkansas", "05"),
        ("ca", "California", "06"), ("co", "Colorado", "08"), ("ct", "Connecticut", "09"), ("de", "Delaware", "10"),
        ("dc", "District of Columbia", "11"), ("fl", "Florida", "12"), ("ga", "Georgia", "13"), ("hi", "Hawaii", "15"),
        ("id", "Idaho", "16"), ("il", "Illinois", "17"), ("in", "Indiana", "18"), ("ia", "Iowa", "19"),
        ("ks", "Kansas", "20"), ("ky", "Kentucky", "21"), ("la", "Louisiana", "22"), ("me", "Maine", "23"),
        ("md", "Maryland", "24"), ("ma", "Massachusetts", "25"), ("mi", "Michigan", "26"), ("mn", "Minnesota", "27"),
        ("ms", "Mississippi", "28"), ("mo", "Missouri", "29"), ("mt", "Montana", "30"), ("ne", "Nebraska", "31"),
        ("nv", "Nevada", "32"), ("nh", "New Hampshire", "33"), ("nj", "New Jersey", "34"), ("nm", "New Mexico", "35"),
        ("ny", "New York", "36"), ("nc", "North Carolina", "37"), ("nd", "North Dakota", "38"), ("oh", "Ohio", "39"),
        ("ok", "Oklahoma", "40"), ("or", "Oregon", "41"), ("pa", "Pennsylvania", "42"), ("ri", "Rhode Island", "44"),
        ("sc", "South Carolina", "45"), ("sd", "South Dakota", "46"), ("tn", "Tennessee", "47"), ("tx", "Texas", "48"),
        ("ut", "Utah", "49"), ("vt", "Vermont", "50"), ("va", "Virginia", "51"), ("wa", "Washington", "53"),
        ("wv", "West Virginia", "54"), ("wi", "Wisconsin", "55"), ("wy", "Wyoming", "56"), ("pr", "Puerto Rico", "72"),
        ("us", "United States", ""),
    )
)  # fmt: skip
_NATION_ALIASES = ("usa", "united states of america", "national", "nation")


def _norm(text: str) -> str:
    return " ".join(text.replace(".", " ").replace("_", " ").replace("-", " ").split()).casefold()


_LOOKUP: dict[str, State] = {}
for _s in STATES:
    _LOOKUP[_s.abbr] = _s
    _LOOKUP[_norm(_s.name)] = _s
    if _s.fips:
        _LOOKUP[_s.fips] = _s
for _alias in _NATION_ALIASES:
    _LOOKUP[_norm(_alias)] = _LOOKUP["us"]


def resolve_state(text: str | State) -> State:
    """A state from its postal code (``WY``), name (``Wyoming``), FIPS code (``56``) or ``us`` for the nation."""
    if isinstance(text, State):
        return text
    key = _norm(str(text))
    if key.isdigit() and len(key) == 1:
        key = "0" + key
    state = _LOOKUP.get(key) or _LOOKUP.get(key.replace(" ", ""))  # "D.C." -> "dc", "U.S." -> "us"
    if state is None:
        raise InvalidArgumentError(
            f"state {text!r} is not a PUMS geography; give a two-letter postal code (e.g. WY), a state name "
            "(e.g. Wyoming), a FIPS code (e.g. 56), DC, PR (Puerto Rico) or us for the national files."
        )
    return state


def _check_year(year: int) -> int:
    if isinstance(year, bool) or not isinstance(year, int):
        try:
            year = int(str(year).strip())
        except ValueError:
            raise InvalidArgumentError(f"year {year!r} is not a year; give e.g. --year 2022.") from None
    latest = dt.date.today().year - 1
    if year < FIRST_YEAR:
        raise InvalidArgumentError(
            f"year {year}: persona-exp fetches 1-year PUMS from {FIRST_YEAR} on (older zips name their CSVs "
            "ss<yy>p<st>.csv, a layout the reader does not take); pick a year from "
            f"{FIRST_YEAR} to {latest}."
        )
    if year in NOT_RELEASED:
        raise InvalidArgumentError(f"year {year}: {NOT_RELEASED[year]}; pick another year.")
    if year > latest:
        raise InvalidArgumentError(
            f"year {year}: the 1-year PUMS files of a year are released in the autumn of the following year, "
            f"so {latest} is the latest that can exist; pick a year from {FIRST_YEAR} to {latest}."
        )
    return year


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidArgumentError(f"kind is {kind!r}; expected 'person' or 'housing' (or 'both' on the command line).")
    return kind


def zip_name(state: str | State, kind: str = "person") -> str:
    """The Bureau's file name: ``csv_pwy.zip`` (persons of Wyoming), ``csv_hus.zip`` (national housing)..."""
    return f"csv_{_check_kind(kind)[0]}{resolve_state(state).abbr}.zip"


def pums_url(year: int, state: str | State, kind: str = "person", base_url: str | None = None) -> str:
    """The download address of one zip (:data:`URL_PATTERN` under ``base_url``, default the Bureau's)."""
    base = (base_url or PUMS_BASE_URL).rstrip("/")
    if not base.lower().startswith(("http://", "https://")):
        raise InvalidArgumentError(f"base URL {base!r} must start with http:// or https://, e.g. {PUMS_BASE_URL}.")
    return URL_PATTERN.format(base=base, year=_check_year(year), name=zip_name(state, kind))


def default_download_dir(year: int) -> Path:
    """Where downloads go unless told otherwise: ``<PUMS cache>/downloads/<year>``."""
    return default_cache_dir() / "downloads" / str(int(year))


# --------------------------------------------------------------------------- checking


def _expected_members(state: State, kind: str) -> tuple[str, str]:
    """(glob of the member names this zip must hold, how to describe them)."""
    letter = kind[0]
    if state.abbr == "us":
        return f"psam_{letter}us*.csv", f"psam_{letter}usa.csv, psam_{letter}usb.csv..."
    return f"psam_{letter}{state.fips}.csv", f"psam_{letter}{state.fips}.csv"


def check_pums_zip(path: str | PathLike[str], state: str | State, kind: str = "person", *, source: str | None = None) -> list[str]:
    """The names of the PUMS CSV members of ``path``; DataError unless it is a readable zip holding the
    expected ``psam_`` member(s) for the state and kind, each starting with a PUMS header line."""
    import fnmatch

    state, kind = resolve_state(state), _check_kind(kind)
    path = Path(path)
    what = source or str(path)
    pattern, described = _expected_members(state, kind)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist()]
            found = [n for n in names if fnmatch.fnmatch(PurePosixPath(n).name.lower(), pattern)]
            if not found:
                psam = [n for n in names if PurePosixPath(n).name.lower().startswith("psam_")]
                hint = (f"; it holds {', '.join(psam[:4])}: another state's or record type's file" if psam else
                        f"; it holds {', '.join(names[:5]) or 'nothing'}")
                raise DataError(f"{what} is a zip but has no {described} member (the {state.name} {kind} file){hint}.")
            for name in found:
                with zf.open(name) as member:
                    line = io.TextIOWrapper(member, encoding="utf-8-sig", errors="replace", newline="").readline()
                header = [c.strip() for c in line.split(",")]
                if "SERIALNO" not in header or ("PWGTP" if kind == "person" else "WGTP") not in header:
                    raise DataError(
                        f"member {name} of {what} does not start with a PUMS {kind} header "
                        f"(SERIALNO and {'PWGTP' if kind == 'person' else 'WGTP'} columns); it begins {line[:60]!r}."
                    )
            return found
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise DataError(f"{what} is not a readable zip archive ({type(e).__name__}: {e}).") from None
    except OSError as e:
        raise DataError(f"cannot read {what}: {e}.") from None


# --------------------------------------------------------------------------- downloading


class Fetched(NamedTuple):
    """One zip: where it is, where it came from, and whether this call downloaded it."""

    path: Path
    url: str
    kind: str
    downloaded: bool
    size: int  # bytes on disk
    members: tuple[str, ...]


def _user_agent() -> str:
    from persona_exp import __version__

    return f"persona-exp/{__version__} (+python-urllib)"


def _fail(url: str, problem: str, todo: str) -> DataError:
    return DataError(f"downloading {url} failed: {problem}; {todo}")


_OFFLINE_TODO = (
    "check the network connection (and any proxy settings), or download the file in a browser and pass it "
    "as population.persons / population.housing"
)


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )


def _download(url: str, target: Path, state: State, kind: str, *, timeout: float, progress: bool) -> tuple[str, ...]:
    """Stream ``url`` to a temporary file beside ``target``, check it, rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    bar = _progress(progress)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https addresses only)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 404:
                raise _fail(url, "HTTP 404 Not Found", "the Bureau has no such file: check the year (the 1-year files of "
                            "a year appear in the autumn of the next) and the state, or the --base-url") from None
            raise _fail(url, f"HTTP {e.code} {e.reason}", "the server refused or failed; try again later") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            raise _fail(url, f"the server could not be reached ({reason})", _OFFLINE_TODO) from None
        with response, os.fdopen(fd, "wb") as out:
            fd = -1
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            task = None
            if bar is not None:
                bar.start()
                task = bar.add_task(f"{target.name}", total=total)
            try:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(task, completed=received)
            except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError, OSError) as e:
                raise _fail(url, f"the transfer broke off after {received:,} bytes ({type(e).__name__}: {e})",
                            "nothing was saved; run the command again") from None
            if total is not None and received != total:
                raise _fail(url, f"received {received:,} of {total:,} bytes", "nothing was saved; run the command again")
        try:
            members = check_pums_zip(tmp, state, kind, source="the downloaded file")
        except DataError as e:
            raise _fail(url, str(e).rstrip("."), "nothing was saved; run the command again, and if it fails the same "
                        "way the server is sending something other than the Bureau's zip (an error page?)") from None
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the file is public data
        os.replace(tmp, target)
        return tuple(members)
    finally:
        if bar is not None:
            bar.stop()
        if fd >= 0:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()


def _kinds(kind: str | Sequence[str]) -> list[str]:
    if isinstance(kind, str):
        return list(KINDS) if kind == "both" else [_check_kind(kind)]
    return [_check_kind(k) for k in kind]


def fetch_pums(
    year: int,
    state: str | State,
    kind: str | Iterable[str] = "person",
    *,
    dest: str | PathLike[str] | None = None,
    base_url: str | None = None,
    force: bool = False,
    progress: bool | None = None,
    timeout: float = _TIMEOUT,
) -> list[Fetched]:
    """Download the ACS 1-year PUMS zip(s) of ``state`` for ``year`` unless already present.

    ``kind`` is ``"person"``, ``"housing"`` or ``"both"``. Files go to ``dest``
    (default :func:`default_download_dir`) under the Bureau's names. A file
    already there that passes :func:`check_pums_zip` is kept (``force`` downloads
    it again); one that fails the check is replaced. Network and HTTP errors, and
    downloads that are not the expected zip, raise DataError naming the address;
    no partial file is left behind. ``progress=None`` shows a progress bar when
    standard error is a terminal.
    """
    year = _check_year(year)
    st = resolve_state(state)
    kinds = _kinds(kind)
    folder = Path(dest) if dest is not None else default_download_dir(year)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"destination {folder} exists and is not a folder.")
    if progress is None:
        progress = sys.stderr.isatty()
    out: list[Fetched] = []
    for k in kinds:
        url = pums_url(year, st, k, base_url)
        target = folder / zip_name(st, k)
        if target.is_file() and not force:
            try:
                members = check_pums_zip(target, st, k)
            except DataError:
                pass  # damaged or foreign: download it again
            else:
                out.append(Fetched(target, url, k, False, target.stat().st_size, tuple(members)))
                continue
        members = _download(url, target, st, k, timeout=timeout, progress=progress)
        out.append(Fetched(target, url, k, True, target.stat().st_size, members))
    return out
