"""Shared steps: the candidate filter, tournaments, generated questions and
staged execution (partial plans answered while planning)."""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from persona_exp.execute.parsers import ParseFailure, a_better, cot_response, questions, yes_no
from persona_exp.execute.stage import Stager
from persona_exp.plan import Plan
from persona_exp.spec.models import ModelConfig
from persona_exp.steps import Context, StagePending, add_call
from persona_exp.steps import templates as T
from persona_exp.steps.candidates import jaccard, select_diverse
from persona_exp.steps.questions import QuestionRequest, generate_questions
from persona_exp.steps.tournament import Bracket, run_brackets


def _ctx(tmp_path, *, dry=False, judge="sim/judge", **sim):
    models = {"generator": ModelConfig(model="sim/generator"), "judge": ModelConfig(model=judge, sim=sim or None)}
    stager = Stager(models, tmp_path / "cache.sqlite", dry=dry, progress=False)
    return Context("t", 0, None, models, pl.DataFrame(), pl.DataFrame(), stage=stager), stager


# --------------------------------------------------------------------------- parsers


def test_parsers_read_the_papers_formats_and_refuse_others():
    assert questions("Sure:\n1. What is a good diet?\n2) Why vote?\n- How to rest?") == ["What is a good diet?", "Why vote?", "How to rest?"]
    assert cot_response("Axis: diet\nCategories: a, b\nChosen category: a\nResponse: Eat greens.") == "Eat greens."
    assert a_better('{"Concise explanation": "x", "Output (a) is better than Output (b)": false}') == "B"
    assert a_better("A") == "A"
    assert yes_no("Yes, it is.") is True and yes_no('{"answer": "no"}') is False
    for parser, text in ((questions, "no list here"), (cot_response, "Axis: diet"), (a_better, '{"better": true}'), (yes_no, "maybe")):
        with pytest.raises(ParseFailure):
            parser(text)


# --------------------------------------------------------------------------- candidate filter


def test_select_diverse_drops_failures_lengths_and_near_duplicates():
    texts = ["red green blue yellow", "red green blue yellow", "one two three four", "red green blue white", None,
             " ".join(f"w{i}" for i in range(30))]
    sel = select_diverse(texts, 4, length_band=2.0, max_similarity=0.8)
    assert sel.failed == 1 and sel.out_of_band == 1
    kept_words = [set(texts[i].split()) for i in sel.kept]
    assert all(jaccard(a, b) < 0.8 for a, b in itertools.combinations(kept_words, 2))
    assert len(sel.kept) + sel.too_similar == 4  # 6 candidates - 1 failed - 1 out of band
    assert select_diverse([None, None], 4).kept == []


def test_select_diverse_prefers_the_least_similar_candidate():
    texts = ["a b c d e", "a b c d f", "v w x y z"]
    sel = select_diverse(texts, 2, max_similarity=1.0)
    assert sel.kept == [0, 2]


# --------------------------------------------------------------------------- staged execution


def test_stage_results_are_reused_and_counted_by_the_final_run(tmp_path):
    ctx, stager = _ctx(tmp_path)
    plan = Plan()
    key = add_call(plan, ctx, "ask", "generator", "{question}", {"question": "Is tea better than coffee?"})
    first = ctx.run_stage(plan)
    assert first[key].ok and not first[key].cached
    # A later plan that reads the staged call: the stager runs only the new call.
    later = Plan()
    later.include(plan.calls[k] for k in plan.calls)
    reader = add_call(later, ctx, "judge", "judge", T.JUDGE, {"question": "q?", "persona": "Age: 30"}, {"response_a": key, "response_b": key}, parser="choice")
    second = ctx.run_stage(later)
    assert second[key] is first[key] and second[reader].ok
    assert set(stager.plan.calls) == {key, reader}
    assert stager.plan.requested == {"ask": 1, "judge": 1}  # an included call is not requested twice
    # The final runner takes the staged results as they are.
    from persona_exp.execute import CallCache, Runner

    with CallCache(tmp_path / "cache.sqlite") as cache:
        results, counts = Runner(ctx.models, cache, progress=False).run(stager.plan, known=stager.results)
    assert results[reader] is stager.results[reader]
    assert counts.ran == 2 and counts.cached == 0


def test_a_dry_stage_never_calls_a_model(tmp_path):
    ctx, _ = _ctx(tmp_path, dry=True)
    plan = Plan()
    add_call(plan, ctx, "ask", "generator", "{question}", {"question": "Should cities ban cars?"})
    with pytest.raises(StagePending, match="1 of 1 calls are not cached"):
        ctx.run_stage(plan)
    assert not (tmp_path / "cache.sqlite").exists()
    # Once the call is cached (by a real stage), the dry stage answers from the cache.
    real, _ = _ctx(tmp_path)
    answered = real.run_stage(plan)
    again, _ = _ctx(tmp_path, dry=True)
    assert {k: r.text for k, r in again.run_stage(plan).items()} == {k: r.text for k, r in answered.items()}


