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
(``slice_by``: one intersection, or several), tested the same way within
each slice, all slices one family.

persona-bench's evaluations: the ``debate`` critic (two debaters, the
generator's model, argue over the answer for ``rounds`` rounds, one for it and
one against; the critic reads the debate and decides, ``steps.debate``), and
the comparison evaluation (``comparison: true``): the critic role-plays the
persona and picks between each mode's answer and the baseline mode's answer
to the same item, shown as A or B by a seeded coin; reported as the mode's
win rate with its interval, tested against 0.5 (its own family), overall and
per slice.
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
from persona_exp.steps import add_call, add_judgment, preferred
from persona_exp.steps import templates as T
from persona_exp.steps.debate import add_debate

HEADLINE_TABLE = "conditioning"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "critic")
Mode = Literal["none", "persona", "cot", "summarize"]
Critic = Literal["personalization", "helpfulness", "debate"]
Attributes = Annotated[list[str], Field(min_length=1, max_length=4)]


class Params(IntervalParams):
    TEMPLATE_FIELDS = {
        **{f"{m}_template": ("question", "persona") for m in ("answer", "persona", "cot", "summarize")},
        "summary_answer_template": ("question", "summary"),
        **{f"{c}_critic_template": ("question", "persona", "response") for c in ("personalization", "helpfulness")},
        **{f"debate_{s}_template": ("question", "persona", "response", "debate") for s in ("for", "against", "judge")},
        "compare_template": ("question", "persona", "response_a", "response_b"),
    }
    kind: Literal["conditioning"] = "conditioning"
    modes: list[Mode] = Field(default_factory=lambda: ["none", "persona", "cot", "summarize"], min_length=1)
    critics: list[Critic] = Field(default_factory=lambda: ["personalization", "helpfulness"], min_length=1)
    n_personas: int = Field(30, ge=2, le=100_000, description="personas, each answering every question in every mode")
    n_questions: int = Field(10, ge=1, le=100_000, description="questions of the filtered prompt set")
    samples: int = Field(1, ge=1, le=100, description="answers per (persona, question, mode); with a real model > 1 needs temperature > 0 to differ")
    pass_k: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=lambda: [1], min_length=1, description="k values for pass@k (each <= samples)")
    slice_by: list[str] | list[Attributes] = Field(
        default_factory=list, max_length=8,
        description="attributes (at most 4) whose value combinations get their own accuracy, or a list of such lists (several slicings, e.g. [[sex], [sex, age]])")
    rounds: int = Field(1, ge=1, le=5, description="debate rounds (critic debate): each round both debaters argue once")
    comparison: bool = Field(False, description="also judge each mode's answer against the baseline mode's, pairwise for the persona (win rate)")
    answer_template: str = T.ANSWER
    persona_template: str = T.ANSWER_WITH_PERSONA
    cot_template: str = T.ANSWER_WITH_COT
    summarize_template: str = T.SUMMARIZE_ATTRIBUTES
    summary_answer_template: str = T.ANSWER_WITH_SUMMARY
    personalization_critic_template: str = T.CRITIC_PERSONALIZATION
    helpfulness_critic_template: str = T.CRITIC_HELPFULNESS
    debate_for_template: str = T.DEBATE_FOR
    debate_against_template: str = T.DEBATE_AGAINST
    debate_judge_template: str = T.DEBATE_JUDGE
    compare_template: str = T.JUDGE

    @field_validator("modes", "critics", "pass_k")
    @classmethod
    def _once_each(cls, value: list) -> list:
        no_duplicates(value)
        return value

    @field_validator("slice_by")
    @classmethod
    def _known_attributes(cls, value: list) -> list:
        if value and all(isinstance(v, list) for v in value):
            for i, names in enumerate(value):
                try:
                    check_attributes(names)
                except FieldError as exc:
                    raise FieldError((i, *exc.path), str(exc), key=exc.key) from None
            no_duplicates(value, lambda names: tuple(sorted(names)))
        else:
            check_attributes(value)
        return value

    @model_validator(mode="after")
    def _pass_k_and_size(self) -> "Params":
        for i, k in enumerate(self.pass_k):
            if k > self.samples:
                raise FieldError(("pass_k", i), f"pass@{k} needs at least {k} answers per item, but samples is {self.samples}; raise samples or lower k")
        if self.comparison and len(self.modes) < 2:
            raise FieldError(("comparison",), f"the comparison judges each mode's answer against another mode's, but modes lists only {self.modes[0]}; "
                             "add a mode (e.g. modes: [none, persona]) or set comparison: false")
        check_design_size({"personas": self.n_personas, "questions": self.n_questions, "modes": len(self.modes), "samples": self.samples,
                           "critics": len(self.critics)})
        return self

    @property
    def slicings(self) -> list[list[str]]:
        """``slice_by`` as a list of slicings: a flat list of names is one (their intersection)."""
        if not self.slice_by:
            return []
        return [list(v) for v in self.slice_by] if isinstance(self.slice_by[0], list) else [list(self.slice_by)]

    @property
    def base_mode(self) -> str:
        """The mode others are compared with: ``none`` when run, else the first."""
        return "none" if "none" in self.modes else self.modes[0]


