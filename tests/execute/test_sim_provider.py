"""The simulator is reachable through litellm like any provider, and agrees with
the in-process path the runner uses."""

import asyncio

from persona_exp.execute import sim
from persona_exp.execute.llm import litellm

# The two answers have the same words, so the same utility: only the draw and the temperature decide.
JUDGE = [{"role": "user", "content": "You are:\nAge: 30\nReligion: None\n\nResponse A: Family first, then money.\n\nResponse B: Money first, then family.\n\nWhich? Answer with A or B."}]


def test_litellm_completion_answers_from_the_simulator():
    lt = litellm()
    r = lt.completion(model="sim/judge", messages=JUDGE)
    text, _ = sim.complete("sim/judge", JUDGE, {})
    assert r.choices[0].message.content == text and text in ("A", "B")
    assert r.model == "sim/judge" and r.usage.prompt_tokens > 0


def test_litellm_async_passes_sim_settings():
    lt = litellm()
    msgs = [{"role": "user", "content": "Should towns fund libraries?"}]
    r = asyncio.run(lt.acompletion(model="sim/generator", messages=msgs, sim={"seed": 5}))
    assert r.choices[0].message.content == sim.complete("sim/generator", msgs, {"sim": {"seed": 5}})[0]


def test_litellm_path_passes_temperature_and_draw():
    lt = litellm()
    got = [lt.completion(model="sim/judge", messages=JUDGE, temperature=t, sim={"draw": d}).choices[0].message.content for t in (0, 3) for d in range(8)]
    want = [sim.complete("sim/judge", JUDGE, {"sim": {"draw": d}, "temperature": t})[0] for t in (0, 3) for d in range(8)]
    assert got == want and len(set(got)) == 2  # the draws reach the simulator: both verdicts occur
