"""Famous personas (WikiPersonas): a personal preference dataset, and which
prefix best tells a model whose preferences to serve.

1. Personas: public figures by axis and category (population ``source: famous``).
2. Questions (generated, staged): ``n_personal`` questions per persona that
   this person would ask an assistant, and ``n_divergent`` per axis that its
   people would ask in common but want answered differently (prompts G.2);
   both pass the prompt filters and are split into train and test per list.
3. Dataset (train and, with ``heldout_pairs``, test questions):
   ``n_candidates`` chain-of-thought answers per question (axis -> categories
   -> an answer for one category, prompt G.3; for a divergent question the
   prompt names its true axis and categories, one category per sample, as in
   appendix B.1), sampled at ``candidate_temperature`` (paper: 2.0, top_p 0.8),
   then filtered down to ``keep`` by the stages of ``filter`` (lexical,
   embedding, reward: see ``persona_exp.steps.candidates``); the personal judge
   (prompt G.4) role-plays the persona and picks the best in a
   single-elimination bracket (three comparisons for four). Exported as
   chosen/rejected pairs with their split.
4. Prefixes (test questions): the generator answers each test question under
   each condition: ``none``, ``tag`` (an opaque user id), ``few_shot`` (2 of the
   persona's train questions with their winning answers), ``persona`` (a
   persona inferred from 4 such examples, prompt G.5), ``name``, ``gold`` (a
   persona written from the name, prompt G.6) and ``random`` (the gold persona
   of another person, drawn with the seed: the paper's random reference and
   wrong-prefix control). The personal judge compares every two conditions'
   answers; the win-rate matrix (row over column) and each condition's win
   rate against all others get bootstrap intervals over personas x questions
   (a divergent question is asked of every person of its axis); each
   condition's rate is tested against 0.5.
5. Evaluation against the held-out gold (with ``heldout_pairs``): ROUGE-1 and
   ROUGE-L of each condition's answers against the chosen answer of the test
   pair; preference accuracy: the judge, told only a condition's prefix,
   predicts which answer of each test pair the person chose (random guess:
   0.5); and the paper's Table 2: ROUGE-1 of each prefix against the person's
   gold persona and against a random other person's, with its length. (The
   paper also fine-tunes models with these prefixes and scores them by their
   implicit reward; here the prefixes condition prompted models.)
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import polars as pl
import xxhash
from pydantic import Field, field_validator, model_validator

from persona_exp import prompts as prompt_sets
from persona_exp.analysis import Estimate, design_sentence, interval, mark, paired_rates, settings, tested
from persona_exp.errors import PlanError
from persona_exp.experiments.base import Analysis, Context, Design, IntervalParams, checked_prompt_filters
from persona_exp.plan import Plan
from persona_exp.spec.models import FieldError, no_duplicates
from persona_exp.prompts.filters import DEFAULT_FILTERS
from persona_exp.steps import add_call, add_judgment, preferred
from persona_exp.steps import templates as T
from persona_exp.steps.candidates import FilterStage, LexicalStage, embed_candidates, filter_candidates, read_score, sample_candidates
from persona_exp.steps.classify import ControversialFilter, controversial_entry, controversial_params
from persona_exp.steps.questions import QuestionRequest, generate_questions
from persona_exp.steps.tournament import Bracket, run_brackets

HEADLINE_TABLE = "wikipersona_conditions"  # the table `persona-exp show` and reports lead with
ROLES = ("generator", "judge")
POPULATION_SOURCES = ("famous",)
USES_PROMPTS = False  # the questions are generated (step 2), not read from a prompt set
Condition = Literal["none", "tag", "few_shot", "persona", "name", "gold", "random"]
CONDITIONS: tuple[str, ...] = ("none", "tag", "few_shot", "persona", "name", "gold", "random")
NO_PREFIX = "Nothing is known about this user."  # what the judge is told for `none` when it predicts a choice

# Appendix B.1: for a divergent question the candidates use its true axis and
# categories, one category per sample (round robin), instead of letting the
# model choose; the answer format is G.3's, so its parser reads it.
DIVERGENT_COT = (
    "You are a helpful assistant. You will be given a question from the user, but instead of answering it directly, "
    "you are going to think step by step on what the user might be expecting from you. Individual preferences may "
    "differ along many axis. This question is about the axis {axis}, whose categories are: {categories}.\n\n"
    "Assume the user belongs to the category {category}, and cater your response to how they might like, agree with, "
    "or be interested in. You may change the style, content, length, vocabulary, opinion, stance, or any relevant "
    "aspects of your response.\n\n"
    "Please respond in the following format:\n\n"
    "Axis: {axis}\n\nCategories: {categories}\n\nChosen category: {category}\n\n"
    "Response: {specific response for the person of the category}\n\n"
    "User question: {question}"
)

# The personal judge predicting a held-out choice from a prefix alone (prompt G.4 with the prefix for the name).
PREDICT_CHOICE = (
    T.PERSONAL_JUDGE_OPENING
    + "Here is what we know about the person:\n{prefix}\n\n"
    + "Instruction: Please simulate the preference of this person over the answers for the question below.\n\n"
    + T.PERSONAL_JUDGE_ANSWERS
)


class Params(IntervalParams):
    TEMPLATE_FIELDS = {
        "personal_template": ("name", "n", "axes"),
        "divergent_template": ("names", "axis", "n", "categories"),
        "candidate_template": ("axes", "question"),
        "divergent_candidate_template": ("axis", "categories", "category", "question"),
        "judge_template": ("persona", "question", "response_a", "response_b"),
        "predict_template": ("prefix", "question", "response_a", "response_b"),
        "answer_template": ("question",),
        "prefixed_template": ("question", "prefix"),
        "infer_template": ("examples",),
        "gold_template": ("name",),
    }
    kind: Literal["wikipersona"] = "wikipersona"
    # The defaults are the paper's; the shipped spec sets smaller numbers so that it runs offline in seconds.
    n_personal: int = Field(100, ge=2, le=1000, description="personal questions generated per persona (paper: 100)")
    n_divergent: int = Field(100, ge=2, le=1000, description="divergent questions generated per axis (paper: 100)")
    test_fraction: float = Field(0.5, gt=0, lt=1, description="share of each question list held out for the prefix comparison (paper: half)")
    n_candidates: int = Field(50, ge=2, le=200, description="chain-of-thought answers sampled per question (paper: 50)")
    candidate_temperature: float | None = Field(2.0, ge=0, le=2, description="sampling temperature of the candidates only (paper: 2.0; "
                                                "null: the generator's own); some providers accept at most 1")
    candidate_top_p: float | None = Field(0.8, gt=0, le=1, description="top_p of the candidates only (paper: 0.8; null: the generator's own)")
    keep: int = Field(4, ge=2, le=200, description="candidates kept after the quality and diversity filter (paper: 4); at most n_candidates")
    filter: list[FilterStage] = Field(default_factory=lambda: [LexicalStage()], min_length=1,
                                      description="candidate filter stages, in order: lexical (default), embedding, reward")
    heldout_pairs: bool = Field(True, description="also build preference pairs on the test questions (paper: as many as train): "
                                "the gold answers for ROUGE and the held-out choices for preference accuracy")
    predict_role: str = Field("judge", min_length=1, description="the model role that predicts held-out choices from a prefix (paper: the "
                              "baseline model, not the labeler); when it is the labeling judge, its predictions are a new sample (replicate 1), "
                              "so that it does not read back the draws that made the labels")
    conditions: list[Condition] = Field(default_factory=lambda: list(CONDITIONS), min_length=2)
    few_shot: int = Field(2, ge=1, le=100, description="train examples in the few-shot prefix (paper: 2)")
    infer_shots: int = Field(4, ge=1, le=100, description="train examples the persona is inferred from (paper: 4)")
    question_filters: list[Any] = Field(default_factory=lambda: [dict(f) for f in DEFAULT_FILTERS], description="prompt filters applied to generated questions")

    @field_validator("conditions")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        no_duplicates(value)
        return value

    @field_validator("filter")
    @classmethod
    def _stages_once(cls, value: list[Any]) -> list[Any]:
        no_duplicates(value, lambda s: s.model_dump_json())
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
    divergent_candidate_template: str = DIVERGENT_COT
    judge_template: str = T.PERSONAL_JUDGE
    predict_template: str = PREDICT_CHOICE
    answer_template: str = T.ANSWER
    prefixed_template: str = T.PREFIXED_ANSWER
    infer_template: str = T.INFER_PERSONA
    gold_template: str = T.GOLD_PERSONA


def roles(params: Params) -> tuple[str, ...]:
    """The generator, the judge, the predicting role and each reward filter stage's role."""
    return tuple(dict.fromkeys([*ROLES, params.predict_role, *(s.role for s in params.filter if s.kind == "reward")]))


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


