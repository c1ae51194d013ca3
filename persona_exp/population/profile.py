"""The embedded default population: real ACS PUMS person records calibrated to the nation.

``population: {source: census}`` without a PUMS file must work offline, so the
package ships a calibrated sample (``data/default_persons.parquet``): the
person records of twelve states of the 2018 ACS 1-year PUMS, reduced to the
raw codes the census attributes need, with a weight raked to published
national ACS tables. Real records keep the joint structure a set of
independent marginals loses (education with income, race with birthplace and
English ability...), and the default reads them through the same decoder as
any PUMS file (``build.source_frame``), so both speak one vocabulary.

This module holds the published control totals (:func:`census_profile`,
:func:`controls`: which record falls in which category of which table), the
loader of the shipped records (:func:`default_records`), the calibration
report (:func:`calibration_report`) and the joint-structure summary
(:func:`joint_structure`, Cramér's V of key attribute pairs). The sample is
built by :mod:`persona_exp.population.default_build` from the Bureau's files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

from persona_exp.census.dictionary import embedded
from persona_exp.errors import DataError
from persona_exp.population.attributes import (
    EDUCATION,
    EDUCATION_LEVELS,
    HISPANIC,
    PERSON_VARIABLES,
    RACE,
    _tidy_label,
)

__all__ = [
    "ABOUT_FILE",
    "DEFAULT_FILE",
    "EXTRA_VARIABLES",
    "JOINT_PAIRS",
    "Control",
    "calibration_report",
    "census_profile",
    "controls",
    "cramers_v",
    "default_about",
    "default_description",
    "default_records",
    "joint_structure",
]

_FILE = "census_profile.json"
DEFAULT_FILE = "default_persons.parquet"
ABOUT_FILE = "default_persons.json"
WEIGHT = "weight"  # the calibrated weight column of the shipped file (PWGTP keeps the Bureau's)
EXTRA_VARIABLES: dict[str, int] = {"LANP": 4}  # read for the language control only (not an attribute), with its code width
SPANISH = "1200"  # LANP code of Spanish (2018 PUMS)
ABILITIES = ("very well", "well", "not well", "not at all")  # ENG 1..4
FOREIGN_BORN = ("U.S. citizen by naturalization", "Not a U.S. citizen")


def _packaged(name: str) -> Any:
    return resources.files("persona_exp.population").joinpath("data").joinpath(name)


@lru_cache(maxsize=1)
def census_profile() -> dict[str, Any]:
    """The packaged published ACS counts (2017 1-year, United States), as a dict."""
    try:
        return json.loads(_packaged(_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # a broken install, not user input
        raise DataError(f"cannot read the packaged data file data/{_FILE}: {exc}") from exc


# --------------------------------------------------------------------------- control totals


@dataclass(frozen=True)
class Control:
    """One control margin: a published table's categories and counts, and
    which category each PUMS record (raw codes) falls in."""

    name: str
    table: str
    title: str
    labels: tuple[str, ...]
    targets: np.ndarray  # persons, as published (outside-universe remainder included)
    category: Callable[[pl.DataFrame], np.ndarray]  # raw records -> index into labels

    def categories(self, records: pl.DataFrame) -> np.ndarray:
        """Each record's category index (int64); every record must have one."""
        out = self.category(records)
        outside = np.flatnonzero(out < 0)
        if outside.size:
            raise DataError(
                f"control {self.name} ({self.table}): {outside.size} record(s) fall in none of its categories (first: row "
                f"{int(outside[0])}); their codes are outside what the table covers."
            )
        return out


def _band(age: pl.Expr, bands: Sequence[Sequence[int | None]]) -> pl.Expr:
    """Index of the age band (null outside every band)."""
    out = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.Int64))
    for i, (lo, hi) in enumerate(bands):
        inside = (age >= lo) if hi is None else age.is_between(lo, hi)
        out = out.when(inside).then(pl.lit(i, dtype=pl.Int64))
    return out.otherwise(pl.lit(None, dtype=pl.Int64))


def _band_label(band: Sequence[int | None]) -> str:
    return f"{band[0]} and over" if band[1] is None else f"{band[0]}-{band[1]}"


def _index(records: pl.DataFrame, expr: pl.Expr) -> np.ndarray:
    return records.select(expr.fill_null(-1).cast(pl.Int64)).to_series().to_numpy()


