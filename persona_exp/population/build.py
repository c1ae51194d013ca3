"""Building a persona population (PERSONA, section 3.1): source -> filters -> weighted draw ->
consistency rules -> procedural enrichment, with a report and a content key.

The source is either real ACS PUMS microdata (``persons``, optionally joined to
``housing``, decoded with the Bureau's dictionary or the embedded 2018 tables)
or, with no file, the embedded default: real 2018 PUMS person records of twelve
states with weights raked to national ACS tables
(:mod:`persona_exp.population.profile`), read through the same decoder. Both
give the same columns and go through the same steps:

1. the declarative filters (:mod:`persona_exp.population.filters`);
2. ``persona_exp.stats.weighted_sample`` by person weight, seeded, as one
   stream whose first draws do not depend on the size (a larger population
   begins with the smaller one's personas); with replacement by default (a
   record drawn twice becomes two personas with distinct ids, and the report
   counts the distinct records), or each record at most once
   (``replace: false``);
3. the consistency rules (:mod:`persona_exp.population.consistency`): census
   records are real people, so by default a record that breaks a rule is kept
   and counted (``consistency: count``); ``drop`` skips it and the stream goes
   on (at most ``MAX_ATTEMPTS`` draws per persona asked for);
4. the procedural attributes (:func:`persona_exp.population.enrich.enrich`),
   which follow age.

The spec's optional ``llm:`` block (:class:`PopulationLLM`) adds steps that
ask a language model (the consistency check of PERSONA 3.1, open-ended fields,
WikiPersonas' generated people); they run on top of this procedural population
in :mod:`persona_exp.population.llm`, through the run's call cache.

The population's ``key`` is an xxh3-128 hash of its column names, dtypes and
values (hashed column by column in a fixed binary form, ``KEY_SCHEME``), so an
identical population is recognised (and reused) whatever produced it.
:func:`~persona_exp.population.stored.save_population` writes parquet plus a JSON sidecar with the report,
key and key scheme; :func:`~persona_exp.population.stored.load_population` checks the key.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import polars as pl
import xxhash
from pydantic import Field, field_validator, model_validator

from persona_exp import stats
from persona_exp.census.decode import decode, unmapped_codes
from persona_exp.census.dictionary import resolve
from persona_exp.census.pums import read_pums
from persona_exp.errors import DataError, InvalidArgumentError, did_you_mean
from persona_exp.population.attributes import (
    ATTRIBUTE_NAMES,
    CENSUS_ATTRIBUTES,
    HOUSING_VARIABLES,
    PERSON_VARIABLES,
    PROCEDURAL_ATTRIBUTES,
    big_five_text,
    derive_census,
)
from persona_exp.population.consistency import RULES, violations
from persona_exp.population.enrich import BIG_FIVE_COLUMNS, ENRICHED_COLUMNS, enrich
from persona_exp.population.famous import build_famous_from_spec
from persona_exp.population.filters import apply_filters, parse_filter
from persona_exp.population.profile import default_description, default_records
from persona_exp.population.represent import representativeness
from persona_exp.population.stored import Population, population_key
from persona_exp.spec.models import FieldError, Strict, no_duplicates
from persona_exp.steps.templates import CONSISTENCY, FAMOUS_PEOPLE, OPEN_FIELD, Templated

__all__ = [
    "MAX_ATTEMPTS",
    "Population",
    "PopulationLLM",
    "PopulationSpec",
    "build_population",
    "source_frame",
]

MAX_ATTEMPTS = 25  # draws per persona asked for before the rules are said to reject too many
HOUSING_ATTRIBUTES = ("household_language", "household_type", "family_presence_and_age")
_LABELS = ("ANC1P", "POBP", "INDP", "OCCP", "ST")


DEFAULT_SIZE = 200  # census personas when population.size is not given
MAX_SIZE = 10_000_000  # far above PERSONA's 1,586 personas and the 10^6 the census benchmark draws on 24 GB
CHECK_OFF_NOTE = (
    "The paper's language-model consistency check (about 8.5% of profiles dropped) was not applied; "
    "set population.llm.check: true to apply it."
)


class PopulationLLM(Templated):
    """The ``population.llm:`` block: language-model steps run on top of the
    procedural population (see :mod:`persona_exp.population.llm`).

    Census populations: ``check`` (PERSONA 3.1's consistency check, profiles
    the model calls inconsistent are dropped; ``oversample`` draws that share
    of extra personas first so that ``size`` is still reached) and ``fields``
    (procedural attributes whose value the model rewrites as open text).
    Famous populations: ``generate_axes`` (the model names categories and
    people per axis, WikiPersonas G.1, instead of a people file).
    """

    TEMPLATE_FIELDS = {"check_template": ("persona",), "field_template": ("persona", "field", "age"), "people_template": ("axis",)}

    role: str = Field("generator", min_length=1, description="the model role (a key of models:) that answers these calls")
    check: bool = Field(False, description="census: drop the profiles the model calls inconsistent (PERSONA 3.1)")
    check_template: str = Field(CONSISTENCY, description="census: the yes/no consistency prompt; {persona} is filled per persona")
    fields: list[str] = Field(default_factory=list, description="census: procedural attributes the model writes as open text, e.g. [defining_quirks, lifestyle]")
    field_template: str = Field(OPEN_FIELD, description="census: the open-field prompt; {persona}, {field} and {age} (e.g. '34 years old') are filled per call")
    oversample: float = Field(0.0, ge=0, le=10, description="census, with check: draw this share of extra personas (0.1 = 10%) so that size is reached after the check")
    generate_axes: list[str] | None = Field(None, description="famous: ask the model for categories and people on these axes instead of reading a people file")
    people_template: str = Field(FAMOUS_PEOPLE, description="famous: the people-by-axis prompt; {axis} is filled per axis")

    @field_validator("fields")
    @classmethod
    def _procedural_fields(cls, value: list[str]) -> list[str]:
        for i, f in enumerate(value):
            if f not in PROCEDURAL_ATTRIBUTES:
                raise FieldError((i,), f"{f!r} is not a procedural attribute{did_you_mean(f, PROCEDURAL_ATTRIBUTES)}; "
                                       f"the model can write these: {', '.join(PROCEDURAL_ATTRIBUTES)}")
        no_duplicates(value)
        return value

    @field_validator("generate_axes")
    @classmethod
    def _axes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        value = [a.strip() for a in value]
        if not value or not all(value):
            raise ValueError("name at least one axis, each a non-empty text (e.g. [politics, religion])")
        seen: dict[str, str] = {}
        for a in value:
            key = re.sub(r"[^a-z0-9]+", "-", a.casefold()).strip("-")
            if key in seen:
                raise ValueError(f"the axes {seen[key]!r} and {a!r} are the same axis; list it once")
            seen[key] = a
        return value

    @model_validator(mode="after")
    def _oversample_needs_check(self) -> "PopulationLLM":
        if self.oversample and not self.check:
            raise ValueError("oversample only makes up for the personas the check drops; set check: true or leave oversample out")
        return self

    @property
    def active(self) -> bool:
        """Whether any step would call the model."""
        return bool(self.check or self.fields or self.generate_axes)


CENSUS_ONLY_LLM = ("check", "check_template", "fields", "field_template", "oversample")
FAMOUS_ONLY_LLM = ("generate_axes", "people_template")


class PopulationSpec(Strict):
    """The ``population:`` block of an experiment spec."""

    source: Literal["census", "famous", "persona"] = "census"
    path: str | None = Field(None, description="persona: the released PERSONA personas (JSONL, CSV or parquet; see population.released)")
    persons: str | None = Field(None, description="PUMS person file (csv or the Bureau's zip); None = the embedded default profile")
    housing: str | None = Field(None, description="PUMS housing file (optional): household language, type, children")
    dictionary: str | None = Field(None, description="PUMS data dictionary CSV (optional; embedded 2018 tables otherwise)")
    size: int | None = Field(None, ge=1, le=MAX_SIZE, description="number of personas (census: default 200; famous: default everyone)")
    filters: list[str] = Field(default_factory=list, description='e.g. "age >= 18", "sex == Female", "state == Wyoming"')
    consistency: Literal["count", "drop", "off"] = Field(
        "count",
        description="the consistency rules on census records: count (default: records that break a rule are genuine respondents, "
                    "kept and counted), drop (reject them; true means drop), off (false)")
    replace: bool = Field(True, description="draw with replacement (a census record may stand behind several personas); "
                                            "false: each record at most once, so size cannot exceed the records the filters keep")
    enrich: bool = Field(True, description="add the procedural attributes (Big Five, quirks, beliefs...)")
    people: str | None = Field(None, description="famous: YAML file of axes -> categories -> people; None = the embedded set")
    axes: list[str] | None = Field(None, description="famous: only these axes; None = all")
    llm: PopulationLLM | None = Field(None, description="language-model steps on top of the procedural population (consistency check, open fields, generated people)")

    @field_validator("filters")
    @classmethod
    def _filters_parse(cls, value: list[str]) -> list[str]:
        """Filter syntax and field names are checked when the spec is read, so a
        typo points at its line (whether its values match the data is known only
        once the source is read)."""
        for i, text in enumerate(value):
            try:
                parse_filter(text)
            except InvalidArgumentError as exc:
                raise FieldError((i,), str(exc).rstrip(".")) from None
        no_duplicates(value)
        return value

    @field_validator("consistency", mode="before")
    @classmethod
    def _consistency_flag(cls, value: object) -> object:
        """The yes/no form of older specs: true asked for rejection, false for none."""
        return {True: "drop", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("axes")
    @classmethod
    def _axes_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            no_duplicates(value)
        return value

    @model_validator(mode="after")
    def _fields_match_source(self) -> "PopulationSpec":
        census_only = ("persons", "housing", "dictionary", "filters", "consistency", "replace", "enrich")
        other = census_only if self.source == "famous" else ("people", "axes")
        if self.source == "persona":  # a file of finished personas: nothing to draw, filter or enrich
            other = (*census_only, "people", "axes", "llm")
            if self.path is None:
                raise ValueError("source: persona reads the released personas from a file; set population.path (JSONL, CSV or parquet)")
        elif self.path is not None:
            other = (*other, "path")
        # A field counts as given when it differs from its default, so a stored
        # (fully dumped) spec validates again.
        fields = type(self).model_fields
        wrong = [f for f in other if getattr(self, f) != fields[f].get_default(call_default_factory=True)]
        if self.llm is not None:
            llm_fields = PopulationLLM.model_fields
            llm_other = CENSUS_ONLY_LLM if self.source == "famous" else FAMOUS_ONLY_LLM
            wrong += [f"llm.{f}" for f in llm_other if getattr(self.llm, f) != llm_fields[f].get_default(call_default_factory=True)]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to a {self.source} population (source: {self.source})")
        if self.llm is not None and self.llm.generate_axes is not None:
            clash = [f for f in ("people", "axes") if getattr(self, f) is not None]
            if clash:
                raise ValueError(
                    f"{' and '.join(clash)} and llm.generate_axes exclude each other: the generated set has exactly the axes of "
                    "llm.generate_axes (leave out people/axes, or llm.generate_axes to read a people file)"
                )
        return self

    def procedural(self) -> "PopulationSpec":
        """The spec of the population the LLM steps start from: no ``llm``
        block, and for a census check with ``oversample`` the larger size
        actually drawn."""
        if self.llm is None:
            return self
        update: dict = {"llm": None}
        if self.source == "census" and self.llm.check and self.llm.oversample:
            update["size"] = drawn_size(self.size if self.size is not None else DEFAULT_SIZE, self.llm.oversample)
        return self.model_copy(update=update)


def drawn_size(size: int, oversample: float) -> int:
    """Personas drawn for ``size`` with an ``oversample`` share of extras (rounded up)."""
    return size + math.ceil(round(size * oversample, 9))


# --------------------------------------------------------------------------- sources


def _file_state(path: str | None) -> tuple[str, int, int] | None:
    if path is None:
        return None
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return (str(p), -1, -1)  # read_pums reports the missing file
    return (str(p.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=2)
def _census_source(persons: tuple, housing: tuple | None, dictionary: tuple | None) -> pl.DataFrame:
    codes = resolve(dictionary[0] if dictionary else None)
    pums = read_pums(
        persons[0],
        housing[0] if housing else None,
        columns=PERSON_VARIABLES,
        housing_columns=HOUSING_VARIABLES,
        dictionary=codes,
    )
    frame = pums.frame
    checked = [c for c in (*PERSON_VARIABLES, *HOUSING_VARIABLES) if c in frame.columns]
    found = unmapped_codes(frame, codes, columns=checked)
    if found:
        shown = "; ".join(f"{var}: {', '.join(repr(c) for c in list(codes_)[:5])}" for var, codes_ in found.items())
        raise DataError(f"PUMS person file {persons[0]} has codes without a label in {codes.source}: {shown}.")
    decoded = decode(frame, codes, columns=list(_LABELS), suffix="_label")
    derived = derive_census(decoded)
    must_be_known = [c for c in CENSUS_ATTRIBUTES if c not in HOUSING_ATTRIBUTES]
    nulls = {c: n for c, n in derived.select(must_be_known).null_count().row(0, named=True).items() if n}
    if nulls:
        column = next(iter(nulls))
        raise DataError(
            f"PUMS person file {persons[0]}: {nulls[column]} row(s) have a value of {column} that persona-exp "
            f"cannot map ({', '.join(f'{c}: {n}' for c, n in nulls.items())})."
        )
    return derived


def source_frame(spec: PopulationSpec) -> tuple[pl.DataFrame, str]:
    """The weighted frame personas are drawn from, and a description of it."""
    if spec.persons is None:
        if spec.housing is not None:
            raise DataError("population.housing is set but population.persons is not; give the PUMS person file too.")
        # The shipped calibrated PUMS records, decoded exactly as a PUMS file is. No state: the
        # seed's twelve states are not a national sample of states. No housing record: the
        # household attributes stay null (unknown), as for a person file read without one.
        decoded = decode(default_records(), resolve(None), columns=list(_LABELS), suffix="_label")
        frame = derive_census(decoded).with_columns(pl.lit(None, dtype=pl.String).alias("state"))
        return frame, default_description()
    frame = _census_source(_file_state(spec.persons), _file_state(spec.housing), _file_state(spec.dictionary))
    what = f"PUMS person file {spec.persons}" + (f" joined to housing file {spec.housing}" if spec.housing else "")
    return frame, what


def census_pool(spec: PopulationSpec) -> tuple[pl.DataFrame, str, pl.DataFrame, dict]:
    """The source frame, its description, the rows the spec's filters keep
    (what personas are drawn from, and what representativeness compares
    with) and the filter report."""
    source, described = source_frame(spec)
    pool, filter_report = apply_filters(source, spec.filters)
    return source, described, pool, filter_report


# --------------------------------------------------------------------------- drawing


def _draw_seed(seed: int, attempt: int) -> int:
    return xxhash.xxh3_64_intdigest(f"population-draw:{int(seed)}:{attempt}".encode())


def _draw(pool: pl.DataFrame, size: int, seed: int, rules: tuple, *, drop: bool = True, replace: bool = True) -> tuple[pl.DataFrame, int, dict[str, int], int]:
    """The first ``size`` rows of one seeded stream of weighted draws (in draw
    order, with ``_record``: the pool row each is), the number of draws that
    took, per rule the draws among them that break it, and the rounds used.
    With ``drop`` the rows that break a rule are skipped; otherwise they are
    kept and only counted (a census record is a real person). Without
    ``replace`` the stream is a weighted random order of the pool's rows.

    One stream, whatever the size: the sampler's first n draws are the same
    for every longer request, so a larger population begins with the smaller
    one's personas (prefix-stable: growing ``size`` keeps every persona and
    its calls). A round that falls short asks the same stream for more."""
    weights = pool["weight"].to_numpy()
    records = int((weights > 0).sum())
    if not replace and size > records:
        raise DataError(f"population.size {size:,} is more than the {records:,} census records the filters keep, and population.replace "
                        "is false (each record at most once): lower the size, relax the filters, or set population.replace: true.")
    n = size
    for attempt in range(1, MAX_ATTEMPTS + 1):
        idx = (stats.weighted_sample(weights, n, replace=True, seed=_draw_seed(seed, 0)) if replace
               else stats.weighted_sample(weights, n, replace=False, seed=_draw_seed(seed, 0), in_draw_order=True))
        batch = pool[idx].with_columns(pl.Series("_record", idx))
        if not rules or not drop:
            flags = violations(batch, rules) if rules else None
            return batch, n, {r.name: int(flags[r.name].sum()) for r in rules}, attempt
        flags = violations(batch, rules)
        ok = ~flags.select(pl.any_horizontal(pl.all()).alias("bad"))["bad"]
        accepted = int(ok.sum())
        if accepted >= size:
            used = int(ok.arg_true()[size - 1]) + 1  # draws up to the size-th accepted one
            rejected = {r.name: int(flags[r.name].head(used).sum()) for r in rules}
            return batch.head(used).filter(ok.head(used)), used, rejected, attempt
        cap = size * MAX_ATTEMPTS if replace else records
        if n >= cap:
            break
        n = min(cap, max(2 * n, math.ceil(n * size / max(accepted, 1) * 1.1)))
    rejected = {r.name: int(flags[r.name].sum()) for r in rules}
    raise DataError(
        f"the consistency rules rejected too many draws: {accepted} of {size} personas after {n} draws "
        f"({', '.join(f'{k}: {v}' for k, v in rejected.items() if v)}); relax the filters or set "
        "population.consistency: count (keep the records and count them)."
    )


def _repeats_note(distinct: int, size: int, pool: int) -> list[str]:
    """A warning when many personas are copies of the same census records
    (sampling with replacement from a small source repeats people)."""
    if distinct >= 0.9 * size:
        return []
    return [f"only {distinct:,} distinct census records stand behind the {size:,} personas (the source has {pool:,} rows after the "
            "filters; a record drawn k times is k personas with the same census attributes): use a larger source, or fewer personas."]


def _enrich(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    inputs = frame.select("persona_id", "age", "sex", "employment_status", pl.col("_occupation_raw").alias("occupation"))
    extra = enrich(inputs, seed=seed)
    extra = extra.with_columns(big_five_text(extra)).drop(BIG_FIVE_COLUMNS)
    keep = [c for c in ENRICHED_COLUMNS if c not in BIG_FIVE_COLUMNS] + ["big_five_scores"]
    return frame.drop([c for c in keep if c in frame.columns]).hstack(extra.select(keep))


def build_population(spec: PopulationSpec, *, seed: int) -> Population:
    """Draw ``spec.size`` personas from the spec's source (see the module docstring).

    This is the procedural population only: the ``llm`` block's steps need
    model calls and run on top of it (:mod:`persona_exp.population.llm`; the
    pipeline builds ``spec.procedural()`` here, then applies them).
    """
    if not isinstance(spec, PopulationSpec):
        spec = PopulationSpec.model_validate(spec)
    if spec.source == "famous" and spec.llm is not None and spec.llm.generate_axes is not None:
        raise InvalidArgumentError(
            "population.llm.generate_axes asks a model for the people, so the population cannot be built without one; "
            "use persona_exp.population.llm.build_generated_famous(spec, ctx, seed=...) or `persona-exp population`."
        )
    if spec.source == "famous":
        return build_famous_from_spec(spec, seed=seed)
    size = spec.size if spec.size is not None else DEFAULT_SIZE
    for f in spec.filters:  # syntax errors first, before any file is read
        parse_filter(f)
    source, described, pool, filter_report = census_pool(spec)
    rules = tuple(RULES) if spec.consistency != "off" else ()
    chosen, drawn, broken, attempts = _draw(pool, size, seed, rules, drop=spec.consistency == "drop", replace=spec.replace)
    # Ids by draw position, at least four digits whatever the size: persona p0042 is the same person in a larger population.
    chosen = chosen.with_columns(pl.Series("persona_id", [f"p{i:04d}" for i in range(1, chosen.height + 1)], dtype=pl.String))
    distinct = chosen["_record"].n_unique()
    why = ("no housing file: set population.housing to the PUMS housing file of these persons" if spec.persons else
           "no housing records in the embedded default: give population.persons and population.housing (PUMS files) for household attributes")
    no_housing = {a: why for a in HOUSING_ATTRIBUTES} if spec.housing is None else {}
    represent = representativeness(chosen, pool, missing=no_housing)
    if spec.enrich:
        chosen = _enrich(chosen, seed)
    else:
        chosen = chosen.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in PROCEDURAL_ATTRIBUTES])
    frame = chosen.select(
        pl.col("persona_id"),
        pl.col("weight").cast(pl.Float64),
        pl.col("age").cast(pl.Int64),
        *[pl.col(c).cast(pl.String) for c in ATTRIBUTE_NAMES if c != "age"],
    )
    report = {
        "source": described,
        "spec": spec.model_dump(),
        "seed": int(seed),
        "size": frame.height,
        "source_rows": source.height,
        "drawn": drawn,
        "draw_rounds": attempts,
        "consistency": spec.consistency,
        # drop: draws rejected by each rule; count: personas (real records, kept) that break it
        ("rejected" if spec.consistency == "drop" else "flagged"): broken,
        "distinct_records": distinct,
        "filters": filter_report,
        "representativeness": represent,
        "notes": [CHECK_OFF_NOTE, *_repeats_note(distinct, frame.height, pool.height)],
    }
    return Population(frame, report, population_key(frame))
