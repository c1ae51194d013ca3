"""Leave-one-out attribute influence (PERSONA section 4.1).

For each attribute a_i: personas for whom a_i applies, each shown to the judge
in two versions, k random other attributes without a_i and the same plus a_i.
Every question gets a baseline answer (no persona) and a persona-refined answer
(critique, then revision, for the version with a_i, with the paper's appendix B
prompts); the judge role-plays each version and picks the answer it prefers.
The agreement of the two versions (Cohen's kappa over questions) measures how
little a_i matters: lower kappa = more influence. Per attribute we report the
pooled kappa with a cluster-bootstrap interval (clusters = personas, so the
dependence of a persona's judgments is respected) and the distribution of the
per-persona kappas.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from persona_exp import stats
from persona_exp.errors import PlanError
from persona_exp.experiments.base import Analysis, Context, Design, RefineParams, choose_questions
from persona_exp.plan import Plan
from persona_exp.steps import add_judgment, add_refinement, preferred

HEADLINE_TABLE = "loo_attributes"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "judge")

class Params(RefineParams):
    kind: Literal["loo"] = "loo"
    attributes: list[str] | Literal["all"] = "all"
    n_personas: int = Field(40, ge=2, description="personas per attribute (paper: 40)")
    k: int = Field(3, ge=1, description="random attributes in the version without a_i (paper: 3)")
    n_questions: int = Field(20, ge=2, description="questions with a baseline and a refined answer (paper: 20)")


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
                base, refined = add_refinement(plan, ctx, p, q["text"], with_attr)
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
    items = design.items.with_columns(
        pl.Series("without", [preferred(results, k, a) for k, a in zip(design.items["judge_without_key"], design.items["refined_is_a"])], dtype=pl.Int8),
        pl.Series("with", [preferred(results, k, a) for k, a in zip(design.items["judge_with_key"], design.items["refined_is_a"])], dtype=pl.Int8),
    )
    rows = []
    per_pair = []
    for (attr,), g in items.group_by(["attribute"], maintain_order=True):
        a, b = g["without"].to_numpy(), g["with"].to_numpy()
        personas = g["persona_id"].to_numpy()
        valid = (a >= 0) & (b >= 0)
        if valid.sum() < 2:
            est = lo = hi = float("nan")
        else:
            est, lo, hi = stats.kappa_ci(a, b, k=2, clusters=personas, n_resamples=p.n_resamples, level=p.level, seed=ctx.seed)
        pair_k = []
        for (pid,), pg in g.group_by(["persona_id"], maintain_order=True):
            kv = stats.cohen_kappa(pg["without"].to_numpy(), pg["with"].to_numpy(), k=2) if ((pg["without"] >= 0) & (pg["with"] >= 0)).sum() else float("nan")
            pair_k.append(kv)
            per_pair.append({"attribute": attr, "persona_id": pid, "kappa": kv})
        ks = np.array(pair_k, dtype=float)
        finite = ks[np.isfinite(ks)]
        rows.append(
            {
                "attribute": attr,
                "kappa": est,
                "ci_low": lo,
                "ci_high": hi,
                "median_persona_kappa": float(np.median(finite)) if finite.size else float("nan"),
                "personas": len(pair_k),
                "judgments": int(valid.sum()),
                "prefer_refined": float(b[b >= 0].mean()) if (b >= 0).any() else float("nan"),
            }
        )
    headline = pl.DataFrame(rows).sort("kappa", nulls_last=True)
    metrics = {
        "kappa": {r["attribute"]: {"estimate": r["kappa"], "low": r["ci_low"], "high": r["ci_high"]} for r in rows},
        "most_influential": headline["attribute"][0] if headline.height else None,
        "judgments_missing": int(((items["without"] < 0) | (items["with"] < 0)).sum()),
        "level": p.level,
    }
    return Analysis(
        title="Leave-one-out attribute influence (lower kappa = more influence)",
        headline=headline,
        tables={"loo_attributes": headline, "loo_personas": pl.DataFrame(per_pair), "loo_judgments": items},
        metrics=metrics,
    )


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, seed: int, examples: int) -> dict:
    """Per-attribute kappa change with a paired cluster bootstrap over the
    judgments both runs share (same attribute, persona and question), and the
    judgments that flipped."""
    ids = ["attribute", "persona_id", "question_id"]
    ja, jb = ta["loo_judgments"], tb["loo_judgments"]
    shared = ja.select(ids + ["without", "with"]).join(jb.select(ids + ["without", "with"]), on=ids, suffix="_b")
    metrics = []
    for (attr,), g in shared.group_by(["attribute"], maintain_order=True):
        arrays = [g[c].to_numpy() for c in ("without", "with", "without_b", "with_b")]
        ka = stats.cohen_kappa(arrays[0], arrays[1], k=2)
        kb = stats.cohen_kappa(arrays[2], arrays[3], k=2)
        # kappa_diff_ci gives kappa(first pair) - kappa(second pair); we report B - A.
        d, lo, hi = stats.kappa_diff_ci(arrays[2], arrays[3], arrays[0], arrays[1], k=2, clusters=g["persona_id"].to_numpy(), n_resamples=n_resamples, seed=seed)
        metrics.append({"metric": f"kappa[{attr}]", "a": ka, "b": kb, "delta": d, "low": lo, "high": hi, "flagged": bool(lo > 0 or hi < 0), "items": g.height})
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
    return {"metrics": metrics, "flips": {"shared": shared.height, "total": flipped.height, "by_group": by_group, "examples": ex}}
