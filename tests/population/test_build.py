"""Building populations from the embedded default (calibrated PUMS records): shape, determinism,
dependence kept, filters, consistency rules, persistence.

Expected figures are written out here from the published ACS 2017 1-year tables, not read back
from the package's profile file, so a transcription slip there fails a test.
"""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from persona_exp.errors import DataError, InvalidArgumentError
from persona_exp.population import (
    ATTRIBUTE_NAMES,
    RULES,
    PopulationSpec,
    build_population,
    check_consistency,
    load_population,
    parse_filter,
    print_representativeness,
    save_population,
)
from persona_exp.population.attributes import EDUCATION_LEVELS
from persona_exp.population.build import source_frame
from persona_exp.population.profile import census_profile

GRADUATE = ("Master's degree", "Professional degree beyond a bachelor's degree", "Doctorate degree")

# ACS 2017 1-year, table B15001 (United States): graduate or professional degree / population, by age.
B15001_GRADUATE = {"18-24": (97_179 + 143_690, 15_827_557 + 14_992_855), "25-34": (2_028_771 + 2_859_820, 22_744_325 + 22_221_410)}
# Table S0101: total population 2017.
S0101_TOTAL = 325_719_178
HOUSEHOLD = ("household_language", "household_type", "family_presence_and_age")


def default_frame() -> pl.DataFrame:
    """The weighted frame the default population is drawn from."""
    return source_frame(PopulationSpec())[0]


def test_default_builds_offline_with_every_attribute(default_population):
    frame = default_population.frame
    assert frame.height == 200
    assert frame.columns == ["persona_id", "weight", *ATTRIBUTE_NAMES]
    assert frame.schema["age"] == pl.Int64 and frame.schema["weight"] == pl.Float64
    assert all(frame.schema[c] == pl.String for c in ATTRIBUTE_NAMES if c != "age")
    # the default knows every value but the household ones: its records come without a housing record
    nulls = {c: n for c, n in frame.null_count().row(0, named=True).items() if n}
    assert nulls == {c: 200 for c in HOUSEHOLD}
    assert frame["persona_id"].n_unique() == 200
    big_five = frame["big_five_scores"][0]
    assert [part.split(": ")[0] for part in big_five.split(", ")] == ["Openness", "Conscientiousness", "Extraversion", "Agreeableness", "Neuroticism"]
    report = default_population.report
    assert report["size"] == 200 and report["drawn"] >= 200
    assert report["consistency"] == "count" and set(report["flagged"]) == {r.name for r in RULES}  # real records: kept, counted
    assert {e["attribute"] for e in report["representativeness"]} >= {"age", "sex", "education", "income"}
    measured = [e for e in report["representativeness"] if e["attribute"] not in HOUSEHOLD]
    assert all(0 <= e["tvd"] <= 1 for e in measured)
    assert {e["attribute"]: e["tvd"] for e in report["representativeness"] if e["attribute"] in HOUSEHOLD} == dict.fromkeys(HOUSEHOLD)


def test_same_seed_same_population_other_seed_other(default_population):
    again = build_population(PopulationSpec(), seed=0)
    assert again.key == default_population.key
    assert again.frame.equals(default_population.frame)
    other = build_population(PopulationSpec(), seed=1)
    assert other.key != default_population.key


def test_default_frame_is_weighted_to_the_published_population():
    frame = default_frame()
    assert frame.height == 159_604  # the twelve states' person records
    assert frame["weight"].sum() == pytest.approx(S0101_TOTAL, rel=1e-6)
    # S0101: women 85 and over 4,057,371 of 325,719,178
    share = frame.filter((pl.col("sex") == "Female") & (pl.col("age") >= 85))["weight"].sum() / S0101_TOTAL
    assert share == pytest.approx(4_057_371 / S0101_TOTAL, rel=1e-6)
    # B03002: Hispanic or Latino 58,846,134
    assert frame.filter(pl.col("race") == "Hispanic or Latino")["weight"].sum() == pytest.approx(58_846_134, rel=1e-6)
    assert default_frame().equals(frame)


def _weighted_share(frame: pl.DataFrame, mask: pl.Expr, within: pl.Expr) -> float:
    sub = frame.filter(within)
    return float(sub.filter(mask)["weight"].sum() / sub["weight"].sum())


