"""One templated LLM call, and the deterministic coins that order answers."""

from __future__ import annotations

import random
from typing import Any, Mapping

from persona_exp.plan import Plan, slot
from persona_exp.steps.templates import fill


fill_template = fill  # the name the steps have always used: one-pass filling, see templates.fill


def add_call(
    plan: Plan,
    ctx: Any,
    step: str,
    role: str,
    template: str,
    values: Mapping[str, str],
    inputs: Mapping[str, str] | None = None,
    *,
    parser: str | None = None,
    replicate: int = 0,
) -> str:
    """Renders ``template`` (output slots for ``inputs``) and adds the call for
    ``role`` with that role's model and sampling; returns the call's key."""
    model = ctx.models[role]
    sampling = ctx.sampling.get(role)
    if sampling is None:  # computed once per role: the plan then serializes it once too
        sampling = ctx.sampling[role] = model.sampling()
    filled = fill_template(template, {**values, **{name: slot(name) for name in (inputs or {})}})
    return plan.add(step, role, model.model, [{"role": "user", "content": filled}], sampling, inputs=inputs, parser=parser, replicate=replicate)


def seeded_flip(*parts: Any) -> bool:
    """A deterministic coin (e.g. which answer is shown as A), stable per item."""
    return random.Random("|".join(map(str, parts))).random() < 0.5
