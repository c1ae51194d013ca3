"""Leave-one-out attribute influence (PERSONA section 4.1).

For each attribute a_i: personas for whom a_i applies, each shown to the judge
in two versions, k random other attributes without a_i and the same plus a_i.
Every question gets a baseline answer (no persona) and a persona-refined answer
(critique, then revision, for the version with a_i, with the paper's appendix B
prompts); the judge role-plays each version and picks the answer it prefers.
The agreement of the two versions (Cohen's kappa over questions) measures how
little a_i matters: lower kappa = more influence. Per attribute we report the
pooled kappa with a bootstrap interval over its design's units, personas x
questions (every persona answers the same questions, so both vary), the
distribution of the per-persona kappas, a test of each attribute against the
mean of the others (corrected for testing them all, ``analysis.multiplicity``),
an interval for each attribute's rank, and whether the top attribute is
separable from the next.

``answers: target`` (persona-bench's LOO on a target model): the two answers
judged are a ``target`` model's instead, its answer to the question alone and
its answer for the persona version with a_i (``target_template``); the
generator role is then not used. The default, ``refined``, is the paper's.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from persona_exp import stats
from persona_exp.analysis import Estimate, change_row, describe, design_sentence, interval, normal_p, settings, tested, with_test, z_of
from persona_exp.errors import PlanError
from persona_exp.experiments.base import Analysis, Context, Design, RefineParams, check_attributes, check_design_size, choose_questions
from persona_exp.plan import Plan
from persona_exp.population.attributes import ATTRIBUTE_NAMES
from persona_exp.steps import add_call, add_judgment, add_refinement, preferred
from persona_exp.steps import templates as T

HEADLINE_TABLE = "loo_attributes"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "judge")  # of the default answers (refined); see roles()

# k random others are drawn from the attributes other than a_i; k must leave a
# choice, or the "random" context would be every other attribute.
MAX_K = len(ATTRIBUTE_NAMES) - 2


class Params(RefineParams):
    TEMPLATE_FIELDS = {**RefineParams.TEMPLATE_FIELDS, "target_template": ("question", "persona")}
    kind: Literal["loo"] = "loo"
    answers: Literal["refined", "target"] = Field(
        "refined", description="the pair judged: the generator's baseline and DPF revision (refined, the paper's), or a target model's plain and persona-conditioned answers (target)")
    target_template: str = Field(T.ANSWER_WITH_PERSONA, description="the target model's prompt for its answer to the persona (answers: target)")
    attributes: list[str] | Literal["all"] = Field("all", description='the attributes a_i to test, by name or label, or "all" (the 33)')
    n_personas: int = Field(40, ge=2, le=100_000, description="personas per attribute (paper: 40)")
    k: int = Field(3, ge=1, le=MAX_K, description=f"random other attributes in the version without a_i (paper: 3); fewer than the {MAX_K + 1} others")
    n_questions: int = Field(20, ge=2, le=100_000, description="questions with a baseline and a refined answer (paper: 20)")

    @field_validator("attributes")
    @classmethod
    def _known_attributes(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, str):
            return value
        if not value:
            raise ValueError('name at least one attribute, or write "all"')
        check_attributes(value)
        return value

    @model_validator(mode="after")
    def _size(self) -> "Params":
        attributes = len(ATTRIBUTE_NAMES) if self.attributes == "all" else len(self.attributes)
        check_design_size({"attributes": attributes, "personas": self.n_personas, "questions": self.n_questions})
        return self


def roles(params: Params) -> tuple[str, ...]:
    return ROLES if params.answers == "refined" else ("target", "judge")


def _answers(plan: Plan, ctx: Context, p: Params, question: str, persona: str) -> tuple[str, str]:
    """The keys of the two answers judged: (baseline, persona-refined). With a
    target model they are its answer to the question alone and its answer for the persona."""
    if p.answers == "refined":
        return add_refinement(plan, ctx, p, question, persona)
    base = add_call(plan, ctx, "target_answer:none", "target", p.answer_template, {"question": question})
    return base, add_call(plan, ctx, "target_answer:persona", "target", p.target_template, {"question": question, "persona": persona})


def _attributes(params: Params) -> list[str]:
    from persona_exp.population import ATTRIBUTES, attribute

    if params.attributes == "all":
        return [a.name for a in ATTRIBUTES]
    return [attribute(name).name for name in params.attributes]


def build(ctx: Context) -> Design:
    from persona_exp.population import loo_variants, render_persona

    p: Params = ctx.params
    questions = choose_questions(ctx, p.n_questions)
    rows = {r["persona_id"]: r for r in ctx.personas.iter_rows(named=True)}
    plan = Plan()
    items: list[dict] = []
    notes: list[str] = []
    for attr in _attributes(p):
        pairs = loo_variants(ctx.personas, attr, n_personas=p.n_personas, k=p.k, seed=ctx.seed)
        if len(pairs) < p.n_personas:
            notes.append(f"{attr}: only {len(pairs)} personas to whom it applies (asked for {p.n_personas})")
        for pair in pairs:
            row = rows[pair.persona_id]
            without = render_persona(row, pair.base)
            with_attr = render_persona(row, pair.with_attribute)
            for q in questions.iter_rows(named=True):
                base, refined = _answers(plan, ctx, p, q["text"], with_attr)
                coin = (ctx.seed, attr, pair.persona_id, q["id"])
                j0, refined_is_a = add_judgment(plan, ctx, "judge", "judge", p.judge_template, {"question": q["text"], "persona": without}, refined, base, coin)
                j1, _ = add_judgment(plan, ctx, "judge", "judge", p.judge_template, {"question": q["text"], "persona": with_attr}, refined, base, refined_is_a)
                items.append(
                    {"attribute": attr, "persona_id": pair.persona_id, "question_id": q["id"], "refined_is_a": refined_is_a,
                     "base_key": base, "revise_key": refined, "judge_without_key": j0, "judge_with_key": j1}
                )
    if not items:
        raise PlanError("the leave-one-out design is empty: no attribute applies to any persona of the population.")
    return Design(plan, pl.DataFrame(items), notes)


def analyze(ctx: Context, design: Design, results) -> Analysis:
    p: Params = ctx.params
    cfg = settings(ctx)
    alpha = 1 - p.level
    items = design.items.with_columns(
        pl.Series("without", [preferred(results, k, a) for k, a in zip(design.items["judge_without_key"], design.items["refined_is_a"])], dtype=pl.Int8),
        pl.Series("with", [preferred(results, k, a) for k, a in zip(design.items["judge_with_key"], design.items["refined_is_a"])], dtype=pl.Int8),
    )
    rows, per_pair, named = [], [], []
    for (attr,), g in items.group_by(["attribute"], maintain_order=True):
        v = g.filter((pl.col("without") >= 0) & (pl.col("with") >= 0))
        est = interval("kappa", v["without"].to_numpy(), v["with"].to_numpy(), units={"persona": v["persona_id"].to_numpy(), "question": v["question_id"].to_numpy()},
                       n_resamples=p.n_resamples, level=p.level, seed=ctx.seed)
        named.append((f"kappa[{attr}]", est))
        pair_k = []
        for pid, without, with_ in _by_persona(g["persona_id"].to_numpy(), g["without"].to_numpy(), g["with"].to_numpy()):
            kv = stats.cohen_kappa(without, with_, k=2) if ((without >= 0) & (with_ >= 0)).any() else float("nan")
            pair_k.append(kv)
            per_pair.append({"attribute": attr, "persona_id": pid, "kappa": kv})
        ks = np.array(pair_k, dtype=float)
        finite = ks[np.isfinite(ks)]
        b = g["with"].to_numpy()
        rows.append({"attribute": attr, "kappa": est.estimate, "ci_low": est.low, "ci_high": est.high,
                     "median_persona_kappa": float(np.median(finite)) if finite.size else float("nan"), "personas": len(pair_k), "judgments": v.height,
                     "prefer_refined": float(b[b >= 0].mean()) if (b >= 0).any() else float("nan"), "over": est.over(), "note": est.warning or ""})
    named = _against_the_rest(named)
    ranks = _rank_intervals([e for _, e in named], p.level, ctx.seed, p.n_resamples)
    marked = tested(named, cfg.multiplicity, alpha)
    for r, m, (lo, hi) in zip(rows, marked, ranks):
        r.update(vs_others=m["estimate"] - m["null"] if m["null"] is not None else float("nan"), p_adjusted=m["p_adjusted"], survives=m["survives"],
                 rank_low=lo, rank_high=hi)
    headline = pl.DataFrame(rows).sort("kappa", nulls_last=True).select(
        "attribute", "kappa", "ci_low", "ci_high", "rank_low", "rank_high", "vs_others", "p_adjusted", "survives", "median_persona_kappa", "personas",
        "judgments", "prefer_refined", "over", "note").with_columns(pl.col("rank_low", "rank_high").fill_nan(None).cast(pl.Int64))
    top = _separable(sorted(zip(rows, named), key=lambda x: (not np.isfinite(x[0]["kappa"]), x[0]["kappa"])), p.level)
    estimates = [e for _, e in named]
    lines = [
        "Leave-one-out attribute influence (lower kappa = more influence)",
        f"kappa per attribute, {design_sentence(estimates, p.level)} per attribute; {describe(cfg.multiplicity, alpha, sum(np.isfinite(e.p) for e in estimates))} "
        "(null: the attribute's kappa equals the mean of the others'); rank_low/rank_high: its rank's interval (1 = most influential)",
    ]
    if top:
        lines.append(top["sentence"])
    if p.answers == "target":
        lines.append("answers judged: the target model's answer to the question alone vs its answer for the persona (prefer_refined: the persona answer won)")
    metrics = {
        "kappa": {r["attribute"]: {"estimate": r["kappa"], "low": r["ci_low"], "high": r["ci_high"]} for r in rows},
        "headline": marked,
        "multiplicity": {"method": cfg.multiplicity, "alpha": alpha, "null": "kappa equals the mean kappa of the other attributes"},
        "ranking": top,
        "title": "\n".join(lines),
        "most_influential": headline["attribute"][0] if headline.height else None,
        "judgments_missing": int(((items["without"] < 0) | (items["with"] < 0)).sum()),
        "level": p.level,
    }
    return Analysis(
        title="\n".join(lines),
        headline=headline,
        tables={"loo_attributes": headline, "loo_personas": pl.DataFrame(per_pair), "loo_judgments": items},
        metrics=metrics,
    )


def _by_persona(pids: np.ndarray, without: np.ndarray, with_: np.ndarray):  # noqa: ANN202 - a generator of (id, array, array)
    """Each persona's judgments, personas in order of first appearance: numpy
    slices rather than a polars group per persona (power analysis runs this
    analysis hundreds of times)."""
    codes: dict[Any, int] = {}
    group = np.fromiter((codes.setdefault(pid, len(codes)) for pid in pids), dtype=np.int64, count=len(pids))
    order = np.argsort(group, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(group[order])) + 1) if len(order) else ():
        yield pids[idx[0]], without[idx], with_[idx]


def _against_the_rest(named: list[tuple[str, Estimate]]) -> list[tuple[str, Estimate]]:
    """Each attribute tested against the mean kappa of the others, a normal
    test with se^2 = se_i^2 + sum(se_j^2) / (m - 1)^2. The attributes share
    questions, which correlates their kappas positively; leaving that out
    overstates the variance of the difference, so the test errs on the safe side."""
    ok = [(i, e) for i, (_, e) in enumerate(named) if e.usable and np.isfinite(e.se) and e.se > 0]
    out = list(named)
    if len(ok) < 2:
        return out
    k = np.array([e.estimate for _, e in ok])
    v = np.array([e.se for _, e in ok]) ** 2
    m = len(ok)
    for j, (i, e) in enumerate(ok):
        rest = (k.sum() - k[j]) / (m - 1)
        se = float(np.sqrt(v[j] + (v.sum() - v[j]) / (m - 1) ** 2))
        out[i] = (named[i][0], with_test(e, float(rest), normal_p(float(k[j]), float(rest), se)))
    return out


def _rank_intervals(estimates: list[Estimate], level: float, seed: int, n_draws: int) -> list[tuple[float, float]]:
    """Per attribute, the interval of its rank (1 = lowest kappa) over draws of
    every kappa from its bootstrap sampling distribution (normal with the
    bootstrap se), so the ranking's uncertainty is shown, not just the order."""
    ok = [i for i, e in enumerate(estimates) if e.usable and np.isfinite(e.se)]
    out = [(float("nan"), float("nan"))] * len(estimates)
    if not ok:
        return out
    rng = np.random.default_rng(seed)
    draws = rng.normal([estimates[i].estimate for i in ok], [estimates[i].se for i in ok], size=(n_draws, len(ok)))
    ranks = draws.argsort(axis=1).argsort(axis=1) + 1
    lo, hi = np.quantile(ranks, [(1 - level) / 2, (1 + level) / 2], axis=0, method="nearest")
    for j, i in enumerate(ok):
        out[i] = (float(lo[j]), float(hi[j]))
    return out


