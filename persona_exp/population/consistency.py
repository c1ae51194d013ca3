"""Consistency rules: impossible census profiles are rejected before enrichment.

PERSONA (section 3.1) sampled attributes "that cannot easily be
self-inconsistent, such as someone under 18 making hundreds of thousands of
dollars a year" and then asked GPT-4 to drop inconsistent profiles (about
8.5%). These rules are the deterministic first half: each is a name, a polars
predicate that is True for an impossible row, and the reason shown in reports.
Real PUMS rows rarely break them; they guard against a synthetic source or a
filtered, reweighted one producing combinations no person has. The language
model check is the second half, ``population.llm.check: true``
(:func:`persona_exp.population.llm.consistency_check`): it runs on the
population these rules let through, with the run's models and call cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import polars as pl

from persona_exp.population.attributes import NOT_APPLICABLE

__all__ = ["RULES", "Rule", "check_consistency", "violations"]

GRADUATE = ("Master's degree", "Professional degree beyond a bachelor's degree", "Doctorate degree")
DEGREE = ("Associate's degree", "Bachelor's degree", *GRADUATE)
EVER_MARRIED = ("Married", "Widowed", "Divorced", "Separated")
SERVED = ("Veteran", "Active duty", "Reserves or National Guard training only")
IN_LABOR_FORCE = ("Employed", "Unemployed", "In the armed forces")
DIFFICULTIES = ("cognitive_difficulty", "vision_difficulty", "hearing_difficulty")


@dataclass(frozen=True)
class Rule:
    """A named predicate that is True for an impossible persona."""

    name: str
    reason: str
    violated: pl.Expr


def _income_above(amount: int) -> pl.Expr:
    return pl.col("_income").fill_null(0) > amount


RULES: tuple[Rule, ...] = (
    Rule("child_with_income", "a child under 16 with a personal income above $10,000",
         (pl.col("age") < 16) & _income_above(10_000)),
    Rule("minor_with_high_income", "a person under 18 with a personal income of $100,000 or more",
         (pl.col("age") < 18) & _income_above(99_999)),
    Rule("degree_under_18", "a college degree before age 18",
         (pl.col("age") < 18) & pl.col("education").is_in(DEGREE)),
    Rule("graduate_degree_under_21", "a master's, professional or doctoral degree before age 21",
         (pl.col("age") < 21) & pl.col("education").is_in(GRADUATE)),
    Rule("married_under_15", "married, widowed, divorced or separated before age 15",
         (pl.col("age") < 15) & pl.col("marital_status").is_in(EVER_MARRIED)),
    Rule("veteran_under_17", "military service before age 17",
         (pl.col("age") < 17) & pl.col("veteran_status").is_in(SERVED)),
    Rule("working_under_16", "in the labor force before age 16 (the census asks from 16)",
         (pl.col("age") < 16) & pl.col("employment_status").is_in(IN_LABOR_FORCE)),
    Rule("armed_forces_age", "serving in the armed forces under 17 or over 64",
         (pl.col("employment_status") == "In the armed forces") & ((pl.col("age") < 17) | (pl.col("age") > 64))),
    Rule("birth_outside_universe", "a birth in the past year for a man, or a woman under 15 or over 50",
         (pl.col("fertility") == "Gave birth in the past 12 months")
         & ((pl.col("sex") == "Male") | (pl.col("age") < 15) | (pl.col("age") > 50))),
    Rule("difficulty_without_disability", "a cognitive, vision or hearing difficulty but no disability",
         (pl.col("disability") == "Without a disability") & pl.any_horizontal([pl.col(c) == "Yes" for c in DIFFICULTIES])),
    Rule("job_without_age", "a class of worker before age 16",
         (pl.col("age") < 16) & pl.col("class_of_worker").is_not_null() & (pl.col("class_of_worker") != NOT_APPLICABLE)),
)  # fmt: skip


def violations(frame: pl.DataFrame, rules: Sequence[Rule] = RULES) -> pl.DataFrame:
    """One boolean column per rule: True where the row breaks it."""
    return frame.select([r.violated.fill_null(False).alias(r.name) for r in rules])


def check_consistency(frame: pl.DataFrame, rules: Sequence[Rule] = RULES) -> tuple[pl.DataFrame, dict[str, int]]:
    """Rows that break no rule, and per rule the number of rows that break it (a row can break several)."""
    if not rules:
        return frame, {}
    flags = violations(frame, rules)
    counts = {r.name: int(flags[r.name].sum()) for r in rules}
    bad = flags.select(pl.any_horizontal(pl.all()).alias("bad"))["bad"]
    return frame.filter(~bad), counts
