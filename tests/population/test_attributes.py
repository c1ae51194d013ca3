"""The attribute list (PERSONA appendix A), rendering and leave-one-out variants."""

from __future__ import annotations

import re
import warnings

import polars as pl
import pytest

from persona_exp.errors import DataError, InvalidArgumentError
from persona_exp.execute.sim import persona_attributes
from persona_exp.population import (
    ATTRIBUTES,
    LooShortfallWarning,
    attribute,
    loo_variants,
    render_persona,
)

# Appendix A of the PERSONA paper, in its order.
PAPER = (
    "age", "sex", "race", "ancestry", "household language", "education", "employment status", "class of worker",
    "industry category", "occupation category", "detailed job description", "income", "marital status",
    "household type", "family presence and age", "place of birth", "citizenship", "veteran status", "disability",
    "health insurance", "big five scores", "defining quirks", "mannerisms", "personal time", "lifestyle", "ideology",
    "political views", "religion", "cognitive difficulty", "ability to speak English", "vision difficulty",
    "fertility", "hearing difficulty",
)  # fmt: skip
DIFFICULTIES = ("cognitive_difficulty", "vision_difficulty", "hearing_difficulty")


def test_the_33_attributes_in_the_papers_order():
    assert len(ATTRIBUTES) == 33
    assert [a.label.lower() for a in ATTRIBUTES] == [p.lower() for p in PAPER]
    assert [a.name for a in ATTRIBUTES] == [p.lower().replace(" ", "_") for p in PAPER]
    assert {a.kind for a in ATTRIBUTES} == {"census", "procedural"}
    procedural = {a.name for a in ATTRIBUTES if a.kind == "procedural"}
    assert procedural == {
        "detailed_job_description", "big_five_scores", "defining_quirks", "mannerisms", "personal_time",
        "lifestyle", "ideology", "political_views", "religion",
    }  # fmt: skip


def test_attribute_lookup_by_name_or_label():
    assert attribute("household_language").label == "Household language"
    assert attribute("Ability to speak English").name == "ability_to_speak_english"
    assert attribute("VETERAN STATUS").name == "veteran_status"


def test_unknown_attribute_names_it_and_lists_the_known_ones():
    with pytest.raises(InvalidArgumentError) as err:
        attribute("shoe_size")
    assert "shoe_size" in str(err.value)
    assert "fertility" in str(err.value) and "hearing_difficulty" in str(err.value)


def test_render_lines_one_label_value_line_per_attribute_in_canonical_order(default_population):
    row = default_population.frame.row(0, named=True)
    text = render_persona(row, ["sex", "age", "Marital status"])
    assert text == f"Age: {row['age']}\nSex: {row['sex']}\nMarital status: {row['marital_status']}"
    full = render_persona(row).splitlines()
    # The default's records come without a housing record: the three household attributes are
    # unknown (null) and left out; every other attribute has its line, in canonical order.
    household = {"household_language", "household_type", "family_presence_and_age"}
    assert len(full) == 33 - len(household)
    assert [line.split(": ", 1)[0] for line in full] == [a.label for a in ATTRIBUTES if a.name not in household]
    assert all(re.fullmatch(r"[A-Z][A-Za-z ]+: \S.*", line) for line in full)


def test_rendered_lines_are_what_the_simulated_judge_reads(default_population):
    for row in default_population.frame.head(20).iter_rows(named=True):
        parsed = persona_attributes(render_persona(row))
        assert len(parsed) == 30  # the 33 but the three household attributes, unknown without a housing record
        assert parsed["big five scores"] == row["big_five_scores"]
        assert parsed["ability to speak english"] == row["ability_to_speak_english"]
        assert parsed["age"] == str(row["age"])


def test_render_prose_and_unknown_values():
    row = {"age": 34, "sex": "Female", "education": "Bachelor's degree", "household_type": None}
    assert render_persona(row, style="prose") == "This person is a 34-year-old female. Education: Bachelor's degree."
    assert render_persona(row) == "Age: 34\nSex: Female\nEducation: Bachelor's degree"  # null left out
    with pytest.raises(InvalidArgumentError, match="shoe_size"):
        render_persona(row, ["age", "shoe_size"])
    with pytest.raises(InvalidArgumentError, match="style"):
        render_persona(row, style="yaml")  # type: ignore[arg-type]