def caveats(ctx: Context) -> list[str]:
    """Said before anything is sent: several samples per item at temperature 0
    are the same answer from a real model, so pass@k would measure nothing."""
    p: Params = ctx.params
    if p.samples > 1 and ctx.models["generator"].sampling().get("temperature") == 0:
        return [f"WARNING: {p.samples} samples per item are drawn at the generator's temperature 0, where a real model gives the same answer "
                "every time, so pass@k equals pass@1 (the simulator draws anew per sample regardless); set models.generator.temperature above 0."]
    return []


def build(ctx: Context) -> Design:
    from persona_exp.population import attribute, render_persona

    p: Params = ctx.params
    personas = choose_personas(ctx, p.n_personas)
    questions = choose_questions(ctx, p.n_questions)
    sliced = list(dict.fromkeys(a for names in p.slicings for a in names))
    plan = Plan()
    items, comparisons = [], []
    for row in personas.iter_rows(named=True):
        persona = render_persona(row)
        slices = {f"slice_{a}": str(row.get(attribute(a).name)) for a in sliced}
        for q in questions.iter_rows(named=True):
            values = {"question": q["text"], "persona": persona}
            answers: dict[tuple[str, int], str] = {}
            for mode in p.modes:
                for s in range(p.samples):
                    answer = answers[mode, s] = _answer(plan, ctx, p, mode, values, s)
                    for critic in p.critics:
                        if critic == "debate":
                            verdict, _ = add_debate(plan, ctx, values, answer, rounds=p.rounds, for_template=p.debate_for_template,
                                                    against_template=p.debate_against_template, judge_template=p.debate_judge_template,
                                                    debater_role="generator", judge_role="critic")
                        else:
                            template = p.personalization_critic_template if critic == "personalization" else p.helpfulness_critic_template
                            verdict = add_call(plan, ctx, f"critic:{critic}", "critic", template, values, {"response": answer}, parser="needs_revision")
                        items.append({"persona_id": row["persona_id"], "question_id": q["id"], "mode": mode, "sample": s, "critic": critic,
                                      "answer_key": answer, "critic_key": verdict, **slices})
            for mode in p.modes if p.comparison else ():
                for s in range(p.samples) if mode != p.base_mode else ():
                    key, mode_is_a = add_judgment(plan, ctx, "compare", "critic", p.compare_template, values, answers[mode, s], answers[p.base_mode, s],
                                                  (ctx.seed, "compare", row["persona_id"], q["id"], mode, s))
                    comparisons.append({"persona_id": row["persona_id"], "question_id": q["id"], "mode": mode, "against": p.base_mode, "sample": s,
                                        "mode_is_a": mode_is_a, "answer_key": answers[mode, s], "against_key": answers[p.base_mode, s],
                                        "judge_key": key, **slices})
    tables = {"comparisons": pl.DataFrame(comparisons)} if p.comparison else {}
    return Design(plan, pl.DataFrame(items), tables=tables)


def _answer(plan: Plan, ctx: Context, p: Params, mode: str, values: dict[str, str], s: int) -> str:
    """The key of one answer in a conditioning mode (``summarize``: the summary call, then the answer from it)."""
    if mode == "summarize":
        summary = add_call(plan, ctx, "summarize", "generator", p.summarize_template, values, replicate=s)
        return add_call(plan, ctx, "answer:summarize", "generator", p.summary_answer_template, {"question": values["question"]}, {"summary": summary}, replicate=s)
    template = {"none": p.answer_template, "persona": p.persona_template, "cot": p.cot_template}[mode]
    return add_call(plan, ctx, f"answer:{mode}", "generator", template, values, replicate=s)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


