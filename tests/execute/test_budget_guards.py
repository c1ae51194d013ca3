"""The pieces of the run's guards: the smoke subset of a plan, the budget's
bookkeeping, and the estimate's use of cached answers."""

from __future__ import annotations

import pytest

from persona_exp.execute import CallCache
from persona_exp.execute.budget import Budget, BudgetExceeded, Estimate, StepEstimate, estimate, limit_plan
from persona_exp.plan import Plan
from persona_exp.plan.plan import slot
from persona_exp.spec.models import ModelConfig

SAMPLING = {"temperature": 0.0}


def _plan() -> tuple[Plan, list[str], list[str]]:
    """Step a: 4 answers; step b: one call per answer, added in reverse order."""
    plan = Plan()
    a = [plan.add("a", "gen", "sim/generator", [{"role": "user", "content": f"Question {i}: why?"}], SAMPLING) for i in range(4)]
    b = [plan.add("b", "gen", "sim/generator", [{"role": "user", "content": f"Critique: {slot('x')}"}], SAMPLING, inputs={"x": k}) for k in reversed(a)]
    return plan, a, b


def test_limit_keeps_the_first_calls_of_each_step_whose_inputs_are_kept():
    plan, a, b = _plan()
    kept, left = limit_plan(plan, 2)
    assert [c.key for c in kept.calls.values() if c.step == "a"] == a[:2]
    # b's calls in plan order read a[3], a[2], a[1], a[0]: the first two whose input was kept read a[1] and a[0].
    assert [c.key for c in kept.calls.values() if c.step == "b"] == b[2:]
    assert {c.key for c in left} == set(a[2:]) | set(b[:2]) and len(kept) + len(left) == len(plan)
    kept, _ = limit_plan(plan, 1, always={a[3]: object()})
    assert [c.key for c in kept.calls.values() if c.step == "a"] == [a[3]]  # an answered call is kept and fills the step's quota


def test_budget_preflight_and_reaching():
    est = Estimate([StepEstimate("s", "judge", "openai/gpt-4o-mini", 10, 10, 1000, 10, 0.5, "guess")])
    b = Budget(1.0)
    b.preflight(est)  # 0.5 <= 1.0
    b.spend(0.6)
    assert not b.reached
    with pytest.raises(BudgetExceeded, match=r"estimated at \$0.5000 .* after \$0.6000 spent"):
        b.preflight(est)
    b.spend(0.4)
    assert b.reached
    free = Budget(0.0)
    free.spend(0.0)
    assert not free.reached  # free calls never reach a budget
    with pytest.raises(BudgetExceeded, match="no price is known for openai/x"):
        Budget(1.0).preflight(Estimate([StepEstimate("s", "judge", "openai/x", 1, 1, 10, 1, None, "guess")]))


def test_estimate_counts_cached_answers_in_slots_and_skips_cached_calls(tmp_path):
    import litellm

    plan, a, b = _plan()
    model = "openai/gpt-4o-mini"
    with CallCache(tmp_path / "c.sqlite") as cache:
        for k in a:
            cache.put(k, "one two three four five", {"prompt_tokens": 3, "completion_tokens": 5})
        steps = {s.step: s for s in estimate(plan, {"gen": ModelConfig(model=model, max_tokens=40)}, cache).steps}
        assert steps["a"].to_run == 0 and steps["a"].tokens == 0
        # b: its own text plus the cached answer in the slot, in the model's tokens; answers at max_tokens (none of b cached).
        own = litellm.token_counter(model=model, messages=[{"role": "user", "content": "Critique: "}])
        answer = litellm.token_counter(model=model, text="one two three four five")
        assert steps["b"].to_run == 4 and steps["b"].prompt_tokens == 4 * (own + answer) and steps["b"].completion_tokens == 4 * 40
        assert steps["b"].lengths.startswith("max_tokens")
        # The simulator answers b's calls in a pilot instead (reading the cached answers); the cache is left as it was.
        sim = {s.step: s for s in estimate(plan, {"gen": ModelConfig(model="sim/generator")}, cache).steps}
        assert sim["b"].lengths == "simulated pilot (n=4)" and sim["b"].prompt_tokens == 4 * (1 + 5) and sim["b"].completion_tokens > 0
        assert cache.stats()["calls"] == 4


