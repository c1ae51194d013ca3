#!/usr/bin/env python
"""Reading, decoding and sampling a national-size PUMS person file: persona_exp against plain polars/numpy, in one run.

The script writes a synthetic person file with the Bureau's real 2018 column
layout (286 columns: RT, SERIALNO, DIVISION, SPORDER, PUMA, ..., PWGTP1 to
PWGTP80), 3 million rows by default, about 2 GB of CSV. Every value is a valid
code of the 2018 data dictionary (the package's embedded code tables for the
variables it decodes, a layout table in this script for the others), blank
where the Bureau leaves the field blank (children, men for fertility, people
without a job for industry and occupation...), and the rows are coherent
enough that the consistency rules of ``build_population`` reject next to
nothing. The file is cached under a temporary directory, keyed by a version
string and the row count, so later runs skip the generation.

Three child processes then each do the job once per repeat, so that each one's
peak memory (``VmHWM`` from ``/proc/self/status``) is its own:

1. ours, read + decode + sample: ``source_frame(PopulationSpec(source="census",
   persons=<file>))`` (the path ``build_population`` takes: ``read_pums`` of the
   23 person variables, the unmapped-code check, ``decode``, ``derive_census``),
   then ``persona_exp.stats.weighted_sample`` of 10^6 personas by PWGTP (the
   Rust core, with replacement) and the row gather;
2. ours, the full ``build_population(PopulationSpec(source="census",
   persons=<file>, size=10**6), seed=0)``: the same, plus consistency rules,
   persona ids, the representativeness report, enrichment and the content key;
3. the baseline, a plain polars/numpy pipeline doing the same job:
   ``pl.read_csv(columns=needed)`` and a rechunk, codes mapped to the
   dictionary's labels with ``replace_strict`` (which also rejects unknown
   codes), ``numpy.random.Generator.choice(p=w / w.sum())`` and the row gather.

    python benchmarks/bench_census.py                                # 3e6 rows, 1e6 personas
    python benchmarks/bench_census.py --rows 200000 --personas 50000  # smoke test
    python benchmarks/bench_census.py --json out.json

Exit status: 0 when every correctness check holds, even if a target is missed
(the table is a report); 1 when a check fails or a case raises.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Callable

from _report import Report  # shared by the benchmarks
from _report import print_table as _print_table

import numpy as np
import polars as pl

try:
    import persona_exp
    from persona_exp.census.dictionary import embedded
    from persona_exp.census.pums import file_columns
except ImportError as exc:  # pragma: no cover - reported, not handled
    sys.exit(f"cannot import persona_exp ({exc}); build and install the package first.")


SEED = 20240611
# Bump when the generator changes: the cached file is keyed by it.
DATA_VERSION = "census-synth-v2"
CHUNK_ROWS = 250_000
BYTES_PER_ROW = 720  # about what the generator writes (the real Wyoming file: 700)
HEADER_ENV = "PERSONA_BENCH_PUMS_FILE"  # optional real person file whose header gives the layout
CACHE_ENV = "PERSONA_BENCH_CACHE"  # where the synthetic file is kept (default: the temp dir)

# The variables persona_exp reads for the census attributes
# (persona_exp.population.attributes.PERSON_VARIABLES), written out again so
# the baseline does not take them from the library; a check compares the two.
NEEDED = (
    "ST", "AGEP", "SEX", "RAC1P", "HISP", "ANC1P", "SCHL", "ESR", "COW", "INDP", "OCCP", "PINCP",
    "MAR", "POBP", "CIT", "MIL", "DIS", "HICOV", "DREM", "DEYE", "DEAR", "ENG", "FER",
)  # fmt: skip
NUMERIC = ("PWGTP", "AGEP", "PINCP")  # the N variables among the columns read

# Age brackets of the representativeness report (written out here, not imported).
AGE_EDGES = (18, 25, 35, 45, 55, 65, 75)
AGE_LABELS = ("Under 18", "18 to 24", "25 to 34", "35 to 44", "45 to 54", "55 to 64", "65 to 74", "75 and over")


# --------------------------------------------------------------------------- the column layout

# The header of the Bureau's 2018 1-year person files (psam_p56.csv, psam_pusa.csv...),
# in file order: facts of the data dictionary.
PERSON_COLUMNS: tuple[str, ...] = (
    "RT", "SERIALNO", "DIVISION", "SPORDER", "PUMA", "REGION", "ST", "ADJINC", "PWGTP", "AGEP",
    "CIT", "CITWP", "COW", "DDRS", "DEAR", "DEYE", "DOUT", "DPHY", "DRAT", "DRATX", "DREM", "ENG", "FER",
    "GCL", "GCM", "GCR", "HINS1", "HINS2", "HINS3", "HINS4", "HINS5", "HINS6", "HINS7", "INTP", "JWMNP",
    "JWRIP", "JWTR", "LANX", "MAR", "MARHD", "MARHM", "MARHT", "MARHW", "MARHYP", "MIG", "MIL",
    "MLPA", "MLPB", "MLPCD", "MLPE", "MLPFG", "MLPH", "MLPI", "MLPJ", "MLPK",
    "NWAB", "NWAV", "NWLA", "NWLK", "NWRE", "OIP", "PAP", "RELP", "RETP", "SCH", "SCHG", "SCHL", "SEMP",
    "SEX", "SSIP", "SSP", "WAGP", "WKHP", "WKL", "WKW", "WRK", "YOEP", "ANC", "ANC1P", "ANC2P", "DECADE",
    "DIS", "DRIVESP", "ESP", "ESR", "FOD1P", "FOD2P", "HICOV", "HISP", "INDP", "JWAP", "JWDP", "LANP",
    "MIGPUMA", "MIGSP", "MSP", "NAICSP", "NATIVITY", "NOP", "OC", "OCCP", "PAOC", "PERNP", "PINCP", "POBP",
    "POVPIP", "POWPUMA", "POWSP", "PRIVCOV", "PUBCOV", "QTRBIR", "RAC1P", "RAC2P", "RAC3P", "RACAIAN",
    "RACASN", "RACBLK", "RACNH", "RACNUM", "RACPI", "RACSOR", "RACWHT", "RC", "SCIENGP", "SCIENGRLP",
    "SFN", "SFR", "SOCP", "VPS", "WAOB",
    # allocation flags
    "FAGEP", "FANCP", "FCITP", "FCITWP", "FCOWP", "FDDRSP", "FDEARP", "FDEYEP", "FDISP", "FDOUTP",
    "FDPHYP", "FDRATP", "FDRATXP", "FDREMP", "FENGP", "FESRP", "FFERP", "FFODP", "FGCLP", "FGCMP",
    "FGCRP", "FHICOVP", "FHINS1P", "FHINS2P", "FHINS3C", "FHINS3P", "FHINS4C", "FHINS4P", "FHINS5C",
    "FHINS5P", "FHINS6P", "FHINS7P", "FHISP", "FINDP", "FINTP", "FJWDP", "FJWMNP", "FJWRIP", "FJWTRP",
    "FLANP", "FLANXP", "FMARP", "FMARHDP", "FMARHMP", "FMARHTP", "FMARHWP", "FMARHYP", "FMIGP", "FMIGSP",
    "FMILPP", "FMILSP", "FOCCP", "FOIP", "FPAP", "FPERNP", "FPINCP", "FPOBP", "FPOWSP", "FPRIVCOVP",
    "FPUBCOVP", "FRACP", "FRELP", "FRETP", "FSCHGP", "FSCHLP", "FSCHP", "FSEMP", "FSEXP", "FSSIP", "FSSP",
    "FWAGP", "FWKHP", "FWKLP", "FWKWP", "FWRKP", "FYOEP",
    # replicate weights
    *(f"PWGTP{i}" for i in range(1, 81)),
)  # fmt: skip

# How the generator fills the columns that are not drawn jointly in person_chunk():
#   name  values  min_age  max_age  blank
# "blank" is the share of the eligible persons (min_age <= AGEP <= max_age) left
# blank; outside the ages every field is blank. Values: "1-6" (codes 1..6),
# "01-16" (zero-padded to the width of the low code), "a,b,c" (these codes),
# "@VAR" (the labelled codes of an embedded variable), "year:LO-HI" and
# "num:LO-HI" (integers), "money:LO-HI" (dollar amounts: many zeros, a few
# losses when LO < 0, rounded to $10), "flag" (allocation flag, 0 or 1).
_GENERIC = """
DRAT      1-6          17  -   0.95
DRATX     1-2          17  -   0.85
GCL       1-2          30  -   0.05
GCM       1-5          30  -   0.97
GCR       1-2          30  -   0.97
HINS1     1-2          0   -   0
HINS2     1-2          0   -   0
HINS3     1-2          0   -   0
HINS4     1-2          0   -   0
HINS5     1-2          0   -   0
HINS6     1-2          0   -   0
HINS7     1-2          0   -   0
INTP      money:-10000-999999   15  -  0
JWMNP     num:1-200    16  -   0.45
JWRIP     1-10         16  -   0.5
JWTR      01-12        16  -   0.45
LANX      1-2          5   -   0
MARHD     1,2,8        15  -   0.35
MARHM     1-2          15  -   0.35
MARHT     1-3          15  -   0.35
MARHW     1-2          15  -   0.35
MARHYP    year:1937-2018    15  -  0.35
MIG       1-3          1   -   0
MLPA      0-1          17  -   0.9
MLPB      0-1          17  -   0.9
MLPCD     0-1          17  -   0.9
MLPE      0-1          17  -   0.9
MLPFG     0-1          17  -   0.9
MLPH      0-1          17  -   0.9
MLPI      0-1          17  -   0.9
MLPJ      0-1          17  -   0.9
MLPK      0-1          17  -   0.9
NWAB      1-3          16  -   0.2
NWAV      1-5          16  -   0.2
NWLA      1-3          16  -   0.2
NWLK      1-3          16  -   0.2
NWRE      1-3          16  -   0.2
OIP       money:4-999999    15  -  0
PAP       money:4-30000     15  -  0
RELP      00-17        0   -   0
RETP      money:4-999999    15  -  0
SCH       1-3          3   -   0
SCHG      01-16        3   -   0.7
SEMP      money:-10000-999999   15  -  0
SSIP      money:4-30000     15  -  0
SSP       money:4-50000     15  -  0
WAGP      money:4-999999    15  -  0
WKL       1-3          16  -   0
WKW       1-6          16  -   0.4
WRK       1-2          16  -   0.1
ANC       1,2,3,4,8    0   -   0
ANC2P     @ANC1P       0   -   0
DRIVESP   1-6          16  -   0.6
ESP       1-8          0   17  0.2
FOD1P     1100,1101,1102,1103,1301,2102,2407,3301,3600,5200,5501,6107,6203,6402   21  -  0.65
FOD2P     1100,1101,1102,1103,1301,2102,2407,3301,3600,5200,5501,6107,6203,6402   21  -  0.95
JWAP      001-285      16  -   0.5
JWDP      001-150      16  -   0.5
LANP      1200,1210,1220,1250,1350,1970,2000,2050,2560,4500,6300,9500   5  -  0.8
MIGPUMA   00001,00100,00200,00300,01000,03700,07500   1  -  0.85
MIGSP     001-056      1   -   0.85
MSP       1-6          15  -   0
NAICSP    111,112,1133,113M,23,3113,4411,44511,4481,5415,6111,622M,722Z,92MP,999920   16  -  0.35
NOP       1-8          0   17  0.2
OC        0-1          0   -   0.03
PAOC      1-4          16  -   0.5
PERNP     money:-10000-1999998  16  -  0
POVPIP    num:0-501    0   -   0.03
POWPUMA   00001,00100,00200,00300,01000,03700,07500   16  -  0.5
POWSP     001-056      16  -   0.5
PRIVCOV   1-2          0   -   0
PUBCOV    1-2          0   -   0
QTRBIR    1-4          0   -   0
RAC2P     01-68        0   -   0
RAC3P     001-100      0   -   0
RACAIAN   0-1          0   -   0
RACASN    0-1          0   -   0
RACBLK    0-1          0   -   0
RACNH     0-1          0   -   0
RACNUM    1-6          0   -   0
RACPI     0-1          0   -   0
RACSOR    0-1          0   -   0
RACWHT    0-1          0   -   0
RC        0-1          0   -   0.03
SCIENGP   1-2          21  -   0.65
SCIENGRLP 1-2          21  -   0.65
SFN       1-4          0   -   0.97
SFR       1-6          0   -   0.97
SOCP      1110XX,111021,112021,151252,252020,291141,352014,412031,436014,472061,533032,999920   16  -  0.35
VPS       01-15        17  -   0.9
FHINS3C   flag         0   -   0.8
FHINS4C   flag         0   -   0.9
FHINS5C   flag         0   -   0.95
"""

# Drawn jointly in person_chunk() (ages, work, income, difficulties and the
# like must agree), or derived from another column.
_JOINT = frozenset((
    "RT", "SERIALNO", "DIVISION", "SPORDER", "PUMA", "REGION", "ST", "ADJINC", "PWGTP", "AGEP",
    "CIT", "CITWP", "COW", "DDRS", "DEAR", "DEYE", "DOUT", "DPHY", "DREM", "ENG", "FER", "MAR", "MIL",
    "SCHL", "SEX", "WKHP", "YOEP", "ANC1P", "DECADE", "DIS", "ESR", "HICOV", "HISP", "INDP", "NATIVITY",
    "OCCP", "PINCP", "POBP", "RAC1P", "WAOB",
))  # fmt: skip


@dataclass(frozen=True)
class ColumnRule:
    name: str
    kind: str  # "codes", "year", "num", "money", "flag"
    codes: tuple[str, ...] = ()
    low: int = 0
    high: int = 0
    min_age: int = 0
    max_age: int = 200
    blank: float = 0.0


def _parse_rules(text: str) -> dict[str, ColumnRule]:
    rules: dict[str, ColumnRule] = {}
    for line in text.strip().splitlines():
        name, values, min_age, max_age, blank = line.split()
        common = {"min_age": int(min_age), "max_age": 200 if max_age == "-" else int(max_age), "blank": float(blank)}
        if values == "flag":
            rules[name] = ColumnRule(name, "flag", **common)
        elif values.startswith("@"):
            codes = tuple(sorted(embedded()[values[1:]].labels))
            rules[name] = ColumnRule(name, "codes", codes, **common)
        elif ":" in values:
            kind, span = values.split(":")
            low, high = re.fullmatch(r"(-?\d+)-(-?\d+)", span).groups()  # type: ignore[union-attr]
            rules[name] = ColumnRule(name, kind, low=int(low), high=int(high), **common)
        elif "," in values:
            rules[name] = ColumnRule(name, "codes", tuple(values.split(",")), **common)
        else:
            lo, hi = values.split("-")
            width = len(lo) if lo.startswith("0") and len(lo) > 1 else 0
            codes = tuple(str(i).zfill(width) for i in range(int(lo), int(hi) + 1))
            rules[name] = ColumnRule(name, "codes", codes, **common)
    for name in PERSON_COLUMNS:  # every other allocation flag, and the replicate weights
        if name not in rules and name not in _JOINT and name.startswith("F") and not name.startswith("FOD"):
            rules[name] = ColumnRule(name, "flag")
    return rules


RULES = _parse_rules(_GENERIC)
_UNCOVERED = [c for c in PERSON_COLUMNS if c not in RULES and c not in _JOINT and not c.startswith("PWGTP")]
assert not _UNCOVERED, f"no generator for {_UNCOVERED}"


# --------------------------------------------------------------------------- the synthetic file


def _codes(var: str, exclude: tuple[str, ...] = ()) -> list[str]:
    return [c for c in embedded()[var].labels if c not in exclude]


def _text(codes: list[str] | tuple[str, ...], idx: np.ndarray, blank: np.ndarray | None = None) -> pl.Series:
    """Codes picked by index as a String series; blank rows null (an empty field in the CSV)."""
    table = pl.Series(values=[*codes, None], dtype=pl.String)
    if blank is not None:
        idx = np.where(blank, len(codes), idx)
    return table.gather(idx.astype(np.int64, copy=False))


def _ints(values: np.ndarray, blank: np.ndarray | None = None) -> pl.Series:
    s = pl.Series(values=np.asarray(values, dtype=np.int64))
    return s if blank is None else s.set(pl.Series(values=blank), None)


def _pick(rng: np.random.Generator, n: int, probs: list[float]) -> np.ndarray:
    """Indices 0..len(probs)-1 drawn with the given (relative) probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    return rng.choice(p.size, size=n, p=p / p.sum())


