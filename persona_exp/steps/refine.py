"""Direct Principle Feedback (PERSONA 3.2): a baseline answer, a critique of it
for a persona, and a revision that follows the critique."""

from __future__ import annotations

from typing import Any

from persona_exp.plan import Plan
from persona_exp.steps.calls import add_call


def add_refinement(plan: Plan, ctx: Any, p: Any, question: str, persona: str, *, replicate: int = 0) -> tuple[str, str]:
    """Baseline answer (no persona, shared by everyone who gets this question),
    critique for the persona, revision: returns the keys of (baseline, revision).
    ``p`` carries ``answer_template``, ``critique_template``, ``revise_template``;
    ``replicate`` > 0 asks for another sample of all three."""
    base = add_call(plan, ctx, "base_answer", "generator", p.answer_template, {"question": question}, replicate=replicate)
    critique = add_call(plan, ctx, "critique", "generator", p.critique_template, {"question": question, "persona": persona}, {"completion": base},
                        replicate=replicate)
    revised = add_call(plan, ctx, "revise", "generator", p.revise_template, {"question": question}, {"completion": base, "critique": critique},
                       parser="revised", replicate=replicate)
    return base, revised
