"""Populations from the real ACS 2018 PUMS person file of Wyoming.

The reference marginals are computed here, independently of the package: the
CSV is read straight from the Bureau's zip with polars and grouped with this
file's own code tables, weighted by PWGTP.
"""

from __future__ import annotations

import zipfile

import polars as pl
import pytest

from persona_exp.census.decode import unmapped_codes
from persona_exp.census.dictionary import read_dictionary
from persona_exp.census.pums import read_pums
from persona_exp.errors import DataError
from persona_exp.population import CENSUS_ATTRIBUTES, PopulationSpec, build_population
from persona_exp.population import attributes as A
from persona_exp.population.build import source_frame

SIZE = 2_000
AGE_BRACKETS = ((0, 17), (18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 74), (75, 200))
SEX = {"1": "Male", "2": "Female"}
RACE = {"1": "White", "2": "Black", "3": "AIAN", "4": "AIAN", "5": "AIAN", "6": "Asian", "7": "NHPI", "8": "Other", "9": "Two or more"}
EMPLOYMENT = {None: "n/a", "1": "employed", "2": "employed", "3": "unemployed", "4": "armed", "5": "armed", "6": "not in labor force"}
# SCHL code -> the seven levels of ACS table B15001 (blank: under 3)
LEVEL = {None: "n/a", **{f"{c:02d}": "below 9th" for c in range(1, 12)}, **{f"{c:02d}": "9th-12th" for c in range(12, 16)},
         "16": "high school", "17": "high school", "18": "some college", "19": "some college", "20": "associate",
         "21": "bachelor", "22": "graduate", "23": "graduate", "24": "graduate"}  # fmt: skip
# the persona values, as this test expects them to be spelled
PERSONA_RACE = {"White": "White", "Black or African American": "Black", "American Indian or Alaska Native": "AIAN",
                "Asian": "Asian", "Native Hawaiian or Other Pacific Islander": "NHPI", "Some other race": "Other",
                "Two or more races": "Two or more", "Hispanic or Latino": "Hispanic"}  # fmt: skip
PERSONA_EMPLOYMENT = {"Not applicable": "n/a", "Employed": "employed", "Unemployed": "unemployed",
                      "In the armed forces": "armed", "Not in labor force": "not in labor force"}  # fmt: skip
PERSONA_LEVEL = {"Not applicable": "n/a", "No schooling completed": "below 9th", "Nursery school or preschool": "below 9th",
                 "Kindergarten": "below 9th", **{f"Grade {g}": "below 9th" for g in range(1, 9)},
                 **{f"Grade {g}": "9th-12th" for g in range(9, 12)}, "12th grade, no diploma": "9th-12th",
                 "Regular high school diploma": "high school", "GED or alternative credential": "high school",
                 "Some college, less than 1 year": "some college", "1 or more years of college, no degree": "some college",
                 "Associate's degree": "associate", "Bachelor's degree": "bachelor", "Master's degree": "graduate",
                 "Professional degree beyond a bachelor's degree": "graduate", "Doctorate degree": "graduate"}  # fmt: skip


def _bracket(age: int) -> str:
    return next(f"{lo}-{hi}" for lo, hi in AGE_BRACKETS if lo <= age <= hi)


@pytest.fixture(scope="module")
def raw(wyoming_persons) -> pl.DataFrame:
    with zipfile.ZipFile(wyoming_persons) as zf:
        data = zf.read("psam_p56.csv")
    frame = pl.read_csv(data, columns=["PWGTP", "AGEP", "SEX", "SCHL", "ESR", "RAC1P", "HISP"], infer_schema=False)
    return frame.with_columns(pl.col("PWGTP").cast(pl.Int64), pl.col("AGEP").cast(pl.Int64))


@pytest.fixture(scope="module")
def spec(wyoming_persons, dictionary_2018) -> PopulationSpec:
    return PopulationSpec(persons=str(wyoming_persons), dictionary=str(dictionary_2018), size=SIZE)


@pytest.fixture(scope="module")
def population(spec):
    return build_population(spec, seed=11)