_MALE = pl.col("SEX") == "1"
_SEX = pl.when(_MALE).then(0).otherwise(1)
_AGE = pl.col("AGEP")
_SEXES = ("Male", "Female")


def _age_sex(p: dict) -> Control:
    t = p["age_sex"]
    bands = t["bands"]
    labels = tuple(f"{sex} {_band_label(b)}" for sex in _SEXES for b in bands)
    targets = np.array([*t["Male"], *t["Female"]], dtype=np.float64)
    return Control("age_sex", t["table"], "age x sex", labels, targets,
                   lambda r: _index(r, _SEX * len(bands) + _band(_AGE, bands)))


def _race(p: dict) -> Control:
    counts = p["race"]["counts"]
    names = list(counts)
    code = {c: names.index(label) for c, label in RACE.items()}
    expr = pl.when(pl.col("HISP") != "01").then(pl.lit(names.index(HISPANIC))).otherwise(
        pl.col("RAC1P").replace_strict(code, default=None, return_dtype=pl.Int64))
    return Control("race", p["race"]["table"], "race x Hispanic origin", tuple(names),
                   np.array(list(counts.values()), dtype=np.float64), lambda r: _index(r, expr))


def _total(p: dict) -> float:
    return float(sum(p["age_sex"]["Male"]) + sum(p["age_sex"]["Female"]))


def _education(p: dict) -> Control:
    t = p["education"]
    levels, bands = t["levels"], t["bands"]
    level = pl.col("SCHL").replace_strict({c: levels.index(EDUCATION_LEVELS[lab]) for c, lab in EDUCATION.items()},
                                          default=None, return_dtype=pl.Int64)
    cell = 1 + (_SEX * len(bands) + _band(_AGE, bands)) * len(levels) + level
    labels = ("under 18 (outside the table)",) + tuple(f"{sex} {_band_label(b)}: {lev}" for sex in _SEXES for b in bands for lev in levels)
    counts = np.array([np.ravel(t["Male"]), np.ravel(t["Female"])], dtype=np.float64).ravel()
    targets = np.concatenate([[_total(p) - counts.sum()], counts])
    return Control("education", t["table"], "educational attainment by age group and sex (18 and over)", labels, targets,
                   lambda r: _index(r, pl.when(_AGE < 18).then(0).otherwise(cell)))


def _employment(p: dict) -> Control:
    """B23001 with the armed forces counted among the employed: the seed's few
    armed-forces records cannot meet each age band's count (some bands have
    none), so the control keeps employed / unemployed / not in labor force."""
    t = p["employment"]
    bands = t["bands"]
    kinds = ("employed (armed forces included)", "unemployed", "not in labor force")
    status = pl.col("ESR").replace_strict({"1": 0, "2": 0, "4": 0, "5": 0, "3": 1, "6": 2}, default=None, return_dtype=pl.Int64)
    cell = 1 + (_SEX * len(bands) + _band(_AGE, bands)) * len(kinds) + status

    def fold(rows: list) -> np.ndarray:
        a = np.asarray(rows, dtype=np.float64)
        return np.stack([a[:, 0] + a[:, 1], a[:, 2], a[:, 3]], axis=1).ravel()

    counts = np.concatenate([fold(t["Male"]), fold(t["Female"])])
    labels = ("under 16 (outside the table)",) + tuple(f"{sex} {_band_label(b)}: {k}" for sex in _SEXES for b in bands for k in kinds)
    return Control("employment", t["table"], "employment status by age and sex (16 and over)", labels,
                   np.concatenate([[_total(p) - counts.sum()], counts]),
                   lambda r: _index(r, pl.when(_AGE < 16).then(0).otherwise(cell)))


def _nativity(p: dict) -> Control:
    t = p["citizenship"]
    bands, kinds = t["bands"], t["categories"]
    status = pl.col("CIT").replace_strict({"1": 0, "2": 0, "3": 0, "4": 1, "5": 2}, default=None, return_dtype=pl.Int64)
    labels = tuple(f"{sex} {_band_label(b)}: {k}" for sex in _SEXES for b in bands for k in kinds)
    targets = np.array([np.ravel(t["Male"]), np.ravel(t["Female"])], dtype=np.float64).ravel()
    return Control("nativity", t["table"], "nativity and citizenship by age and sex", labels, targets,
                   lambda r: _index(r, (_SEX * len(bands) + _band(_AGE, bands)) * len(kinds) + status))


