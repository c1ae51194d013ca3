"""Question sets written by a model (WikiPersonas section 3.3, step 2).

A generator is asked for a numbered list of questions, per persona (questions
this person would ask an assistant, "personal") or per group (questions people
of one axis would ask in common but want answered differently, "divergent").
The lists are answered at plan time (the questions decide every later call)
and come back as ordinary prompt frames, so the prompt filters (question mark,
length, dedupe, ...) apply to them like to any other prompt set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import polars as pl

from persona_exp.plan import Plan
from persona_exp.prompts._frame import make_frame
from persona_exp.steps.calls import add_call


@dataclass(frozen=True)
class QuestionRequest:
    """One list to ask for: who it is for (``owner``), its topic label and the
    template values (which include the number of questions ``n``)."""

    owner: str
    topic: str
    source: str
    values: Mapping[str, str]


def generate_questions(ctx: Any, step: str, role: str, template: str, requests: Sequence[QuestionRequest]) -> tuple[pl.DataFrame, list[str]]:
    """Asks for every list in one stage. Returns a prompt frame with an extra
    ``owner`` column (one row per question, in list order) and notes on lists
    that failed or came back short."""
    plan = Plan()
    keys = [add_call(plan, ctx, step, role, template, r.values, parser="questions") for r in requests]
    results = ctx.run_stage(plan)
    frames, notes = [], []
    for r, key in zip(requests, keys):
        res = results[key]
        if not res.ok:
            notes.append(f"{step} for {r.owner}: no questions ({res.status}: {res.error})")
            continue
        asked = int(r.values.get("n", 0) or 0)
        if asked and len(res.value) < asked:
            notes.append(f"{step} for {r.owner}: {len(res.value)} of {asked} questions")
        frames.append(make_frame(res.value, [r.topic] * len(res.value), r.source).with_columns(pl.lit(r.owner).alias("owner")))
    if not frames:
        return make_frame([], [], "").with_columns(pl.lit(None, dtype=pl.String).alias("owner")), notes
    return pl.concat(frames), notes
