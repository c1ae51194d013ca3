"""The simulator's `quality` knob, its reward-model scores and its debate:
the knob weighs the shared quality term and leaves existing call keys alone,
a reward prompt gets a score that follows the scored answer's utility, and a
debate judge reads what the debaters argue for."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from persona_exp.execute import sim
from persona_exp.plan.keys import call_key
from persona_exp.spec.models import ModelConfig, SimConfig
from persona_exp.steps import templates as T
from persona_exp.steps.calls import fill_template
from persona_exp.steps.candidates import REWARD_SCORE, read_score

PERSONA = "Age: 41\nReligion: Catholic\nSex: Female\nMarital status: Married"
PERSONA_ATTRS = sim.persona_attributes(PERSONA)
# The settings a sim role's call key held before the quality knob existed.
BEFORE_QUALITY = {"effects": {}, "default_effect": 1.0, "noise": 1.0, "strength": 1.0, "longer_revisions": 0.5,
                  "inconsistent_rate": 0.085, "seed": 0, "draw": 0}


def _answers(n: int, seed: int = 0) -> list[str]:
    """Plain answers of different questions, each ending with one of the simulator's tailoring sentences."""
    rng = np.random.default_rng(seed)
    return [sim.base_answer(f"question {i}") + " " + str(rng.choice(sim._TAILORED)) for i in range(n)]


# --- quality ---------------------------------------------------------------------------------------

def test_quality_at_its_default_leaves_the_settings_and_call_keys_as_they_were():
    assert SimConfig().model_dump() == BEFORE_QUALITY
    assert SimConfig(quality=1.0).model_dump() == BEFORE_QUALITY  # written out or not, the same key
    messages = [{"role": "user", "content": "Question: Should I move?"}]
    before = call_key("sim/judge", messages, {"temperature": 0.0, "sim": BEFORE_QUALITY})
    assert call_key("sim/judge", messages, ModelConfig(model="sim/judge").sampling()) == before
    assert call_key("sim/judge", messages, ModelConfig(model="sim/judge", sim={"quality": 1}).sampling()) == before
    # Another weight is another world: its calls are new.
    off = ModelConfig(model="sim/judge", sim={"quality": 0}).sampling()
    assert off["sim"]["quality"] == 0.0 and call_key("sim/judge", messages, off) != before


def test_utility_is_the_weighted_quality_term_plus_the_preferences():
    for answer in _answers(20):
        on, half, off = (sim.Simulator({"quality": q}) for q in (1.0, 0.5, 0.0))
        assert off.quality == 0.0 and half.quality == 0.5
        assert off.utility(answer, PERSONA_ATTRS) == pytest.approx(on.preference(answer, PERSONA_ATTRS))
        assert half.utility(answer, PERSONA_ATTRS) == pytest.approx(0.5 * on.quality_term(answer) + on.preference(answer, PERSONA_ATTRS))
        assert on.utility(answer, {}) == pytest.approx(on.quality_term(answer))


@pytest.mark.parametrize("seed", range(3))
def test_with_quality_off_and_nothing_planted_the_judge_tosses_a_coin(seed):
    # The same pairs: with quality on, the answer of higher quality wins clearly more than half.
    answers = _answers(1201, seed)
    prompt = PERSONA + "\n\nWhich answer is better? Answer with A or B."

    def share_better_won(settings: dict) -> float:
        judge = sim.Simulator({"seed": seed, **settings})
        won = [(judge.judge(prompt, {"response_a": a, "response_b": b}) == "A") == (judge.quality_term(a) > judge.quality_term(b))
               for a, b in zip(answers[:-1], answers[1:])]
        return float(np.mean(won))

    assert share_better_won({}) > 0.6
    share = share_better_won({"quality": 0, "default_effect": 0})
    assert stats.binomtest(round(share * 1200), 1200).pvalue > 0.001, share


# --- reward scores -----------------------------------------------------------------------------------

def _reward_prompt(answer: str, persona: str = "") -> str:
    text = fill_template(REWARD_SCORE, {"question": "Should I move?", "response": answer})
    return (persona + "\n\n" + text) if persona else text


@pytest.mark.parametrize("model", ["judge", "generator"])
def test_a_reward_prompt_gets_a_score_that_follows_quality(model):
    answers = _answers(300)
    settings = {"sim": {"noise": 0.01}, "temperature": 0}
    scores = [read_score(sim.complete(f"sim/{model}", [{"role": "user", "content": _reward_prompt(a)}], settings, slots={"response": a})[0])
              for a in answers]
    assert all(s is not None and 1 <= s <= 10 for s in scores)
    quality = [sim.Simulator().quality_term(a) for a in answers]
    assert stats.spearmanr(scores, quality).statistic > 0.95
    assert np.std(scores) > 1  # spread over the scale, not squeezed into its middle


