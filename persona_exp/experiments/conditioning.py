"""Conditioning methods (the PERSONA bench): how should a model be told who it
is answering?

Modes: ``none`` (the question alone), ``persona`` (persona, then answer
directly), ``cot`` (persona, think step by step, then answer) and
``summarize`` (first list the persona's attributes relevant to the question,
then answer from that summary). A critic judge reads each answer and returns
JSON ``{"needs_revision": ...}``: the personalization critic sees the persona,
the helpfulness critic does not. Accuracy = share of answers that need no
revision, per mode and critic, with cluster-bootstrap intervals over personas;
pass@k over ``samples`` answers per item (unbiased estimator of Chen et al.
2021); and accuracy restricted to intersections of attribute values
(``slice_by``).
"""

from __future__ import annotations

from math import comb
from typing import Literal

import polars as pl
from pydantic import Field

from persona_exp import stats
from persona_exp.errors import PlanError
from persona_exp.experiments.base import Analysis, Context, Design, IntervalParams, choose_personas, choose_questions
from persona_exp.plan import Plan
from persona_exp.steps import add_call
from persona_exp.steps import templates as T

HEADLINE_TABLE = "conditioning"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "critic")
Mode = Literal["none", "persona", "cot", "summarize"]
Critic = Literal["personalization", "helpfulness"]


class Params(IntervalParams):
    kind: Literal["conditioning"] = "conditioning"
    modes: list[Mode] = Field(default_factory=lambda: ["none", "persona", "cot", "summarize"], min_length=1)
    critics: list[Critic] = Field(default_factory=lambda: ["personalization", "helpfulness"], min_length=1)
    n_personas: int = Field(30, ge=2)
    n_questions: int = Field(10, ge=1)
    samples: int = Field(1, ge=1, description="answers per (persona, question, mode); with a real model > 1 needs temperature > 0 to differ")
    pass_k: list[int] = Field(default_factory=lambda: [1], description="k values for pass@k (each <= samples)")
    slice_by: list[str] = Field(default_factory=list, description="attributes whose value combinations get their own accuracy")
    answer_template: str = T.ANSWER
    persona_template: str = T.ANSWER_WITH_PERSONA
    cot_template: str = T.ANSWER_WITH_COT
    summarize_template: str = T.SUMMARIZE_ATTRIBUTES
    summary_answer_template: str = T.ANSWER_WITH_SUMMARY
    personalization_critic_template: str = T.CRITIC_PERSONALIZATION
    helpfulness_critic_template: str = T.CRITIC_HELPFULNESS


def build(ctx: Context) -> Design:
    from persona_exp.population import attribute, render_persona

    p: Params = ctx.params
    for name in p.slice_by:
        attribute(name)  # unknown names fail here, naming the known ones
    if any(k > p.samples for k in p.pass_k):
        raise PlanError(f"experiment.pass_k {p.pass_k} asks for more than experiment.samples = {p.samples} answers per item.")
    personas = choose_personas(ctx, p.n_personas)
    questions = choose_questions(ctx, p.n_questions)
    plan = Plan()
    items = []
    for row in personas.iter_rows(named=True):
        persona = render_persona(row)
        for q in questions.iter_rows(named=True):
            values = {"question": q["text"], "persona": persona}
            for mode in p.modes:
                for s in range(p.samples):
                    if mode == "none":
                        answer = add_call(plan, ctx, "answer:none", "generator", p.answer_template, values, replicate=s)
                    elif mode == "persona":
                        answer = add_call(plan, ctx, "answer:persona", "generator", p.persona_template, values, replicate=s)
                    elif mode == "cot":
                        answer = add_call(plan, ctx, "answer:cot", "generator", p.cot_template, values, replicate=s)
                    else:
                        summary = add_call(plan, ctx, "summarize", "generator", p.summarize_template, values, replicate=s)
                        answer = add_call(plan, ctx, "answer:summarize", "generator", p.summary_answer_template, {"question": q["text"]}, {"summary": summary}, replicate=s)
                    for critic in p.critics:
                        template = p.personalization_critic_template if critic == "personalization" else p.helpfulness_critic_template
                        verdict = add_call(plan, ctx, f"critic:{critic}", "critic", template, values, {"response": answer}, parser="needs_revision")
                        items.append({"persona_id": row["persona_id"], "question_id": q["id"], "mode": mode, "sample": s, "critic": critic,
                                      "answer_key": answer, "critic_key": verdict,
                                      **{f"slice_{a}": str(row.get(attribute(a).name)) for a in p.slice_by}})
    return Design(plan, pl.DataFrame(items))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def analyze(ctx: Context, design: Design, results) -> Analysis:
    p: Params = ctx.params
    items = design.items

    def passed(key: str) -> float | None:
        r = results.get(key)
        return None if r is None or not r.ok else float(not r.value)

    scored = items.with_columns(pl.Series("passed", [passed(k) for k in items["critic_key"]], dtype=pl.Float64))
    judged = scored.filter(pl.col("passed").is_not_null())
    rows = []
    for (mode, critic), g in judged.group_by(["mode", "critic"], maintain_order=True):
        est, lo, hi = stats.win_rate(g["passed"].to_numpy(), clusters=g["persona_id"].to_numpy(), n_resamples=p.n_resamples, level=p.level, seed=ctx.seed)
        row = {"mode": mode, "critic": critic, "accuracy": est, "ci_low": lo, "ci_high": hi, "answers": g.height}
        per_item = g.group_by(["persona_id", "question_id"]).agg(n=pl.len(), c=pl.col("passed").sum())
        for k in p.pass_k:
            row[f"pass@{k}"] = sum(pass_at_k(n, int(c), k) for n, c in zip(per_item["n"], per_item["c"]) if n >= k) / max(per_item.height, 1)
        rows.append(row)
    headline = pl.DataFrame(rows)
    tables = {"conditioning": headline, "conditioning_answers": scored}
    if p.slice_by:
        keys = [f"slice_{a}" for a in p.slice_by]
        tables["conditioning_slices"] = (
            judged.group_by([*keys, "mode", "critic"]).agg(accuracy=pl.col("passed").mean(), answers=pl.len()).sort([*keys, "mode", "critic"])
        )
    metrics = {"accuracy": {f"{r['mode']}/{r['critic']}": {"estimate": r["accuracy"], "low": r["ci_low"], "high": r["ci_high"]} for r in rows},
               "unjudged": scored.height - judged.height, "level": p.level}
    return Analysis("Conditioning methods: share of answers the critic accepts", headline, tables, metrics)


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, seed: int, examples: int) -> dict:
    """Accuracy per mode and critic, paired over the answers both runs scored."""
    from persona_exp.diff import paired_rates

    return paired_rates(ta, tb, table="conditioning_answers", ids=["persona_id", "question_id", "mode", "sample", "critic"], outcome="passed",
                        group=["mode", "critic"], cluster="persona_id", metric="accuracy", n_resamples=n_resamples, seed=seed, examples=examples, overall=False)
