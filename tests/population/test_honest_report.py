"""A population report says what it does not know: attributes without data
are missing (with why), not a perfect match; repeated census records are
counted and warned about; incomes are in the data year's constant dollars."""

from __future__ import annotations

import zipfile

import polars as pl

from persona_exp.population import PopulationSpec, build_population
from persona_exp.population.build import HOUSING_ATTRIBUTES


def test_household_attributes_without_a_housing_file_are_missing_not_matched(wyoming_persons):
    pop = build_population(PopulationSpec(source="census", persons=str(wyoming_persons), size=400), seed=2)
    entries = {e["attribute"]: e for e in pop.report["representativeness"]}
    for name in HOUSING_ATTRIBUTES:
        assert entries[name]["tvd"] is None and "no housing file" in entries[name]["missing"], entries[name]
        assert pop.frame[name].null_count() == pop.frame.height
    assert all(isinstance(e["tvd"], float) for n, e in entries.items() if n not in HOUSING_ATTRIBUTES)


def test_distinct_records_are_counted_and_few_of_them_are_warned_about(wyoming_persons):
    few = build_population(PopulationSpec(source="census", persons=str(wyoming_persons), size=3000, filters=["age >= 90"]), seed=1)
    assert few.report["distinct_records"] < 3000
    assert any(f"only {few.report['distinct_records']:,} distinct census records" in n for n in few.report["notes"])
    many = build_population(PopulationSpec(source="census", persons=str(wyoming_persons), size=200), seed=1)
    assert many.report["distinct_records"] >= 0.9 * 200
    assert not any("distinct census records" in n for n in many.report["notes"])


def test_incomes_apply_adjinc(wyoming_persons):
    with zipfile.ZipFile(wyoming_persons) as zf:
        raw = pl.read_csv(zf.read("psam_p56.csv"), columns=["PINCP", "ADJINC"], infer_schema=False)
    raw = raw.filter(pl.col("PINCP").is_not_null() & (pl.col("PINCP") != "0"))
    expected = {round(int(p) * int(a) / 1_000_000) for p, a in raw.iter_rows()}
    assert {int(a) for a in raw["ADJINC"]} == {1013097}  # the 2018 factor
    pop = build_population(PopulationSpec(source="census", persons=str(wyoming_persons), size=500), seed=4)
    amounts = pop.frame["income"].str.replace_all(r"[$,]", "").str.replace("Loss of ", "-")
    incomes = {int(v) for v in amounts.to_list() if v and v.lstrip("-").isdigit()}
    assert incomes and incomes <= expected
    unadjusted = {int(p) for p, _ in raw.iter_rows()}
    assert incomes - unadjusted  # most amounts change by the factor (1.3%)
