"""Content keys: what must change a key, and what must not."""

import math

import pytest

from persona_exp.errors import InvalidArgumentError
from persona_exp.plan import call_key, canonical_json, node_key

MSG = [{"role": "user", "content": "Should cities ban cars downtown?"}]


def test_canonical_json_is_order_free_compact_and_utf8():
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == canonical_json({"a": [1.5, "é"], "b": 1})
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()
    assert canonical_json(0.1) == b"0.1"  # shortest round-trip form


def test_canonical_json_refuses_nan():
    with pytest.raises(InvalidArgumentError):
        canonical_json({"temperature": math.nan})


def test_call_key_ignores_transport_settings():
    base = call_key("openai/gpt-4o", MSG, {"temperature": 0.7})
    noisy = call_key("openai/gpt-4o", MSG, {"temperature": 0.7, "timeout": 30, "num_retries": 5, "api_key": "sk-x"})
    assert base == noisy
    assert len(base) == 32 and int(base, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"model": "openai/gpt-4o-mini"},
        {"messages": [{"role": "user", "content": "Should cities ban cars downtown ?"}]},
        {"sampling": {"temperature": 0.8}},
        {"sampling": {"temperature": 0.7, "max_tokens": 100}},
        {"replicate": 1},
        {"sampling": {"temperature": 0.7, "sim": {"strength": 2.0}}},
    ],
)
def test_call_key_changes_with_what_changes_the_answer(change):
    args = {"model": "openai/gpt-4o", "messages": MSG, "sampling": {"temperature": 0.7}, "replicate": 0}
    assert call_key(**args) != call_key(**{**args, **change})


def test_node_keys_form_a_merkle_dag():
    leaf_a, leaf_b = node_key("persona", {"id": 1}), node_key("persona", {"id": 2})
    parent = node_key("judge", {"prompt": "x"}, [leaf_a])
    assert parent == node_key("judge", {"prompt": "x"}, [leaf_a])
    assert parent != node_key("judge", {"prompt": "x"}, [leaf_b])
    assert parent != node_key("judge", {"prompt": "y"}, [leaf_a])
    assert node_key("a", {}, ["k1", "k2"]) != node_key("a", {}, ["k2", "k1"])


def test_levels_put_every_call_after_its_inputs():
    from persona_exp.plan import Plan, slot

    plan = Plan()
    a = plan.add("answer", "g", "sim/generator", [{"role": "user", "content": "q1"}], {})
    c1 = plan.add("critic", "c", "sim/judge", [{"role": "user", "content": f"judge {slot('r')}"}], {}, inputs={"r": a})
    s = plan.add("summarize", "g", "sim/generator", [{"role": "user", "content": "q2"}], {})
    b = plan.add("answer", "g", "sim/generator", [{"role": "user", "content": f"from {slot('s')}"}], {}, inputs={"s": s})
    c2 = plan.add("critic", "c", "sim/judge", [{"role": "user", "content": f"judge {slot('r')}"}], {}, inputs={"r": b})
    levels = [[c.key for c in lv] for lv in plan.levels()]
    assert levels == [[a, s], [c1, b], [c2]]
    assert plan.steps == ["answer", "critic", "summarize"]  # first-seen order is not a safe run order


def test_call_key_is_the_node_key_of_its_canonical_parts():
    sampling = {"temperature": 0.3, "timeout": 9, "sim": {"effects": {"religion": 2.0}}}
    expected = node_key("llm_call", {"model": "m", "messages": MSG, "sampling": {"temperature": 0.3, "sim": {"effects": {"religion": 2.0}}}, "replicate": 2})
    assert call_key("m", MSG, sampling, 2) == expected


def test_call_key_with_inputs_is_the_node_key_of_its_canonical_parts():
    msgs = [{"role": "user", "content": "Revise \x00slot:a\x00 ünïcode"}, {"role": "system", "content": "x", "name": "n"}]
    expected = node_key("llm_call", {"inputs": {"b": "k2", "a": "k1"}, "model": "m", "messages": msgs, "sampling": {}, "replicate": 0})
    assert call_key("m", msgs, {}, 0, inputs={"a": "k1", "b": "k2"}) == expected
    assert call_key("m", msgs, {}, 0, inputs={"a": "k1", "b": "k3"}) != expected


def _key(cfg, parser=None):
    from persona_exp.plan import Plan

    plan = Plan()
    return plan.add("s", "r", cfg.model, MSG, cfg.sampling(), parser=parser)


def test_a_roles_key_covers_its_endpoint_and_not_its_tuning():
    from persona_exp.spec import ModelConfig

    base = ModelConfig(model="openai/llama", api_base="http://10.0.0.5:8000/v1")
    same = [
        base.model_copy(update=u)
        for u in ({"api_base": "http://10.0.0.5:8000/v1/"}, {"timeout": 5.0, "max_retries": 0, "concurrency": 1, "rpm": 10, "tpm": 1000},
                  {"api_key_env": "MY_KEY", "lenient": False, "replicates": 3})
    ]
    assert {_key(c) for c in same} == {_key(base)}
    other = [base.model_copy(update=u) for u in ({"api_base": "http://10.0.0.6:8000/v1"}, {"api_version": "2024-06-01"}, {"api_base": None})]
    assert len({_key(c) for c in [base, *other]}) == 4
    named = [base.model_copy(update={"cache_as": "my-llama", "api_base": b}) for b in ("http://10.0.0.5:8000/v1", "http://gpu-box:8000/v1", None)]
    assert len({_key(c) for c in named}) == 1 and _key(named[0]) != _key(base)


def test_without_an_endpoint_keys_are_as_before():
    """No api_base, api_version or cache_as: the key is the one computed from
    (model, messages, sampling, replicate) alone, so existing caches (the
    simulator's in particular) stay valid."""
    from persona_exp.spec import ModelConfig

    for cfg in (ModelConfig(model="sim/judge"), ModelConfig(model="openai/gpt-4o", temperature=0.7, max_tokens=50)):
        sampling = {k: v for k, v in cfg.sampling().items()}
        assert "endpoint" not in sampling
        assert _key(cfg, parser="choice") == node_key("llm_call", {"model": cfg.model, "messages": MSG, "sampling": sampling, "replicate": 0})


def test_structured_output_changes_the_keys_of_parsed_calls_only():
    from persona_exp.spec import ModelConfig

    plain, structured = ModelConfig(model="openai/gpt-4o"), ModelConfig(model="openai/gpt-4o", structured_output=True)
    assert _key(plain) == _key(structured)
    assert _key(plain, "choice") != _key(structured, "choice") != _key(structured, "revised")
    expected = node_key("llm_call", {"model": "openai/gpt-4o", "messages": MSG, "sampling": {"temperature": 0.0}, "replicate": 0, "response_format": "choice"})
    assert _key(structured, "choice") == expected
