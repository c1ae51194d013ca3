"""What every experiment module provides, and the helpers they share.

An experiment module defines ``Params`` (its pydantic block, with a ``kind``
literal), ``ROLES`` (the model roles it calls), ``build(ctx)`` returning a
:class:`Design` (the plan plus a table that says which call is which), and
``analyze(ctx, design, results)`` returning an :class:`Analysis`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

import polars as pl
from pydantic import Field

from persona_exp.errors import PlanError
from persona_exp.experiments.templates import ANSWER, CRITIQUE, JUDGE, REVISE
from persona_exp.plan import Plan, slot
from persona_exp.spec.models import ModelConfig, Strict


@dataclass
class Context:
    """Everything an experiment needs to build its plan."""

    name: str
    seed: int
    params: Any
    models: Mapping[str, ModelConfig]
    personas: pl.DataFrame
    prompts: pl.DataFrame
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)  # per role, filled on first use


@dataclass
class Design:
    """The plan and, per logical item, the keys of the calls that answer it."""

    plan: Plan
    items: pl.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    title: str
    headline: pl.DataFrame
    tables: dict[str, pl.DataFrame]
    metrics: dict[str, Any]
    # Tables also written in another format: ("preferences", "jsonl") for trainers, ("sheet", "csv") for people.
    exports: tuple[tuple[str, str], ...] = ()


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """Replaces each ``{name}`` field by its value (text, or a slot holding the
    output of another call). Only known fields are replaced, so other braces in
    a template (JSON examples) are left alone."""
    out = template
    for name, value in values.items():
        out = out.replace("{" + name + "}", value)
    return out


def add_call(
    plan: Plan,
    ctx: Context,
    step: str,
    role: str,
    template: str,
    values: Mapping[str, str],
    inputs: Mapping[str, str] | None = None,
    *,
    parser: str | None = None,
    replicate: int = 0,
) -> str:
    """Renders ``template`` (output slots for ``inputs``) and adds the call."""
    model = ctx.models[role]
    sampling = ctx.sampling.get(role)
    if sampling is None:  # computed once per role: the plan then serializes it once too
        sampling = ctx.sampling[role] = model.sampling()
    filled = fill_template(template, {**values, **{name: slot(name) for name in (inputs or {})}})
    return plan.add(step, role, model.model, [{"role": "user", "content": filled}], sampling, inputs=inputs, parser=parser, replicate=replicate)


def seeded_flip(*parts: Any) -> bool:
    """A deterministic coin (e.g. which answer is shown as A), stable per item."""
    return random.Random("|".join(map(str, parts))).random() < 0.5


class IntervalParams(Strict):
    """Bootstrap settings shared by every experiment that reports intervals."""

    n_resamples: int = Field(1000, ge=100)
    level: float = Field(0.95, gt=0, lt=1)


class RefineParams(IntervalParams):
    """Templates of the baseline answer, DPF critique and revision, and the judge."""

    answer_template: str = ANSWER
    critique_template: str = CRITIQUE
    revise_template: str = REVISE
    judge_template: str = JUDGE


def choose_personas(ctx: Context, n: int) -> pl.DataFrame:
    """The first ``n`` personas of the population (it is already a seeded sample)."""
    if ctx.personas.height < n:
        raise PlanError(f"experiment.n_personas is {n} but the population has {ctx.personas.height} personas.")
    return ctx.personas.head(n)


def choose_questions(ctx: Context, n: int) -> pl.DataFrame:
    """``n`` prompts of the filtered set, drawn with the experiment's seed."""
    if ctx.prompts.height < n:
        raise PlanError(f"experiment.n_questions is {n} but only {ctx.prompts.height} prompts remain after filtering.")
    return ctx.prompts.sample(n=n, seed=ctx.seed, shuffle=True) if ctx.prompts.height > n else ctx.prompts


def add_refinement(plan: Plan, ctx: Context, p: RefineParams, question: str, persona: str) -> tuple[str, str]:
    """Baseline answer (no persona, shared by everyone who gets this question),
    critique for the persona, revision: returns the keys of (baseline, revision)."""
    base = add_call(plan, ctx, "base_answer", "generator", p.answer_template, {"question": question})
    critique = add_call(plan, ctx, "critique", "generator", p.critique_template, {"question": question, "persona": persona}, {"completion": base})
    revised = add_call(plan, ctx, "revise", "generator", p.revise_template, {"question": question}, {"completion": base, "critique": critique}, parser="revised")
    return base, revised
