"""What every experiment module provides, and the helpers they share.

An experiment module defines ``Params`` (its pydantic block, with a ``kind``
literal), ``ROLES`` (the model roles it calls) or ``roles(params)``,
``build(ctx)`` returning a :class:`Design` (the plan plus a table that says
which call is which), and ``analyze(ctx, design, results)`` returning an
:class:`Analysis`; optionally ``POPULATION_SOURCES`` (default census only)
and ``USES_PROMPTS = False`` for an experiment that writes its own questions
(the spec's ``prompts:`` block is then an error, and ``build`` sets
``ctx.prompts`` to the questions it wrote, which the run stores).
The calls themselves are built from the shared steps in ``persona_exp.steps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl
import xxhash
from pydantic import Field

from persona_exp.errors import PersonaExpError, PlanError
from persona_exp.plan import Plan
from persona_exp.steps.context import Context
from persona_exp.steps.templates import ANSWER, CRITIQUE, JUDGE, REVISE, Templated


@dataclass
class Design:
    """The plan and, per logical item, the keys of the calls that answer it."""

    plan: Plan
    items: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)  # what staged steps decided while planning


@dataclass
class Analysis:
    title: str
    headline: pl.DataFrame
    tables: dict[str, pl.DataFrame]
    metrics: dict[str, Any]
    # Tables also written in another format: ("preferences", "jsonl") for trainers, ("sheet", "csv") for people.
    exports: tuple[tuple[str, str], ...] = ()


# The most items (persona x question x ... cells) one experiment may plan: 30
# times PERSONA's 317,200 DPF pairs, and far beyond what a run's memory holds
# as Python rows; a larger design is a typo (n_personas: 1e6) or several runs.
MAX_ITEMS = 10_000_000


def check_design_size(factors: dict[str, int]) -> None:
    """Raises when the product of a design's factors exceeds MAX_ITEMS, naming them."""
    items = 1
    for n in factors.values():
        items *= max(int(n), 1)
    if items > MAX_ITEMS:
        shown = " x ".join(f"{n:,} {name}" for name, n in factors.items())
        raise ValueError(
            f"the design has {items:,} items ({shown}), more than the {MAX_ITEMS:,} one run can plan; "
            "lower these numbers, or split the design into several runs"
        )


def check_attributes(names: list[str]) -> None:
    """Persona attribute names of a spec list: each known (by name or label,
    a misspelling gets the nearest name) and listed once."""
    from persona_exp.population.attributes import attribute
    from persona_exp.spec.models import FieldError, no_duplicates

    for i, name in enumerate(names):
        try:
            attribute(name)
        except PersonaExpError as exc:
            raise FieldError((i,), str(exc).rstrip(".")) from None
    no_duplicates(names, lambda name: attribute(name).name)


def checked_prompt_filters(entries: list[Any]) -> list[Any]:
    """A spec's prompt filter list, checked when the spec is read (names,
    parameters, repeats) so that a typo points at its line; the
    controversial filter's entries are checked where its model role is
    (``persona_exp.pipeline``)."""
    from persona_exp.prompts.filters import make_filter
    from persona_exp.spec.models import FieldError, no_duplicates
    from persona_exp.steps.classify import controversial_entry

    for i, entry in enumerate(entries):
        if not controversial_entry(entry)[0]:
            try:
                make_filter(entry, "filter")
            except PersonaExpError as exc:
                raise FieldError((i,), str(exc).removeprefix("filter: ").rstrip(".")) from None
    no_duplicates(entries)
    return entries


class IntervalParams(Templated):
    """Bootstrap settings shared by every experiment that reports intervals;
    ``level`` also sets the level of the headline's tests (alpha = 1 - level,
    corrected as the spec's ``analysis.multiplicity`` says)."""

    n_resamples: int = Field(1000, ge=100, le=100_000, description="bootstrap resamples per interval (1,000 is plenty; 10,000 for publication)")
    level: float = Field(0.95, ge=0.5, le=0.999, description="confidence level of the intervals; alpha = 1 - level for the tests")


class RefineParams(IntervalParams):
    """Templates of the baseline answer, DPF critique and revision, and the judge."""

    TEMPLATE_FIELDS = {
        "answer_template": ("question",),
        "critique_template": ("question", "persona", "completion"),
        "revise_template": ("question", "completion", "critique"),
        "judge_template": ("question", "persona", "response_a", "response_b"),
    }

    answer_template: str = ANSWER
    critique_template: str = CRITIQUE
    revise_template: str = REVISE
    judge_template: str = JUDGE


def choose_personas(ctx: Context, n: int) -> pl.DataFrame:
    """The first ``n`` personas of the population (it is already a seeded sample)."""
    if ctx.personas.height < n:
        raise PlanError(f"experiment.n_personas is {n} but the population has {ctx.personas.height} personas; "
                        "lower experiment.n_personas or raise population.size.")
    return ctx.personas.head(n)


def choose_questions(ctx: Context, n: int) -> pl.DataFrame:
    """``n`` prompts of the filtered set, drawn with the experiment's seed.

    Each prompt's draw rank is a hash of (seed, prompt id), and the ``n``
    lowest ranks are taken: asking for more questions keeps the ones drawn
    before, so a larger run pays only for the new questions' calls."""
    if ctx.prompts.height < n:
        raise PlanError(f"experiment.n_questions is {n} but only {ctx.prompts.height} prompts remain after filtering (prompts.filters); "
                        "lower experiment.n_questions, or use a larger prompt set or fewer filters.")
    if ctx.prompts.height == n:
        return ctx.prompts
    rank = pl.Series([xxhash.xxh3_64_intdigest(f"question|{int(ctx.seed)}|{i}".encode()) for i in ctx.prompts["id"].cast(pl.String)], dtype=pl.UInt64)
    return ctx.prompts.with_columns(rank.alias("_rank")).sort("_rank").head(n).drop("_rank")