def test_loo_disability_types_only_for_persons_with_a_disability(default_population):
    frame = default_population.frame
    disabled = set(frame.filter(pl.col("disability") == "With a disability")["persona_id"])
    assert 0 < len(disabled) < frame.height
    rows = {r["persona_id"]: r for r in frame.iter_rows(named=True)}
    for name in DIFFICULTIES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LooShortfallWarning)
            pairs = loo_variants(frame, name, n_personas=40, k=3, seed=1)
        assert pairs and {p.persona_id for p in pairs} <= disabled
        for p in pairs:
            assert name not in p.base and len(p.base) == 3
            assert set(p.with_attribute) == set(p.base) | {name}
            order = [a.name for a in ATTRIBUTES]
            assert list(p.with_attribute) == sorted(p.with_attribute, key=order.index)
            for other in p.base:  # base attributes apply to that persona too
                assert attribute(other).applies(rows[p.persona_id])


def test_loo_fertility_only_for_women_15_to_50(default_population):
    frame = default_population.frame
    pairs = loo_variants(frame, "fertility", n_personas=20, seed=3)
    rows = {r["persona_id"]: r for r in frame.iter_rows(named=True)}
    assert len(pairs) == 20
    for p in pairs:
        r = rows[p.persona_id]
        assert r["sex"] == "Female" and 15 <= r["age"] <= 50


def test_loo_is_deterministic_in_seed_and_attribute(default_population):
    frame = default_population.frame
    a = loo_variants(frame, "religion", n_personas=30, seed=7)
    assert a == loo_variants(frame, "religion", n_personas=30, seed=7)
    assert a != loo_variants(frame, "religion", n_personas=30, seed=8)
    # Contexts differ by attribute (the draws are keyed by seed, attribute and persona) ...
    assert [p.base for p in a] != [p.base for p in loo_variants(frame, "lifestyle", n_personas=30, seed=7)]
    assert "persona_id" not in {x for p in a for x in p.with_attribute}
    assert "weight" not in {x for p in a for x in p.with_attribute}


def test_loo_takes_the_first_applicable_personas_so_a_larger_population_keeps_them(default_population):
    """The population is a sequence of independent draws: its first personas to
    whom an attribute applies are a random sample of them, and a population
    that begins with this one (a larger size) yields the same choice."""
    frame = default_population.frame
    women_15_50 = frame.filter((pl.col("sex") == "Female") & pl.col("age").is_between(15, 50))["persona_id"].to_list()
    pairs = loo_variants(frame, "fertility", n_personas=12, seed=1)
    assert [p.persona_id for p in pairs] == women_15_50[:12]
    assert [p.persona_id for p in loo_variants(frame.head(frame.height // 2), "fertility", n_personas=12, seed=1)] == women_15_50[:12]


def test_loo_uses_every_applicable_persona_when_too_few_and_says_so(default_population):
    frame = default_population.frame
    applicable = frame.filter(pl.col("veteran_status") == "Veteran").height
    assert 0 < applicable < 40
    small = frame.with_columns(
        pl.when(pl.col("veteran_status") == "Veteran").then(pl.col("veteran_status")).otherwise(pl.lit("Not applicable")).alias("veteran_status")
    )
    with pytest.warns(LooShortfallWarning, match="veteran_status"):
        pairs = loo_variants(small, "veteran_status", n_personas=40)
    assert len(pairs) == applicable and pairs.shortfall and pairs.available == applicable and pairs.requested == 40


def test_loo_bad_arguments(default_population):
    with pytest.raises(InvalidArgumentError, match="shoe_size"):
        loo_variants(default_population.frame, "shoe_size")
    with pytest.raises(InvalidArgumentError, match="k"):
        loo_variants(default_population.frame, "age", k=0)
    with pytest.raises(DataError, match="persona_id"):
        loo_variants(default_population.frame.drop("persona_id"), "age")