def test_prompts_are_scaled_by_what_the_provider_reported_for_cached_calls(tmp_path):
    # A served model's chat template adds tokens the tokenizer never sees; once
    # some calls of a step are cached, the rest are priced at the reported rate.
    import litellm

    plan, a, b = _plan()
    model = "openai/gpt-4o-mini"
    counted = litellm.token_counter(model=model, messages=[{"role": "user", "content": "Critique: one two three four five"}])
    with CallCache(tmp_path / "c.sqlite") as cache:
        for k in a:
            cache.put(k, "one two three four five", {"prompt_tokens": 3, "completion_tokens": 5})
        for k in b[:2]:
            cache.put(k, "fine", {"prompt_tokens": 3 * counted, "completion_tokens": 1})
        steps = {s.step: s for s in estimate(plan, {"gen": ModelConfig(model=model, max_tokens=40)}, cache).steps}
        own = litellm.token_counter(model=model, messages=[{"role": "user", "content": "Critique: "}])
        answer = litellm.token_counter(model=model, text="one two three four five")
        assert steps["b"].to_run == 2 and steps["b"].prompt_tokens == 2 * 3 * (own + answer)
        # The simulator reports words, as it counts them: no scaling.
        sim = {s.step: s for s in estimate(plan, {"gen": ModelConfig(model="sim/generator")}, cache).steps}
        assert sim["b"].prompt_tokens == 2 * (1 + 5)


def test_reasks_are_priced_from_the_share_of_cached_answers_that_fail_to_parse(tmp_path):
    from persona_exp.execute.budget import REASK_TOKENS, REASKS

    plan = Plan()
    a = [plan.add("a", "gen", "m", [{"role": "user", "content": f"Question {i}: why?"}], SAMPLING, parser="revised") for i in range(4)]
    models = {"gen": ModelConfig(model="sim/generator", max_tokens=40)}
    with CallCache(tmp_path / "c.sqlite") as cache:
        cache.put(a[0], "REVISED PREFERENCE: fine\nDONE", {"prompt_tokens": 3, "completion_tokens": 4})
        cache.put(a[1], "no markers at all", {"prompt_tokens": 3, "completion_tokens": 4})
        step = estimate(plan, models, cache).steps[0]
    # Two calls left, 3 words each, answers of 4 tokens (the cached mean); half the cached answers failed.
    prompt, answer = 2 * 3, 4.0
    assert step.prompt_tokens == round(prompt + 0.5 * 2 * (REASKS * 3 + REASKS * (REASKS + 1) / 2 * (answer + REASK_TOKENS)))
    assert step.completion_tokens == round(2 * answer + 0.5 * 2 * REASKS * answer)
    assert "50% of its cached answers needed re-asks" in step.lengths


MODEL = "openai/gpt-4o-mini"  # priced in litellm's bundled table


def in_flight_run(url: str, state, executor=None, concurrency: int = 16, estimated: bool = True) -> tuple[Budget, int]:
    """40 judge calls, each answered with 10,000 prompt tokens, under a budget
    of five and a half of them, with ``concurrency`` calls in flight; the
    budget, and the requests the server got."""
    from persona_exp.execute import Runner
    from persona_exp.execute.budget import price

    state.reply = lambda body: {"content": "A", "usage": {"prompt_tokens": 10_000, "completion_tokens": 1, "total_tokens": 10_001}}
    in_price, out_price = price(MODEL)
    per_call = 10_000 * in_price + out_price
    cfg = ModelConfig(model=MODEL, api_base=url, concurrency=concurrency)
    plan = Plan()
    for i in range(40):
        plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Question {i}: A or B?"}], cfg.sampling(), parser="choice")
    budget = Budget(5.5 * per_call)
    if estimated:  # as the preflight estimate sets it
        budget.per_call["judge"] = per_call
    with CallCache(":memory:") as cache:
        Runner({"judge": cfg}, cache, progress=False, budget=budget, executor=executor).run(plan)
    assert budget.stopped == 40 - len(state.requests) and abs(budget.spent - len(state.requests) * per_call) < 1e-12
    return budget, len(state.requests)


def test_calls_in_flight_cannot_all_be_sent_on_the_last_dollars(openai_server):
    """Sixteen calls in flight at once: each waits while the spending plus the
    estimate of those in flight would pass the budget, so six are sent (the
    sixth with nothing in flight and the budget not reached), as one call at a
    time would send."""
    state, url = openai_server
    budget, sent = in_flight_run(url, state)
    assert sent == 6 and budget.reached and budget.holding == 0 and budget.held == 0.0
    state.requests.clear()
    _, alone = in_flight_run(url, state, concurrency=1)  # one at a time: the same six
    assert alone == 6
