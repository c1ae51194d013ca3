"""The 33 PERSONA attributes (paper, appendix A) and how each is derived.

Every persona is one row with one column per attribute, named in snake_case
after the paper's label (``"household language"`` -> ``household_language``).
Values are display-ready strings, except ``age`` (Int64). Vocabularies are
normalised so that one meaning has one spelling:

* ``"Not applicable"`` where the census universe excludes the person (class of
  worker of a child, fertility of a man, English ability of a toddler...);
  ``"Not applicable (group quarters)"`` for the household attributes of people
  in group quarters;
* null only where the value is truly unknown, e.g. the household attributes
  when no housing record was read;
* one label per code, short and plain: "Non-veteran", "Employed", "Yes"/"No"
  for the difficulty questions.

Census attributes (``kind="census"``) come from PUMS person (and housing)
variables; the mapping tables below say which code gives which value. The
procedural ones (``kind="procedural"``) come from
:mod:`persona_exp.population.enrich`. ``Attribute.applies(row)`` says whether
the attribute carries information for a persona, which the leave-one-out
variants need (a disability type only for persons with a disability, fertility
only for women 15 to 50...).

Derivations (PUMS variable -> attribute):

=========================  ==========================================================
age                        AGEP (years; 0 = under one year)
sex                        SEX
race                       HISP then RAC1P: any Hispanic origin -> "Hispanic or Latino",
                           otherwise the race (the three American Indian / Alaska
                           Native codes merged), as in ACS table B03002
ancestry                   ANC1P label (first ancestry)
household_language         HHL (housing record)
education                  SCHL (highest grade or degree completed)
employment_status          ESR (at work / with a job but not at work merged)
class_of_worker            COW
industry_category          INDP label without its sector prefix ("RET-Grocery Stores"
                           -> "Grocery Stores")
occupation_category        OCCP label without its prefix ("MGR-Sales Managers" -> "Sales Managers")
detailed_job_description   procedural, from age, ESR and OCCP (enrich.describe_job)
income                     PINCP x ADJINC (constant dollars of the data year): "$45,300", "No income", "Loss of $1,200"
marital_status             MAR ("Not applicable" under 15)
household_type             HHT (householder's sex dropped for nonfamily households)
family_presence_and_age    HUPAC (children in the household by age)
place_of_birth             POBP label (states without their abbreviation)
citizenship                CIT
veteran_status             MIL
disability                 DIS
health_insurance           HICOV
big_five_scores            procedural, "Openness: High, Conscientiousness: ..." as in appendix C
defining_quirks ...        procedural (enrich): quirks, mannerisms, personal time, lifestyle,
religion                   ideology, political views, religion
cognitive_difficulty       DREM
ability_to_speak_english   ENG ("Speaks only English" for the blank of persons 5 and over)
vision_difficulty          DEYE
fertility                  FER (women 15 to 50)
hearing_difficulty         DEAR
=========================  ==========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import polars as pl

from persona_exp.errors import InvalidArgumentError, did_you_mean
from persona_exp.population.enrich import BIG_FIVE_COLUMNS, BIG_FIVE_DOMAINS, TOO_YOUNG_FOR_POLITICS

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "CENSUS_ATTRIBUTES",
    "NOT_APPLICABLE",
    "GROUP_QUARTERS",
    "PROCEDURAL_ATTRIBUTES",
    "Attribute",
    "attribute",
    "big_five_text",
    "derive_census",
    "is_informative",
]

NOT_APPLICABLE = "Not applicable"
GROUP_QUARTERS = "Not applicable (group quarters)"
NOT_WORKING = "Not working (last worked 5 or more years ago, or never worked)"


def is_informative(value: Any) -> bool:
    """A value that says something: not null and not one of the "Not applicable" values."""
    return value is not None and not (isinstance(value, str) and value.startswith(NOT_APPLICABLE))


def _present(name: str) -> Callable[[Mapping], bool]:
    def applies(row: Mapping) -> bool:
        return is_informative(row.get(name))

    applies.__name__ = f"applies_{name}"
    return applies


def _with_disability(name: str) -> Callable[[Mapping], bool]:
    def applies(row: Mapping) -> bool:
        return row.get("disability") == "With a disability" and is_informative(row.get(name))

    applies.__name__ = f"applies_{name}"
    return applies


def _has_job(name: str) -> Callable[[Mapping], bool]:
    def applies(row: Mapping) -> bool:
        value = row.get(name)
        return is_informative(value) and value != NOT_WORKING

    applies.__name__ = f"applies_{name}"
    return applies


def _adult_view(name: str) -> Callable[[Mapping], bool]:
    def applies(row: Mapping) -> bool:
        value = row.get(name)
        return is_informative(value) and value != TOO_YOUNG_FOR_POLITICS

    applies.__name__ = f"applies_{name}"
    return applies


def _working_age(row: Mapping) -> bool:
    age = row.get("age")
    return age is not None and age >= 16 and is_informative(row.get("detailed_job_description"))


@dataclass(frozen=True)
class Attribute:
    """One persona attribute: its column name, the paper's label, where it comes from, when it applies."""

    name: str
    label: str
    kind: Literal["census", "procedural"]
    applies: Callable[[Mapping], bool] = field(repr=False, compare=False)
    source: str = ""  # PUMS variable(s) or the procedure


