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
import xxhash
from pydantic import Field, field_validator

from persona_exp import prompts as prompt_sets
from persona_exp import stats
from persona_exp.analysis import design_sentence, interval, mark, paired_rates, settings
from persona_exp.errors import PlanError
from persona_exp.experiments.base import Analysis, Context, Design, RefineParams
from persona_exp.spec.models import Strict
from persona_exp.steps import add_judgment, add_refinement, preferred

HEADLINE_TABLE = "dpf_summary"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "judge")
POPULATION_SOURCES = ("census", "persona")  # drawn personas, or the released ones (population.released)
SPLITS = ("train", "test_seen", "test_heldout")
PERSONA_SPLITS = ("train", "test")


class PersonaSplit(Strict):
    """``experiment.persona_split``: which personas are held out as test people.

    ``test`` is a share (a number below 1, e.g. 0.36) or a count (a whole
    number, e.g. 568). A persona's place is decided by a hash of the seed and
    its id: with a share, a persona is a test persona when its hash falls below
    the share, so growing the population never moves anyone (the count is close
    to, not exactly, the share); with a count, the personas with the lowest
    hashes are the test ones (exact, but a larger population may take some
    test places). ``train``, when given, is a check: train + test must be the
    population's size."""

    test: float = Field(gt=0, le=10_000_000, description="test personas: a share below 1 (0.36) or a count (568; the paper)")
    train: int | None = Field(None, ge=1, le=10_000_000, description="optional check: the number of train personas (the rest)")

    @field_validator("test", mode="before")
    @classmethod
    def _share_or_count(cls, value: object) -> object:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if 0 < value < 1 or (float(value).is_integer() and 1 <= value <= 10_000_000):
                return value
        raise ValueError("give a share of the personas between 0 and 1 (e.g. 0.36) or a whole number of personas (e.g. 568)")

    def assign(self, persona_ids: list[str], seed: int) -> list[str]:
        """``train`` or ``test`` for each persona (see the class docstring)."""
        u = np.array([xxhash.xxh3_64_intdigest(f"persona-split|{int(seed)}|{pid}".encode()) for pid in persona_ids], dtype=np.uint64)
        if self.test < 1:
            test = u < np.uint64(int(self.test * 2**64))
        else:
            n = int(self.test)
            if n >= len(persona_ids):
                raise PlanError(f"experiment.persona_split.test is {n} but the population has {len(persona_ids)} personas; "
                                "lower it, give a share (e.g. 0.36), or raise population.size.")
            test = np.zeros(len(persona_ids), dtype=bool)
            test[np.argsort(u, kind="stable")[:n]] = True
        if self.train is not None and self.train != int((~test).sum()):
            raise PlanError(f"experiment.persona_split.train is {self.train} but {int((~test).sum())} personas are left for training "
                            f"({len(persona_ids)} personas, {int(test.sum())} test); make train + test the population's size, or leave train out.")
        return ["test" if t else "train" for t in test]


class Params(RefineParams):
    kind: Literal["dpf"] = "dpf"
    n_train: int = Field(10, ge=1, le=10_000, description="train pairs per persona (paper: 100)")
    n_seen_test: int = Field(5, ge=0, le=10_000, description="test pairs on train-split prompts per persona (paper: 50)")
    n_heldout: int = Field(5, ge=0, le=10_000, description="test pairs on held-out prompts per persona (paper: 50)")
    test_fraction: float = Field(868 / 3868, gt=0, lt=1, description="share of prompts held out, by topic (paper: 868 of 3,868)")
    verify: bool = Field(True, description="ask the role-playing judge whether the persona prefers the revision")
    persona_split: PersonaSplit | None = Field(None, description="hold out test personas (paper: {test: 568}, with 1,586 personas)")
    prompt_draws: Literal["distinct", "cycle"] = Field(
        "distinct", description="distinct: each persona's prompts differ (the paper); cycle: when a split has fewer prompts than a persona "
                                "needs, its prompts are given again as new samples (replicates), for sizing a paper-scale run on a small set")

    def pairs_per_persona(self) -> int:
        """Prompts each persona gets (the design's size is this times the population's)."""
        return self.n_train + self.n_seen_test + self.n_heldout