def caveats(ctx: Context) -> list[str]:
    """What would make the run's answers alike, said before anything is sent
    (`plan` and `run` show it): at temperature 0 a real model returns the same
    candidate every time, so the diversity filter has nothing to choose from."""
    p: Params = ctx.params
    own = ctx.models["generator"].sampling()
    temperature = p.candidate_temperature if p.candidate_temperature is not None else own.get("temperature")
    if temperature != 0:
        return []
    return [f"WARNING: the {p.n_candidates} candidates per question are sampled at temperature 0, where a real model gives the same "
            "answer every time and the filter finds no diverse ones; set experiment.candidate_temperature (paper: 2.0) "
            "or the generator's temperature above 0."]


def _candidate_sampling(p: Params) -> dict[str, Any]:
    """The candidates' own sampling fields (None: the generator's)."""
    return {"temperature": p.candidate_temperature, "top_p": p.candidate_top_p}


def _filtered(ctx: Context, p: Params, cand_plan: Plan, cand_keys: dict[str, list[str]], cand_results, questions: dict[str, dict], notes: list[str]
              ) -> tuple[dict[str, list[str]], list[dict]]:
    """Runs the filter stages over every question's candidates: the kept keys
    per question id, and one report row per question."""
    texts = {qid: [cand_results[k].output() if cand_results[k].ok else None for k in keys] for qid, keys in cand_keys.items()}
    vectors: dict[int, dict[str, dict[int, list[float]]]] = {}
    scores: dict[int, dict[str, dict[int, float | None]]] = {}
    for s, stage in enumerate(p.filter):
        if stage.kind == "embedding":
            found = embed_candidates(ctx, stage, [t for ts in texts.values() for t in ts if t])
            vectors[s] = {qid: {i: found[t] for i, t in enumerate(ts) if t} for qid, ts in texts.items()}
        elif stage.kind == "reward":
            plan = Plan()
            plan.include(cand_plan.calls[k] for k in cand_plan.calls)  # the answers scored are slots of these calls
            asked = {qid: {i: add_call(plan, ctx, "reward", stage.role, stage.template, {"question": questions[qid]["text"]}, {"response": k})
                           for i, k in enumerate(cand_keys[qid]) if texts[qid][i]} for qid in cand_keys}
            results = ctx.run_stage(plan)
            scores[s] = {qid: {i: read_score(results[k].text) if results[k].ok else None for i, k in keys.items()} for qid, keys in asked.items()}
            unread = sum(v is None for q in scores[s].values() for v in q.values())
            if unread:
                notes.append(f"reward filter ({stage.role}): {unread} of {sum(len(q) for q in scores[s].values())} candidates got no readable "
                             "score (a number) and were kept unscored")
    selected, rows = {}, []
    for qid, keys in cand_keys.items():
        sel = filter_candidates(texts[qid], p.keep, p.filter, vectors={s: v[qid] for s, v in vectors.items()},
                                scores={s: v[qid] for s, v in scores.items()})
        selected[qid] = [keys[i] for i in sel.kept]
        rows.append({"question_id": qid, "split": questions[qid]["split"], "sampled": len(keys), "kept": len(sel.kept), "failed": sel.failed,
                     "out_of_band": sel.out_of_band, "too_similar": sel.too_similar, "low_reward": sel.low_reward, "unscored": sel.unscored})
    return selected, rows