FACTORS = {"persona": "persona_id", "question": "question_id"}
PAIR_IDS = ["persona_id", "question_id", "sample", "critic"]


def _units(g: pl.DataFrame, key: str, sliced: bool) -> dict[str, str]:
    """The units the calls ``key`` vary with (``real_units``). In a slice, a
    factor with a single level stays: a slice of one persona is one persona,
    and its interval must say so (too few), not pass for one over questions."""
    use = real_units(g, FACTORS, key) if g.height else dict(FACTORS)
    if sliced:
        use = {u: c for u, c in FACTORS.items() if u in use or g[c].n_unique() < 2}
    return use


def _accuracy(g: pl.DataFrame, p: Params, seed: int, sliced: bool = False) -> Estimate:
    """Accuracy over the units the critic's calls vary with: an answer the
    persona never saw, judged by a critic that does not see it either, is one
    observation per question, however many personas share it."""
    use = _units(g, "critic_key", sliced)
    return interval("rate", g["passed"].to_numpy(), units={u: g[c].to_numpy() for u, c in use.items()}, n_resamples=p.n_resamples, level=p.level, seed=seed)


def _versus(g: pl.DataFrame, base: pl.DataFrame, p: Params, seed: int, sliced: bool = False) -> Estimate:
    """Accuracy minus the baseline mode's on the same persona, question, sample
    and critic (paired), tested against no difference."""
    j = base.select(*PAIR_IDS, "passed", "critic_key").join(g.select(*PAIR_IDS, "passed", "critic_key"), on=PAIR_IDS, suffix="_m")
    j = j.with_columns(pl.concat_str(["critic_key", "critic_key_m"]).alias("_pair"))
    use = _units(j, "_pair", sliced)
    return interval("rate_diff", j["passed"].to_numpy(), j["passed_m"].to_numpy(), units={u: j[c].to_numpy() for u, c in use.items()},
                    n_resamples=p.n_resamples, level=p.level, seed=seed, null=0.0)


def _tested_rows(groups: list[tuple[dict, pl.DataFrame, pl.DataFrame | None]], p: Params, seed: int, cfg, base_mode: str,
                 sliced: bool = False) -> tuple[list[dict], list[tuple[str, Estimate]], list[dict]]:
    """Per group (its labels, its answers, the baseline mode's answers or
    None): accuracy with its interval, and the paired change against the
    baseline mode, marked by the multiplicity correction over the groups."""
    rows, named = [], []
    for labels, g, base in groups:
        acc = _accuracy(g, p, seed, sliced)
        vs = _versus(g, base, p, seed, sliced) if base is not None else None
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
    base_mode = p.base_mode

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
    if p.slicings:
        labelled = []
        for names in p.slicings:
            keys = [f"slice_{a}" for a in names]
            labelled += [(names, grp) for grp in groups(judged.sort(keys), keys)]
        # All slicings are one family: a slice is tested against mode none within it.
        slice_rows, _, _ = _tested_rows([grp for _, grp in labelled], p, ctx.seed, cfg, base_mode, sliced=True)
        for r, (names, _) in zip(slice_rows, labelled):
            r.update(_slice_label(names, r))
        tables["conditioning_slices"] = _slice_frame(slice_rows, p.slicings, ["mode", "critic"])
    compare = _comparison(design, results, p, ctx.seed, cfg) if p.comparison else None
    if compare is not None:
        tables.update(compare.tables)
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
    if compare is not None:
        title += "\n" + compare.title
        metrics.update(title=title, comparison=compare.metrics)
    return Analysis(title, headline, tables, metrics)


def _slice_label(names: list[str], row: dict) -> dict:
    """Which slicing a slice row belongs to and its values, in words."""
    return {"slice": " x ".join(names), "slice_value": " / ".join(str(row[f"slice_{a}"]) for a in names)}