def _language(p: dict) -> Control:
    """B16004 with its three non-Spanish language groups added up: PUMS gives
    the detailed language (LANP), and the Bureau's grouping of those codes is
    not part of the embedded tables, while Spanish is one code."""
    t = p["language"]
    bands = t["bands"]
    kinds = ("speaks only English", *(f"Spanish, English {a}" for a in ABILITIES), *(f"other language, English {a}" for a in ABILITIES))
    ability = pl.col("ENG").cast(pl.Int64, strict=False) - 1
    within = (pl.when(pl.col("ENG").is_null()).then(0)
              .when(pl.col("LANP") == SPANISH).then(1 + ability)
              .otherwise(1 + len(ABILITIES) + ability))
    cell = 1 + _band(_AGE, bands) * len(kinds) + within
    counts = []
    for groups in t["groups"]:
        other = np.sum([v for g, v in groups.items() if g not in ("English only", "Spanish")], axis=0)
        counts += [groups["English only"][0], *groups["Spanish"], *other]
    counts = np.asarray(counts, dtype=np.float64)
    labels = ("under 5 (outside the table)",) + tuple(f"{_band_label(b)}: {k}" for b in bands for k in kinds)
    return Control("language", t["table"], "language spoken at home by ability to speak English, by age (5 and over)", labels,
                   np.concatenate([[_total(p) - counts.sum()], counts]),
                   lambda r: _index(r, pl.when(_AGE < 5).then(0).otherwise(cell)))


@lru_cache(maxsize=1)
def controls() -> tuple[Control, ...]:
    """The control margins the default is raked to, in raking order."""
    p = census_profile()
    return (_age_sex(p), _race(p), _education(p), _employment(p), _nativity(p), _language(p))


# World region of birth of the foreign born (DP02): reported as a check, not
# controlled (see data/README.md). PUMS POBP code blocks; people born in the
# U.S. island areas of the Pacific count with Oceania, Puerto Rico and the
# U.S. Virgin Islands with Latin America.
def _world_region(pob: pl.Expr) -> pl.Expr:
    code = pob.cast(pl.Int64, strict=False)
    return (pl.when(code.is_in([60, 66, 69])).then(pl.lit("Oceania"))
            .when(code.is_in([72, 78])).then(pl.lit("Latin America"))
            .when(code < 100).then(pl.lit(None, dtype=pl.String))
            .when(code < 200).then(pl.lit("Europe"))
            .when(code < 300).then(pl.lit("Asia"))
            .when(code <= 301).then(pl.lit("Northern America"))
            .when(code < 400).then(pl.lit("Latin America"))
            .when(code < 500).then(pl.lit("Africa"))
            .otherwise(pl.lit("Oceania")))


# --------------------------------------------------------------------------- the shipped records


@lru_cache(maxsize=1)
def _shipped() -> pl.DataFrame:
    resource = _packaged(DEFAULT_FILE)
    try:
        with resources.as_file(resource) as path:
            return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:  # a broken install, not user input
        raise DataError(
            f"cannot read the packaged default population data/{DEFAULT_FILE} ({exc}); rebuild it with "
            "`python -m persona_exp.population.default_build ../shared/data` or reinstall the package."
        ) from exc


