"""Judge agreement (PERSONA section 4.2): do different judges, and people,
prefer the same answers when they role-play the same personas?

Every (persona, question) item gets a baseline answer and a persona-refined one
(critique + revision); each judge model role-plays the persona and picks one.
Cohen's kappa between every two judges over the items gives the agreement
matrix (each with a bootstrap interval over personas x questions and a test
against chance agreement); per-persona kappas give the histograms. Human
annotations join as one more annotator: a CSV with one row per (item,
annotator) and the letter they chose, reduced per item by majority vote
(paper: 3 of 4). The run stores an
annotation sheet (CSV) with exactly what people should be shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from persona_exp import stats
from persona_exp.analysis import change_row, design_sentence, interval, mark, settings
from persona_exp.errors import DataError
from persona_exp.experiments.base import Analysis, Context, Design, RefineParams, check_design_size, choose_personas, choose_questions
from persona_exp.plan import Plan
from persona_exp.spec.models import FieldError, no_duplicates
from persona_exp.steps import add_judgment, add_refinement, seeded_flip


HEADLINE_TABLE = "agreement_pairs"  # the table `persona-exp show` and reports lead with
class Params(RefineParams):
    kind: Literal["agreement"] = "agreement"
    judges: list[str] = Field(default_factory=lambda: ["judge_a", "judge_b", "judge_c"], min_length=2, max_length=50,
                              description="model roles that judge (each needs an entry under models)")
    n_personas: int = Field(50, ge=2, le=100_000, description="personas, each with every question")
    n_questions: int = Field(20, ge=2, le=100_000, description="questions of the filtered prompt set")
    human: str | None = Field(None, min_length=1, description="CSV of human choices: item_id, annotator, choice (A or B)")
    human_majority: int = Field(3, ge=1, le=1000, description="votes an answer needs to be the humans' label (paper: 3 of 4)")

    @field_validator("judges")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        for i, role in enumerate(value):
            if not role.strip():
                raise FieldError((i,), "a judge is the name of a model role (a key of models:), not empty text")
        no_duplicates(value)
        return value

    @model_validator(mode="after")
    def _size(self) -> "Params":
        check_design_size({"personas": self.n_personas, "questions": self.n_questions, "judges": len(self.judges)})
        return self


def roles(params: Params) -> tuple[str, ...]:
    return ("generator", *params.judges)


def build(ctx: Context) -> Design:
    from persona_exp.population import render_persona

    p: Params = ctx.params
    personas = choose_personas(ctx, p.n_personas)
    questions = choose_questions(ctx, p.n_questions)
    plan = Plan()
    items = []
    for row in personas.iter_rows(named=True):
        persona = render_persona(row)
        for q in questions.iter_rows(named=True):
            base, refined = add_refinement(plan, ctx, p, q["text"], persona)
            refined_is_a = seeded_flip(ctx.seed, "agreement", row["persona_id"], q["id"])
            item = {"item_id": f"{row['persona_id']}|{q['id']}", "persona_id": row["persona_id"], "question_id": q["id"], "question": q["text"],
                    "persona": persona, "refined_is_a": refined_is_a, "base_key": base, "revise_key": refined}
            for judge in p.judges:
                item[f"{judge}_key"], _ = add_judgment(plan, ctx, f"judge:{judge}", judge, p.judge_template, {"question": q["text"], "persona": persona}, refined, base, refined_is_a)
            items.append(item)
    return Design(plan, pl.DataFrame(items))


def _label(results, key: str, refined_is_a: bool) -> int:
    r = results.get(key)
    if r is None or not r.ok:
        return -1
    return int((r.value == "A") == refined_is_a)


def human_labels(path: str | Path, items: pl.DataFrame, majority: int) -> np.ndarray:
    """Majority-vote labels (1 = refined preferred, 0 = baseline, -1 = no majority or
    not annotated) in the order of ``items``, from a CSV of item_id, annotator, choice."""
    path = Path(path)
    try:
        frame = pl.read_csv(path, schema_overrides={"item_id": pl.String, "annotator": pl.String, "choice": pl.String})
    except FileNotFoundError:
        raise DataError(f"{path}: no such human-annotation file (experiment.human).") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the human annotations as CSV ({exc}).") from None
    missing = [c for c in ("item_id", "annotator", "choice") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: column(s) {', '.join(missing)} missing; expected item_id, annotator, choice (A or B).")
    choice = frame["choice"].str.strip_chars().str.to_uppercase()
    bad = frame.filter(~choice.is_in(["A", "B"]))
    if bad.height:
        r = bad.row(0, named=True)
        raise DataError(f"{path}: column choice: {r['choice']!r} for item {r['item_id']} (annotator {r['annotator']}); use A or B.")
    unknown = set(frame["item_id"]) - set(items["item_id"])
    if unknown:
        raise DataError(f"{path}: column item_id: {len(unknown)} ids are not items of this run, e.g. {sorted(unknown)[0]!r}; use the run's annotation_sheet.csv.")
    votes = frame.with_columns(choice=choice).group_by("item_id").agg(a=(pl.col("choice") == "A").sum(), b=(pl.col("choice") == "B").sum())
    joined = items.select("item_id", "refined_is_a").join(votes, on="item_id", how="left").fill_null(0)
    a, b, ra = joined["a"].to_numpy(), joined["b"].to_numpy(), joined["refined_is_a"].to_numpy()
    label = np.full(len(joined), -1, dtype=np.int64)
    label[(a >= majority) & (a > b)] = 0
    label[(b >= majority) & (b > a)] = 0
    label[((a >= majority) & (a > b) & ra) | ((b >= majority) & (b > a) & ~ra)] = 1
    return label


def analyze(ctx: Context, design: Design, results) -> Analysis:
    p: Params = ctx.params
    items = design.items
    names = list(p.judges)
    labels = [np.array([_label(results, k, a) for k, a in zip(items[f"{j}_key"], items["refined_is_a"])], dtype=np.int64) for j in names]
    if p.human:
        names.append("human")
        labels.append(human_labels(p.human, items, p.human_majority))
    matrix = stats.kappa_matrix(np.vstack(labels), k=2)
    personas = items["persona_id"].to_numpy()
    questions = items["question_id"].to_numpy()
    cfg = settings(ctx)
    pairs, per_persona, named = [], [], []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = labels[i], labels[j]
            both = (a >= 0) & (b >= 0)
            est = interval("kappa", a[both], b[both], units={"persona": personas[both], "question": questions[both]},
                           n_resamples=p.n_resamples, level=p.level, seed=ctx.seed, null=0.0)
            named.append((f"kappa[{names[i]}~{names[j]}]", est))
            pairs.append({"a": names[i], "b": names[j], "kappa": est.estimate, "ci_low": est.low, "ci_high": est.high, "items": int(both.sum()),
                          "over": est.over(), "note": est.warning or ""})
            for pid in np.unique(personas):
                m = personas == pid
                if ((a[m] >= 0) & (b[m] >= 0)).any():
                    per_persona.append({"a": names[i], "b": names[j], "persona_id": str(pid), "kappa": stats.cohen_kappa(a[m], b[m], k=2)})
    marked, marks = mark(pairs, named, cfg.multiplicity, 1 - p.level)
    title = ("Judge agreement: Cohen's kappa between annotators over the same persona-question items\n"
             f"{design_sentence([e for _, e in named], p.level)}; {marks}"
             " (null: no agreement beyond chance, kappa 0)")
    wide = pl.DataFrame({"annotator": names, **{n: matrix[:, c] for c, n in enumerate(names)}})
    sheet = items.with_columns(
        pl.Series("response_a", [results[r if a else bk].output() if results.get(r if a else bk) else None for r, bk, a in zip(items["revise_key"], items["base_key"], items["refined_is_a"])], dtype=pl.String),
        pl.Series("response_b", [results[bk if a else r].output() if results.get(bk if a else r) else None for r, bk, a in zip(items["revise_key"], items["base_key"], items["refined_is_a"])], dtype=pl.String),
    ).select("item_id", "persona", "question", "response_a", "response_b")
    metrics = {"kappa": {f"{r['a']}~{r['b']}": {"estimate": r["kappa"], "low": r["ci_low"], "high": r["ci_high"]} for r in pairs},
               "headline": marked, "multiplicity": {"method": cfg.multiplicity, "alpha": 1 - p.level, "null": "kappa 0 (chance agreement)"},
               "title": title, "annotators": names, "level": p.level}
    return Analysis(
        title=title,
        headline=pl.DataFrame(pairs),
        tables={"agreement_pairs": pl.DataFrame(pairs), "kappa_matrix": wide, "persona_kappas": pl.DataFrame(per_persona),
                "agreement_labels": items.select("item_id", "persona_id", "question_id").with_columns(
                    *[pl.Series(n, lab) for n, lab in zip(names, labels)]), "annotation_sheet": sheet},
        metrics=metrics,
        exports=(("annotation_sheet", "csv"),),
    )


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, level: float = 0.95, seed: int, examples: int) -> dict:
    """Kappa of every pair of annotators both runs have, with a paired
    bootstrap over personas x questions of the items both labelled; items
    whose labels changed."""
    for t, run in ((ta, "A"), (tb, "B")):
        if "agreement_labels" not in t:
            raise DataError(f"run {run} has no agreement_labels table, so its kappas cannot be compared.")
    la, lb = ta["agreement_labels"], tb["agreement_labels"]
    names = [c for c in la.columns if c in lb.columns and c not in ("item_id", "persona_id", "question_id")]
    shared = la.join(lb.select(["item_id", *names]), on="item_id", suffix="_b")
    metrics = []
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            arrays = [shared[c].to_numpy() for c in (x, y, f"{x}_b", f"{y}_b")]
            both = np.all([arr >= 0 for arr in arrays], axis=0)
            # kappa_diff gives kappa(first pair) - kappa(second pair); we report B - A.
            est = interval("kappa_diff", *(arrays[k][both] for k in (2, 3, 0, 1)),
                           units={"persona": shared["persona_id"].to_numpy()[both], "question": shared["question_id"].to_numpy()[both]},
                           n_resamples=n_resamples, level=level, seed=seed, null=0.0)
            count = [int(((lab[x] >= 0) & (lab[y] >= 0)).sum()) for lab in (la, lb)]
            metrics.append(change_row(f"kappa[{x}~{y}]", est, *count))
    changed = shared.filter(pl.any_horizontal([pl.col(n) != pl.col(f"{n}_b") for n in names])) if names else shared.head(0)
    by_group = [{"group": f"annotator {n}", "flips": int((shared[n] != shared[f"{n}_b"]).sum())} for n in names]
    ex = [f"item {r['item_id']}: " + ", ".join(f"{n} {r[n]}->{r[n + '_b']}" for n in names if r[n] != r[n + "_b"]) for r in changed.head(examples).iter_rows(named=True)]
    return {"metrics": metrics, "flips": {"shared": shared.height, "a": la.height, "b": lb.height, "total": changed.height, "by_group": by_group, "examples": ex}}
