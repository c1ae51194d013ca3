"""Conditioning methods (the PERSONA bench): how should a model be told who it
is answering?

Modes: ``none`` (the question alone), ``persona`` (persona, then answer
directly), ``cot`` (persona, think step by step, then answer) and
``summarize`` (first list the persona's attributes relevant to the question,
then answer from that summary). A critic judge reads each answer and returns
JSON ``{"needs_revision": ...}``: the personalization critic sees the persona,
the helpfulness critic does not. Accuracy = share of answers that need no
revision, per mode and critic, with bootstrap intervals over personas x
questions (over questions alone where neither the answer nor the critic sees
the persona), and each mode's paired change against mode ``none``, marked when
it survives the multiplicity correction (``analysis.multiplicity``); pass@k over ``samples`` answers per item (unbiased estimator of Chen et al.
2021); and accuracy restricted to intersections of attribute values
(``slice_by``), tested the same way within each slice.
"""

from __future__ import annotations

from math import comb
from typing import Annotated, Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from persona_exp.analysis import Estimate, describe, design_sentence, interval, paired_rates, real_units, settings, tested, with_test
from persona_exp.experiments.base import Analysis, Context, Design, IntervalParams, check_attributes, check_design_size, choose_personas, choose_questions
from persona_exp.plan import Plan
from persona_exp.spec.models import FieldError, no_duplicates
from persona_exp.steps import add_call
from persona_exp.steps import templates as T

HEADLINE_TABLE = "conditioning"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "critic")
Mode = Literal["none", "persona", "cot", "summarize"]
Critic = Literal["personalization", "helpfulness"]


class Params(IntervalParams):
    TEMPLATE_FIELDS = {
        **{f"{m}_template": ("question", "persona") for m in ("answer", "persona", "cot", "summarize")},
        "summary_answer_template": ("question", "summary"),
        **{f"{c}_critic_template": ("question", "persona", "response") for c in ("personalization", "helpfulness")},
    }
    kind: Literal["conditioning"] = "conditioning"
    modes: list[Mode] = Field(default_factory=lambda: ["none", "persona", "cot", "summarize"], min_length=1)
    critics: list[Critic] = Field(default_factory=lambda: ["personalization", "helpfulness"], min_length=1)
    n_personas: int = Field(30, ge=2, le=100_000, description="personas, each answering every question in every mode")
    n_questions: int = Field(10, ge=1, le=100_000, description="questions of the filtered prompt set")
    samples: int = Field(1, ge=1, le=100, description="answers per (persona, question, mode); with a real model > 1 needs temperature > 0 to differ")
    pass_k: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=lambda: [1], min_length=1, description="k values for pass@k (each <= samples)")
    slice_by: list[str] = Field(default_factory=list, max_length=4, description="attributes (at most 4) whose value combinations get their own accuracy")
    answer_template: str = T.ANSWER
    persona_template: str = T.ANSWER_WITH_PERSONA
    cot_template: str = T.ANSWER_WITH_COT
    summarize_template: str = T.SUMMARIZE_ATTRIBUTES
    summary_answer_template: str = T.ANSWER_WITH_SUMMARY
    personalization_critic_template: str = T.CRITIC_PERSONALIZATION
    helpfulness_critic_template: str = T.CRITIC_HELPFULNESS

    @field_validator("modes", "critics", "pass_k")
    @classmethod
    def _once_each(cls, value: list) -> list:
        no_duplicates(value)
        return value

    @field_validator("slice_by")
    @classmethod
    def _known_attributes(cls, value: list[str]) -> list[str]:
        check_attributes(value)
        return value

    @model_validator(mode="after")
    def _pass_k_and_size(self) -> "Params":
        for i, k in enumerate(self.pass_k):
            if k > self.samples:
                raise FieldError(("pass_k", i), f"pass@{k} needs at least {k} answers per item, but samples is {self.samples}; raise samples or lower k")
        check_design_size({"personas": self.n_personas, "questions": self.n_questions, "modes": len(self.modes), "samples": self.samples,
                           "critics": len(self.critics)})
        return self


def build(ctx: Context) -> Design:
    from persona_exp.population import attribute, render_persona

    p: Params = ctx.params
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


FACTORS = {"persona": "persona_id", "question": "question_id"}
PAIR_IDS = ["persona_id", "question_id", "sample", "critic"]


def _accuracy(g: pl.DataFrame, p: Params, seed: int) -> Estimate:
    """Accuracy over the units the critic's calls vary with: an answer the
    persona never saw, judged by a critic that does not see it either, is one
    observation per question, however many personas share it."""
    use = real_units(g, FACTORS, "critic_key")
    return interval("rate", g["passed"].to_numpy(), units={u: g[c].to_numpy() for u, c in use.items()}, n_resamples=p.n_resamples, level=p.level, seed=seed)


def _versus(g: pl.DataFrame, base: pl.DataFrame, p: Params, seed: int) -> Estimate:
    """Accuracy minus the baseline mode's on the same persona, question, sample
    and critic (paired), tested against no difference."""
    j = base.select(*PAIR_IDS, "passed", "critic_key").join(g.select(*PAIR_IDS, "passed", "critic_key"), on=PAIR_IDS, suffix="_m")
    j = j.with_columns(pl.concat_str(["critic_key", "critic_key_m"]).alias("_pair"))
    use = real_units(j, FACTORS, "_pair") if j.height else FACTORS
    return interval("rate_diff", j["passed"].to_numpy(), j["passed_m"].to_numpy(), units={u: j[c].to_numpy() for u, c in use.items()},
                    n_resamples=p.n_resamples, level=p.level, seed=seed, null=0.0)