@lru_cache(maxsize=1)
def default_about() -> dict[str, Any]:
    """The build record of the shipped sample: seed files, controls, raking result, census V."""
    try:
        return json.loads(_packaged(ABOUT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the packaged data file data/{ABOUT_FILE}: {exc}") from exc


def as_pums_codes(frame: pl.DataFrame) -> pl.DataFrame:
    """Compact code columns back to what ``read_pums`` gives: character codes
    as zero-padded text (blanks null), numeric variables as Int64."""
    codes = embedded()
    out = []
    for name in frame.columns:
        var = codes.get(name)
        col = pl.col(name)
        if name in EXTRA_VARIABLES:
            out.append(col.cast(pl.String).str.zfill(EXTRA_VARIABLES[name]))
        elif name == WEIGHT or var is None:
            out.append(col)
        elif var.numeric:
            out.append(col.cast(pl.Int64))
        else:
            out.append(col.cast(pl.String).str.zfill(var.width))
    return frame.select(out)


@lru_cache(maxsize=1)
def default_records() -> pl.DataFrame:
    """The shipped records as PUMS person records (codes exactly as a PUMS file
    is read), with ``PWGTP`` holding the calibrated national weight and the
    Bureau's own weight kept as ``PWGTP_2018``."""
    shipped = _shipped()
    missing = [c for c in (*PERSON_VARIABLES, *EXTRA_VARIABLES, "PWGTP", WEIGHT) if c not in shipped.columns]
    if missing:
        raise DataError(
            f"the packaged default population data/{DEFAULT_FILE} lacks column(s) {', '.join(missing)}; rebuild it with "
            "`python -m persona_exp.population.default_build ../shared/data`."
        )
    records = as_pums_codes(shipped)
    return records.rename({"PWGTP": "PWGTP_2018"}).with_columns(pl.col(WEIGHT).cast(pl.Float64).alias("PWGTP")).drop(WEIGHT)


# --------------------------------------------------------------------------- joint structure


@lru_cache(maxsize=1)
def _occupation_groups() -> dict[str, str]:
    """Detailed occupation (as the attribute shows it) -> its OCCP group prefix ("MGR", "EDU"...).
    The Bureau's list has two labels without a prefix (1555, 8000); codes run
    in group order, so they take the group of the code before them."""
    labels = embedded()["OCCP"].labels
    names, groups, group = [], [], None
    for code in sorted(c for c in labels if c.isdigit() and c != "9920"):
        label = labels[code]
        if label[:3].isupper() and label[3:4] == "-":
            group = label[:3]
        names.append(label)
        groups.append(group)
    tidy = pl.DataFrame({"l": names}).select(_tidy_label(pl.col("l"))).to_series().to_list()
    return dict(zip(tidy, groups))


def _income_band(income: pl.Expr) -> pl.Expr:
    """The ``income`` attribute text ("$45,300", "No income", "Loss of $1,200") as a band."""
    amount = income.str.replace_all(r"[$,]", "").str.replace("Loss of ", "-").cast(pl.Int64, strict=False)
    return (pl.when(income == "No income").then(pl.lit("none or loss"))
            .when(amount.is_null()).then(pl.lit(None, dtype=pl.String))
            .when(amount <= 0).then(pl.lit("none or loss"))
            .when(amount < 10_000).then(pl.lit("under $10,000"))
            .when(amount < 25_000).then(pl.lit("$10,000-24,999"))
            .when(amount < 50_000).then(pl.lit("$25,000-49,999"))
            .when(amount < 100_000).then(pl.lit("$50,000-99,999"))
            .otherwise(pl.lit("$100,000 or more")))


def _education_level() -> pl.Expr:
    return pl.col("education").replace_strict(EDUCATION_LEVELS, default=None, return_dtype=pl.String)


@dataclass(frozen=True)
class Pair:
    """Two attributes whose association the summary reports, in a universe."""

    name: str
    a: pl.Expr
    b: pl.Expr
    universe: pl.Expr


JOINT_PAIRS: tuple[str, ...] = (
    "education x occupation group (workers 25+)",
    "education x income band (25+)",
    "race x foreign born",
    "race x English ability (5+)",
    "disability x employment status (16+)",
)


def _pairs() -> tuple[Pair, ...]:
    """The pairs of :data:`JOINT_PAIRS`, computed from the persona attributes
    (so personas and a source frame are measured alike)."""
    working = pl.col("employment_status").is_in(["Employed", "In the armed forces"])
    group = pl.col("occupation_category").replace_strict(_occupation_groups(), default=None, return_dtype=pl.String)
    foreign = pl.when(pl.col("citizenship").is_in(FOREIGN_BORN)).then(pl.lit("foreign born")).otherwise(pl.lit("native"))
    edu_occ, edu_inc, race_fb, race_eng, dis_emp = JOINT_PAIRS
    return (
        Pair(edu_occ, _education_level(), group, (pl.col("age") >= 25) & working),
        Pair(edu_inc, _education_level(), _income_band(pl.col("income")), pl.col("age") >= 25),
        Pair(race_fb, pl.col("race"), foreign, pl.lit(True)),
        Pair(race_eng, pl.col("race"), pl.col("ability_to_speak_english"), pl.col("age") >= 5),
        Pair(dis_emp, pl.col("disability"), pl.col("employment_status"), pl.col("age") >= 16),
    )


def cramers_v(table: np.ndarray) -> float:
    """Cramér's V of a (weighted) contingency table: sqrt(chi2 / (n (min(r, c) - 1))),
    empty rows and columns left out; 0 for a table with one row or column."""
    t = np.asarray(table, dtype=np.float64)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if min(t.shape) < 2:
        return 0.0
    n = t.sum()
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / n
    chi2 = float(((t - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(t.shape) - 1))))


def pair_table(frame: pl.DataFrame, pair: Pair, weight: str | None = None) -> np.ndarray:
    """The pair's contingency table in its universe (weighted by ``weight``, else counts)."""
    w = pl.col(weight).cast(pl.Float64) if weight else pl.lit(1.0)
    cells = (
        frame.filter(pair.universe)
        .select(pair.a.alias("a"), pair.b.alias("b"), w.alias("w"))
        .drop_nulls(["a", "b"])
        .group_by("a", "b")
        .agg(pl.col("w").sum())
    )
    if cells.height == 0:
        return np.zeros((0, 0))
    rows = sorted(cells["a"].unique().to_list())
    cols = sorted(cells["b"].unique().to_list())
    out = np.zeros((len(rows), len(cols)))
    ri, ci = {v: i for i, v in enumerate(rows)}, {v: i for i, v in enumerate(cols)}
    for a, b, x in cells.iter_rows():
        out[ri[a], ci[b]] = x
    return out


def joint_structure(frame: pl.DataFrame, weight: str | None = None) -> dict[str, float | None]:
    """Cramér's V of each key pair (:data:`JOINT_PAIRS`) in ``frame``: personas
    (counts, ``weight=None``) or a weighted source. None where the frame lacks
    the columns or the universe is empty."""
    out: dict[str, float | None] = {}
    for pair in _pairs():
        try:
            table = pair_table(frame, pair, weight)
        except pl.exceptions.ColumnNotFoundError:
            out[pair.name] = None
            continue
        out[pair.name] = None if table.size == 0 else round(cramers_v(table), 4)
    return out


# --------------------------------------------------------------------------- calibration report


def _tvd(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def calibration_report(records: pl.DataFrame | None = None) -> dict[str, Any]:
    """Each control margin of the shipped sample against its published totals
    (TVD of the shares, largest relative error of a category), the uncontrolled
    check (world region of birth), and the build record. ``records`` defaults
    to :func:`default_records`."""
    records = default_records() if records is None else records
    w = records["PWGTP"].to_numpy().astype(np.float64)
    margins = []
    for c in controls():
        achieved = np.bincount(c.categories(records), weights=w, minlength=len(c.labels))
        target = c.targets * (w.sum() / c.targets.sum())
        rel = np.abs(achieved - target) / np.where(target > 0, target, np.nan)
        worst = int(np.nanargmax(rel))
        margins.append({
            "name": c.name, "table": c.table, "title": c.title, "categories": len(c.labels),
            "tvd": _tvd(achieved, c.targets), "max_rel_error": float(rel[worst]), "worst": c.labels[worst],
            "rows": [{"category": lab, "target": float(t), "calibrated": round(float(a), 1)}
                     for lab, t, a in zip(c.labels, c.targets, achieved)],
        })
    p = census_profile()["world_region_of_birth"]
    region = records.select(_world_region(pl.col("POBP")).alias("r"), pl.col("CIT").is_in(["4", "5"]).alias("fb"), pl.col("PWGTP"))
    got = region.filter("fb").group_by("r").agg(pl.col("PWGTP").sum())
    weighted = dict(got.iter_rows())
    names = list(p["counts"])
    achieved = np.array([weighted.get(n, 0.0) for n in names])
    published = np.array(list(p["counts"].values()), dtype=np.float64)
    checks = [{
        "name": "world_region_of_birth", "table": p["table"], "title": "world region of birth of the foreign born (not controlled)",
        "tvd": round(_tvd(achieved, published), 6),
        "rows": [{"category": n, "target": float(t), "calibrated": round(float(a), 1)} for n, t, a in zip(names, published, achieved)],
    }]
    return {"about": default_about(), "margins": margins, "checks": checks}


def default_description() -> str:
    """One line naming the default source, for population reports."""
    about = default_about()
    seed = about["seed"]
    return (f"embedded default: {seed['records']:,} ACS {seed['year']} 1-year PUMS person records of {len(seed['states'])} states, "
            f"raked to national ACS {about['controls']['year']} tables")