def _other(pid: str, pids: list[str], seed: int) -> str | None:
    """Whose gold persona is ``pid``'s `random` prefix: another person, drawn with the seed."""
    others = [o for o in pids if o != pid]
    return others[xxhash.xxh3_64_intdigest(f"{seed}|random|{pid}".encode()) % len(others)] if others else None


def _examples(shots: list[dict], texts: dict[str, str]) -> str:
    return "\n\n".join(f"User Question {i + 1}:\n{x['question']}\nPreferred Response:\n{texts[x['chosen_key']]}" for i, x in enumerate(shots))


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

    # Dataset: diverse candidates for every train (and held-out) question, then the persona's bracket.
    splits = ("train", "test") if p.heldout_pairs else ("train",)
    pooled = {q["id"]: q for sp in splits for r in people for q in asked(r, sp)}
    axes = ", ".join(sorted({r["axis"] for r in people}))
    categories = {a: sorted({r["category"] for r in people if r["axis"] == a}) for a in {r["axis"] for r in people}}

    def values(q: dict) -> Any:
        if q["type"] != "divergent":
            return {"axes": axes, "question": q["text"]}
        cats = categories.get(q["topic"]) or [q["topic"]]
        return lambda r: {"axis": q["topic"], "categories": ", ".join(cats), "category": cats[r % len(cats)], "question": q["text"]}

    sampling = _candidate_sampling(p)
    cand_plan, cand_keys, cand_results = sample_candidates(
        ctx, "candidates", "generator", p.candidate_template, {qid: values(q) for qid, q in pooled.items()}, p.n_candidates,
        templates={qid: p.divergent_candidate_template for qid, q in pooled.items() if q["type"] == "divergent"}, sampling=sampling)
    selected, selection_rows = _filtered(ctx, p, cand_plan, cand_keys, cand_results, pooled, notes)
    brackets, owners = [], []
    for sp in splits:
        for r in people:
            for q in asked(r, sp):
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
                      "question_type": q["type"], "split": q["split"], "candidates": len(b.entrants), "comparisons": len(b.matches),
                      "chosen_key": b.winner, "rejected_key": rejected})
    pair_frame = pl.DataFrame(pairs, schema={"persona_id": pl.String, "name": pl.String, "axis": pl.String, "category": pl.String, "question_id": pl.String,
                                             "question": pl.String, "question_type": pl.String, "split": pl.String, "candidates": pl.Int64,
                                             "comparisons": pl.Int64, "chosen_key": pl.String, "rejected_key": pl.String})
    texts = {k: cand_results[k].output() for k in cand_results if cand_results[k].ok}

    # Prefixes, written before the answers (staged) so that the judge can be told them as text.
    pids = [r["persona_id"] for r in people]
    shots_of: dict[str, list[dict]] = {}
    prefix_plan = Plan()
    infer_keys, gold_keys = {}, {}
    for r in people:
        pid = r["persona_id"]
        shots = [x for x in pairs if x["persona_id"] == pid and x["split"] == "train" and x["chosen_key"]]
        shots.sort(key=lambda x: xxhash.xxh3_64_intdigest(f"{ctx.seed}|shot|{pid}|{x['question_id']}".encode()))
        shots_of[pid] = shots
        if shots and "persona" in p.conditions:
            infer_keys[pid] = add_call(prefix_plan, ctx, "infer_persona", "generator", p.infer_template, {"examples": _examples(shots[: p.infer_shots], texts)})
    wanted_gold = set(pids) if {"gold", "random"} & set(p.conditions) else set()
    for pid in pids:
        if pid in wanted_gold:
            name = next(r["name"] for r in people if r["persona_id"] == pid)
            gold_keys[pid] = add_call(prefix_plan, ctx, "gold_persona", "generator", p.gold_template, {"name": name})
    prefix_results = ctx.run_stage(prefix_plan) if len(prefix_plan) else {}

    def said(key: str | None) -> str | None:
        res = prefix_results.get(key) if key else None
        return res.output() if res is not None and res.ok else None

    plan = Plan()
    plan.include(cand_plan.calls[k] for k in cand_plan.calls)
    plan.include(prefix_plan.calls[k] for k in prefix_plan.calls)
    items, prefix_rows, predictions = [], [], []
    test_pairs = {(x["persona_id"], x["question_id"]): x for x in pairs if x["split"] == "test" and x["chosen_key"] and x["rejected_key"]}
    # The labeling judge predicting its own held-out choices is asked for a new sample (replicate 1): a call
    # identical to its labeling one (the gold prefix, the name) would otherwise read back the draw that made the label.
    own_sample = 1 if p.predict_role == "judge" else 0
    for r in people:
        pid = r["persona_id"]
        other = _other(pid, pids, ctx.seed)
        prefixes = {"tag": f"User tag: {_tag(pid)}", "name": f"Name: {r['name']}",
                    "few_shot": _examples(shots_of[pid][: p.few_shot], texts) if shots_of[pid] else None,
                    "persona": said(infer_keys.get(pid)), "gold": said(gold_keys.get(pid)), "random": said(gold_keys.get(other)) if other else None}
        conditions = [c for c in p.conditions if c == "none" or prefixes.get(c)]
        if len(conditions) < len(p.conditions):
            notes.append(f"{pid}: no {', '.join(c for c in p.conditions if c not in conditions)} prefix (no train preference pairs, "
                         "a failed prefix call, or no other person for `random`), so those conditions are left out for this persona")
        gold = prefixes["gold"] if "gold" in conditions else None
        for c in conditions:
            if c != "none":
                prefix_rows.append({"persona_id": pid, "condition": c, "prefix": prefixes[c], "gold": gold, "random_gold": said(gold_keys.get(other)) if other else None})
        for q in asked(r, "test"):
            answers = {}
            for c in conditions:
                if c == "none":
                    answers[c] = add_call(plan, ctx, "answer:none", "generator", p.answer_template, {"question": q["text"]})
                else:
                    answers[c] = add_call(plan, ctx, f"answer:{c}", "generator", p.prefixed_template, {"question": q["text"], "prefix": prefixes[c]})
            for first, second in itertools.combinations(conditions, 2):
                key, first_is_a = add_judgment(plan, ctx, "compare", "judge", p.judge_template, {"persona": _judge_persona(r), "question": q["text"]},
                                               answers[first], answers[second], (ctx.seed, "compare", pid, q["id"], first, second), parser="a_better")
                items.append({"persona_id": pid, "axis": r["axis"], "question_id": q["id"], "question_type": q["type"], "first": first, "second": second,
                              "first_is_a": first_is_a, "first_key": answers[first], "second_key": answers[second], "judge_key": key})
            pair = test_pairs.get((pid, q["id"]))
            if pair is None:
                continue
            for c in conditions:
                key, chosen_is_a = add_judgment(plan, ctx, "predict", p.predict_role, p.predict_template, {"prefix": prefixes.get(c) or NO_PREFIX, "question": q["text"]},
                                                pair["chosen_key"], pair["rejected_key"], (ctx.seed, "predict", pid, q["id"], c), parser="a_better",
                                                replicate=own_sample)
                predictions.append({"persona_id": pid, "question_id": q["id"], "question_type": q["type"], "condition": c, "judge_key": key,
                                    "chosen_is_a": chosen_is_a, "answer_key": answers[c], "chosen_key": pair["chosen_key"], "rejected_key": pair["rejected_key"]})
    if not items:
        raise PlanError("the wikipersona design has no test comparisons: no test questions were generated (see the notes of the question steps).")
    tables = {"wikipersona_questions": questions, "wikipersona_question_filters": pl.DataFrame(filter_report),
              "wikipersona_candidates": pl.DataFrame(selection_rows), "wikipersona_pairs": pair_frame,
              "wikipersona_matches": pl.DataFrame(matches, schema={"persona_id": pl.String, "question_id": pl.String, "round": pl.Int64, "first_key": pl.String,
                                                                   "second_key": pl.String, "first_is_a": pl.Boolean, "judge_key": pl.String, "first_won": pl.Boolean}),
              "wikipersona_prefix_texts": pl.DataFrame(prefix_rows, schema={"persona_id": pl.String, "condition": pl.String, "prefix": pl.String,
                                                                            "gold": pl.String, "random_gold": pl.String}),
              "wikipersona_predictions": pl.DataFrame(predictions, schema={"persona_id": pl.String, "question_id": pl.String, "question_type": pl.String,
                                                                          "condition": pl.String, "judge_key": pl.String, "chosen_is_a": pl.Boolean,
                                                                          "answer_key": pl.String, "chosen_key": pl.String, "rejected_key": pl.String})}
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
        pairs["split"],
    ).filter(pl.col("chosen").is_not_null() & pl.col("rejected").is_not_null())
    accuracy, accuracy_metric = _accuracy(design.tables["wikipersona_predictions"], results, p, ctx.seed, cfg.multiplicity)
    rouge_frame = _answer_rouge(design.tables["wikipersona_predictions"], results, p, ctx.seed, conditions)
    prefix_frame = _prefix_table(design.tables["wikipersona_prefix_texts"], [c for c in p.conditions if c != "none"])
    metrics = {
        "accuracy": accuracy_metric,
        "rouge1": {r["condition"]: r["rouge1"] for r in rouge_frame.iter_rows(named=True)},
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
                "preferences": preferences, "wikipersona_accuracy": accuracy, "wikipersona_rouge": rouge_frame, "wikipersona_prefixes": prefix_frame,
                **design.tables},
        metrics=metrics,
        exports=(("preferences", "jsonl"),),
    )