def _a(name: str, kind: str, source: str, applies: Callable[[Mapping], bool] | None = None) -> Attribute:
    label = name.replace("_", " ").capitalize().replace("english", "English")
    return Attribute(name, label, kind, applies or _present(name), source)  # type: ignore[arg-type]


# Canonical order = the paper's appendix A.
ATTRIBUTES: list[Attribute] = [
    _a("age", "census", "AGEP"),
    _a("sex", "census", "SEX"),
    _a("race", "census", "RAC1P, HISP"),
    _a("ancestry", "census", "ANC1P"),
    _a("household_language", "census", "HHL"),
    _a("education", "census", "SCHL"),
    _a("employment_status", "census", "ESR"),
    _a("class_of_worker", "census", "COW", _has_job("class_of_worker")),
    _a("industry_category", "census", "INDP", _has_job("industry_category")),
    _a("occupation_category", "census", "OCCP", _has_job("occupation_category")),
    _a("detailed_job_description", "procedural", "enrich.describe_job(age, ESR, OCCP)", _working_age),
    _a("income", "census", "PINCP"),
    _a("marital_status", "census", "MAR"),
    _a("household_type", "census", "HHT"),
    _a("family_presence_and_age", "census", "HUPAC"),
    _a("place_of_birth", "census", "POBP"),
    _a("citizenship", "census", "CIT"),
    _a("veteran_status", "census", "MIL"),
    _a("disability", "census", "DIS"),
    _a("health_insurance", "census", "HICOV"),
    _a("big_five_scores", "procedural", "enrich: BFI-2 domain levels"),
    _a("defining_quirks", "procedural", "enrich: curated list"),
    _a("mannerisms", "procedural", "enrich: curated list"),
    _a("personal_time", "procedural", "enrich: curated list"),
    _a("lifestyle", "procedural", "enrich: curated list"),
    _a("ideology", "procedural", "enrich: Gallup 2023", _adult_view("ideology")),
    _a("political_views", "procedural", "enrich: Pew 2024", _adult_view("political_views")),
    _a("religion", "procedural", "enrich: Pew Religious Landscape Study"),
    _a("cognitive_difficulty", "census", "DREM", _with_disability("cognitive_difficulty")),
    _a("ability_to_speak_english", "census", "ENG"),
    _a("vision_difficulty", "census", "DEYE", _with_disability("vision_difficulty")),
    _a("fertility", "census", "FER"),
    _a("hearing_difficulty", "census", "DEAR", _with_disability("hearing_difficulty")),
]
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES)
CENSUS_ATTRIBUTES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES if a.kind == "census")
PROCEDURAL_ATTRIBUTES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES if a.kind == "procedural")
_BY_NAME = {a.name: a for a in ATTRIBUTES}
_BY_KEY = {**{a.label.lower(): a for a in ATTRIBUTES}, **{a.name: a for a in ATTRIBUTES}}


def attribute(name: str) -> Attribute:
    """The attribute called ``name`` (snake_case name or the paper's label, any case)."""
    if isinstance(name, str):
        found = _BY_KEY.get(name.strip().lower()) or _BY_KEY.get(name.strip().lower().replace(" ", "_"))
        if found is not None:
            return found
    raise InvalidArgumentError(f"unknown persona attribute {name!r}{did_you_mean(name, ATTRIBUTE_NAMES)}; the attributes are: {', '.join(ATTRIBUTE_NAMES)}.")


