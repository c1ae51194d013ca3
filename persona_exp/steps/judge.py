"""A role-play pairwise judgment: the judge reads a persona, a question and two
answers and names the one the persona would prefer. Which answer is shown as
"A" is a seeded coin per item, so position bias averages out and is
reproducible."""

from __future__ import annotations

from typing import Any, Mapping

from persona_exp.plan import Plan
from persona_exp.steps.calls import add_call, seeded_flip


def add_judgment(
    plan: Plan,
    ctx: Any,
    step: str,
    role: str,
    template: str,
    values: Mapping[str, str],
    first: str,
    second: str,
    flip: tuple[Any, ...] | bool,
    *,
    parser: str = "choice",
    replicate: int = 0,
) -> tuple[str, bool]:
    """Adds the judge call comparing the outputs of calls ``first`` and
    ``second``; ``flip`` is the item's identity for the coin (or the decided
    order). ``parser`` reads the verdict as the letter "A" or "B". Returns
    (judge key, whether ``first`` is shown as A)."""
    first_is_a = flip if isinstance(flip, bool) else seeded_flip(*flip)
    order = {"response_a": first, "response_b": second} if first_is_a else {"response_a": second, "response_b": first}
    return add_call(plan, ctx, step, role, template, values, order, parser=parser, replicate=replicate), first_is_a


def preferred(results: Mapping[str, Any], key: str | None, first_is_a: bool) -> int:
    """1 if the judge preferred the first answer, 0 the second, -1 if the
    judgment is missing (failed, unparseable, or not asked)."""
    r = results.get(key) if key else None
    if r is None or not r.ok:
        return -1
    return int((r.value == "A") == first_is_a)