def test_a_reward_score_is_for_the_persona_shown_and_on_the_asked_scale():
    judge = sim.Simulator({"noise": 0.01, "quality": 0})
    answers = _answers(200)
    prompts = [_reward_prompt(a, PERSONA).replace("from 1 (very poor) to 10 (excellent)", "from 0 to 100") for a in answers]
    scores = [read_score(judge.judge(p, {"response": a})) for p, a in zip(prompts, answers)]
    assert all(0 <= s <= 100 for s in scores) and max(scores) > 60 and min(scores) < 40
    assert stats.spearmanr(scores, [judge.preference(a, PERSONA_ATTRS) for a in answers]).statistic > 0.95
    # Text only (no slots): the answer is read after "Response:".
    assert judge.judge(prompts[0]) == judge.judge(prompts[0], {"response": answers[0]})


def test_prompts_that_ask_for_no_score_are_answered_as_before():
    gen = sim.Simulator()
    question = "What are a number of ways to save money, from 1 euro to 10?"
    assert read_score(gen.generate(f"Question: {question}")) is None  # a question's "a number of" is no request for a score
    assert gen.generate(f"Question: {question}") == gen.plain(question)
    # A critic of an answer to such a question still answers as a critic.
    critic = fill_template(T.CRITIC_PERSONALIZATION, {"persona": PERSONA, "question": question, "response": _answers(1)[0]})
    assert set(json.loads(gen.judge(critic, {"response": _answers(1)[0]}))) == {"needs_revision"}


# --- debate --------------------------------------------------------------------------------------------

def _values(response: str, debate: str = "(no arguments yet)") -> dict[str, str]:
    return {"persona": PERSONA, "question": "Should I move?", "response": response, "debate": debate}


def _debate(gen: sim.Simulator, response: str) -> tuple[str, str]:
    a = gen.generate(fill_template(T.DEBATE_FOR, _values(response)), {"response": response})
    b = gen.generate(fill_template(T.DEBATE_AGAINST, _values(response)), {"response": response})
    return a, b


def _verdict(judge: sim.Simulator, response: str, a: str, b: str, slots: bool = True) -> bool:
    prompt = fill_template(T.DEBATE_JUDGE, _values(response, f"Critic A (round 1): {a}\n\nCritic B (round 1): {b}"))
    return json.loads(judge.judge(prompt, {"response": response, "r1_a": a, "r1_b": b} if slots else None))["needs_revision"]


def test_debaters_argue_their_sides_by_quoting_what_they_argue_for():
    gen = sim.Simulator()
    response = _answers(1)[0]
    a, b = _debate(gen, response)
    (quoted_a,), (quoted_b,) = sim._QUOTED.findall(a), sim._QUOTED.findall(b)
    assert quoted_a in response  # the defender quotes the response's best point for the persona
    assert quoted_b in sim._TAILORED and quoted_b not in response  # the critic proposes what it misses
    best = max(sim._sentences(response), key=lambda x: gen.preference(x, PERSONA_ATTRS))
    assert quoted_a == best
    assert sim.debate_arguments(f"Critic A (round 1): {a}\n\nCritic B (round 1): {b}") == [("A", a), ("B", b)]


def test_the_debate_judge_weighs_what_critic_b_argues_for():
    judge = sim.Simulator({"noise": 0.05})
    plain = sim.base_answer("Should I move?")
    ranked = sorted(sim._TAILORED, key=lambda c: judge.utility(plain + " " + c, PERSONA_ATTRS))
    response = plain + " " + ranked[len(ranked) // 2]  # a middling tailoring
    defence = f'This response already suits this person; its strongest point for them is: "{ranked[len(ranked) // 2]}"'
    for strong in ranked[-5:]:
        assert _verdict(judge, response, defence, f'It should also say: "{strong}"')
        assert _verdict(judge, response, defence, f'It should also say: "{strong}"', slots=False)  # read from the text alone
    for weak in ranked[:5]:
        assert not _verdict(judge, response, defence, f'It should also say: "{weak}"')


def test_debate_verdicts_differ_from_the_plain_critics_and_follow_the_arguments():
    gen, judge = sim.Simulator(), sim.Simulator()
    answers = _answers(400, seed=1)
    debate, plain_critic, swapped = [], [], []
    for i, response in enumerate(answers):
        a, b = _debate(gen, response)
        debate.append(_verdict(judge, response, a, b))
        assert debate[-1] == _verdict(judge, response, a, b)  # the same arguments, the same verdict
        critic = fill_template(T.CRITIC_PERSONALIZATION, {"persona": PERSONA, "question": "Should I move?", "response": response})
        plain_critic.append(json.loads(judge.judge(critic, {"response": response}))["needs_revision"])
        # Another critic B (the next answer's argument): its quote and the persuasion it
        # seeds change some verdicts (about 14% here: B's pick for this persona is often the same sentence).
        swapped.append(_verdict(judge, response, a, _debate(gen, answers[(i + 1) % len(answers)])[1]))
    agree = float(np.mean(np.equal(debate, plain_critic)))
    assert agree < 0.85, agree
    changed = float(np.mean(np.not_equal(debate, swapped)))
    assert changed > 0.05, changed