def big_five_text(frame: pl.DataFrame) -> pl.Expr:
    """The five ``big_five_*`` label columns as one string, in the paper's format (appendix C)."""
    parts: list[pl.Expr] = []
    for i, (domain, column) in enumerate(zip(BIG_FIVE_DOMAINS, BIG_FIVE_COLUMNS)):
        prefix = ("" if i == 0 else ", ") + domain.capitalize() + ": "
        parts.extend([pl.lit(prefix), pl.col(column)])
    # a child under enrich.BIG_FIVE_MIN_AGE has "Not applicable" in every domain: one such value, not five
    none = pl.col(BIG_FIVE_COLUMNS[0]) == NOT_APPLICABLE
    return pl.when(none).then(pl.lit(NOT_APPLICABLE)).otherwise(pl.concat_str(parts)).alias("big_five_scores")


# --------------------------------------------------------------------------- census mapping tables

SEX = {"1": "Male", "2": "Female"}
RACE = {
    "1": "White",
    "2": "Black or African American",
    "3": "American Indian or Alaska Native",
    "4": "American Indian or Alaska Native",
    "5": "American Indian or Alaska Native",
    "6": "Asian",
    "7": "Native Hawaiian or Other Pacific Islander",
    "8": "Some other race",
    "9": "Two or more races",
}
HISPANIC = "Hispanic or Latino"
HOUSEHOLD_LANGUAGE = {
    "1": "English only",
    "2": "Spanish",
    "3": "Other Indo-European language",
    "4": "Asian or Pacific Island language",
    "5": "Other language",
}
EDUCATION_LABELS: tuple[str, ...] = (
    "No schooling completed",
    "Nursery school or preschool",
    "Kindergarten",
    *(f"Grade {g}" for g in range(1, 12)),
    "12th grade, no diploma",
    "Regular high school diploma",
    "GED or alternative credential",
    "Some college, less than 1 year",
    "1 or more years of college, no degree",
    "Associate's degree",
    "Bachelor's degree",
    "Master's degree",
    "Professional degree beyond a bachelor's degree",
    "Doctorate degree",
)
EDUCATION = {f"{i + 1:02d}": label for i, label in enumerate(EDUCATION_LABELS)}  # SCHL 01..24
# The seven levels of ACS table B15001, for grouping (representativeness, filters in reports).
EDUCATION_LEVELS: dict[str, str] = {
    **{label: "Less than 9th grade" for label in EDUCATION_LABELS[:11]},
    **{label: "9th to 12th grade, no diploma" for label in EDUCATION_LABELS[11:15]},
    "Regular high school diploma": "High school graduate (includes equivalency)",
    "GED or alternative credential": "High school graduate (includes equivalency)",
    "Some college, less than 1 year": "Some college, no degree",
    "1 or more years of college, no degree": "Some college, no degree",
    "Associate's degree": "Associate's degree",
    "Bachelor's degree": "Bachelor's degree",
    "Master's degree": "Graduate or professional degree",
    "Professional degree beyond a bachelor's degree": "Graduate or professional degree",
    "Doctorate degree": "Graduate or professional degree",
}
EMPLOYMENT = {
    "1": "Employed",
    "2": "Employed",
    "3": "Unemployed",
    "4": "In the armed forces",
    "5": "In the armed forces",
    "6": "Not in labor force",
}
CLASS_OF_WORKER = {
    "1": "Private for-profit employee",
    "2": "Private not-for-profit employee",
    "3": "Local government employee",
    "4": "State government employee",
    "5": "Federal government employee",
    "6": "Self-employed, not incorporated",
    "7": "Self-employed, incorporated",
    "8": "Unpaid family worker",
    "9": NOT_WORKING,
}
MARITAL_STATUS = {"1": "Married", "2": "Widowed", "3": "Divorced", "4": "Separated", "5": "Never married"}
HOUSEHOLD_TYPE = {
    "1": "Married-couple household",
    "2": "Family household, male householder, no spouse present",
    "3": "Family household, female householder, no spouse present",
    "4": "Living alone",
    "5": "Nonfamily household, not living alone",
    "6": "Living alone",
    "7": "Nonfamily household, not living alone",
}
FAMILY_PRESENCE = {
    "1": "With children under 6 years only",
    "2": "With children 6 to 17 years only",
    "3": "With children under 6 and 6 to 17 years",
    "4": "No children",
}
CITIZENSHIP = {
    "1": "Born in the United States",
    "2": "Born in Puerto Rico or a U.S. island area",
    "3": "Born abroad to American parents",
    "4": "U.S. citizen by naturalization",
    "5": "Not a U.S. citizen",
}
VETERAN_STATUS = {
    "1": "Active duty",
    "2": "Veteran",
    "3": "Reserves or National Guard training only",
    "4": "Non-veteran",
}
DISABILITY = {"1": "With a disability", "2": "Without a disability"}
HEALTH_INSURANCE = {"1": "With health insurance coverage", "2": "No health insurance coverage"}
YES_NO = {"1": "Yes", "2": "No"}
ENGLISH = {"1": "Very well", "2": "Well", "3": "Not well", "4": "Not at all"}
SPEAKS_ONLY_ENGLISH = "Speaks only English"
FERTILITY = {"1": "Gave birth in the past 12 months", "2": "No birth in the past 12 months"}