def test_include_refuses_a_call_without_its_inputs(tmp_path):
    ctx, _ = _ctx(tmp_path)
    plan = Plan()
    base = add_call(plan, ctx, "a", "generator", "{question}", {"question": "q?"})
    reader = add_call(plan, ctx, "b", "generator", "Revise: {completion}", {}, {"completion": base})
    from persona_exp.errors import PlanError

    with pytest.raises(PlanError, match="inputs before"):
        Plan().include([plan.calls[reader]])


# --------------------------------------------------------------------------- tournaments


def test_single_elimination_plays_three_matches_for_four_and_the_best_wins(tmp_path):
    # The judge's utility is known (noise ~ 0), so the best of four must win every bracket.
    ctx, stager = _ctx(tmp_path, noise=1e-9)
    from persona_exp.execute.sim import Simulator

    source = Plan()
    keys = [add_call(source, ctx, "cand", "generator", T.COT_RESPONSE, {"axes": "diet", "question": "What now?"}, parser="cot_response", replicate=r) for r in range(4)]
    outputs = ctx.run_stage(source)
    assert len({outputs[k].output() for k in keys}) == 4  # four different samples of one prompt
    persona = "Name: Ada Example"
    sim = Simulator({"noise": 1e-9})
    texts = [outputs[k].output() for k in keys]
    brackets = [Bracket(list(keys), {"persona": persona, "question": "What now?"}, ("t", i)) for i in range(3)]
    run_brackets(ctx, source, "judge", "judge", T.PERSONAL_JUDGE, brackets, parser="a_better")
    from persona_exp.execute.sim import persona_attributes

    utility = {k: sim.utility(t, persona_attributes(persona)) for k, t in zip(keys, texts)}
    for b in brackets:
        assert [m["round"] for m in b.matches] == [1, 1, 2]
        assert utility[b.winner] == max(utility.values())
        final = b.matches[-1]
        assert {final["first"], final["second"]} == {b.matches[0]["winner"], b.matches[1]["winner"]}
    # The three brackets judge the same pairs with their own coins: A/B orders differ somewhere.
    assert len({tuple(m["first_is_a"] for m in b.matches) for b in brackets}) > 1


def test_a_failed_judgment_leaves_the_bracket_without_a_winner(tmp_path, openai_server):
    state, url = openai_server
    state.reply = "I cannot decide."  # never parses as a verdict, also not after the re-asks
    models = {"generator": ModelConfig(model="sim/generator"),
              "judge": ModelConfig(model="openai/local", api_base=url, max_retries=0)}
    stager = Stager(models, tmp_path / "cache.sqlite", progress=False)
    ctx = Context("t", 0, None, models, pl.DataFrame(), pl.DataFrame(), stage=stager)
    source = Plan()
    keys = [add_call(source, ctx, "cand", "generator", "Echo {question}", {"question": f"answer {i}"}) for i in range(3)]
    ctx.run_stage(source)
    b = Bracket(keys, {"persona": "Name: X", "question": "q?"}, ("t",))
    run_brackets(ctx, source, "judge", "judge", T.PERSONAL_JUDGE, [b], parser="a_better")
    assert b.winner is None and len(b.matches) == 1 and b.matches[0]["winner"] is None
    assert len(state.requests) == 3  # the first match and its two re-asks; no final is played


# --------------------------------------------------------------------------- generated questions


def test_generated_questions_become_a_prompt_frame(tmp_path):
    ctx, _ = _ctx(tmp_path)
    reqs = [QuestionRequest("p1", "diet", "generated:personal", {"name": "Ada Example", "n": "5", "axes": "diet"}),
            QuestionRequest("p2", "diet", "generated:personal", {"name": "Bo Example", "n": "3", "axes": "diet"})]
    frame, notes = generate_questions(ctx, "personal_questions", "generator", T.PERSONAL_QUESTIONS, reqs)
    assert notes == []
    assert frame.group_by("owner").len().sort("owner").rows() == [("p1", 5), ("p2", 3)]
    assert {"id", "text", "topic", "source", "owner"} <= set(frame.columns)
    assert frame["text"].str.contains("?", literal=True).all()
    from persona_exp.prompts import prompt_id

    assert frame["id"].to_list() == [prompt_id(t) for t in frame["text"]]