def _slice_frame(rows: list[dict], slicings: list[list[str]], order: list[str]) -> pl.DataFrame:
    """Slice rows of every slicing in one table (a slicing's rows have nulls in
    the other slicings' attribute columns), each slicing sorted by its values."""
    frames = []
    for names in slicings:
        label = " x ".join(names)
        part = pl.from_dicts([r for r in rows if r["slice"] == label], infer_schema_length=None)
        frames.append(part.sort([*(f"slice_{a}" for a in names), *order]))
    out = pl.concat(frames, how="diagonal_relaxed")
    first = ["slice", "slice_value", *(c for c in out.columns if c.startswith("slice_") and c != "slice_value")]
    return out.select(*first, *(c for c in out.columns if c not in first))


def _comparison(design: Design, results, p: Params, seed: int, cfg) -> Analysis:
    """Win rate of each mode's answer against the baseline mode's in the
    critic's pairwise judgments (ties impossible: the judge must pick),
    with its interval over the units the judge calls vary with, tested
    against 0.5; per slice too. ``chose_a`` is the share of judgments for
    position A, a check on position bias (the order is a seeded coin)."""
    c = design.tables["comparisons"]
    c = c.with_columns(pl.Series("won", [preferred(results, k, a) for k, a in zip(c["judge_key"], c["mode_is_a"])], dtype=pl.Int8))
    c = c.with_columns(pl.when(pl.col("won") >= 0).then(pl.col("won").cast(pl.Float64)).alias("won"))
    judged = c.filter(pl.col("won").is_not_null())
    alpha = 1 - p.level

    def rows_for(frame: pl.DataFrame, keys: list[str]) -> tuple[list[dict], list[tuple[str, Estimate]]]:
        sliced = bool(keys)
        rows, named = [], []
        for values, g in frame.group_by([*keys, "mode", "against"], maintain_order=True):
            labels = dict(zip([*keys, "mode", "against"], values))
            use = _units(g, "judge_key", sliced)
            est = interval("rate", g["won"].to_numpy(), units={u: g[col].to_numpy() for u, col in use.items()}, n_resamples=p.n_resamples,
                           level=p.level, seed=seed, null=0.5)
            chose_a = float((g["won"] == g["mode_is_a"].cast(pl.Float64)).mean())
            rows.append({**labels, "win_rate": est.estimate, "ci_low": est.low, "ci_high": est.high, "judgments": g.height, "chose_a": chose_a,
                         "over": est.over(), "note": est.warning or ""})
            named.append(("/".join(str(v) for v in labels.values()), est))
        marked = tested(named, cfg.multiplicity, alpha)
        for r, m in zip(rows, marked):
            r.update(p_adjusted=m["p_adjusted"], survives=m["survives"])
        return rows, named

    rows, named = rows_for(judged, [])
    table = pl.from_dicts(rows, infer_schema_length=None) if rows else pl.DataFrame()
    tables = {"conditioning_comparison": table, "conditioning_comparisons": c}
    if p.slicings:
        all_rows = []
        for names in p.slicings:
            keys = [f"slice_{a}" for a in names]
            part, _ = rows_for(judged.sort(keys), keys)
            all_rows += [{**r, **_slice_label(names, r)} for r in part]
        tables["conditioning_comparison_slices"] = _slice_frame(all_rows, p.slicings, ["mode"]) if all_rows else pl.DataFrame()
    estimates = [e for _, e in named]
    title = (f"Comparison: share of pairwise judgments (the critic role-playing the persona) preferring each mode's answer to mode {p.base_mode}'s; "
             f"{design_sentence(estimates, p.level)}; {describe(cfg.multiplicity, alpha, sum(np.isfinite(e.p) for e in estimates))} (null: win rate 0.5)")
    metrics = {"win_rate": {r["mode"]: {"estimate": r["win_rate"], "low": r["ci_low"], "high": r["ci_high"], "survives": r["survives"]} for r in rows},
               "against": p.base_mode, "unjudged": c.height - judged.height}
    return Analysis(title, table, tables, metrics)


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, level: float = 0.95, seed: int, examples: int) -> dict:
    """Accuracy per mode and critic, paired over the answers both runs scored."""
    return paired_rates(ta, tb, table="conditioning_answers", ids=["persona_id", "question_id", "mode", "sample", "critic"], outcome="passed",
                        group=["mode", "critic"], units=FACTORS, key="critic_key", metric="accuracy", n_resamples=n_resamples, level=level,
                        seed=seed, examples=examples, overall=False)
