"""Famous personas (WikiPersonas): a personal preference dataset, and which
prefix best tells a model whose preferences to serve.

1. Personas: public figures by axis and category (population ``source: famous``).
2. Questions (generated, staged): ``n_personal`` questions per persona that
   this person would ask an assistant, and ``n_divergent`` per axis that its
   people would ask in common but want answered differently (prompts G.2);
   both pass the prompt filters and are split into train and test per list.
3. Dataset (train questions): ``n_candidates`` chain-of-thought answers per
   question (axis -> categories -> an answer for one category, prompt G.3),
   filtered for comparable quality and diversity down to ``keep``; the
   personal judge (prompt G.4) role-plays the persona and picks the best in a
   single-elimination bracket (three comparisons for four). Exported as
   chosen/rejected pairs.
4. Prefixes (test questions): the generator answers each test question under
   each condition: ``none``, ``tag`` (an opaque user id), ``few_shot`` (the
   persona's train questions with their winning answers), ``persona`` (a
   persona inferred from those examples, prompt G.5), ``name`` and ``gold``
   (a persona written from the name, prompt G.6). The personal judge compares
   every two conditions' answers; the win-rate matrix (row over column) and
   each condition's win rate against all others get bootstrap intervals over
   personas x questions (a divergent question is asked of every person of its
   axis); each condition's rate is tested against 0.5. (The paper also
   fine-tunes models with these prefixes; here the prefixes condition a
   prompted model.)
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import polars as pl
import xxhash
from pydantic import Field, field_validator, model_validator

from persona_exp import prompts as prompt_sets
from persona_exp.analysis import Estimate, design_sentence, interval, mark, paired_rates, settings
from persona_exp.errors import PlanError
from persona_exp.experiments.base import Analysis, Context, Design, IntervalParams, checked_prompt_filters
from persona_exp.plan import Plan
from persona_exp.spec.models import FieldError, no_duplicates
from persona_exp.prompts.filters import DEFAULT_FILTERS
from persona_exp.steps import add_call, add_judgment, preferred
from persona_exp.steps import templates as T
from persona_exp.steps.candidates import sample_candidates, select_diverse
from persona_exp.steps.classify import ControversialFilter, controversial_entry, controversial_params
from persona_exp.steps.questions import QuestionRequest, generate_questions
from persona_exp.steps.tournament import Bracket, run_brackets

HEADLINE_TABLE = "wikipersona_conditions"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "judge")
POPULATION_SOURCES = ("famous",)
USES_PROMPTS = False  # the questions are generated (step 2), not read from a prompt set
Condition = Literal["none", "tag", "few_shot", "persona", "name", "gold"]
CONDITIONS: tuple[str, ...] = ("none", "tag", "few_shot", "persona", "name", "gold")


class Params(IntervalParams):
    TEMPLATE_FIELDS = {
        "personal_template": ("name", "n", "axes"),
        "divergent_template": ("names", "axis", "n", "categories"),
        "candidate_template": ("axes", "question"),
        "judge_template": ("persona", "question", "response_a", "response_b"),
        "answer_template": ("question",),
        "prefixed_template": ("question", "prefix"),
        "infer_template": ("examples",),
        "gold_template": ("name",),
    }
    kind: Literal["wikipersona"] = "wikipersona"
    n_personal: int = Field(6, ge=2, le=1000, description="personal questions generated per persona (paper: 100)")
    n_divergent: int = Field(6, ge=2, le=1000, description="divergent questions generated per axis (paper: 100)")
    test_fraction: float = Field(0.5, gt=0, lt=1, description="share of each question list held out for the prefix comparison (paper: half)")
    n_candidates: int = Field(8, ge=2, le=200, description="chain-of-thought answers sampled per train question (paper: 50)")
    keep: int = Field(4, ge=2, le=200, description="candidates kept after the quality and diversity filter (paper: 4); at most n_candidates")
    length_band: float = Field(2.0, gt=1, le=100, description="keep candidates between median/band and median*band words")
    max_similarity: float = Field(0.8, gt=0, le=1, description="word-set Jaccard similarity above which a candidate is a near-duplicate")
    conditions: list[Condition] = Field(default_factory=lambda: list(CONDITIONS), min_length=2)
    few_shot: int = Field(2, ge=1, le=100, description="train examples in the few-shot prefix and for inferring a persona (paper: 2)")
    question_filters: list[Any] = Field(default_factory=lambda: [dict(f) for f in DEFAULT_FILTERS], description="prompt filters applied to generated questions")

    @field_validator("conditions")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        no_duplicates(value)
        return value

    @field_validator("question_filters")
    @classmethod
    def _filters(cls, value: list[Any]) -> list[Any]:
        return checked_prompt_filters(value)

    @model_validator(mode="after")
    def _keep_at_most_sampled(self) -> "Params":
        if self.keep > self.n_candidates:
            raise FieldError(("keep",), f"keep is {self.keep} but only n_candidates = {self.n_candidates} answers are sampled per question; "
                                        "lower keep or raise n_candidates")
        return self
    personal_template: str = T.PERSONAL_QUESTIONS
    divergent_template: str = T.DIVERGENT_QUESTIONS
    candidate_template: str = T.COT_RESPONSE
    judge_template: str = T.PERSONAL_JUDGE
    answer_template: str = T.ANSWER
    prefixed_template: str = T.PREFIXED_ANSWER
    infer_template: str = T.INFER_PERSONA
    gold_template: str = T.GOLD_PERSONA


def _judge_persona(row: dict) -> str:
    """What the personal judge is told about whom it simulates: the name, as in the paper."""
    return f"Name: {row['name']}"


def _tag(persona_id: str) -> str:
    return "user-" + xxhash.xxh3_64_hexdigest(persona_id.encode())[:8]


def _split(frame: pl.DataFrame, test_fraction: float, seed: int) -> pl.DataFrame:
    """Per list (owner), a seeded order; the last ``test_fraction`` is test."""
    if not frame.height:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias("split"))
    ranked = frame.with_columns(
        pl.Series("_r", [xxhash.xxh3_64_intdigest(f"{seed}|{o}|{i}".encode()) for o, i in zip(frame["owner"], frame["id"])], dtype=pl.UInt64)
    ).sort("owner", "_r", maintain_order=True)
    ranked = ranked.with_columns(pl.int_range(pl.len()).over("owner").alias("_i"), pl.len().over("owner").alias("_n"))
    n_test = (pl.col("_n").cast(pl.Float64) * test_fraction).round().clip(1, None)
    return ranked.with_columns(pl.when(pl.col("_i") >= pl.col("_n") - n_test).then(pl.lit("test")).otherwise(pl.lit("train")).alias("split")).drop("_r", "_i", "_n")


def _questions(ctx: Context, p: Params, people: list[dict], notes: list[str]) -> tuple[pl.DataFrame, list[dict]]:
    axes = sorted({r["axis"] for r in people})
    requests = [QuestionRequest(r["persona_id"], r["axis"], "generated:personal", {"name": r["name"], "n": str(p.n_personal), "axes": ", ".join(axes)}) for r in people]
    for axis in axes:
        members = [r for r in people if r["axis"] == axis]
        requests.append(QuestionRequest(f"axis:{axis}", axis, "generated:divergent", {
            "names": ", ".join(r["name"] for r in members), "axis": axis, "n": str(p.n_divergent),
            "categories": ", ".join(f"{r['name']} ({r['category']})" for r in members)}))
    personal = [r for r in requests if r.source == "generated:personal"]
    divergent = [r for r in requests if r.source == "generated:divergent"]
    frame_p, notes_p = generate_questions(ctx, "personal_questions", "generator", p.personal_template, personal)
    frame_d, notes_d = generate_questions(ctx, "divergent_questions", "generator", p.divergent_template, divergent)
    notes += notes_p + notes_d
    frame = pl.concat([frame_p, frame_d])
    # Text filters per question list; a model filter (controversial) once over
    # all lists, so its calls form one stage, reported per list all the same.
    entries = [(f, *controversial_entry(f)) for f in p.question_filters]
    plain = [f for f, is_model, _ in entries if not is_model]
    model_filters = [controversial_params(param) for _, is_model, param in entries if is_model]
    report: list[dict] = []
    kept = []
    for (owner,), g in frame.group_by(["owner"], maintain_order=True):
        filtered, steps = prompt_sets.filter_prompts(g, plain)
        kept.append(filtered)
        for s in steps:
            report.append({"owner": owner, **s._asdict()})
    frame = pl.concat(kept) if kept else frame
    for params in filter(None, model_filters):
        model_filter = ControversialFilter(ctx, params.role, params.template)
        before = frame
        frame = model_filter.apply(frame)
        after = dict(frame.group_by("owner").len().rows())
        for (owner,), g in before.group_by(["owner"], maintain_order=True):
            report.append({"owner": owner, "name": model_filter.name, "before": g.height, "removed": g.height - after.get(owner, 0), "after": after.get(owner, 0)})
        c = model_filter.last
        notes.append(f"controversial filter ({params.role}): {c['controversial']} of {c['checked']} generated questions called controversial, "
                     f"{c['not_controversial']} removed, {c['unanswered']} unanswered and kept")
    frame = frame.with_columns(pl.when(pl.col("source") == "generated:personal").then(pl.lit("personal")).otherwise(pl.lit("divergent")).alias("type"))
    return _split(frame, p.test_fraction, ctx.seed), report


def build(ctx: Context) -> Design:
    p: Params = ctx.params
    people = ctx.personas.to_dicts()
    if not people or "name" not in ctx.personas.columns:
        raise PlanError("the wikipersona experiment needs a famous population (population.source: famous) with at least one persona.")
    notes: list[str] = []
    questions, filter_report = _questions(ctx, p, people, notes)
    ctx.prompts = questions  # the run stores the generated questions as its prompts
    by_owner = {o: g for (o,), g in questions.group_by(["owner"], maintain_order=True)}

    def asked(row: dict, split: str) -> list[dict]:
        """The persona's questions: its personal ones, then its axis's divergent
        ones (a question in both lists counts once, as personal)."""
        own = [by_owner[k] for k in (row["persona_id"], f"axis:{row['axis']}") if k in by_owner]
        return pl.concat(own).unique(subset="id", keep="first", maintain_order=True).filter(pl.col("split") == split).to_dicts() if own else []

    # Dataset: diverse candidates for every train question, then the persona's bracket.
    train = {q["id"]: q for r in people for q in asked(r, "train")}
    axes = ", ".join(sorted({r["axis"] for r in people}))
    cand_plan, cand_keys, cand_results = sample_candidates(ctx, "candidates", "generator", p.candidate_template,
                                                           {qid: {"axes": axes, "question": q["text"]} for qid, q in train.items()}, p.n_candidates)
    selected: dict[str, list[str]] = {}
    selection_rows = []
    for qid, keys in cand_keys.items():
        texts = [cand_results[k].output() if cand_results[k].ok else None for k in keys]
        sel = select_diverse(texts, p.keep, length_band=p.length_band, max_similarity=p.max_similarity)
        selected[qid] = [keys[i] for i in sel.kept]
        selection_rows.append({"question_id": qid, "sampled": len(keys), "kept": len(sel.kept), "failed": sel.failed, "out_of_band": sel.out_of_band, "too_similar": sel.too_similar})
    brackets, owners = [], []
    for r in people:
        for q in asked(r, "train"):
            if len(selected.get(q["id"], [])) < 2:
                notes.append(f"{r['persona_id']} / {q['id']}: fewer than two usable candidates, no preference pair")
                continue
            brackets.append(Bracket(selected[q["id"]], {"persona": _judge_persona(r), "question": q["text"]}, (ctx.seed, "bracket", r["persona_id"], q["id"])))
            owners.append((r, q))
    run_brackets(ctx, cand_plan, "personal_judge", "judge", p.judge_template, brackets, parser="a_better")
    pairs, matches = [], []
    for b, (r, q) in zip(brackets, owners):
        for m in b.matches:
            matches.append({"persona_id": r["persona_id"], "question_id": q["id"], "round": m["round"], "first_key": m["first"], "second_key": m["second"],
                            "first_is_a": m["first_is_a"], "judge_key": m["judge_key"], "first_won": None if m["winner"] is None else m["winner"] == m["first"]})
        losers = [k for k in b.entrants if k != b.winner]
        rejected = losers[xxhash.xxh3_64_intdigest(f"{ctx.seed}|{r['persona_id']}|{q['id']}".encode()) % len(losers)] if b.winner else None
        pairs.append({"persona_id": r["persona_id"], "name": r["name"], "axis": r["axis"], "category": r["category"], "question_id": q["id"], "question": q["text"],
                      "question_type": q["type"], "candidates": len(b.entrants), "comparisons": len(b.matches), "chosen_key": b.winner, "rejected_key": rejected})
    pair_frame = pl.DataFrame(pairs, schema={"persona_id": pl.String, "name": pl.String, "axis": pl.String, "category": pl.String, "question_id": pl.String,
                                             "question": pl.String, "question_type": pl.String, "candidates": pl.Int64, "comparisons": pl.Int64,
                                             "chosen_key": pl.String, "rejected_key": pl.String})

    # Prefix conditions on the test questions, judged pairwise by the persona.
    plan = Plan()
    plan.include(cand_plan.calls[k] for k in cand_plan.calls)
    items = []
    for r in people:
        pid = r["persona_id"]
        shots = [x for x in pairs if x["persona_id"] == pid and x["chosen_key"]]
        shots.sort(key=lambda x: xxhash.xxh3_64_intdigest(f"{ctx.seed}|shot|{pid}|{x['question_id']}".encode()))
        shots = shots[: p.few_shot]
        examples = "\n\n".join(f"User Question {i + 1}:\n{x['question']}\nPreferred Response:\n{cand_results[x['chosen_key']].output()}" for i, x in enumerate(shots))
        conditions = [c for c in p.conditions if shots or c not in ("few_shot", "persona")]
        if len(conditions) < len(p.conditions):
            notes.append(f"{pid}: no train preference pairs, so no few_shot or persona condition")
        prefixes: dict[str, tuple[dict, dict]] = {"tag": ({"prefix": f"User tag: {_tag(pid)}"}, {}), "name": ({"prefix": f"Name: {r['name']}"}, {}),
                                                  "few_shot": ({"prefix": examples}, {})}
        if "persona" in conditions:
            prefixes["persona"] = ({}, {"prefix": add_call(plan, ctx, "infer_persona", "generator", p.infer_template, {"examples": examples})})
        if "gold" in conditions:
            prefixes["gold"] = ({}, {"prefix": add_call(plan, ctx, "gold_persona", "generator", p.gold_template, {"name": r["name"]})})
        for q in asked(r, "test"):
            answers = {}
            for c in conditions:
                if c == "none":
                    answers[c] = add_call(plan, ctx, "answer:none", "generator", p.answer_template, {"question": q["text"]})
                else:
                    values, inputs = prefixes[c]
                    answers[c] = add_call(plan, ctx, f"answer:{c}", "generator", p.prefixed_template, {"question": q["text"], **values}, inputs)
            for first, second in itertools.combinations(conditions, 2):
                key, first_is_a = add_judgment(plan, ctx, "compare", "judge", p.judge_template, {"persona": _judge_persona(r), "question": q["text"]},
                                               answers[first], answers[second], (ctx.seed, "compare", pid, q["id"], first, second), parser="a_better")
                items.append({"persona_id": pid, "axis": r["axis"], "question_id": q["id"], "question_type": q["type"], "first": first, "second": second,
                              "first_is_a": first_is_a, "first_key": answers[first], "second_key": answers[second], "judge_key": key})
    if not items:
        raise PlanError("the wikipersona design has no test comparisons: no test questions were generated (see the notes of the question steps).")
    tables = {"wikipersona_questions": questions, "wikipersona_question_filters": pl.DataFrame(filter_report),
              "wikipersona_candidates": pl.DataFrame(selection_rows), "wikipersona_pairs": pair_frame,
              "wikipersona_matches": pl.DataFrame(matches, schema={"persona_id": pl.String, "question_id": pl.String, "round": pl.Int64, "first_key": pl.String,
                                                                   "second_key": pl.String, "first_is_a": pl.Boolean, "judge_key": pl.String, "first_won": pl.Boolean})}
    return Design(plan, pl.DataFrame(items), notes, tables)


def _rate(g: pl.DataFrame, p: Params, seed: int, null: float | None = None) -> Estimate:
    return interval("rate", g["won"].to_numpy(), units={"persona": g["persona_id"].to_numpy(), "question": g["question_id"].to_numpy()},
                    n_resamples=p.n_resamples, level=p.level, seed=seed, null=null)


def analyze(ctx: Context, design: Design, results) -> Analysis:
    p: Params = ctx.params
    items = design.items.with_columns(
        pl.Series("first_wins", [preferred(results, k, a) for k, a in zip(design.items["judge_key"], design.items["first_is_a"])], dtype=pl.Int8)
    ).with_columns(pl.when(pl.col("first_wins") >= 0).then(pl.col("first_wins")).alias("first_wins"))  # missing judgments are null
    judged = items.filter(pl.col("first_wins").is_not_null())
    # Every game seen from both sides: (condition, opponent, 1 if the condition won).
    games = pl.concat([
        judged.select(pl.col("first").alias("condition"), pl.col("second").alias("opponent"), pl.col("first_wins").cast(pl.Float64).alias("won"), "persona_id", "question_id", "question_type"),
        judged.select(pl.col("second").alias("condition"), pl.col("first").alias("opponent"), (1 - pl.col("first_wins")).cast(pl.Float64).alias("won"), "persona_id", "question_id", "question_type"),
    ])
    conditions = [c for c in p.conditions if c in set(games["condition"].to_list())]
    cfg = settings(ctx)
    matrix, overall, named = [], [], []
    for c in conditions:
        mine = games.filter(pl.col("condition") == c)
        for o in conditions:
            if o == c:
                continue
            g = mine.filter(pl.col("opponent") == o)
            e = _rate(g, p, ctx.seed)
            matrix.append({"condition": c, "opponent": o, "win_rate": e.estimate, "ci_low": e.low, "ci_high": e.high, "games": g.height, "over": e.over(),
                           "note": e.warning or ""})
        e = _rate(mine, p, ctx.seed, null=0.5)
        named.append((f"win_rate[{c}]", e))
        row = {"condition": c, "win_rate": e.estimate, "ci_low": e.low, "ci_high": e.high, "games": mine.height}
        for t in ("personal", "divergent"):
            g = mine.filter(pl.col("question_type") == t)
            row[f"{t}_win_rate"] = float(g["won"].mean()) if g.height else float("nan")
        overall.append({**row, "over": e.over(), "note": e.warning or ""})
    marked, marks = mark(overall, named, cfg.multiplicity, 1 - p.level)
    headline = pl.DataFrame(overall, schema={"condition": pl.String, "win_rate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "games": pl.Int64,
                                             "personal_win_rate": pl.Float64, "divergent_win_rate": pl.Float64, "over": pl.String, "note": pl.String,
                                             "p_adjusted": pl.Float64, "survives": pl.Boolean}).sort("win_rate", descending=True, nulls_last=True)
    matrix_frame = pl.DataFrame(matrix, schema={"condition": pl.String, "opponent": pl.String, "win_rate": pl.Float64, "ci_low": pl.Float64,
                                                "ci_high": pl.Float64, "games": pl.Int64, "over": pl.String, "note": pl.String})
    title = ("WikiPersonas prefixes: win rate of each condition against the others (personal judge)\n"
             f"{design_sentence([e for _, e in named], p.level)}; {marks}"
             " (null: the condition wins half its games, 0.5)")

    pairs = design.tables["wikipersona_pairs"]

    def text(key: str | None) -> str | None:
        r = results.get(key) if key else None
        return r.output() if r is not None and r.ok else None

    preferences = pairs.select("persona_id", "name", "axis", "category", "question_type", "question_id", pl.col("question").alias("prompt")).with_columns(
        pl.Series("chosen", [text(k) for k in pairs["chosen_key"]], dtype=pl.String),
        pl.Series("rejected", [text(k) for k in pairs["rejected_key"]], dtype=pl.String),
        pl.lit("train").alias("split"),
    ).filter(pl.col("chosen").is_not_null() & pl.col("rejected").is_not_null())
    metrics = {
        "win_rate": {r["condition"]: {"estimate": r["win_rate"], "low": r["ci_low"], "high": r["ci_high"]} for r in overall},
        "headline": marked,
        "multiplicity": {"method": cfg.multiplicity, "alpha": 1 - p.level, "null": "the condition wins half its games (0.5)"},
        "title": title,
        "best_condition": headline["condition"][0] if headline.height else None,
        "comparisons_missing": items["first_wins"].null_count(),
        "preference_pairs": preferences.height,
        "questions": {t: int((design.tables["wikipersona_questions"]["type"] == t).sum()) for t in ("personal", "divergent")},
        "level": p.level,
    }
    return Analysis(
        title=title,
        headline=headline,
        tables={"wikipersona_conditions": headline, "wikipersona_matrix": matrix_frame, "wikipersona_comparisons": items, "wikipersona_games": games,
                "preferences": preferences,
                **design.tables},
        metrics=metrics,
        exports=(("preferences", "jsonl"),),
    )


def diff(ta: dict[str, pl.DataFrame], tb: dict[str, pl.DataFrame], *, n_resamples: int, level: float = 0.95, seed: int, examples: int) -> dict:
    """Each condition's win rate, paired over the games both runs judged (a
    game counts for both its conditions); flips are counted once per comparison."""
    units = {"persona": "persona_id", "question": "question_id"}
    out = paired_rates(ta, tb, table="wikipersona_games", ids=["persona_id", "question_id", "condition", "opponent"], outcome="won", group=["condition"],
                       units=units, metric="win_rate", n_resamples=n_resamples, level=level, seed=seed, examples=examples, overall=False)
    out["flips"] = paired_rates(ta, tb, table="wikipersona_comparisons", ids=["persona_id", "question_id", "first", "second"], outcome="first_wins",
                                group=["first", "second"], units=units, metric="first_wins", n_resamples=100, level=level, seed=seed, examples=examples,
                                overall=False)["flips"]
    return out