# PUMS variables read for the census attributes (HHL, HHT, HUPAC come from the housing file).
PERSON_VARIABLES: tuple[str, ...] = (
    "ST", "AGEP", "SEX", "RAC1P", "HISP", "ANC1P", "SCHL", "ESR", "COW", "INDP", "OCCP", "PINCP",
    "MAR", "POBP", "CIT", "MIL", "DIS", "HICOV", "DREM", "DEYE", "DEAR", "ENG", "FER", "ADJINC",
)  # fmt: skip
HOUSING_VARIABLES: tuple[str, ...] = ("HHL", "HHT", "HUPAC")

_PREFIX = re.compile(r"^[A-Z]{3}-")


def _tidy_label(expr: pl.Expr) -> pl.Expr:
    """'MGR-Chief Executives And Legislators' -> 'Chief Executives and Legislators'."""
    out = expr.str.replace(_PREFIX.pattern, "")
    for word in ("And", "Or", "Of", "The", "In", "For", "Except", "To", "On", "With", "By", "At", "From", "Not"):
        out = out.str.replace_all(f" {word} ", f" {word.lower()} ", literal=True)
    return out


def _map(column: str, table: Mapping[str, str], blank: str | None = NOT_APPLICABLE) -> pl.Expr:
    """Code -> value; a blank code (null) -> ``blank``; an unknown code -> null (caught by the strict check)."""
    code = pl.col(column).cast(pl.String)
    mapped = code.replace_strict(dict(table), default=None, return_dtype=pl.String)
    return pl.when(code.is_null() | (code == "")).then(pl.lit(blank, dtype=pl.String)).otherwise(mapped)


def _housing(column: str, table: Mapping[str, str], names: list[str]) -> pl.Expr:
    """Housing variables: group quarters (blank) vs unknown (no housing record read)."""
    if column not in names:
        return pl.lit(None, dtype=pl.String)
    out = _map(column, table, GROUP_QUARTERS)
    if "has_housing" in names:
        out = pl.when(pl.col("has_housing").fill_null(False)).then(out).otherwise(pl.lit(None, dtype=pl.String))
    return out


def income_text(value: pl.Expr) -> pl.Expr:
    """PINCP dollars as display text."""
    return (
        pl.when(value.is_null())
        .then(pl.lit(NOT_APPLICABLE))
        .when(value == 0)
        .then(pl.lit("No income"))
        .when(value < 0)
        .then(pl.lit("Loss of $") + _thousands(-value))
        .otherwise(pl.lit("$") + _thousands(value))
    )


def _thousands(value: pl.Expr) -> pl.Expr:
    """An integer with thousands separators (45300 -> '45,300')."""
    s = value.cast(pl.Int64).cast(pl.String)
    return s.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.strip_chars_end(",").str.reverse()