def rouge(pairs: list[tuple[str, str]], kinds: tuple[str, ...] = ("rouge1", "rougeL")) -> list[dict[str, float]]:
    """ROUGE F-measures of (candidate, reference) pairs, by the rouge-score
    package (Google's reimplementation of Lin, 2004; no stemming, as its default)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(kinds))
    return [{k: v.fmeasure for k, v in scorer.score(ref, cand).items()} for cand, ref in pairs]


def _accuracy(pred: pl.DataFrame, results, p: Params, seed: int, multiplicity: str) -> tuple[pl.DataFrame, dict]:
    """Preference accuracy per condition: how often the judge, told only the
    condition's prefix, picks the answer the person chose (paper Figure 3;
    random guess: 0.5), with intervals over personas x questions and a test
    against 0.5, corrected over the conditions (``analysis.multiplicity``)."""
    hits = [preferred(results, k, a) for k, a in zip(pred["judge_key"], pred["chosen_is_a"])]
    judged = pred.with_columns(pl.Series("correct", hits, dtype=pl.Int8)).filter(pl.col("correct") >= 0)
    rows, out, named = [], {}, []
    for c in [c for c in p.conditions if c in set(judged["condition"].to_list())]:
        g = judged.filter(pl.col("condition") == c)
        e = interval("rate", g["correct"].cast(pl.Float64).to_numpy(), units={"persona": g["persona_id"].to_numpy(), "question": g["question_id"].to_numpy()},
                     n_resamples=p.n_resamples, level=p.level, seed=seed, null=0.5)
        row = {"condition": c, "accuracy": e.estimate, "ci_low": e.low, "ci_high": e.high, "pairs": g.height, "p_value": e.p}
        for t in ("personal", "divergent"):
            sub = g.filter(pl.col("question_type") == t)
            row[f"{t}_accuracy"] = float(sub["correct"].mean()) if sub.height else float("nan")
        rows.append({**row, "over": e.over(), "note": e.warning or ""})
        named.append((c, e))
    for row, m in zip(rows, tested(named, multiplicity, 1 - p.level)):
        row.update(p_adjusted=m["p_adjusted"], survives=m["survives"])
        out[row["condition"]] = {"estimate": row["accuracy"], "low": row["ci_low"], "high": row["ci_high"], "survives": m["survives"]}
    schema = {"condition": pl.String, "accuracy": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "pairs": pl.Int64, "p_value": pl.Float64,
              "personal_accuracy": pl.Float64, "divergent_accuracy": pl.Float64, "over": pl.String, "note": pl.String, "p_adjusted": pl.Float64,
              "survives": pl.Boolean}
    return pl.DataFrame(rows, schema=schema), out


def _answer_rouge(pred: pl.DataFrame, results, p: Params, seed: int, conditions: list[str]) -> pl.DataFrame:
    """ROUGE-1 and ROUGE-L of each condition's answers to the test questions
    against the gold answer (the chosen answer of the held-out pair), with
    intervals that resample personas and questions: a persona's test
    questions are its own personal ones (nested in it) and its axis's
    divergent ones (asked of every person of the axis, so crossed with
    personas), and a ROUGE mean varies with both samples. ROUGE-1 against
    the rejected answer beside it says whether a condition's answers lean to
    the chosen one."""
    def out(key: str) -> str | None:
        r = results.get(key)
        return r.output() if r is not None and r.ok and r.output() else None

    rows = []
    for c in conditions:
        g = pred.filter(pl.col("condition") == c).to_dicts()
        g = [x for x in g if out(x["answer_key"]) and out(x["chosen_key"]) and out(x["rejected_key"])]
        if not g:
            continue
        chosen = rouge([(out(x["answer_key"]), out(x["chosen_key"])) for x in g])
        rejected = rouge([(out(x["answer_key"]), out(x["rejected_key"])) for x in g], ("rouge1",))
        units = {"persona": [x["persona_id"] for x in g], "question": [x["question_id"] for x in g]}
        r1 = _mean_interval([s["rouge1"] for s in chosen], units, p, seed)
        rL = _mean_interval([s["rougeL"] for s in chosen], units, p, seed)
        rows.append({"condition": c, "rouge1": r1.estimate, "rouge1_low": r1.low, "rouge1_high": r1.high, "rougeL": rL.estimate, "rougeL_low": rL.low,
                     "rougeL_high": rL.high, "rouge1_rejected": float(sum(s["rouge1"] for s in rejected) / len(rejected)), "answers": len(g),
                     "over": r1.over(), "note": "; ".join(dict.fromkeys(w for w in (r1.warning, rL.warning) if w))})
    schema = {"condition": pl.String, "rouge1": pl.Float64, "rouge1_low": pl.Float64, "rouge1_high": pl.Float64, "rougeL": pl.Float64,
              "rougeL_low": pl.Float64, "rougeL_high": pl.Float64, "rouge1_rejected": pl.Float64, "answers": pl.Int64, "over": pl.String,
              "note": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _mean_interval(values: list[float], units: dict[str, list[str]], p: Params, seed: int) -> Estimate:
    """A mean of ROUGE scores (in [0, 1]) with the crossed interval over
    personas x questions (``interval("mean")``): both are random samples, and
    resampling personas alone would hold the questions fixed and understate
    the uncertainty wherever questions are shared. Nested questions (asked of
    one persona) add nothing beyond the persona term, so the same interval is
    right for the mix. Fewer than 5 personas or questions give no interval."""
    return interval("mean", values, units=units, n_resamples=p.n_resamples, level=p.level, seed=seed)


def _prefix_table(prefixes: pl.DataFrame, conditions: list[str]) -> pl.DataFrame:
    """The paper's Table 2: per prefix, ROUGE-1 against the person's gold
    persona, against a random other person's gold persona, and its length in
    words (mean and standard deviation over personas)."""
    def mean_sd(xs: list[float]) -> tuple[float, float]:
        if not xs:
            return float("nan"), float("nan")
        m = sum(xs) / len(xs)
        return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0

    rows = []
    for c in conditions:
        g = prefixes.filter(pl.col("condition") == c).to_dicts()
        if not g:
            continue
        own = [x for x in g if x["gold"]]
        rand = [x for x in g if x["random_gold"]]
        r1 = mean_sd([s["rouge1"] for s in rouge([(x["prefix"], x["gold"]) for x in own], ("rouge1",))])
        rr = mean_sd([s["rouge1"] for s in rouge([(x["prefix"], x["random_gold"]) for x in rand], ("rouge1",))])
        words = mean_sd([float(len(x["prefix"].split())) for x in g])
        rows.append({"condition": c, "rouge1": r1[0], "rouge1_sd": r1[1], "rouge1_random": rr[0], "rouge1_random_sd": rr[1],
                     "words": words[0], "words_sd": words[1], "personas": len(g)})
    schema = {"condition": pl.String, "rouge1": pl.Float64, "rouge1_sd": pl.Float64, "rouge1_random": pl.Float64, "rouge1_random_sd": pl.Float64,
              "words": pl.Float64, "words_sd": pl.Float64, "personas": pl.Int64}
    return pl.DataFrame(rows, schema=schema)


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