def _money(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    zero = rng.random(n) < 0.5
    loss = (rng.random(n) < 0.02) & (low < 0)
    amount = np.clip(np.exp(rng.normal(np.log(15_000), 1.1, n)), max(low, 10), high)
    if low < 0:
        amount = np.where(loss, -rng.integers(4, -low + 1, n), amount)
    return np.where(zero, 0, np.round(amount / 10) * 10).astype(np.int64)


def _ages(rng: np.random.Generator, n: int, adult: np.ndarray) -> np.ndarray:
    """Ages 0..94: flat to 64, thinning after; householders and group-quarters persons are 18+."""
    ages = np.arange(95)
    p = np.where(ages < 65, 1.0, np.maximum(0.05, 1.0 - (ages - 64) / 32.0))
    a = rng.choice(95, size=n, p=p / p.sum())
    a_adult = rng.choice(np.arange(18, 95), size=n, p=p[18:] / p[18:].sum())
    return np.where(adult, a_adult, a).astype(np.int64)


def person_chunk(rng: np.random.Generator, n: int, first_serial: int, columns: tuple[str, ...]) -> tuple[pl.DataFrame, int, dict]:
    """``n`` person records with the real layout, their households numbered from ``first_serial``.

    Returns the frame, the next free serial number and the chunk's weighted
    counts of SEX and age bracket (the reference marginals).
    """
    out: dict[str, pl.Series] = {}

    # Households: 1 to 8 persons (SPORDER 01..); group quarters (one person per
    # SERIALNO) are 6% of the units, about 2.5% of the persons.
    m = n // 2 + 64
    gq = rng.random(m) < 0.06
    sizes = np.where(gq, 1, rng.choice(np.arange(1, 9), size=m, p=[0.28, 0.34, 0.16, 0.13, 0.06, 0.02, 0.007, 0.003]))
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, n)) + 1
    sizes, gq = sizes[:k].copy(), gq[:k]
    sizes[-1] -= int(cum[k - 1]) - n
    hh = np.repeat(np.arange(k), sizes)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(n) - start[hh]
    serial = pl.DataFrame({"k": np.where(gq, "GQ", "HU")[hh], "s": first_serial + hh}).select(
        pl.concat_str(pl.lit("2018"), pl.col("k"), pl.col("s").cast(pl.String).str.zfill(7))
    ).to_series()

    state_codes = _codes("ST", exclude=("72",))
    st = rng.integers(0, len(state_codes), k)[hh]
    division = rng.integers(1, 10, k)[hh]
    region = np.array([0, 1, 1, 2, 2, 3, 3, 3, 4, 4])[division]
    puma = (rng.integers(1, 40, k) * 100)[hh]

    age = _ages(rng, n, adult=(pos == 0))
    sex = rng.integers(1, 3, n)
    weight = np.clip(np.round(np.exp(rng.normal(np.log(80), 0.6, n))), 1, 9999).astype(np.int64)

    out["RT"] = _text(["P"], np.zeros(n, np.int64))
    out["SERIALNO"] = serial
    out["DIVISION"] = _text([str(i) for i in range(10)], division)
    out["SPORDER"] = _text([f"{i:02d}" for i in range(1, 21)], pos)
    out["PUMA"] = _text([f"{i:05d}" for i in range(0, 4000, 100)], puma // 100)
    out["REGION"] = _text([str(i) for i in range(5)], region)
    out["ST"] = _text(state_codes, st)
    out["ADJINC"] = _text(["1013097"], np.zeros(n, np.int64))
    out["PWGTP"] = _ints(weight)
    out["AGEP"] = _ints(age)
    out["SEX"] = _text(["1", "2"], sex - 1)

    # Race and origin.
    race = _pick(rng, n, [0.72, 0.125, 0.008, 0.0003, 0.002, 0.056, 0.002, 0.05, 0.035])  # RAC1P 1..9
    out["RAC1P"] = _text([str(i) for i in range(1, 10)], race)
    hisp_codes = _codes("HISP")
    hisp = np.where(rng.random(n) < 0.82, 0, np.where(rng.random(n) < 0.6, 1, rng.integers(2, len(hisp_codes), n)))
    out["HISP"] = _text(hisp_codes, hisp)
    anc = _codes("ANC1P")
    out["ANC1P"] = _text(anc, rng.integers(0, len(anc), n))

    # Nativity, citizenship, place of birth.
    cit = rng.choice(np.arange(1, 6), size=n, p=[0.86, 0.006, 0.01, 0.07, 0.054])
    out["CIT"] = _text(["1", "2", "3", "4", "5"], cit - 1)
    native = cit <= 3
    out["NATIVITY"] = _text(["1", "2"], np.where(native, 0, 1))
    pob_codes = _codes("POBP")
    us = [i for i, c in enumerate(pob_codes) if int(c) <= 56]
    island = [i for i, c in enumerate(pob_codes) if 60 <= int(c) <= 78]
    abroad = [i for i, c in enumerate(pob_codes) if int(c) >= 100]
    pob = np.where(cit == 1, rng.choice(us, n), np.where(cit == 2, rng.choice(island, n), rng.choice(abroad, n)))
    out["POBP"] = _text(pob_codes, pob)
    out["WAOB"] = _text([str(i) for i in range(1, 9)], np.where(cit == 1, 0, np.where(cit == 2, 1, rng.integers(2, 8, n))))
    born = 2018 - age
    arrived = np.minimum(2018, born + (rng.random(n) * (age + 1)).astype(np.int64))
    out["YOEP"] = _ints(np.maximum(arrived, 1929), blank=native)
    out["DECADE"] = _text([str(i) for i in range(1, 9)], np.clip((arrived - 1940) // 10, 0, 7), blank=native)
    out["CITWP"] = _ints(np.clip(arrived + rng.integers(5, 15, n), 1939, 2018), blank=cit != 4)

    # Schooling: by grade for children, no degree before 18, no graduate degree before 21.
    # SCHL 01..24 of adults: 16 = high school diploma, 21 = bachelor's degree, 22..24 graduate degrees.
    schl = 1 + _pick(rng, n, [0.3, 0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.5, 0.3, 0.4, 0.6, 1, 1.2, 1.5, 1.5,
                              22, 4, 3, 10, 8, 19, 8, 2, 1.4])
    by_grade = np.clip(age - 2, 1, 15)  # age 3 -> 01 (no schooling) ... 17 -> 15 (12th grade, no diploma)
    schl = np.where(age < 18, by_grade, schl)
    schl = np.where((age < 21) & (schl >= 22), 19, schl)
    out["SCHL"] = _text([f"{i:02d}" for i in range(1, 25)], schl - 1, blank=age < 3)

    # Work: ESR from 16, armed forces 17 to 64; COW, INDP, OCCP only for those who worked in the last 5 years.
    u = rng.random(n)
    working_age = (age >= 16) & (age <= 64)
    esr = np.where(working_age,
                   np.select([u < 0.70, u < 0.72, u < 0.76, u < 0.765], [1, 2, 3, 4], 6),
                   np.select([u < 0.18, u < 0.19], [1, 3], 6))
    esr = np.where((esr == 4) & (age < 17), 6, esr)
    worked = np.isin(esr, (1, 2, 4, 5)) | ((esr == 3) & (rng.random(n) < 0.9)) | ((esr == 6) & (rng.random(n) < 0.3))
    long_ago = (esr == 3) & ~worked
    no_job = (age < 16) | ~(worked | long_ago)
    out["ESR"] = _text([str(i) for i in range(1, 7)], esr - 1, blank=age < 16)
    cow = np.where(long_ago, 9, rng.choice(np.arange(1, 9), size=n, p=[0.67, 0.08, 0.06, 0.04, 0.03, 0.06, 0.055, 0.005]))
    out["COW"] = _text([str(i) for i in range(1, 10)], cow - 1, blank=no_job)
    for var in ("INDP", "OCCP"):
        codes = _codes(var)
        nine = codes.index("9920")
        other = [i for i in range(len(codes)) if i != nine]
        out[var] = _text(codes, np.where(long_ago, nine, rng.choice(other, n)), blank=no_job)
    hours = np.clip(np.round(rng.normal(40, 10, n)), 1, 99)
    out["WKHP"] = _ints(hours, blank=(age < 16) | ~worked)

    # Income: none before 15, small before 18.
    pincp = _money(rng, n, -19998, 4_209_995)
    pincp = np.where(pincp < 0, np.maximum(pincp, -19998), pincp)
    pincp = np.where(age < 18, np.minimum(np.abs(pincp), 9_000), pincp)
    pincp = np.where((pincp == 0) & (age >= 18) & (rng.random(n) < 0.8), 10 * rng.integers(100, 9_000, n), pincp)
    out["PINCP"] = _ints(pincp, blank=age < 15)

    # Marital status, military service, fertility, language.
    mar = np.where(age < 15, 5, rng.choice(np.arange(1, 6), size=n, p=[0.48, 0.06, 0.11, 0.02, 0.33]))
    out["MAR"] = _text(["1", "2", "3", "4", "5"], mar - 1)
    mil = rng.choice(np.arange(1, 5), size=n, p=[0.004, 0.07, 0.01, 0.916])
    out["MIL"] = _text(["1", "2", "3", "4"], mil - 1, blank=age < 17)
    out["FER"] = _text(["1", "2"], (rng.random(n) >= 0.06).astype(np.int64), blank=(sex == 1) | (age < 15) | (age > 50))
    out["ENG"] = _text(["1", "2", "3", "4"], rng.choice(4, size=n, p=[0.6, 0.2, 0.15, 0.05]), blank=(age < 5) | (rng.random(n) < 0.78))

    # Difficulties (1 = yes) and disability: DIS is 1 exactly when one of them is.
    risk = 0.01 + 0.002 * np.maximum(age - 40, 0)
    any_yes = np.zeros(n, dtype=bool)
    for var, min_age in (("DEAR", 0), ("DEYE", 0), ("DREM", 5), ("DDRS", 5), ("DPHY", 5), ("DOUT", 15)):
        yes = (rng.random(n) < risk) & (age >= min_age)
        any_yes |= yes
        out[var] = _text(["1", "2"], np.where(yes, 0, 1), blank=(age < min_age) if min_age else None)
    out["DIS"] = _text(["1", "2"], np.where(any_yes, 0, 1))
    out["HICOV"] = _text(["1", "2"], (rng.random(n) >= 0.91).astype(np.int64))

    # Everything else from the layout table.
    for name, rule in RULES.items():
        if name not in columns:
            continue
        blank = (age < rule.min_age) | (age > rule.max_age)
        if rule.blank:
            blank |= rng.random(n) < rule.blank
        if rule.kind == "flag":
            out[name] = _text(["0", "1"], (rng.random(n) < 0.03).astype(np.int64), blank=blank if rule.blank else None)
        elif rule.kind == "codes":
            out[name] = _text(rule.codes, rng.integers(0, len(rule.codes), n), blank=blank if blank.any() else None)
        elif rule.kind in ("year", "num"):
            out[name] = _ints(rng.integers(rule.low, rule.high + 1, n), blank=blank)
        elif rule.kind == "money":
            out[name] = _ints(_money(rng, n, rule.low, rule.high), blank=blank)
        else:  # pragma: no cover - the table is checked at import
            raise ValueError(rule.kind)

    # Replicate weights: the person weight times a factor in [0, 2), rounded.
    for i in range(1, 81):
        name = f"PWGTP{i}"
        if name in columns:
            out[name] = _ints(np.round(weight * rng.random(n) * 2.0))

    missing = [c for c in columns if c not in out]
    if missing:
        raise ValueError(f"no generator for columns {missing}")
    frame = pl.DataFrame([out[c].alias(c) for c in columns])

    bracket = np.searchsorted(np.array(AGE_EDGES), age, side="right")
    marg = {
        "sex": np.bincount(sex - 1, weights=weight, minlength=2).tolist(),
        "age": np.bincount(bracket, weights=weight, minlength=len(AGE_LABELS)).tolist(),
        "weight": float(weight.sum()),
    }
    return frame, first_serial + k, marg


def child_generate(path: str, rows: int, columns: list[str]) -> dict[str, Any]:
    """Writes the synthetic CSV (to a temporary name, renamed when complete) and returns its metadata."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    rng = np.random.default_rng(SEED)
    sex = np.zeros(2)
    age = np.zeros(len(AGE_LABELS))
    total = 0.0
    serial = 1
    t0 = time.perf_counter()
    try:
        with open(tmp, "wb") as fh:
            done = 0
            while done < rows:
                n = min(CHUNK_ROWS, rows - done)
                frame, serial, marg = person_chunk(rng, n, serial, tuple(columns))
                frame.write_csv(fh, include_header=done == 0)
                sex += marg["sex"]
                age += marg["age"]
                total += marg["weight"]
                done += n
                del frame
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {
        "version": DATA_VERSION,
        "rows": rows,
        "columns": len(columns),
        "bytes": target.stat().st_size,
        "seconds": time.perf_counter() - t0,
        "peak_rss": _peak_rss(),
        # Weighted shares of the whole file, counted while writing it: the
        # reference the samples are checked against (no CSV reader involved).
        "reference": {
            "sex": {"Male": sex[0] / total, "Female": sex[1] / total},
            "age": {label: a / total for label, a in zip(AGE_LABELS, age)},
            "total_weight": total,
        },
    }


# --------------------------------------------------------------------------- measurement helpers


def _peak_rss() -> int:
    """Peak resident set size of this process, in bytes.

    ``VmHWM`` from /proc/self/status where it exists: it belongs to this
    process's own address space. ``ru_maxrss`` is the fallback; on Linux it
    can carry over the parent's peak through fork and exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _timed(module: Any, name: str, stages: dict[str, float]) -> None:
    """Wraps ``module.name`` so each call adds its wall time to ``stages[name]``."""
    fn = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0

    setattr(module, name, wrapper)


def _check_rows(rows: int) -> np.ndarray:
    """The file rows whose decoded values both pipelines report: 1,000 evenly spaced, 1,000 at random."""
    even = np.linspace(0, rows - 1, min(rows, 1000)).astype(np.int64)
    rand = np.random.default_rng(SEED + 1).integers(0, rows, min(rows, 1000))
    return np.unique(np.concatenate([even, rand]))


def _shares(sex: pl.Series, age: pl.Series) -> dict[str, dict[str, float]]:
    """Unweighted shares of sex and age bracket in a sample (every persona counts once)."""
    n = sex.len()
    sexes = {k: v / n for k, v in sex.value_counts().iter_rows()}
    bracket = np.searchsorted(np.array(AGE_EDGES), age.to_numpy(), side="right")
    counts = np.bincount(bracket, minlength=len(AGE_LABELS))
    return {"sex": sexes, "age": {label: c / n for label, c in zip(AGE_LABELS, counts.tolist())}}


# --------------------------------------------------------------------------- the children


def child_ours(path: str, personas: int, seed: int) -> dict[str, Any]:
    """persona_exp: source_frame (read, check, decode, derive), then the Rust weighted sample and the gather."""
    import persona_exp.population.build as B
    from persona_exp import stats
    from persona_exp.population.attributes import PERSON_VARIABLES

    stages: dict[str, float] = {}
    for name in ("read_pums", "unmapped_codes", "decode", "derive_census"):
        _timed(B, name, stages)
    gc.collect()
    rss_before = _peak_rss()
    t0 = time.perf_counter()
    pool, _ = B.source_frame(B.PopulationSpec(source="census", persons=path, size=personas))
    t1 = time.perf_counter()
    idx = stats.weighted_sample(pool["weight"].to_numpy(), personas, replace=True, seed=seed)
    t2 = time.perf_counter()
    sample = pool[idx]
    t3 = time.perf_counter()
    out: dict[str, Any] = {"seconds": t3 - t0, "peak_rss": _peak_rss(), "rss_before": rss_before}
    stages["source_frame, other"] = (t1 - t0) - sum(stages.values())
    stages["weighted_sample"] = t2 - t1
    stages["gather"] = t3 - t2
    out["stages"] = stages
    out["pool_rows"] = pool.height
    out["sample_rows"] = sample.height
    out["person_variables"] = list(PERSON_VARIABLES)
    out["shares"] = _shares(sample["sex"], sample["age"])
    rows = _check_rows(pool.height)
    picked = pool[rows]
    out["check"] = {
        "rows": rows.tolist(),
        "sex": picked["sex"].to_list(),
        "state": picked["state"].to_list(),
        "ancestry": picked["ancestry"].to_list(),
        "place_of_birth": picked["place_of_birth"].to_list(),
        "occupation": picked["_occupation_raw"].to_list(),
        "age": picked["age"].to_list(),
        "weight": picked["weight"].to_list(),
    }
    out["counts"] = {
        "ancestry": dict(pool["ancestry"].value_counts().iter_rows()),
        "sex": dict(pool["sex"].value_counts().iter_rows()),
    }
    return out


def child_build(path: str, personas: int, seed: int) -> dict[str, Any]:
    """persona_exp: the whole build_population, with a breakdown of where the time goes."""
    import persona_exp.population.build as B

    stages: dict[str, float] = {}
    top = ("source_frame", "apply_filters", "_draw", "representativeness", "_enrich", "population_key")
    for name in (*top, "read_pums", "unmapped_codes", "decode", "derive_census"):
        _timed(B, name, stages)
    gc.collect()
    rss_before = _peak_rss()
    t0 = time.perf_counter()
    pop = B.build_population(B.PopulationSpec(source="census", persons=path, size=personas), seed=seed)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": seconds, "peak_rss": _peak_rss(), "rss_before": rss_before}
    stages["build_population, other"] = seconds - sum(stages.get(n, 0.0) for n in top)
    out["stages"] = stages
    out["size"] = pop.frame.height
    out["columns"] = pop.frame.width
    out["unique_ids"] = pop.frame["persona_id"].n_unique()
    out["key"] = pop.key
    out["drawn"] = pop.report["drawn"]
    out["rounds"] = pop.report["draw_rounds"]
    out["rejected"] = sum(pop.report["rejected"].values())
    out["source_rows"] = pop.report["source_rows"]
    out["shares"] = _shares(pop.frame["sex"], pop.frame["age"])
    return out


def _dictionary_tables() -> dict[str, tuple[dict[str, str], str | None]]:
    """``{variable: ({code: label}, blank label)}`` from the package's code-table file, read with json."""
    raw = json.loads(resources.files("persona_exp.census").joinpath("codes_2018.json").read_text(encoding="utf-8"))
    tables: dict[str, tuple[dict[str, str], str | None]] = {}
    for name, spec in raw["variables"].items():
        labels: dict[str, str] = {}
        blank = None
        for row in spec["values"]:
            if len(row) != 2:
                continue  # a range: not a single code
            code, label = row
            if set(code) == {"b"}:
                blank = label
            else:
                labels[code] = label
        tables[name] = (labels, blank)
    return tables


def child_base(path: str, personas: int, seed: int) -> dict[str, Any]:
    """The plain pipeline: read_csv of the needed columns, replace_strict with the code tables, numpy choice."""
    stages: dict[str, float] = {}
    gc.collect()
    rss_before = _peak_rss()
    t0 = time.perf_counter()
    tables = _dictionary_tables()
    columns = ["PWGTP", *NEEDED]
    frame = pl.read_csv(
        path,
        columns=columns,
        infer_schema=False,  # codes stay text: SCHL "01" must not become 1
        schema_overrides={c: pl.Int64 for c in NUMERIC},
    )
    # read_csv hands back one chunk per few thousand rows (about 1,000 per
    # column here); a row gather across that many chunks is several times
    # slower than the rechunk plus a gather from one chunk.
    frame = frame.rechunk()
    t1 = time.perf_counter()
    decoded = frame.with_columns(
        # replace_strict raises on a code without a label; a blank (null) gets the blank label.
        pl.col(c).replace_strict(tables[c][0], return_dtype=pl.String).fill_null(pl.lit(tables[c][1], dtype=pl.String))
        for c in NEEDED
        if c not in NUMERIC
    )
    t2 = time.perf_counter()
    w = decoded["PWGTP"].to_numpy().astype(np.float64)
    idx = np.random.default_rng(seed).choice(w.size, size=personas, replace=True, p=w / w.sum())
    t3 = time.perf_counter()
    sample = decoded[idx]
    t4 = time.perf_counter()
    stages.update({"read_csv + rechunk": t1 - t0, "replace_strict": t2 - t1, "rng.choice": t3 - t2, "gather": t4 - t3})
    out: dict[str, Any] = {"seconds": t4 - t0, "peak_rss": _peak_rss(), "rss_before": rss_before, "stages": stages}
    out["pool_rows"] = decoded.height
    out["sample_rows"] = sample.height
    out["shares"] = _shares(sample["SEX"], sample["AGEP"])
    rows = _check_rows(decoded.height)
    picked = decoded[rows]
    out["check"] = {
        "rows": rows.tolist(),
        "sex": picked["SEX"].to_list(),
        "state": picked["ST"].to_list(),
        "ancestry": picked["ANC1P"].to_list(),
        "place_of_birth": picked["POBP"].to_list(),
        "occupation": picked["OCCP"].to_list(),
        "age": picked["AGEP"].to_list(),
        "weight": picked["PWGTP"].cast(pl.Float64).to_list(),
    }
    out["counts"] = {
        "ancestry": dict(decoded["ANC1P"].value_counts().iter_rows()),
        "sex": dict(decoded["SEX"].value_counts().iter_rows()),
    }
    return out


def run_child(args: list[str], timeout: float = 3600) -> dict[str, Any]:
    """Runs this script as a child process and returns the JSON it prints on its RESULT line."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# --------------------------------------------------------------------------- the data file


def layout(header_file: str | None) -> tuple[list[str], str]:
    """The column layout: the header of a real person file when one is given, else the list above."""
    if header_file:
        if os.path.isfile(header_file):
            return file_columns(header_file, "person"), f"header of {header_file}"
        print(f"  note: {header_file} does not exist; using the built-in 2018 layout", flush=True)
    return list(PERSON_COLUMNS), "built-in 2018 person-file layout"


def prepare_file(rows: int, columns: list[str], workdir: Path, regenerate: bool) -> dict[str, Any]:
    """The cached synthetic file and its metadata, generated (in a child process) when absent or stale."""
    digest = hashlib.sha1(",".join(columns).encode()).hexdigest()[:8]
    folder = workdir / f"{DATA_VERSION}-{rows}-{digest}"
    path = folder / "psam_pus.csv"
    meta_path = folder / "meta.json"
    meta: dict[str, Any] | None = None
    if not regenerate and meta_path.is_file() and path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError:
            meta = None
        if meta and (meta.get("version") != DATA_VERSION or meta.get("rows") != rows or meta.get("bytes") != path.stat().st_size):
            meta = None
    if meta is not None:
        meta["cached"] = True
        meta["path"] = str(path)
        print(f"  using the cached file {path} ({meta['bytes'] / 1e9:.2f} GB; generated in {meta['seconds']:.1f} s)", flush=True)
        return meta
    shutil.rmtree(folder, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    need = rows * BYTES_PER_ROW * 1.2
    free = shutil.disk_usage(workdir).free
    if free < need:
        raise RuntimeError(f"{workdir} has {free / 1e9:.1f} GB free; the synthetic file needs about {need / 1e9:.1f} GB "
                           f"(use --workdir or ${CACHE_ENV} to put it elsewhere, or fewer --rows)")
    print(f"  generating {rows:,} rows x {len(columns)} columns into {path} (about {rows * BYTES_PER_ROW / 1e9:.1f} GB)...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    cols_file = folder / "columns.json"
    cols_file.write_text(json.dumps(columns), encoding="utf-8")
    meta = run_child(["--_child", "generate", "--path", str(path), "--rows", str(rows), "--columns-file", str(cols_file)])
    meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    meta["cached"] = False
    meta["path"] = str(path)
    print(f"  generated in {meta['seconds']:.1f} s: {meta['bytes'] / 1e9:.2f} GB ({meta['bytes'] / rows:.0f} bytes per row), "
          f"generator peak RSS {gb(meta['peak_rss'])}", flush=True)
    return meta


def warm_page_cache(path: str) -> tuple[float, int]:
    """Reads the file once (16 MB blocks) so both pipelines read it from the page cache."""
    t0 = time.perf_counter()
    total = 0
    with open(path, "rb", buffering=0) as fh:
        while True:
            block = fh.read(16 << 20)
            if not block:
                break
            total += len(block)
    return time.perf_counter() - t0, total


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    case: str
    unit: str  # "s" or "bytes"
    ours: float | None
    baseline: str
    baseline_value: float | None
    target_kind: str  # "max_ratio": ours/base <= target; "info": no target
    target: float
    note: str = ""
    ratio: float | None = None
    passed: bool | None = None

    def __post_init__(self) -> None:
        if self.ours is not None and self.baseline_value:
            self.ratio = self.ours / self.baseline_value
        if self.target_kind == "max_ratio" and self.ratio is not None:
            self.passed = self.ratio <= self.target

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "-"
        if self.unit == "s":
            return f"{value:.2f} s" if value >= 1 else f"{value * 1e3:.0f} ms"
        return f"{value / 1e9:.2f} GB" if value >= 1e9 else f"{value / 1e6:.0f} MB"

    def ratio_text(self) -> str:
        return "-" if self.ratio is None else f"ours/base {self.ratio:.2f}x"

    def target_text(self) -> str:
        return f"ours <= {self.target:g}x base" if self.target_kind == "max_ratio" else "none (report)"

    def result_text(self) -> str:
        if self.target_kind == "info":
            return "INFO"
        return "SKIP" if self.passed is None else ("PASS" if self.passed else "MISS")


def gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def tv_distance(p: dict[str, float], q: dict[str, float]) -> float:
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def tv_tolerance(ref: dict[str, float], n: int) -> float:
    """Five times the expected TV distance of an n-draw sample from ``ref`` (about 0.4 * sum of the SEs)."""
    return 5 * 0.4 * sum(np.sqrt(p * (1 - p) / n) for p in ref.values())


def _strip_state(label: str | None) -> str | None:
    """'Wyoming/WY' -> 'Wyoming' (the library's display form of the dictionary's state labels)."""
    if label is None:
        return None
    return label[:-3] if len(label) > 3 and label[-3] == "/" and label[-2:].isupper() else label


def check_marginals(rep: Report, who: str, shares: dict[str, dict[str, float]], reference: dict[str, Any], n: int) -> None:
    for what in ("sex", "age"):
        ref = reference[what]
        tv = tv_distance(shares[what], ref)
        tol = tv_tolerance(ref, n)
        rep.check(f"{who}: {what} shares of the sample ~ weighted shares of the file", tv <= tol,
                  f"TV distance {tv:.4f} (tolerance {tol:.4f} for {n:,} draws)")


def stage_text(stages: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())


def bench_read_sample(rep: Report, path: str, meta: dict[str, Any], personas: int, repeats: int, seed: int) -> dict[str, Any]:
    rows = meta["rows"]
    print(f"\n[read + decode + sample] {rows:,} rows x {meta['columns']} columns -> {personas:,} personas", flush=True)
    best: dict[str, dict[str, Any]] = {}
    peaks: dict[str, int] = {}
    for r in range(repeats):
        order = ("ours", "base") if r % 2 == 0 else ("base", "ours")
        for side in order:
            res = run_child(["--_child", side, "--path", path, "--personas", str(personas), "--seed", str(seed)])
            print(f"    repeat {r + 1} {side:4s}: {res['seconds']:.2f} s, peak RSS {gb(res['peak_rss'])} "
                  f"(after imports {gb(res['rss_before'])}); {stage_text(res['stages'])}", flush=True)
            if side not in best or res["seconds"] < best[side]["seconds"]:
                best[side] = res
            peaks[side] = min(peaks.get(side, res["peak_rss"]), res["peak_rss"])
    ours, base = best["ours"], best["base"]
    label = f"read+decode+sample {rows / 1e6:g}e6 -> {personas:,}"
    baseline = "pl.read_csv + rechunk + replace_strict + rng.choice"
    rep.row(f"{label}: time", "s", ours["seconds"], baseline, base["seconds"], "max_ratio", 1.5)
    rep.row(f"{label}: peak RSS", "bytes", peaks["ours"], baseline, peaks["base"], "max_ratio", 1.5)

    rep.check("ours read every row and drew every persona", ours["pool_rows"] == rows and ours["sample_rows"] == personas,
              f"pool {ours['pool_rows']:,} rows, sample {ours['sample_rows']:,}")
    rep.check("baseline read every row and drew every persona", base["pool_rows"] == rows and base["sample_rows"] == personas,
              f"pool {base['pool_rows']:,} rows, sample {base['sample_rows']:,}")
    rep.check("both read the same person variables", tuple(ours["person_variables"]) == NEEDED,
              f"persona_exp reads {len(ours['person_variables'])} variables; the baseline {len(NEEDED)}")
    check_marginals(rep, "ours", ours["shares"], meta["reference"], personas)
    check_marginals(rep, "baseline", base["shares"], meta["reference"], personas)

    a, b = ours["check"], base["check"]
    same_rows = a["rows"] == b["rows"]
    pairs = {
        "sex": (a["sex"], b["sex"]),
        "state": (a["state"], [_strip_state(x) for x in b["state"]]),
        "ancestry": (a["ancestry"], b["ancestry"]),
        "place of birth": (a["place_of_birth"], [_strip_state(x) for x in b["place_of_birth"]]),
        "occupation (dictionary label)": (a["occupation"], b["occupation"]),
        "age": (a["age"], b["age"]),
        "weight": (a["weight"], b["weight"]),
    }
    diffs = {k: sum(x != y for x, y in zip(u, v)) + abs(len(u) - len(v)) for k, (u, v) in pairs.items()}
    rep.check("ours and baseline decode the same labels on the same file rows", same_rows and not any(diffs.values()),
              f"{len(a['rows']):,} rows, {len(pairs)} columns; differing values: " + ", ".join(f"{k} {v}" for k, v in diffs.items()))
    rep.check("ours and baseline count the same ancestry and sex labels over the whole file",
              ours["counts"] == base["counts"],
              f"{len(ours['counts']['ancestry'])} ancestry labels, sex {ours['counts']['sex']}")
    rep.notes.append("read+decode+sample: ours reads SERIALNO and SPORDER too (read_pums always does), 26 columns; "
                     "the baseline reads PWGTP and the 23 variables; ours samples with "
                     f"persona_exp.stats.weighted_sample(replace=True, seed={seed}), as build_population's draw does")
    rep.notes.append(f"read+decode+sample, ours: {stage_text(ours['stages'])}")
    rep.notes.append(f"read+decode+sample, baseline: {stage_text(base['stages'])}")
    return {"seconds": base["seconds"], "peak_rss": peaks["base"]}


def bench_build(rep: Report, path: str, meta: dict[str, Any], personas: int, seed: int, base: dict[str, Any] | None) -> None:
    print(f"\n[full build_population] {meta['rows']:,} rows -> {personas:,} personas (consistency rules, enrichment, key)", flush=True)
    res = run_child(["--_child", "build", "--path", path, "--personas", str(personas), "--seed", str(seed)])
    print(f"    build_population {res['seconds']:.2f} s, peak RSS {gb(res['peak_rss'])}; {stage_text(res['stages'])}", flush=True)
    label = f"full build_population {meta['rows'] / 1e6:g}e6 -> {personas:,}"
    baseline = "(same plain pipeline as above)"
    rep.row(f"{label}: time", "s", res["seconds"], baseline, base["seconds"] if base else None, "info", 0)
    rep.row(f"{label}: peak RSS", "bytes", res["peak_rss"], baseline, base["peak_rss"] if base else None, "info", 0)
    rep.check("build_population: size personas with distinct ids", res["size"] == personas and res["unique_ids"] == personas,
              f"{res['size']:,} rows, {res['unique_ids']:,} ids, {res['columns']} columns, source {res['source_rows']:,} rows")
    rep.check("build_population: consistency rules rejected under 1% of the draws", res["rejected"] <= 0.01 * res["drawn"],
              f"drawn {res['drawn']:,} in {res['rounds']} round(s), rejected {res['rejected']:,}")
    check_marginals(rep, "build_population", res["shares"], meta["reference"], personas)
    rep.notes.append(f"full build_population: {stage_text(res['stages'])} (read_pums, unmapped_codes, decode and "
                     "derive_census are inside source_frame)")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(args: argparse.Namespace) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "persona_exp": getattr(persona_exp, "__version__", "unknown"),
        "polars": pl.__version__,
        "numpy": np.__version__,
        "rows": args.rows,
        "personas": args.personas,
        "repeats": args.repeats,
        "thread_env": {k: os.environ[k] for k in ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ},
    }
    if hasattr(os, "getloadavg"):
        env["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            env["mem_total_gb"] = round(int(fh.readline().split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    return env


def print_env(env: dict[str, Any]) -> None:
    print("persona_exp census benchmark")
    print(f"  persona_exp {env['persona_exp']} | polars {env['polars']} | numpy {env['numpy']}")
    print(f"  python {env['python']} on {env['platform']}")
    print(f"  cores: {env['cpu_count']} (usable by this process: {env['usable_cores']})" +
          (f", memory {env['mem_total_gb']} GB" if "mem_total_gb" in env else ""))
    if env["thread_env"]:
        print(f"  thread settings: {env['thread_env']}")
    if "loadavg_at_start" in env:
        one, five, fifteen = env["loadavg_at_start"]
        warn = "  (busy machine: timings may be noisy)" if one > 1.5 else ""
        print(f"  load average at start: {one} / {five} / {fifteen} (1 / 5 / 15 min){warn}")
    print(f"  scale: {env['rows']:,} rows -> {env['personas']:,} personas, best of {env['repeats']} repeat(s) per side")


def print_table(rows: list[Row]) -> None:
    headers = ("case", "ours", "baseline", "baseline value", "ratio", "target", "result")
    _print_table(headers, [(r.case, r.fmt(r.ours), r.baseline, r.fmt(r.baseline_value), r.ratio_text(), r.target_text(), r.result_text()) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows of the synthetic person file (default 3,000,000)")
    parser.add_argument("--personas", type=int, default=1_000_000, help="personas to draw (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side of read+decode+sample, alternating, best kept (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    parser.add_argument("--no-build", action="store_true", help="skip the full build_population case")
    parser.add_argument("--header-file", default=os.environ.get(HEADER_ENV),
                        help=f"a real PUMS person file (csv or the Bureau's zip) whose header gives the column layout "
                             f"(default ${HEADER_ENV}; without it the built-in 2018 layout is used)")
    parser.add_argument("--workdir", default=os.environ.get(CACHE_ENV),
                        help=f"where the synthetic file is cached (default ${CACHE_ENV}, else <tmp>/persona-exp-bench-census)")
    parser.add_argument("--regenerate", action="store_true", help="write the synthetic file again even if a cached one exists")
    parser.add_argument("--clean", action="store_true", help="delete the synthetic file at the end (it is kept by default)")
    parser.add_argument("--json", metavar="PATH", help="write the environment, rows, checks and notes as JSON")
    parser.add_argument("--_child", choices=("generate", "ours", "build", "base"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--columns-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        if args._child == "generate":
            columns = json.loads(Path(args.columns_file).read_text(encoding="utf-8"))
            out = child_generate(args.path, args.rows, columns)
        else:
            fn = {"ours": child_ours, "build": child_build, "base": child_base}[args._child]
            out = fn(args.path, args.personas, args.seed)
        print("RESULT " + json.dumps(out), flush=True)
        return 0

    if args.rows < 1000 or args.personas < 1:
        parser.error("--rows must be at least 1000 and --personas at least 1")
    args.repeats = max(1, args.repeats)
    env = environment(args)
    print_env(env)
    rep = Report(Row)
    t_start = time.perf_counter()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir()) / "persona-exp-bench-census"

    print("\n[synthetic person file]", flush=True)
    columns, where = layout(args.header_file)
    print(f"  layout: {len(columns)} columns ({where})", flush=True)
    if args.header_file and os.path.isfile(args.header_file):
        rep.check("built-in layout == the header of the real file", columns == list(PERSON_COLUMNS),
                  f"{len(columns)} columns in the file, {len(PERSON_COLUMNS)} built in" +
                  ("" if columns == list(PERSON_COLUMNS) else
                   f"; only in the file: {sorted(set(columns) - set(PERSON_COLUMNS))[:10]}, "
                   f"only built in: {sorted(set(PERSON_COLUMNS) - set(columns))[:10]}"))
    meta: dict[str, Any] | None = None
    try:
        meta = prepare_file(args.rows, columns, workdir, args.regenerate)
    except Exception as exc:
        rep.check("synthetic file written", False, f"{type(exc).__name__}: {exc}")
    if meta is not None:
        path = meta["path"]
        rep.check("synthetic file has the layout", file_columns(path, "person") == columns,
                  f"{len(columns)} columns, {meta['rows']:,} rows, {meta['bytes'] / 1e9:.2f} GB")
        seconds, size = warm_page_cache(path)
        print(f"  page cache warmed: read {size / 1e9:.2f} GB in {seconds:.1f} s ({size / 1e6 / seconds:,.0f} MB/s)", flush=True)
        rep.notes.append(f"file: {meta['rows']:,} rows x {meta['columns']} columns, {meta['bytes'] / 1e9:.2f} GB of CSV "
                         f"({meta['bytes'] / meta['rows']:.0f} bytes per row), "
                         + (f"cached ({DATA_VERSION})" if meta["cached"] else f"generated in {meta['seconds']:.1f} s")
                         + f"; read once before timing ({seconds:.1f} s), so both sides read it from the page cache")

        base: dict[str, Any] | None = None

        def case_read() -> None:
            nonlocal base
            base = bench_read_sample(rep, path, meta, args.personas, args.repeats, args.seed)

        cases: list[tuple[str, Callable[[], None]]] = [("read+decode+sample", case_read)]
        if not args.no_build:
            cases.append(("full build_population", lambda: bench_build(rep, path, meta, args.personas, args.seed, base)))
        for name, run in cases:
            if hasattr(os, "getloadavg"):
                print(f"\n  (load average before {name}: {os.getloadavg()[0]:.2f})", end="", flush=True)
            try:
                run()
            except Exception as exc:  # one broken case must not hide the others
                rep.check(f"{name} ran", False, f"{type(exc).__name__}: {exc}")
        if args.clean:
            shutil.rmtree(Path(path).parent, ignore_errors=True)
            print(f"\n  deleted {Path(path).parent}", flush=True)
        else:
            rep.notes.append(f"the synthetic file is kept in {Path(path).parent} for the next run (--clean deletes it)")
    elapsed = time.perf_counter() - t_start

    print("\n")
    if rep.rows:
        print_table(rep.rows)
        print()
    notes = list(rep.notes)
    notes.append("peak RSS: VmHWM of each child process (one per pipeline and repeat), including the interpreter and imports")
    notes.append("ratio: ours/base; for time and memory smaller is better; INFO rows have no target (build_population does more "
                 "than the baseline: consistency rules, representativeness, enrichment, the content key)")
    return rep.finish(notes=notes, env=env, elapsed=elapsed, json_path=args.json, other="INFO")


if __name__ == "__main__":
    sys.exit(main())