def build(ctx: Context) -> Design:
    from persona_exp.population.released import persona_text

    p: Params = ctx.params
    split = prompt_sets.split_by_topic(ctx.prompts, test_fraction=p.test_fraction, seed=ctx.seed)
    train = split.filter(pl.col("split") == "train")
    heldout = split.filter(pl.col("split") == "test")
    cycle = p.prompt_draws == "cycle"
    if train.height < p.n_train + p.n_seen_test and not (cycle and train.height):
        raise PlanError(f"experiment.n_train + n_seen_test is {p.n_train + p.n_seen_test} but only {train.height} prompts are in the train split"
                        + ("" if cycle else "; use a larger prompt set, or prompt_draws: cycle to size a run on this one") + ".")
    if heldout.height < p.n_heldout and not (cycle and heldout.height):
        raise PlanError(f"experiment.n_heldout is {p.n_heldout} but only {heldout.height} prompts are held out"
                        + ("" if cycle else "; use a larger prompt set, or prompt_draws: cycle to size a run on this one") + ".")
    personas = ctx.personas
    n = personas.height
    seen = _draws(n, train.height, p.n_train + p.n_seen_test, ctx.seed)
    held = _draws(n, heldout.height, p.n_heldout, ctx.seed + 1)
    train_rows = train.to_dicts()
    held_rows = heldout.to_dicts()
    ids = personas["persona_id"].to_list()
    people = p.persona_split.assign(ids, ctx.seed) if p.persona_split is not None else ["train"] * n
    plan_items = []
    from persona_exp.plan import Plan

    plan = Plan()
    for i, row in enumerate(personas.iter_rows(named=True)):
        persona = persona_text(row)
        chosen = [(train_rows[j], r, "train" if c < p.n_train else "test_seen") for c, (j, r) in enumerate(seen[i])]
        chosen += [(held_rows[j], r, "test_heldout") for j, r in held[i]]
        for q, rep, part in chosen:
            base, revised = add_refinement(plan, ctx, p, q["text"], persona, replicate=rep)
            item = {"persona_id": row["persona_id"], "persona_split": people[i], "prompt_id": q["id"], "replicate": rep, "topic": q["topic"],
                    "split": part, "prompt": q["text"], "persona": persona, "base_key": base, "revise_key": revised, "judge_key": None,
                    "revised_is_a": False}
            if p.verify:
                flip = (ctx.seed, "dpf", row["persona_id"], q["id"]) + ((rep,) if rep else ())
                item["judge_key"], item["revised_is_a"] = add_judgment(
                    plan, ctx, "verify", "judge", p.judge_template, {"question": q["text"], "persona": persona}, revised, base, flip, replicate=rep
                )
            plan_items.append(item)
    notes = []
    if cycle and (train.height < p.n_train + p.n_seen_test or heldout.height < p.n_heldout):
        notes.append(f"prompt_draws: cycle: {train.height} train and {heldout.height} held-out prompts serve {p.pairs_per_persona()} pairs per "
                     "persona, so a persona gets some prompts again as new samples (replicate > 0): the plan has the design's size and "
                     "price, but its pairs repeat prompts; use a prompt set as large as the design for a dataset.")
    return Design(plan, pl.DataFrame(plan_items, schema_overrides={"judge_key": pl.String}), notes)


def _draws(n: int, pool: int, k: int, seed: int) -> list[list[tuple[int, int]]]:
    """Per persona, ``k`` (prompt index, replicate) pairs: distinct prompts
    (``stats.assign_prompts``) while the pool is large enough; beyond it, the
    pool again in another seeded order, each pass a new replicate. Persona
    p's draws depend only on (seed, p), as assign_prompts' rows do."""
    if k == 0:
        return [[] for _ in range(n)]
    passes = -(-k // pool)
    rows = [[] for _ in range(n)]
    for r in range(passes):
        take = min(pool, k - r * pool)
        idx = stats.assign_prompts(n, pool, take, seed=seed + 7919 * r)
        for i in range(n):
            rows[i].extend((int(j), r) for j in idx[i])
    return rows


def analyze(ctx: Context, design: Design, results) -> Analysis:
    p: Params = ctx.params
    items = design.items

    def text(key: str | None) -> str | None:
        r = results.get(key) if key else None
        return r.output() if r is not None and r.ok else None

    def verdict(key: str | None, revised_is_a: bool) -> float | None:
        v = preferred(results, key, revised_is_a)
        return None if v < 0 else float(v)

    pairs = items.select("persona_id", "persona_split", "split", "prompt_id", "replicate", "topic", "prompt", "persona").with_columns(
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
    by_people = _persona_split_table(pairs)
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
        "persona_split": {part: by_people.filter(pl.col("persona_split") == part)["personas"].max() or 0 for part in PERSONA_SPLITS}
                         if p.persona_split is not None else None,
        "incomplete_pairs": pairs.height - complete.height,
        "level": p.level,
    }
    return Analysis(
        title=title,
        headline=summary,
        tables={"dpf_summary": summary, "preferences": complete, "dpf_persona_split": by_people},
        metrics=metrics,
        exports=(("preferences", "jsonl"),),
    )


def _persona_split_table(pairs: pl.DataFrame) -> pl.DataFrame:
    """Personas, pairs and the share the persona preferred per persona split
    (train / test people) and pair split: what a personalized model is trained
    on and what it is tested on."""
    return (
        pairs.group_by("persona_split", "split")
        .agg(pl.col("persona_id").n_unique().alias("personas"),
             (pl.col("chosen").is_not_null() & pl.col("rejected").is_not_null()).sum().alias("pairs"),
             pl.col("persona_prefers_chosen").mean().alias("prefers_revision"))
        .with_columns(pl.col("persona_split").replace_strict({s: i for i, s in enumerate(PERSONA_SPLITS)}, default=9).alias("_a"),
                      pl.col("split").replace_strict({s: i for i, s in enumerate(SPLITS)}, default=9).alias("_b"))
        .sort("_a", "_b").drop("_a", "_b")
    )


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, level: float = 0.95, seed: int, examples: int) -> dict:
    """The verification rate per split, paired over the pairs both runs judged.
    A pair is a persona, prompt and replicate (``prompt_draws: cycle`` gives a
    persona a prompt again as a new sample); runs stored before replicates
    existed pair without it."""
    both = all("replicate" in t.get("preferences", pl.DataFrame()).columns for t in (ta, tb))
    ids = ["persona_id", "prompt_id", *(["replicate"] if both else []), "split"]
    return paired_rates(ta, tb, table="preferences", ids=ids, outcome="persona_prefers_chosen", group=["split"],
                        units={"persona": "persona_id", "prompt": "prompt_id"}, metric="prefers_revision", n_resamples=n_resamples, level=level,
                        seed=seed, examples=examples)