def _separable(order: list[tuple[dict, tuple[str, Estimate]]], level: float) -> dict | None:
    """Whether the most influential attribute is told apart from the next: the
    interval of their kappa difference (normal, independent samples of
    personas; shared questions make this conservative) excludes 0."""
    ranked = [(r, e) for r, (_, e) in order if np.isfinite(e.estimate)]
    if len(ranked) < 2:
        return None
    (r1, e1), (r2, e2) = ranked[:2]
    if not (e1.usable and e2.usable):
        bad = r1["attribute"] if not e1.usable else r2["attribute"]
        sentence = f"top attribute {r1['attribute']} vs the next, {r2['attribute']}: not assessable ({bad} has no usable interval)"
        return {"top": r1["attribute"], "next": r2["attribute"], "separable": None, "sentence": sentence}
    d, se = e2.estimate - e1.estimate, float(np.hypot(e1.se, e2.se))
    z = z_of(level)
    lo, hi = d - z * se, d + z * se
    sep = bool(lo > 0)
    sentence = (f"top attribute {r1['attribute']} is {'' if sep else 'NOT '}separable from the next, {r2['attribute']}: kappa difference "
                f"{d:.3f} [{lo:.3f}, {hi:.3f}]")
    return {"top": r1["attribute"], "next": r2["attribute"], "difference": d, "low": lo, "high": hi, "separable": sep, "sentence": sentence}


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, level: float = 0.95, seed: int, examples: int) -> dict:
    """Per-attribute kappa change with a paired bootstrap over the judgments
    both runs share (same attribute, persona and question), resampling
    personas and questions; and the judgments that flipped."""
    ids = ["attribute", "persona_id", "question_id"]
    ja, jb = (t["loo_judgments"].filter((pl.col("without") >= 0) & (pl.col("with") >= 0)) for t in (ta, tb))
    shared = ja.select(ids + ["without", "with"]).join(jb.select(ids + ["without", "with"]), on=ids, suffix="_b")
    count_a, count_b = (dict(j.group_by("attribute").len().iter_rows()) for j in (ja, jb))
    metrics = []
    for (attr,), g in shared.group_by(["attribute"], maintain_order=True):
        # kappa_diff gives kappa(first pair) - kappa(second pair); we report B - A.
        est = interval("kappa_diff", *(g[c].to_numpy() for c in ("without_b", "with_b", "without", "with")),
                       units={"persona": g["persona_id"].to_numpy(), "question": g["question_id"].to_numpy()},
                       n_resamples=n_resamples, level=level, seed=seed, null=0.0)
        metrics.append(change_row(f"kappa[{attr}]", est, count_a.get(attr, 0), count_b.get(attr, 0)))
    flipped = shared.filter((pl.col("without") != pl.col("without_b")) | (pl.col("with") != pl.col("with_b")))
    by_group = (
        flipped.group_by("attribute").len().sort("len", descending=True).rename({"len": "flips"})
        .with_columns(pl.format("attribute {}", pl.col("attribute")).alias("group")).select("group", "flips").to_dicts()
        + flipped.group_by("persona_id").len().sort("len", descending=True).head(10).rename({"len": "flips"})
        .with_columns(pl.format("persona {}", pl.col("persona_id")).alias("group")).select("group", "flips").to_dicts()
        + flipped.group_by("question_id").len().sort("len", descending=True).head(10).rename({"len": "flips"})
        .with_columns(pl.format("question {}", pl.col("question_id")).alias("group")).select("group", "flips").to_dicts()
    )
    ex = [
        f"{r['attribute']} / persona {r['persona_id']} / question {r['question_id']}: without {r['without']}->{r['without_b']}, with {r['with']}->{r['with_b']}"
        for r in flipped.head(examples).iter_rows(named=True)
    ]
    return {"metrics": metrics, "flips": {"shared": shared.height, "a": ja.height, "b": jb.height, "total": flipped.height, "by_group": by_group, "examples": ex}}