def test_education_depends_on_age_as_published():
    frame = default_frame()
    grad = pl.col("education").is_in(GRADUATE)
    young = _weighted_share(frame, grad, pl.col("age").is_between(18, 24))
    older = _weighted_share(frame, grad, pl.col("age").is_between(25, 34))
    published_young = B15001_GRADUATE["18-24"][0] / B15001_GRADUATE["18-24"][1]
    published_older = B15001_GRADUATE["25-34"][0] / B15001_GRADUATE["25-34"][1]
    assert published_young < published_older
    assert young < older
    assert older == pytest.approx(published_older, rel=1e-6)  # B15001 is a control of the calibration
    assert young == pytest.approx(published_young, rel=1e-6)
    kids = frame.filter(pl.col("age") < 18)
    assert not kids["education"].is_in(GRADUATE).any()


def test_employment_income_marriage_depend_on_age_and_sex():
    frame = default_frame()
    employed = pl.col("employment_status") == "Employed"
    assert _weighted_share(frame, employed, pl.col("age").is_between(35, 44)) > 0.7
    assert _weighted_share(frame, employed, pl.col("age") >= 75) < 0.15
    married = pl.col("marital_status") == "Married"
    assert _weighted_share(frame, married, pl.col("age").is_between(20, 24)) < 0.2
    assert _weighted_share(frame, married, pl.col("age").is_between(45, 54)) > 0.5
    rich = pl.col("_income") >= 75_000
    adults = pl.col("age") >= 25
    assert _weighted_share(frame, rich, adults & employed) > 2 * _weighted_share(frame, rich, adults & ~employed)
    assert _weighted_share(frame, rich, adults & (pl.col("sex") == "Male")) > _weighted_share(frame, rich, adults & (pl.col("sex") == "Female"))
    # universes: no income under 15, no fertility for men, difficulties only with a disability
    assert set(frame.filter(pl.col("age") < 15)["income"]) == {"Not applicable"}
    assert set(frame.filter(pl.col("sex") == "Male")["fertility"]) == {"Not applicable"}
    no_dis = frame.filter(pl.col("disability") == "Without a disability")
    assert not any((no_dis[c] == "Yes").any() for c in ("cognitive_difficulty", "vision_difficulty", "hearing_difficulty"))
    assert set(EDUCATION_LEVELS) >= set(frame.filter(pl.col("age") >= 18)["education"])


def test_profile_holds_published_counts_not_rows():
    profile = census_profile()
    assert profile["age_sex"]["table"] == "S0101"
    assert sum(profile["age_sex"]["Male"]) == 160_402_504 and sum(profile["age_sex"]["Female"]) == 165_316_674
    assert profile["race"]["counts"]["Hispanic or Latino"] == 58_846_134  # B03002
    assert profile["employment"]["Male"][0] == [73_877, 2_639_876, 611_132, 5_574_538]  # B23001, men 16-19
    text = json.dumps(profile)
    assert "SERIALNO" not in text and "PWGTP" not in text


def test_filters_select_and_are_reported():
    pop = build_population(PopulationSpec(size=60, filters=["age >= 65", "sex == female"]), seed=4)
    assert pop.frame["age"].min() >= 65
    assert set(pop.frame["sex"]) == {"Female"}
    steps = pop.report["filters"]["steps"]
    assert [s["filter"] for s in steps] == ["age >= 65", "sex == female"]
    assert pop.report["filters"]["rows_after"] < pop.report["filters"]["rows_before"]
    listed = build_population(
        PopulationSpec(size=40, filters=["education in [\"Bachelor's degree\", Master's degree]", "age < 40"]), seed=4
    )
    assert set(listed.frame["education"]) <= {"Bachelor's degree", "Master's degree"}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("shoe_size >= 10", "shoe_size"),
        ("age ~ 10", "age ~ 10"),
        ("sex >= Female", "sex >= Female"),
        ("age >= old", "old"),
        ("ideology == Liberal", "ideology"),
        ("education in Bachelor's degree", "education in"),
        ("age >=", "age >="),
    ],
)
def test_bad_filters_name_the_filter(text, named):
    with pytest.raises(InvalidArgumentError) as err:
        parse_filter(text)
    assert named in str(err.value)
    with pytest.raises(ValueError, match=re.escape(named)):  # the spec refuses it (pydantic's ValidationError)
        build_population(PopulationSpec(size=5, filters=[text]), seed=0)