def _per_value(frame: pl.DataFrame, column: str, fn: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """``fn`` of a column, computed once per distinct value and mapped back (a
    national file has millions of rows but a few hundred occupation labels);
    null stays null."""
    values = frame.get_column(column).unique().drop_nulls()
    out = pl.DataFrame({column: values}).select(fn(pl.col(column))).to_series()
    return pl.col(column).replace_strict(values, out, default=None, return_dtype=pl.String)


def derive_census(decoded: pl.DataFrame) -> pl.DataFrame:
    """Census attribute columns (plus ``state`` and the numeric ``_income``) from PUMS columns.

    ``decoded`` holds the raw codes of the variables in ``PERSON_VARIABLES``
    (and ``HOUSING_VARIABLES`` after a housing join) plus ``ANC1P_label``,
    ``POBP_label``, ``INDP_label``, ``OCCP_label`` and ``ST_label`` as decoded
    by :func:`persona_exp.census.decode.decode`.
    """
    names = decoded.columns
    age = pl.col("AGEP")
    # PINCP is in the survey's own dollars; ADJINC (six implied decimals, e.g.
    # 1013097 in 2018) turns it into constant dollars of the data year, as the
    # Bureau's dictionary says every income amount needs.
    factor = pl.col("ADJINC").cast(pl.Float64) / 1_000_000 if "ADJINC" in names else pl.lit(1.0)
    decoded = decoded.with_columns((pl.col("PINCP").cast(pl.Float64) * factor).round(0).cast(pl.Int64).alias("_PINCP_ADJ"))

    def no_state_code(label: pl.Expr) -> pl.Expr:
        return label.str.replace(r"/[A-Z]{2}$", "")

    pob = _per_value(decoded, "POBP_label", no_state_code)
    english = _map("ENG", ENGLISH, None)
    return decoded.select(
        pl.col("PWGTP").cast(pl.Float64).alias("weight"),
        _per_value(decoded, "ST_label", no_state_code).alias("state"),
        age.cast(pl.Int64).alias("age"),
        _map("SEX", SEX, None).alias("sex"),
        pl.when(pl.col("HISP").cast(pl.String) != "01")
        .then(pl.lit(HISPANIC))
        .otherwise(_map("RAC1P", RACE, None))
        .alias("race"),
        pl.col("ANC1P_label").alias("ancestry"),
        _housing("HHL", HOUSEHOLD_LANGUAGE, names).alias("household_language"),
        _map("SCHL", EDUCATION).alias("education"),
        _map("ESR", EMPLOYMENT).alias("employment_status"),
        _map("COW", CLASS_OF_WORKER).alias("class_of_worker"),
        pl.when(pl.col("INDP").is_null())
        .then(pl.lit(NOT_APPLICABLE))
        .when(pl.col("INDP") == "9920")
        .then(pl.lit(NOT_WORKING))
        .otherwise(_per_value(decoded, "INDP_label", _tidy_label))
        .alias("industry_category"),
        pl.when(pl.col("OCCP").is_null())
        .then(pl.lit(NOT_APPLICABLE))
        .when(pl.col("OCCP") == "9920")
        .then(pl.lit(NOT_WORKING))
        .otherwise(_per_value(decoded, "OCCP_label", _tidy_label))
        .alias("occupation_category"),
        pl.col("OCCP_label").alias("_occupation_raw"),
        pl.when(pl.col("_PINCP_ADJ").is_null()).then(pl.lit(NOT_APPLICABLE)).otherwise(_per_value(decoded, "_PINCP_ADJ", income_text)).alias("income"),
        pl.col("_PINCP_ADJ").alias("_income"),
        pl.when(age < 15).then(pl.lit(NOT_APPLICABLE)).otherwise(_map("MAR", MARITAL_STATUS, None)).alias("marital_status"),
        _housing("HHT", HOUSEHOLD_TYPE, names).alias("household_type"),
        _housing("HUPAC", FAMILY_PRESENCE, names).alias("family_presence_and_age"),
        pob.alias("place_of_birth"),
        _map("CIT", CITIZENSHIP, None).alias("citizenship"),
        _map("MIL", VETERAN_STATUS).alias("veteran_status"),
        _map("DIS", DISABILITY, None).alias("disability"),
        _map("HICOV", HEALTH_INSURANCE, None).alias("health_insurance"),
        _map("DREM", YES_NO).alias("cognitive_difficulty"),
        pl.when(pl.col("ENG").is_null() & (age >= 5))
        .then(pl.lit(SPEAKS_ONLY_ENGLISH))
        .otherwise(pl.when(pl.col("ENG").is_null()).then(pl.lit(NOT_APPLICABLE)).otherwise(english))
        .alias("ability_to_speak_english"),
        _map("DEYE", YES_NO, None).alias("vision_difficulty"),
        _map("FER", FERTILITY).alias("fertility"),
        _map("DEAR", YES_NO, None).alias("hearing_difficulty"),
    )
