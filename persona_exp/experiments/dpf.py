"""A preference dataset by Direct Principle Feedback (PERSONA section 3.2).

Personas and prompts are drawn independently. Prompts are split into train and
held-out test sets by topic; each persona gets ``n_train + n_seen_test`` distinct
train prompts (its own train pairs and its seen-prompt test pairs) and
``n_heldout`` held-out prompts (paper: 100 / 50 / 50 of 3,000 / 868). For every
(persona, prompt) the base model answers without the persona (shared by all
personas), a critique and a revision tailor it to the persona, and the pair
(chosen = revision, rejected = base answer) goes into the dataset. A
role-playing judge then checks how often the persona really prefers the
revision (paper: 96%), with a bootstrap interval over personas x prompts (a
prompt is asked of several personas) and a test against indifference (0.5).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from persona_exp import prompts as prompt_sets
from persona_exp import stats
from persona_exp.analysis import design_sentence, interval, mark, paired_rates, settings
from persona_exp.errors import PlanError
from persona_exp.experiments.base import Analysis, Context, Design, RefineParams
from persona_exp.steps import add_judgment, add_refinement, preferred

HEADLINE_TABLE = "dpf_summary"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "judge")
SPLITS = ("train", "test_seen", "test_heldout")


class Params(RefineParams):
    kind: Literal["dpf"] = "dpf"
    n_train: int = Field(10, ge=1, le=10_000, description="train pairs per persona (paper: 100)")
    n_seen_test: int = Field(5, ge=0, le=10_000, description="test pairs on train-split prompts per persona (paper: 50)")
    n_heldout: int = Field(5, ge=0, le=10_000, description="test pairs on held-out prompts per persona (paper: 50)")
    test_fraction: float = Field(868 / 3868, gt=0, lt=1, description="share of prompts held out, by topic (paper: 868 of 3,868)")
    verify: bool = Field(True, description="ask the role-playing judge whether the persona prefers the revision")

    def pairs_per_persona(self) -> int:
        """Prompts each persona gets (the design's size is this times the population's)."""
        return self.n_train + self.n_seen_test + self.n_heldout


def build(ctx: Context) -> Design:
    from persona_exp.population import render_persona

    p: Params = ctx.params
    split = prompt_sets.split_by_topic(ctx.prompts, test_fraction=p.test_fraction, seed=ctx.seed)
    train = split.filter(pl.col("split") == "train")
    heldout = split.filter(pl.col("split") == "test")
    if train.height < p.n_train + p.n_seen_test:
        raise PlanError(f"experiment.n_train + n_seen_test is {p.n_train + p.n_seen_test} but only {train.height} prompts are in the train split.")
    if heldout.height < p.n_heldout:
        raise PlanError(f"experiment.n_heldout is {p.n_heldout} but only {heldout.height} prompts are held out.")
    personas = ctx.personas
    n = personas.height
    seen = stats.assign_prompts(n, train.height, p.n_train + p.n_seen_test, seed=ctx.seed)
    held = stats.assign_prompts(n, heldout.height, p.n_heldout, seed=ctx.seed + 1) if p.n_heldout else np.zeros((n, 0), dtype=np.int64)
    train_rows = train.to_dicts()
    held_rows = heldout.to_dicts()
    plan_items = []
    from persona_exp.plan import Plan

    plan = Plan()
    for i, row in enumerate(personas.iter_rows(named=True)):
        persona = render_persona(row)
        chosen = [(train_rows[j], "train" if c < p.n_train else "test_seen") for c, j in enumerate(seen[i])]
        chosen += [(held_rows[j], "test_heldout") for j in held[i]]
        for q, part in chosen:
            base, revised = add_refinement(plan, ctx, p, q["text"], persona)
            item = {"persona_id": row["persona_id"], "prompt_id": q["id"], "topic": q["topic"], "split": part, "prompt": q["text"], "persona": persona,
                    "base_key": base, "revise_key": revised, "judge_key": None, "revised_is_a": False}
            if p.verify:
                item["judge_key"], item["revised_is_a"] = add_judgment(
                    plan, ctx, "verify", "judge", p.judge_template, {"question": q["text"], "persona": persona}, revised, base, (ctx.seed, "dpf", row["persona_id"], q["id"])
                )
            plan_items.append(item)
    return Design(plan, pl.DataFrame(plan_items, schema_overrides={"judge_key": pl.String}))


def analyze(ctx: Context, design: Design, results) -> Analysis:
    p: Params = ctx.params
    items = design.items

    def text(key: str | None) -> str | None:
        r = results.get(key) if key else None
        return r.output() if r is not None and r.ok else None

    def verdict(key: str | None, revised_is_a: bool) -> float | None:
        v = preferred(results, key, revised_is_a)
        return None if v < 0 else float(v)

    pairs = items.select("persona_id", "split", "prompt_id", "topic", "prompt", "persona").with_columns(
        pl.Series("chosen", [text(k) for k in items["revise_key"]], dtype=pl.String),
        pl.Series("rejected", [text(k) for k in items["base_key"]], dtype=pl.String),
        pl.Series("persona_prefers_chosen", [verdict(k, a) for k, a in zip(items["judge_key"], items["revised_is_a"])], dtype=pl.Float64),
    )
    complete = pairs.filter(pl.col("chosen").is_not_null() & pl.col("rejected").is_not_null())
    cfg = settings(ctx)
    rows, named = [], []
    for part in (*SPLITS, "all"):
        g = pairs if part == "all" else pairs.filter(pl.col("split") == part)
        judged = g.filter(pl.col("persona_prefers_chosen").is_not_null())
        est = interval("rate", judged["persona_prefers_chosen"].to_numpy(),
                       units={"persona": judged["persona_id"].to_numpy(), "prompt": judged["prompt_id"].to_numpy()},
                       n_resamples=p.n_resamples, level=p.level, seed=ctx.seed, null=0.5) if p.verify else None
        if est is not None:
            named.append((f"prefers_revision[{part}]", est))
        rows.append({"split": part, "pairs": g.filter(pl.col("chosen").is_not_null() & pl.col("rejected").is_not_null()).height, "judged": judged.height,
                     "prefers_revision": est.estimate if est else float("nan"), "ci_low": est.low if est else float("nan"),
                     "ci_high": est.high if est else float("nan"), "over": est.over() if est else "", "note": (est.warning or "") if est else "not verified"})
    marked, marks = mark(rows, named, cfg.multiplicity, 1 - p.level)
    summary = pl.DataFrame(rows)
    overall = rows[-1]
    title = "DPF preference dataset: pairs per split and how often the persona prefers the revision"
    if named:
        title += (f"\n{design_sentence([e for _, e in named], p.level)}; {marks}"
                  " (null: the persona is indifferent, rate 0.5)")
    metrics = {
        "verification_rate": {"estimate": overall["prefers_revision"], "low": overall["ci_low"], "high": overall["ci_high"]},
        "headline": marked,
        "multiplicity": {"method": cfg.multiplicity, "alpha": 1 - p.level, "null": "the persona prefers the revision half the time (0.5)"},
        "title": title,
        "pairs": {r["split"]: r["pairs"] for r in rows},
        "incomplete_pairs": pairs.height - complete.height,
        "level": p.level,
    }
    return Analysis(
        title=title,
        headline=summary,
        tables={"dpf_summary": summary, "preferences": complete},
        metrics=metrics,
        exports=(("preferences", "jsonl"),),
    )


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, level: float = 0.95, seed: int, examples: int) -> dict:
    """The verification rate per split, paired over the pairs both runs judged."""
    return paired_rates(ta, tb, table="preferences", ids=["persona_id", "prompt_id", "split"], outcome="persona_prefers_chosen", group=["split"],
                        units={"persona": "persona_id", "prompt": "prompt_id"}, metric="prefers_revision", n_resamples=n_resamples, level=level,
                        seed=seed, examples=examples)
