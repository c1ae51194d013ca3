"""The embedded default census profile and the synthetic weighted frame drawn from it.

``population: {source: census}`` without a PUMS file must work offline, so the
package ships a *profile*: published national counts of the American Community
Survey (2017 1-year estimates, one table per section, see ``data/README.md``),
never microdata. :func:`synthetic_frame` turns it into a weighted frame of
synthetic persons in the same columns the PUMS path derives, so both sources go
through the same filters, weighted sampling, consistency rules and enrichment.

How a synthetic person is drawn (each step from the named table; "band" is the
table's own age band):

1. age band x sex cell (S0101): the same number of rows in each of the 36
   cells, each row weighted by the cell's population / its rows, so weighted
   sampling reproduces the published age-sex pyramid while rare cells (women 85
   and over) still have many distinct rows; the age is uniform within the band
   (85 and over: 85-94, an assumption);
2. race and Hispanic origin (B03002), independent of age and sex;
3. education: under 18 from age (highest grade completed = typical US grade
   progression, a rule, not a figure), 18 and over the B15001 level by band and
   sex, then the detailed level within it in the national 25-and-over
   proportions of B15003;
4. employment status by band and sex (B23001, armed forces included); class of
   worker (B24080), occupation group (C24010) and industry (C24030) by sex for
   the civilian employed, independently of one another;
5. personal income (B19325) by sex and work experience: an employed person
   worked full-time year-round with the published ratio of such workers to the
   employed of that sex, everyone else draws from the "other" distribution
   (which mixes part-time workers and non-workers); the value is the bracket;
6. marital status (B12002) and veteran status (B21001) by band and sex;
7. disability (B18101) by band and sex, then hearing (B18102), vision
   (B18103) and cognitive (B18104) difficulty given a disability, each with
   P(type | disability) = count(type) / count(any disability);
8. health insurance (B27001) by band and sex; births in the past 12 months
   for women 15-50 (B13016) by band;
9. language spoken at home and ability to speak English (B16004) by band; the
   person's language stands in for the household's (under 5: the 5-17 mix);
10. nativity and citizenship (B05003) by under/over 18 and sex; natives born
    outside the 50 states and world region of birth of the foreign born in the
    national proportions of DP02; ancestry from DP02's "people reporting"
    counts (see the README for the caveats);
11. household: group quarters, living alone, nonfamily and family households
    and the presence of children from DP02's household counts (README).

Randomness: 64-bit words of a PCG64 stream seeded with a constant, turned into
53-bit uniforms here (numpy guarantees the bit stream, not its distribution
methods), so the frame is the same on every machine.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import numpy as np
import polars as pl

from persona_exp.errors import DataError
from persona_exp.population.enrich import _OCCUPATION_FIELDS
from persona_exp.population.attributes import (
    EDUCATION_LEVELS,
    GROUP_QUARTERS,
    NOT_APPLICABLE,
    SPEAKS_ONLY_ENGLISH,
)

__all__ = ["DEFAULT_ROWS", "PROFILE_SEED", "census_profile", "synthetic_frame"]

DEFAULT_ROWS = 50_000
PROFILE_SEED = 20170101
TOP_AGE = 94  # the open 85+ band is spread over 85..94
_FILE = "census_profile.json"
SEXES = ("Male", "Female")
NATIVE_OUTSIDE = "Born in Puerto Rico, a U.S. island area, or abroad to American parents"
OTHER_ANCESTRY = "Other or unreported ancestry"
WITH_CHILDREN = "With children under 18 years"
ENGLISH_ABILITY = ("Very well", "Well", "Not well", "Not at all")


@lru_cache(maxsize=1)
def census_profile() -> dict[str, Any]:
    """The packaged profile (published ACS counts), as a dict."""
    resource = resources.files("persona_exp.population").joinpath("data").joinpath(_FILE)
    try:
        return json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # a broken install, not user input
        raise DataError(f"cannot read the packaged data file data/{_FILE}: {exc}") from exc


class _Stream:
    """53-bit uniforms from a PCG64 bit stream, consumed in order."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.PCG64(seed)

    def uniform(self, n: int) -> np.ndarray:
        raw = self._bits.random_raw(n)
        return (np.asarray(raw, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _pick(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw; ``weights`` is one row (K,) or one row per draw (n, K), not normalised."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = np.broadcast_to(w, (u.shape[0], w.shape[0]))
    cum = np.cumsum(w, axis=1)
    total = cum[:, -1:]
    if np.any(total <= 0):
        raise DataError(f"{_FILE}: a distribution of the default profile has no positive count")
    cum = cum / total
    cum[:, -1] = 1.0
    return np.minimum((u[:, None] >= cum).sum(axis=1), w.shape[1] - 1)


def _band_index(ages: np.ndarray, bands: Sequence[Sequence[int | None]]) -> np.ndarray:
    """Index of each age's band (-1 outside every band)."""
    out = np.full(ages.shape, -1, dtype=np.int64)
    for i, (lo, hi) in enumerate(bands):
        inside = (ages >= lo) & (ages <= (10**6 if hi is None else hi))
        out[inside] = i
    return out


def _by_band_sex(table: dict, ages: np.ndarray, sexes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per-row count vectors from a ``{"bands": ..., "Male": [[...]], "Female": [[...]]}`` table (rows in ``rows``)."""
    band = _band_index(ages[rows], table["bands"])
    if np.any(band < 0):
        raise DataError(f"{_FILE}: age {int(ages[rows][band < 0][0])} lies outside the bands of a profile table")
    male = np.asarray(table["Male"], dtype=np.float64)
    female = np.asarray(table["Female"], dtype=np.float64)
    return np.where((sexes[rows] == "Male")[:, None], male[band], female[band])


def _strings(n: int, fill: str | None) -> np.ndarray:
    return np.full(n, fill, dtype=object)


@lru_cache(maxsize=4)
def synthetic_frame(rows: int = DEFAULT_ROWS, seed: int = PROFILE_SEED) -> pl.DataFrame:
    """The weighted synthetic frame of the default profile (same columns as the PUMS path)."""
    p = census_profile()
    s = _Stream(seed)

    # 1. age x sex cells, equal rows per cell, weight = population / rows
    age_sex = p["age_sex"]
    cells = [(sex, i) for sex in SEXES for i in range(len(age_sex["bands"]))]
    per_cell = np.full(len(cells), rows // len(cells))
    per_cell[: rows % len(cells)] += 1
    sexes = np.repeat(np.array([c[0] for c in cells], dtype=object), per_cell)
    band = np.repeat(np.array([c[1] for c in cells]), per_cell)
    lo = np.array([b[0] for b in age_sex["bands"]])[band]
    hi = np.array([TOP_AGE if b[1] is None else b[1] for b in age_sex["bands"]])[band]
    ages = lo + np.minimum((s.uniform(rows) * (hi - lo + 1)).astype(np.int64), hi - lo)
    cell_pop = np.array([age_sex[sex][i] for sex, i in cells], dtype=np.float64)
    weight = np.repeat(cell_pop / per_cell, per_cell)
    n = rows
    everyone = np.arange(n)
    out: dict[str, np.ndarray] = {}

    # 2. race and Hispanic origin
    race_names = list(p["race"]["counts"])
    race = np.asarray(race_names, dtype=object)[_pick(s.uniform(n), np.array(list(p["race"]["counts"].values()), float))]
    out["race"] = race

    # 3. education
    edu = _strings(n, NOT_APPLICABLE)
    u = s.uniform(n)
    edu[(ages >= 3) & (ages <= 4)] = "No schooling completed"
    edu[ages == 5] = "Nursery school or preschool"
    edu[ages == 6] = "Kindergarten"
    school = (ages >= 7) & (ages <= 17)
    edu[school] = np.array([f"Grade {a - 6}" for a in ages[school]], dtype=object)
    adults = np.flatnonzero(ages >= 18)
    e = p["education"]
    level = _pick(u[adults], _by_band_sex(e, ages, sexes, adults))
    detail = p["education_detail"]["counts"]
    u2 = s.uniform(n)
    for li, level_name in enumerate(e["levels"]):
        members = [lab for lab, lev in EDUCATION_LEVELS.items() if lev == level_name]
        idx = adults[level == li]
        if idx.size:
            pick = _pick(u2[idx], np.array([detail[m] for m in members], float))
            edu[idx] = np.asarray(members, dtype=object)[pick]
    out["education"] = edu

    # 4. employment, class of worker, occupation, industry
    emp = _strings(n, NOT_APPLICABLE)
    working_age = np.flatnonzero(ages >= 16)
    em = p["employment"]
    emp[working_age] = np.asarray(em["categories"], dtype=object)[_pick(s.uniform(n)[working_age], _by_band_sex(em, ages, sexes, working_age))]
    out["employment_status"] = emp
    employed = emp == "Employed"
    armed = emp == "In the armed forces"
    for column, key in (("class_of_worker", "class_of_worker"), ("occupation_category", "occupation"), ("industry_category", "industry")):
        col = _strings(n, NOT_APPLICABLE)
        u = s.uniform(n)
        for sex in SEXES:
            idx = np.flatnonzero(employed & (sexes == sex))
            names = list(p[key][sex])
            col[idx] = np.asarray(names, dtype=object)[_pick(u[idx], np.array(list(p[key][sex].values()), float))]
        out[column] = col
    out["class_of_worker"][armed] = "Federal government employee"
    out["occupation_category"][armed] = "Military"
    out["industry_category"][armed] = "Armed forces"
    fields = {name: _OCCUPATION_FIELDS[code] for name, code in p["occupation"]["field"].items()}
    job = np.array([fields.get(o) for o in out["occupation_category"]], dtype=object)
    job[armed] = None

    # 5. personal income (15 and over)
    inc = p["income"]
    income = _strings(n, NOT_APPLICABLE)
    income_low = np.full(n, -1, dtype=np.int64)
    u, u_ft = s.uniform(n), s.uniform(n)
    emp_tab = np.asarray(em["Male"]), np.asarray(em["Female"])
    for si, sex in enumerate(SEXES):
        counts = emp_tab[si]
        workers = counts[:, 0].sum() + counts[:, 1].sum()
        full_time = inc[sex]["Worked full-time, year-round"]
        p_full = min(1.0, sum(full_time) / workers)
        idx = np.flatnonzero((ages >= 15) & (sexes == sex))
        is_full = (employed | armed)[idx] & (u_ft[idx] < p_full)
        for group, mask in (("Worked full-time, year-round", is_full), ("Other", ~is_full)):
            g = idx[mask]
            k = _pick(u[g], np.array(inc[sex][group], float))
            income[g] = np.asarray(inc["brackets"], dtype=object)[k]
            income_low[g] = np.asarray(inc["lower"])[k]
    out["income"] = income

    # 6. marital status, veteran status
    mar = _strings(n, NOT_APPLICABLE)
    idx = np.flatnonzero(ages >= 15)
    ms = p["marital_status"]
    mar[idx] = np.asarray(ms["categories"], dtype=object)[_pick(s.uniform(n)[idx], _by_band_sex(ms, ages, sexes, idx))]
    out["marital_status"] = mar
    vet = _strings(n, NOT_APPLICABLE)
    vet[ages == 17] = "Non-veteran"
    idx = np.flatnonzero(ages >= 18)
    vs = p["veteran_status"]
    vet[idx] = np.asarray(vs["categories"], dtype=object)[_pick(s.uniform(n)[idx], _by_band_sex(vs, ages, sexes, idx))]
    vet[armed] = "Active duty"
    out["veteran_status"] = vet

    # 7. disability and its types
    d = p["disability"]
    dband = _band_index(ages, d["bands"])
    def share(kind: str) -> np.ndarray:
        out_share = np.zeros(n)
        for sex in SEXES:
            rows_sex = sexes == sex
            for b, entry in enumerate(d[sex][kind]):
                if entry is not None:
                    out_share[rows_sex & (dband == b)] = entry[0] / entry[1]
        return out_share
    p_any = share("any")
    disabled = s.uniform(n) < p_any
    out["disability"] = np.where(disabled, "With a disability", "Without a disability").astype(object)
    for kind, column in (("hearing", "hearing_difficulty"), ("vision", "vision_difficulty"), ("cognitive", "cognitive_difficulty")):
        given = np.divide(share(kind), p_any, out=np.zeros(n), where=p_any > 0)
        col = np.where(disabled & (s.uniform(n) < given), "Yes", "No").astype(object)
        if kind == "cognitive":
            col[ages < 5] = NOT_APPLICABLE
        out[column] = col

    # 8. health insurance, fertility
    hi_tab = p["health_insurance"]
    out["health_insurance"] = np.asarray(hi_tab["categories"], dtype=object)[_pick(s.uniform(n), _by_band_sex(hi_tab, ages, sexes, everyone))]
    fert = _strings(n, NOT_APPLICABLE)
    ft = p["fertility"]
    idx = np.flatnonzero((sexes == "Female") & (ages >= 15) & (ages <= 50))
    fband = _band_index(ages[idx], ft["bands"])
    fert[idx] = np.asarray(ft["categories"], dtype=object)[_pick(s.uniform(n)[idx], np.asarray(ft["Female"], float)[fband])]
    out["fertility"] = fert

    # 9. language at home and English ability
    lg = p["language"]
    groups = list(lg["groups"][0])
    cells_lang = [(g, None) if g == "English only" else (g, a) for g in groups for a in (ENGLISH_ABILITY if g != "English only" else (None,))]
    table = np.array([[v for g in groups for v in band_groups[g]] for band_groups in lg["groups"]], dtype=np.float64)
    lband = _band_index(np.maximum(ages, 5), lg["bands"])
    k = _pick(s.uniform(n), table[lband])
    out["household_language"] = np.array([cells_lang[i][0] for i in k], dtype=object)
    english = np.array([SPEAKS_ONLY_ENGLISH if cells_lang[i][1] is None else cells_lang[i][1] for i in k], dtype=object)
    english[ages < 5] = NOT_APPLICABLE
    out["ability_to_speak_english"] = english

    # 10. citizenship, place of birth, ancestry
    ct = p["citizenship"]
    cit = np.asarray(ct["categories"], dtype=object)[_pick(s.uniform(n), _by_band_sex(ct, ages, sexes, everyone))]
    native = cit == "Native"
    nb = p["native_birthplace"]["counts"]
    outside = native & (s.uniform(n) < nb[NATIVE_OUTSIDE] / sum(nb.values()))
    cit[native] = "Born in the United States"
    cit[outside] = NATIVE_OUTSIDE
    out["citizenship"] = cit
    regions = p["world_region_of_birth"]["counts"]
    pob = np.asarray(list(regions), dtype=object)[_pick(s.uniform(n), np.array(list(regions.values()), float))]
    pob[native] = "United States"
    pob[outside] = "Outside the United States, a U.S. citizen at birth"
    out["place_of_birth"] = pob
    out["ancestry"] = _ancestry(p, race, s.uniform(n))

    # 11. households
    hh = p["households"]
    adult = ages >= 18
    n_adult = sum(sum(r) for sex in SEXES for r in p["education"][sex])  # B15001: population 18 and over
    gq_people = hh["total_population"] - hh["population_in_households"]
    alone_people = hh["living_alone"]
    shared_people = 2 * (hh["nonfamily"] - hh["living_alone"])  # at least two persons per such household
    p_gq = gq_people / n_adult
    p_alone = alone_people / (n_adult - gq_people)
    p_shared = shared_people / (n_adult - gq_people)
    u = s.uniform(n)
    kind = np.where(~adult, "family", np.where(u < p_gq, "gq", np.where(u < p_gq + (1 - p_gq) * p_alone, "alone",
                    np.where(u < p_gq + (1 - p_gq) * (p_alone + p_shared), "shared", "family"))))
    family_types = ("Married-couple household", "Family household, male householder, no spouse present",
                    "Family household, female householder, no spouse present")
    adult_mix = np.array([hh["married_couple"], hh["male_householder_no_spouse"], hh["female_householder_no_spouse"]], float)
    child_mix = np.array([hh["married_couple_with_own_children"], hh["male_householder_with_own_children"],
                          hh["female_householder_with_own_children"]], float)
    u = s.uniform(n)
    ftype = np.where(adult, np.asarray(family_types, dtype=object)[_pick(u, adult_mix)],
                     np.asarray(family_types, dtype=object)[_pick(u, child_mix)])
    htype = np.where(kind == "gq", GROUP_QUARTERS, np.where(kind == "alone", "Living alone",
                     np.where(kind == "shared", "Nonfamily household, not living alone", ftype))).astype(object)
    p_children = hh["with_people_under_18"] / (hh["married_couple"] + hh["male_householder_no_spouse"] + hh["female_householder_no_spouse"])
    presence = np.where(s.uniform(n) < p_children, WITH_CHILDREN, "No children").astype(object)
    presence[~adult] = WITH_CHILDREN
    presence[(kind == "alone") | (kind == "shared")] = "No children"
    presence[kind == "gq"] = GROUP_QUARTERS
    out["household_type"] = htype
    out["family_presence_and_age"] = presence
    out["household_language"][kind == "gq"] = GROUP_QUARTERS

    frame = pl.DataFrame(
        {
            "weight": weight,
            "state": pl.Series("state", [None] * n, dtype=pl.String),
            "age": ages.astype(np.int64),
            "sex": sexes.astype(str),
            **{k: pl.Series(k, list(v), dtype=pl.String) for k, v in out.items()},
            "_income": pl.Series("_income", np.where(income_low < 0, None, income_low).tolist(), dtype=pl.Int64),
            "_occupation_raw": pl.Series("_occupation_raw", list(job), dtype=pl.String),
        }
    )
    return frame


def _ancestry(p: dict, race: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Non-Hispanic White: DP02's ancestries (all but the two African/Caribbean ones) in proportion to
    the people reporting them, per non-Hispanic White person; non-Hispanic Black: Subsaharan African and
    West Indian likewise; the rest of each group and everyone else: "Other or unreported ancestry"."""
    counts = p["ancestry"]["counts"]
    race_counts = p["race"]["counts"]
    african = ("Subsaharan African", "West Indian (excluding Hispanic origin groups)")
    out = np.full(race.shape, OTHER_ANCESTRY, dtype=object)
    for group, names in (("White", [a for a in counts if a not in african]), ("Black or African American", list(african))):
        idx = np.flatnonzero(race == group)
        shares = np.array([counts[a] for a in names], dtype=np.float64) / race_counts[group]
        rest = max(0.0, 1.0 - shares.sum())
        k = _pick(u[idx], np.append(shares, rest))
        labels = np.asarray([*names, OTHER_ANCESTRY], dtype=object)
        out[idx] = labels[k]
    return out