def test_filter_that_matches_nobody():
    with pytest.raises(DataError, match="state == Wyoming"):
        build_population(PopulationSpec(size=5, filters=["state == Wyoming"]), seed=0)  # the default is national


def test_spec_forbids_unknown_keys_and_bad_sizes():
    with pytest.raises(ValueError):
        PopulationSpec(sise=10)
    with pytest.raises(ValueError):
        PopulationSpec(size=0)


def test_consistency_rules_reject_planted_rows_with_counts():
    good = default_frame().filter(pl.col("age") == 40).head(5)
    bad = pl.concat(
        [
            default_frame().filter(pl.col("age") == 10).head(1).with_columns(pl.lit(250_000, dtype=pl.Int64).alias("_income")),
            default_frame().filter(pl.col("age") == 19).head(1).with_columns(pl.lit("Doctorate degree").alias("education")),
            default_frame().filter(pl.col("age") == 12).head(2).with_columns(pl.lit("Married").alias("marital_status")),
            default_frame().filter(pl.col("age") == 8).head(1).with_columns(pl.lit("Veteran").alias("veteran_status")),
            default_frame().filter((pl.col("sex") == "Male") & (pl.col("age") == 30)).head(1)
            .with_columns(pl.lit("Gave birth in the past 12 months").alias("fertility")),
        ]
    )
    kept, counts = check_consistency(pl.concat([good, bad]))
    assert kept.height == 5 and kept.equals(good)
    assert counts["child_with_income"] == 1 and counts["minor_with_high_income"] == 1
    assert counts["graduate_degree_under_21"] == 1
    assert counts["married_under_15"] == 2
    assert counts["veteran_under_17"] == 1
    assert counts["birth_outside_universe"] == 1
    assert counts["degree_under_18"] == 0


def test_build_redraws_after_rejections(monkeypatch):
    import persona_exp.population.build as build

    # a rule that rejects every third draw: the build still reaches its size and counts the rejections
    from persona_exp.population.consistency import Rule

    rule = Rule("odd_age", "test rule", pl.col("age") % 3 == 0)
    monkeypatch.setattr(build, "RULES", (*RULES, rule))
    pop = build.build_population(PopulationSpec(size=100, enrich=False, consistency="drop"), seed=3)
    assert pop.frame.height == 100
    assert (pop.frame["age"] % 3 != 0).all()
    assert pop.report["rejected"]["odd_age"] > 0
    assert pop.report["drawn"] >= 100 + pop.report["rejected"]["odd_age"]
    # By default census records are real people: kept, and the rule's hits counted
    kept = build.build_population(PopulationSpec(size=100, enrich=False), seed=3)
    assert kept.report["flagged"]["odd_age"] == int((kept.frame["age"] % 3 == 0).sum()) > 0
    assert kept.report["drawn"] == 100 and "rejected" not in kept.report
    # true and false, the yes/no form of older specs, mean drop and off
    assert PopulationSpec(consistency=True).consistency == "drop" and PopulationSpec(consistency=False).consistency == "off"


def test_without_replacement_each_record_once_and_prefix_stable():
    small = build_population(PopulationSpec(size=300, replace=False, enrich=False, filters=["age >= 90"]), seed=2)
    large = build_population(PopulationSpec(size=600, replace=False, enrich=False, filters=["age >= 90"]), seed=2)
    assert small.report["distinct_records"] == 300 and large.report["distinct_records"] == 600
    assert large.frame.head(300).equals(small.frame)
    with pytest.raises(DataError, match="population.replace"):
        build_population(PopulationSpec(size=10**6, replace=False, enrich=False, filters=["age >= 90"]), seed=2)


def test_without_enrichment_procedural_columns_are_null():
    pop = build_population(PopulationSpec(size=20, enrich=False), seed=0)
    assert pop.frame["religion"].null_count() == 20 and pop.frame["sex"].null_count() == 0