def _census(raw: pl.DataFrame) -> dict[str, dict[str, float]]:
    keyed = raw.with_columns(
        pl.col("AGEP").map_elements(_bracket, return_dtype=pl.String).alias("age"),
        pl.col("SEX").replace_strict(SEX).alias("sex"),
        pl.col("SCHL").replace_strict(LEVEL, default=None).alias("education"),
        pl.col("ESR").replace_strict(EMPLOYMENT, default=None).alias("employment"),
        pl.when(pl.col("HISP") != "01").then(pl.lit("Hispanic")).otherwise(pl.col("RAC1P").replace_strict(RACE)).alias("race"),
    )
    keyed = keyed.with_columns(
        pl.when(pl.col("SCHL").is_null()).then(pl.lit("n/a")).otherwise(pl.col("education")).alias("education"),
        pl.when(pl.col("ESR").is_null()).then(pl.lit("n/a")).otherwise(pl.col("employment")).alias("employment"),
    )
    out = {}
    total = keyed["PWGTP"].sum()
    for column in ("age", "sex", "education", "employment", "race"):
        table = keyed.group_by(column).agg(pl.col("PWGTP").sum())
        assert table[column].null_count() == 0
        out[column] = {k: w / total for k, w in table.iter_rows()}
    return out


def _sample(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    keyed = frame.select(
        pl.col("age").map_elements(_bracket, return_dtype=pl.String).alias("age"),
        pl.col("sex"),
        pl.col("education").replace_strict(PERSONA_LEVEL).alias("education"),
        pl.col("employment_status").replace_strict(PERSONA_EMPLOYMENT).alias("employment"),
        pl.col("race").replace_strict(PERSONA_RACE).alias("race"),
    )
    return {c: {k: n / frame.height for k, n in keyed.group_by(c).len().iter_rows()} for c in keyed.columns}


def _tvd(p: dict[str, float], q: dict[str, float]) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def test_every_census_attribute_decodes_without_unmapped_codes(wyoming_persons, dictionary_2018, spec):
    codes = read_dictionary(dictionary_2018)
    frame = read_pums(wyoming_persons, columns=A.PERSON_VARIABLES, dictionary=codes).frame
    assert unmapped_codes(frame, codes, columns=list(A.PERSON_VARIABLES)) == {}
    derived, _ = source_frame(spec)
    assert derived.height == frame.height
    known = [c for c in CENSUS_ATTRIBUTES if c not in ("household_language", "household_type", "family_presence_and_age")]
    assert {c: n for c, n in derived.select(known).null_count().row(0, named=True).items() if n} == {}
    # without a housing file the household attributes are unknown, not "not applicable"
    assert derived["household_type"].null_count() == derived.height
    # every code the dictionary lists for the small categorical variables has a value
    tables = {"SEX": A.SEX, "RAC1P": A.RACE, "SCHL": A.EDUCATION, "ESR": A.EMPLOYMENT, "COW": A.CLASS_OF_WORKER,
              "MAR": A.MARITAL_STATUS, "CIT": A.CITIZENSHIP, "MIL": A.VETERAN_STATUS, "DIS": A.DISABILITY,
              "HICOV": A.HEALTH_INSURANCE, "DREM": A.YES_NO, "DEYE": A.YES_NO, "DEAR": A.YES_NO, "ENG": A.ENGLISH,
              "FER": A.FERTILITY, "HHL": A.HOUSEHOLD_LANGUAGE, "HHT": A.HOUSEHOLD_TYPE, "HUPAC": A.FAMILY_PRESENCE}  # fmt: skip
    for var, table in tables.items():
        assert set(codes[var].labels) - {"b" * codes[var].width} == set(table), var
    # labels are tidied: no sector prefixes, no state abbreviations
    assert not derived["occupation_category"].str.contains(r"^[A-Z]{3}-").any()
    assert not derived["industry_category"].str.contains(r"^[A-Z]{3}-").any()
    assert "Wyoming" in set(derived["place_of_birth"]) and not derived["place_of_birth"].str.contains(r"/[A-Z]{2}$").any()
    values = {c: set(derived[c]) for c in ("veteran_status", "employment_status", "ability_to_speak_english")}
    assert "Non-veteran" in values["veteran_status"] and "Employed" in values["employment_status"]
    assert "Speaks only English" in values["ability_to_speak_english"]


def test_weighted_sample_matches_census_marginals(raw, population):
    census, sample = _census(raw), _sample(population.frame)
    assert population.frame.height == SIZE
    for column in ("age", "sex", "education", "employment", "race"):
        distance = _tvd(sample[column], census[column])
        assert distance < 0.05, (column, distance, sample[column], census[column])


def test_same_seed_same_personas(spec, population):
    again = build_population(spec, seed=11)
    assert again.key == population.key and again.frame.equals(population.frame)
    other = build_population(spec, seed=12)
    assert other.key != population.key


def test_state_and_age_filters_on_real_data(spec):
    adults = build_population(spec.model_copy(update={"size": 100, "filters": ["state == Wyoming", "age >= 18"]}), seed=3)
    assert adults.frame["age"].min() >= 18
    assert adults.report["filters"]["rows_after"] < adults.report["filters"]["rows_before"]
    with pytest.raises(DataError, match="state == Alaska"):
        build_population(spec.model_copy(update={"size": 10, "filters": ["state == Alaska"]}), seed=3)


def test_missing_person_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_population(PopulationSpec(persons=str(tmp_path / "csv_pzz.zip"), size=5), seed=0)


def test_household_attributes_from_a_housing_join(tmp_path, wyoming_persons):
    """Real Wyoming person rows re-keyed onto real Alaska housing records (the two files do not join as they are)."""
    housing_zip = wyoming_persons.parent / "csv_hak.zip"
    if not housing_zip.is_file():
        pytest.skip(f"real census data csv_hak.zip not found in {housing_zip.parent}")
    with zipfile.ZipFile(housing_zip) as zf:
        housing = pl.read_csv(zf.read("psam_h02.csv"), columns=["SERIALNO", "HHL", "HHT", "HUPAC"], infer_schema=False)
    gq = housing.filter(pl.col("SERIALNO").str.contains("GQ")).head(10)
    units = housing.filter(pl.col("HHT").is_not_null()).head(40)
    serials = [*gq["SERIALNO"], *units["SERIALNO"], *[f"2018HU99999{i:02d}" for i in range(5)]]  # the last five have no record
    with zipfile.ZipFile(wyoming_persons) as zf:
        persons = pl.read_csv(zf.read("psam_p56.csv"), columns=["SERIALNO", "SPORDER", "PWGTP", *A.PERSON_VARIABLES], infer_schema=False)
    persons = persons.head(len(serials)).with_columns(pl.Series("SERIALNO", serials), pl.lit("1").alias("SPORDER"), pl.lit("10").alias("PWGTP"))
    path = tmp_path / "psam_p99.csv"
    persons.write_csv(path)
    spec = PopulationSpec(persons=str(path), housing=str(housing_zip), size=300, enrich=False)
    derived, _ = source_frame(spec)
    expected_type = {"1": "Married-couple household", "2": "Family household, male householder, no spouse present",
                     "3": "Family household, female householder, no spouse present", "4": "Living alone",
                     "5": "Nonfamily household, not living alone", "6": "Living alone", "7": "Nonfamily household, not living alone"}
    for i, serial in enumerate(serials):
        row = derived.row(i, named=True)
        if i < 10:
            assert row["household_type"] == row["household_language"] == row["family_presence_and_age"] == "Not applicable (group quarters)"
        elif i < 50:
            record = units.row(i - 10, named=True)
            assert row["household_type"] == expected_type[record["HHT"]], serial
            assert row["household_language"] is not None and not row["household_language"].startswith("Not applicable")
        else:
            assert row["household_type"] is None and row["family_presence_and_age"] is None  # unknown, not "not applicable"
    pop = build_population(spec, seed=0)
    assert pop.frame.height == 300 and pop.frame["household_type"].null_count() > 0
