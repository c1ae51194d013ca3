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

from persona_exp.plan import Plan, slot
from persona_exp.spec.models import ModelConfig


@dataclass
class Context:
    """Everything an experiment needs to build its plan."""

    name: str
    seed: int
    params: Any
    models: Mapping[str, ModelConfig]
    personas: pl.DataFrame
    prompts: pl.DataFrame


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


class Templates:
    """Fills prompt templates: ``{name}`` fields are replaced by values or by
    slots holding the output of another call. Only known fields are replaced,
    so other braces in a template (JSON examples) are left alone."""

    def __init__(self, **fields: str):
        self.fields = fields

    @staticmethod
    def fill(template: str, values: Mapping[str, str]) -> str:
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
    filled = Templates.fill(template, {**values, **{name: slot(name) for name in (inputs or {})}})
    return plan.add(step, role, model.model, [{"role": "user", "content": filled}], model.sampling(), inputs=inputs, parser=parser, replicate=replicate)


def seeded_flip(*parts: Any) -> bool:
    """A deterministic coin (e.g. which answer is shown as A), stable per item."""
    return random.Random("|".join(map(str, parts))).random() < 0.5
