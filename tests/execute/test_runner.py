"""The runner: cache hits never re-run, failures are never cached, answers parse strictly."""

from persona_exp.execute import CallCache, Runner
from persona_exp.execute.sim import Simulator, persona_attributes
from persona_exp.plan import Plan, slot
from persona_exp.spec import ModelConfig

SIM = {"generator": ModelConfig(model="sim/generator"), "judge": ModelConfig(model="sim/judge")}
JUDGE = "You are this person:\n{persona}\n\nQuestion: {q}\n\nResponse A: {a}\n\nResponse B: {b}\n\nWhich response do you prefer? Answer with A or B."


def build(models, n_questions=6, n_personas=4, judge_template=JUDGE):
    plan = Plan()
    gen, judge = models["generator"], models["judge"]
    for q in range(n_questions):
        question = f"Should every town keep a public library open on weekends, case {q}?"
        for p in range(n_personas):
            # Asked once per persona, as an experiment naturally would: the plan merges them.
            base = plan.add("base_answer", "generator", gen.model, [{"role": "user", "content": question}], gen.sampling())
            persona = f"Age: {30 + p}\nReligion: {'Catholic' if p % 2 else 'None'}"
            rev = plan.add(
                "revise", "generator", gen.model,
                [{"role": "user", "content": f"Revise the COMPLETION: '{slot('base')}', with respect to INSTRUCTION: '{question}'\nDEMOGRAPHIC:\n{persona}\nFormat: REVISED PREFERENCE: ... DONE"}],
                gen.sampling(), inputs={"base": base}, parser="revised",
            )
            content = judge_template.format(persona=persona, q=question, a=slot("a"), b=slot("b"))
            plan.add("judge", "judge", judge.model, [{"role": "user", "content": content}], judge.sampling(), inputs={"a": rev, "b": base}, parser="choice")
    return plan


def test_rerun_is_fully_cached_with_identical_results(tmp_path):
    with CallCache(tmp_path / "c.sqlite") as cache:
        first, c1 = Runner(SIM, cache, progress=False).run(build(SIM))
        second, c2 = Runner(SIM, cache, progress=False).run(build(SIM))
    assert (c1.ran, c1.cached) == (54, 0)
    assert (c2.ran, c2.cached) == (0, 54)
    assert {k: r.value for k, r in first.items()} == {k: r.value for k, r in second.items()}


def test_base_answers_are_shared_across_personas():
    plan = build(SIM)
    assert plan.requested["base_answer"] == 24 and len(plan.by_step()["base_answer"]) == 6


def test_editing_the_judge_prompt_reruns_only_judge_calls(tmp_path):
    with CallCache(tmp_path / "c.sqlite") as cache:
        Runner(SIM, cache, progress=False).run(build(SIM))
        _, counts = Runner(SIM, cache, progress=False).run(build(SIM, judge_template=JUDGE.replace("this person", "the person below")))
    assert counts.by_step["judge"]["ran"] == 24
    assert counts.by_step["revise"]["ran"] == 0 and counts.by_step["base_answer"]["ran"] == 0


def test_adding_personas_runs_only_their_calls(tmp_path):
    with CallCache(tmp_path / "c.sqlite") as cache:
        Runner(SIM, cache, progress=False).run(build(SIM, n_personas=4))
        _, counts = Runner(SIM, cache, progress=False).run(build(SIM, n_personas=5))
    assert counts.ran == 12 and counts.by_step["base_answer"]["ran"] == 0


def test_sim_planted_effect_moves_the_judge():
    assert set(persona_attributes("Age: 3\nReligion: None\nINSTRUCTION: x")) == {"age", "religion"}
    prompt = "You are:\nReligion: {r}\n\nResponse A: {a}\n\nResponse B: {b}\n\nWhich? Answer with A or B."
    sentences = [f"Option {w} matters for everyday life." for w in ("cost", "faith", "family", "freedom", "health", "safety", "time", "work")]
    pairs = [(a, b) for a in sentences for b in sentences if a < b]

    def flips(sim):
        return sum(sim.judge(prompt.format(r="Catholic", a=a, b=b)) != sim.judge(prompt.format(r="Atheist", a=a, b=b)) for a, b in pairs)

    planted = Simulator({"effects": {"religion": 20.0}, "default_effect": 0.0, "noise": 0.01})
    unplanted = Simulator({"default_effect": 0.0, "noise": 0.01})
    assert flips(unplanted) == 0  # religion carries no weight: the value never matters
    assert flips(planted) >= len(pairs) // 5  # a strong planted effect changes many choices


def _openai(base_url, **kw):
    return {"judge": ModelConfig(model="openai/test-model", api_base=base_url, **{"max_retries": 8, **kw})}


def _judge_plan(models, n=12):
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", models["judge"].model, [{"role": "user", "content": f"Question {i}: A or B?"}], models["judge"].sampling(), parser="choice")
    return plan


def test_flaky_server_every_call_finishes_and_none_is_sent_twice_after(tmp_path, openai_server):
    state, url = openai_server
    state.flaky = 0.4
    models = _openai(url)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner(models, cache, progress=False, backoff_base=0.01).run(_judge_plan(models))
        assert counts.failed == 0 and all(r.value == "A" for r in results.values())
        sent = len(state.requests)
        _, again = Runner(models, cache, progress=False, backoff_base=0.01).run(_judge_plan(models))
    assert again.cached == 12 and len(state.requests) == sent


def test_always_failing_server_fails_calls_and_caches_nothing(tmp_path, openai_server):
    state, url = openai_server
    state.fail_status = 500
    models = _openai(url, max_retries=1)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner(models, cache, progress=False, backoff_base=0.01).run(_judge_plan(models, 3))
        assert counts.failed == 3 and cache.stats()["calls"] == 0
        assert all("500" in r.error for r in results.values())
    assert all(r["auth"].endswith("0123456789abcdef") for r in state.requests)  # the key went to the server only
    assert "FAKEKEY" not in (tmp_path / "c.sqlite").read_bytes().decode("latin-1")


def test_unparseable_answers_are_reasked_then_counted(tmp_path, openai_server):
    state, url = openai_server
    state.reply = "Both responses have merit."
    models = _openai(url)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner(models, cache, max_reasks=2, progress=False, backoff_base=0.01).run(_judge_plan(models, 2))
    assert counts.parse_failed == 2 and counts.reasks == 4
    assert len(state.requests) == 6
    assert "could not be read" in state.requests[-1]["body"]["messages"][-1]["content"]