def _tested_rows(groups: list[tuple[dict, pl.DataFrame, pl.DataFrame | None]], p: Params, seed: int, cfg, base_mode: str) -> tuple[list[dict], list[tuple[str, Estimate]], list[dict]]:
    """Per group (its labels, its answers, the baseline mode's answers or
    None): accuracy with its interval, and the paired change against the
    baseline mode, marked by the multiplicity correction over the groups."""
    rows, named = [], []
    for labels, g, base in groups:
        acc = _accuracy(g, p, seed)
        vs = _versus(g, base, p, seed) if base is not None else None
        rows.append({**labels, "accuracy": acc.estimate, "ci_low": acc.low, "ci_high": acc.high, "answers": g.height, "over": acc.over(),
                     # the baseline mode against itself: not applicable (null), not an undefined statistic (NaN)
                     f"vs_{base_mode}": vs.estimate if vs else None, "vs_low": vs.low if vs else None, "vs_high": vs.high if vs else None,
                     "note": "; ".join(w for w in (acc.warning, vs and vs.warning and f"vs {base_mode}: {vs.warning}") if w)})
        named.append(("/".join(str(v) for v in labels.values()), with_test(acc, None, vs.p if vs else float("nan"))))
    marked = tested(named, cfg.multiplicity, 1 - p.level)
    for r, m, (_, g, base) in zip(rows, marked, groups):
        r.update(p_adjusted=m["p_adjusted"] if base is not None else None, survives=m["survives"])
    return rows, named, marked


def analyze(ctx: Context, design: Design, results) -> Analysis:
    p: Params = ctx.params
    cfg = settings(ctx)
    items = design.items
    base_mode = "none" if "none" in p.modes else p.modes[0]

    def passed(key: str) -> float | None:
        r = results.get(key)
        return None if r is None or not r.ok else float(not r.value)

    scored = items.with_columns(pl.Series("passed", [passed(k) for k in items["critic_key"]], dtype=pl.Float64))
    judged = scored.filter(pl.col("passed").is_not_null())

    def groups(frame: pl.DataFrame, keys: list[str]) -> list[tuple[dict, pl.DataFrame, pl.DataFrame | None]]:
        out = []
        for values, g in frame.group_by([*keys, "mode", "critic"], maintain_order=True):
            labels = dict(zip([*keys, "mode", "critic"], values))
            base = None if labels["mode"] == base_mode else frame.filter(
                pl.all_horizontal([pl.col(k) == labels[k] for k in keys] + [pl.col("mode") == base_mode, pl.col("critic") == labels["critic"]]))
            out.append((labels, g, base))
        return out

    main = groups(judged, [])
    rows, named, marked = _tested_rows(main, p, ctx.seed, cfg, base_mode)
    for row, (_, g, _) in zip(rows, main):
        per_item = g.group_by(["persona_id", "question_id"]).agg(n=pl.len(), c=pl.col("passed").sum())
        for k in p.pass_k:
            row[f"pass@{k}"] = sum(pass_at_k(n, int(c), k) for n, c in zip(per_item["n"], per_item["c"]) if n >= k) / max(per_item.height, 1)
    headline = pl.DataFrame(rows)
    tables = {"conditioning": headline, "conditioning_answers": scored}
    if p.slice_by:
        keys = [f"slice_{a}" for a in p.slice_by]
        slice_rows, _, _ = _tested_rows(groups(judged.sort(keys), keys), p, ctx.seed, cfg, base_mode)
        tables["conditioning_slices"] = pl.DataFrame(slice_rows).sort([*keys, "mode", "critic"])
    estimates = [e for _, e in named]
    alpha = 1 - p.level
    title = ("Conditioning methods: share of answers the critic accepts\n"
             f"{design_sentence(estimates, p.level)} (an answer neither the mode nor the critic shows the persona varies by question only); "
             f"vs_{base_mode}: paired change against mode {base_mode} on the same items; "
             f"{describe(cfg.multiplicity, alpha, sum(np.isfinite(e.p) for e in estimates))} (null: no change against {base_mode}; slices are their own family)")
    metrics = {"accuracy": {f"{r['mode']}/{r['critic']}": {"estimate": r["accuracy"], "low": r["ci_low"], "high": r["ci_high"]} for r in rows},
               "headline": [{**m, "metric": f"accuracy[{m['metric']}]"} for m in marked],
               "multiplicity": {"method": cfg.multiplicity, "alpha": alpha, "null": f"a mode's accuracy equals mode {base_mode}'s on the same items"},
               "title": title, "unjudged": scored.height - judged.height, "level": p.level}
    return Analysis(title, headline, tables, metrics)


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, level: float = 0.95, seed: int, examples: int) -> dict:
    """Accuracy per mode and critic, paired over the answers both runs scored."""
    return paired_rates(ta, tb, table="conditioning_answers", ids=["persona_id", "question_id", "mode", "sample", "critic"], outcome="passed",
                        group=["mode", "critic"], units=FACTORS, key="critic_key", metric="accuracy", n_resamples=n_resamples, level=level,
                        seed=seed, examples=examples, overall=False)
