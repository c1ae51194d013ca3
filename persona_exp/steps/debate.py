"""A debate critic (persona-bench): two debaters argue over one answer, one
defending it and one finding its faults, for a number of rounds; then a judge
reads the whole debate and says whether the answer needs revision.

Both debaters of a round see the transcript of the rounds before it (they
argue simultaneously within a round, so neither gets the last word for free).
The transcript is the debaters' outputs placed in the prompt as slots, so the
judge's call key changes when any argument does.
"""

from __future__ import annotations

from typing import Any, Mapping

from persona_exp.plan import Plan, slot
from persona_exp.steps.calls import add_call

NO_DEBATE_YET = "(no arguments yet)"


def _transcript(turns: list[tuple[int, str, str]]) -> str:
    """The debate so far as text with a slot per argument: "Critic A (round 1): ..."."""
    if not turns:
        return NO_DEBATE_YET
    return "\n\n".join(f"Critic {side} (round {rnd}): {slot(name)}" for rnd, side, name in turns)


def add_debate(
    plan: Plan,
    ctx: Any,
    values: Mapping[str, str],
    answer: str,
    *,
    rounds: int,
    for_template: str,
    against_template: str,
    judge_template: str,
    debater_role: str,
    judge_role: str,
) -> tuple[str, list[str]]:
    """Adds the debate over the output of call ``answer`` (the templates'
    ``{response}``) and the judge's verdict (parsed as ``needs_revision``).
    Returns (judge key, the debaters' call keys in order)."""
    turns: list[tuple[int, str, str]] = []
    keys: dict[str, str] = {}
    for rnd in range(1, rounds + 1):
        before = list(turns)
        inputs = {"response": answer, **{name: keys[name] for _, _, name in before}}
        for side, template, step in (("A", for_template, "debate:for"), ("B", against_template, "debate:against")):
            name = f"r{rnd}_{side.lower()}"
            keys[name] = add_call(plan, ctx, step, debater_role, template, {**values, "debate": _transcript(before)}, inputs)
            turns.append((rnd, side, name))
    inputs = {"response": answer, **keys}
    verdict = add_call(plan, ctx, "critic:debate", judge_role, judge_template, {**values, "debate": _transcript(turns)}, inputs, parser="needs_revision")
    return verdict, list(keys.values())