def test_save_and_load_round_trip_with_key_check(tmp_path, default_population):
    path = save_population(default_population, tmp_path / "pop.parquet")
    assert (tmp_path / "pop.json").is_file()
    loaded = load_population(path)
    assert loaded.key == default_population.key
    assert loaded.frame.equals(default_population.frame)
    assert loaded.report["size"] == 200
    tampered = default_population.frame.with_columns(pl.lit("Male").alias("sex"))
    tampered.write_parquet(path)
    with pytest.raises(DataError, match="does not match"):
        load_population(path)
    with pytest.raises(DataError, match="does not exist"):
        load_population(tmp_path / "missing.parquet")


def test_the_key_tells_apart_what_differs_and_only_that():
    from persona_exp.population.stored import population_key

    base = pl.DataFrame({"a": ["ab", "c", None], "n": [1, 2, None], "x": [0.5, float("nan"), 2.0]})
    same = pl.DataFrame({"a": ["ab", "c", None], "n": [1, 2, None], "x": [0.5, float("nan"), 2.0]})
    assert population_key(base) == population_key(same)
    variants = [
        base.with_columns(pl.Series("a", ["a", "bc", None])),  # same bytes, other boundaries
        base.with_columns(pl.Series("a", ["ab", "c", ""])),  # empty text is not missing
        base.with_columns(pl.Series("n", [1, 2, 0])),  # zero is not missing
        base.with_columns(pl.col("n").cast(pl.Float64)),  # same numbers, other dtype
        base.with_columns(pl.Series("x", [0.5, float("nan"), 2.0000001])),
        base.select("n", "a", "x"),  # column order
        base.rename({"x": "y"}),
        base.head(2),
    ]
    keys = {population_key(v) for v in variants}
    assert len(keys) == len(variants) and population_key(base) not in keys


def test_a_population_saved_under_an_older_key_scheme_is_stale(tmp_path, default_population):
    from persona_exp.population.stored import StalePopulationError

    path = save_population(default_population, tmp_path / "pop.parquet")
    side = tmp_path / "pop.json"
    meta = json.loads(side.read_text(encoding="utf-8"))
    del meta["key_scheme"]
    side.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(StalePopulationError, match="key scheme"):
        load_population(path)


def test_representativeness_table_prints(default_population):
    from rich.console import Console

    console = Console(record=True, width=120)
    print_representativeness(default_population, console=console)
    text = console.export_text()
    assert "education" in text and "TVD" in text


def test_an_absurd_population_size_is_a_spec_error_not_an_abort(tmp_path, spec_error):
    path = tmp_path / "s.yaml"
    path.write_text("name: d\nmodels:\n  generator: {model: sim/generator}\n  judge: {model: sim/judge}\nexperiment: {kind: loo}\npopulation: {size: 1000000000000}\n")
    spec_error(path, ["6:20", "population.size", "less than or equal to 10000000"])


@pytest.mark.parametrize(("filters", "consistency"), [([], "count"), (["age >= 18"], "count"), ([], "drop")])
def test_a_larger_population_begins_with_the_smaller_one(filters, consistency, monkeypatch):
    """Prefix stability: growing population.size keeps every persona (id, census
    attributes and enrichment), so a scaled-up run pays only for new personas;
    also when a rule drops draws (a planted one, as real records break few)."""
    import persona_exp.population.build as build
    from persona_exp.population.consistency import Rule

    monkeypatch.setattr(build, "RULES", (*RULES, Rule("age_ends_in_7", "test rule", pl.col("age") % 10 == 7)))
    small = build.build_population(PopulationSpec(source="census", size=250, filters=filters, consistency=consistency), seed=3)
    large = build.build_population(PopulationSpec(source="census", size=600, filters=filters, consistency=consistency), seed=3)
    assert large.frame.head(250).equals(small.frame)
    assert large.frame["persona_id"].n_unique() == 600
    # The rule's hits counted are those among the draws each size used, so they can only grow.
    counted = "rejected" if consistency == "drop" else "flagged"
    assert small.report[counted]["age_ends_in_7"] > 0
    assert all(large.report[counted][k] >= v for k, v in small.report[counted].items())
    assert large.report["drawn"] >= small.report["drawn"] >= 250
