"""The provider path against a local OpenAI-compatible server: what is in a
call's identity, retries that respect the provider, answers that are real
answers, and counts that add up."""

from __future__ import annotations

import email.utils
import time

import pytest

from persona_exp.errors import SpecError
from persona_exp.execute import CallCache, Runner
from persona_exp.execute.llm import classify, litellm, preflight, retry_after
from persona_exp.execute.runner import counts_line, explain
from persona_exp.plan import Plan, slot
from persona_exp.spec import ModelConfig


def judge_plan(cfg: ModelConfig, n: int = 3, parser: str | None = "choice", text: str = "Question {}: A or B?") -> Plan:
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", cfg.model, [{"role": "user", "content": text.format(i)}], cfg.sampling(), parser=parser)
    return plan


def run(cfg: ModelConfig, cache: CallCache, plan: Plan | None = None, **kw):
    return Runner({"judge": cfg}, cache, progress=False, backoff_base=0.01, **kw).run(plan or judge_plan(cfg))


def adds_up(counts) -> bool:
    return counts.calls == counts.cached + counts.ran and counts.failed == sum(counts.failures.values()) <= counts.calls


def test_changing_api_base_reruns_and_cache_as_keeps_the_answers(tmp_path, openai_server):
    state, url = openai_server
    other = url.replace("127.0.0.1", "localhost")  # the same server under another address: a "moved" endpoint
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, first = run(ModelConfig(model="openai/m", api_base=url), cache)
        _, slash = run(ModelConfig(model="openai/m", api_base=url + "/"), cache)
        _, moved = run(ModelConfig(model="openai/m", api_base=other), cache)
        assert (first.ran, slash.cached, moved.ran) == (3, 3, 3)  # a trailing slash is the same endpoint; another address is not
        _, named = run(ModelConfig(model="openai/m", api_base=url, cache_as="my-llama"), cache)
        _, named_moved = run(ModelConfig(model="openai/m", api_base=other, cache_as="my-llama", timeout=30, max_retries=1, concurrency=2), cache)
    assert named.ran == 3 and named_moved.cached == 3 and len(state.requests) == 9
    assert all(adds_up(c) for c in (first, slash, moved, named, named_moved))


def test_retry_after_of_3_seconds_is_waited_for(tmp_path, openai_server):
    state, url = openai_server
    replies = iter([{"status": 429, "headers": {"Retry-After": "3"}}])
    state.reply = lambda body: next(replies, "A")
    cfg = ModelConfig(model="openai/m", api_base=url, concurrency=1)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = run(cfg, cache, judge_plan(cfg, 2))
    assert counts.failed == 0 and all(r.value == "A" for r in results.values())
    first, second = state.requests[0]["at"], state.requests[1]["at"]
    # The retry came after 3 s, and the role's other call waited too (the pause is the role's, not the call's).
    assert second - first >= 3.0 and len(state.requests) == 3


def test_retry_after_is_read_as_seconds_ms_or_http_date_wherever_litellm_puts_it():
    class Exc(Exception):
        def __init__(self, **attrs):
            super().__init__("x")
            self.__dict__.update(attrs)

    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert retry_after(Exc(litellm_response_headers={"retry-after": "2"})) == 2.0
    assert retry_after(Exc(headers={"retry-after-ms": "1500"})) == 1.5
    assert 3.0 < retry_after(Exc(litellm_response_headers={"retry-after": when})) <= 5.0
    assert retry_after(Exc(headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0  # in the past: go now
    assert retry_after(Exc(headers={"retry-after": "soon"})) is None and retry_after(Exc()) is None


def test_errors_are_classified_by_status_type_and_text():
    class Status(Exception):
        def __init__(self, status, text="x"):
            super().__init__(text)
            self.status_code = status

    assert [classify(Status(s)) for s in (401, 403, 429, 500, 503, 408, 400, 404)] == [
        "auth", "auth", "transient", "transient", "transient", "transient", "rejected", "rejected"]
    assert classify(Status(500, "OpenAIException - Missing credentials. Please pass an `api_key`")) == "auth"
    assert classify(Status(429, "invalid api key quota")) == "transient"  # a rate limit is never an auth error


def test_authentication_errors_are_never_retried_and_stop_the_role(tmp_path, openai_server):
    state, url = openai_server
    state.fail_status = 401
    cfg = ModelConfig(model="openai/m", api_base=url, concurrency=1, max_retries=6)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = run(cfg, cache)
        assert cache.stats()["calls"] == 0
    assert len(state.requests) == 1  # not retried, and the role's other calls were not sent
    assert counts.failures == {"auth": 3} and adds_up(counts)
    assert "failed (auth 3)" in counts.line()


def test_a_missing_key_fails_at_once_without_a_request(tmp_path, openai_server, monkeypatch):
    state, url = openai_server
    monkeypatch.delenv("OPENAI_API_KEY")
    cfg = ModelConfig(model="openai/m", api_base=url, max_retries=6)
    with pytest.raises(SpecError, match="OPENAI_API_KEY"):
        preflight({"judge": cfg}, "spec.yaml")
    litellm()  # imported before the clock starts: what is timed is the failing, not the import
    start = time.monotonic()
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, counts = run(cfg, cache)  # without the preflight, litellm's "missing credentials" is still an auth failure
    assert counts.failures == {"auth": 3} and time.monotonic() - start < 5 and state.requests == []


def test_the_key_variables_checked_without_litellm_are_litellms(monkeypatch):
    """The providers whose keys are checked without importing litellm: litellm
    routes each prefix to that provider, misses a key exactly when none of the
    listed variables is set, and accepts each of them."""
    from persona_exp.execute.llm import KEY_VARIABLES, litellm

    lt = litellm()
    for name in {n for names in KEY_VARIABLES.values() for n in names}:
        monkeypatch.delenv(name, raising=False)
    for provider, names in KEY_VARIABLES.items():
        model = f"{provider}/some-model"
        assert lt.get_llm_provider(model)[1] == provider
        env = lt.validate_environment(model)
        assert not env["keys_in_environment"] and env["missing_keys"] and set(env["missing_keys"]) <= set(names), (provider, env)
        for name in names:
            monkeypatch.setenv(name, "x")
            assert lt.validate_environment(model)["keys_in_environment"], (provider, name)
            monkeypatch.delenv(name)


def test_cloud_credentials_are_checked_as_their_providers_read_them(tmp_path, monkeypatch):
    """Bedrock: AWS credentials in a profile are credentials (boto3's chain),
    and without any the error names the variables and AWS_PROFILE, not
    api_key_env. Vertex AI: the project variables, Google's credentials, and
    google-auth, which litellm signs with."""
    import sys

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE",
                 "VERTEXAI_PROJECT", "VERTEXAI_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to look for
    bedrock = {"judge": ModelConfig(model="bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0")}
    with pytest.raises(SpecError, match="AWS_ACCESS_KEY_ID.*AWS_PROFILE") as err:
        preflight(bedrock, "spec.yaml")
    assert "api_key_env" not in str(err.value)
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = AKIAFAKEFAKEFAKE00\naws_secret_access_key = fake-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    preflight(bedrock, "spec.yaml")  # a profile is enough

    vertex = {"judge": ModelConfig(model="vertex_ai/gemini-2.5-flash")}
    with pytest.raises(SpecError, match="VERTEXAI_PROJECT.*GOOGLE_APPLICATION_CREDENTIALS") as err:
        preflight(vertex, "spec.yaml")
    assert "api_key_env" not in str(err.value)
    monkeypatch.setenv("VERTEXAI_PROJECT", "a-project")
    monkeypatch.setenv("VERTEXAI_LOCATION", "us-central1")
    preflight(vertex, "spec.yaml")
    monkeypatch.setitem(sys.modules, "google.auth", None)  # as if google-auth were not installed
    with pytest.raises(SpecError, match=r"google-auth, which is not installed here; install it with pip install 'persona-exp\[vertex\]'"):
        preflight(vertex, "spec.yaml")


def test_api_key_env_names_the_variable_holding_the_key(tmp_path, openai_server, monkeypatch):
    state, url = openai_server
    monkeypatch.delenv("OPENAI_API_KEY")
    cfg = ModelConfig(model="openai/m", api_base=url, api_key_env="MY_JUDGE_KEY")
    with pytest.raises(SpecError, match="MY_JUDGE_KEY"):
        preflight({"judge": cfg}, "spec.yaml")
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-judge-SECRET-0123456789")
    preflight({"judge": cfg}, "spec.yaml")
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, counts = run(cfg, cache)
    assert counts.failed == 0 and {r["auth"] for r in state.requests} == {"Bearer sk-judge-SECRET-0123456789"}
    assert b"SECRET" not in (tmp_path / "c.sqlite").read_bytes()


def test_an_unreachable_api_base_is_reported_within_seconds(monkeypatch):
    import socket

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    cfg = ModelConfig(model="openai/m", api_base=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(SpecError, match=f"models.judge.api_base: nothing answers at http://127.0.0.1:{port}/v1"):
        preflight({"judge": cfg}, "spec.yaml")
    assert time.monotonic() - start < 5


def test_empty_answers_are_retried_and_never_cached(tmp_path, openai_server):
    state, url = openai_server
    replies = iter(["", "  \n "])
    state.reply = lambda body: next(replies, "B")
    cfg = ModelConfig(model="openai/m", api_base=url)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = run(cfg, cache, judge_plan(cfg, 1))
        assert [r.value for r in results.values()] == ["B"] and len(state.requests) == 3
        assert [c.response for c in cache.get_many(results).values()] == ["B"]

        state.reply = "   "
        free = judge_plan(cfg, 2, parser=None, text="Say something about {}.")
        results, counts = run(cfg, cache, free)
        assert counts.failures == {"empty": 2} and adds_up(counts)
        assert all(r.status == "failed" and not (r.text or "").strip() for r in results.values())
        assert cache.stats()["calls"] == 1  # only the answer of the first run
        sent = len(state.requests)
        run(cfg, cache, free)
    assert len(state.requests) == sent + 6  # a rerun asks again (each call 1 + 2 times)


def test_answers_cut_at_max_tokens_fail_where_a_parser_needs_them(tmp_path, openai_server):
    state, url = openai_server
    state.reply = lambda body: {"content": "REVISED PREFERENCE: the first half of a", "finish_reason": "length"}
    cfg = ModelConfig(model="openai/m", api_base=url, max_tokens=8)
    with CallCache(tmp_path / "c.sqlite") as cache:
        parsed, counts = run(cfg, cache, judge_plan(cfg, 1, parser="revised"))
        cut = next(iter(parsed.values()))
        assert counts.failures == {"truncated": 1} and "max_tokens=8" in cut.error and cut.text == "REVISED PREFERENCE: the first half of a"
        assert len(state.requests) == 1  # at temperature 0 the same request would be cut again: not re-sent
        sampled = ModelConfig(model="openai/m", api_base=url, max_tokens=8, temperature=0.7)
        run(sampled, cache, judge_plan(sampled, 1, parser="revised"))
        assert len(state.requests) == 1 + 3  # a sampled answer may end in time: asked again twice
        free, counts = run(cfg, cache, judge_plan(cfg, 1, parser=None))
        assert counts.failed == 0 and cache.stats()["calls"] == 1  # free text may stop at max_tokens; it is kept


def test_parse_failures_keep_the_text_and_a_rerun_asks_again(tmp_path, openai_server):
    state, url = openai_server
    state.reply = "Both responses have merit."
    cfg = ModelConfig(model="openai/m", api_base=url)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = run(cfg, cache, judge_plan(cfg, 2))
        assert counts.failures == {"parse": 2} and len(state.requests) == 6 and counts.prompt_tokens == 6 * 10  # the server reports 10 a request
        r = next(iter(results.values()))
        assert r.text == "Both responses have merit." and "Both responses have merit." in r.error and "a rerun asks again" in r.error
        results, again = run(cfg, cache, judge_plan(cfg, 2))
        assert len(state.requests) == 10  # the cached chain is replayed, then two new re-asks per call (attempts 3 and 4)
        assert again.cached == 0 and again.ran == 2 and adds_up(again)
        assert again.prompt_tokens == 4 * 10  # this run's re-asks only, not the replayed answers
        state.reply = "A"
        results, fixed = run(cfg, cache, judge_plan(cfg, 2))
        assert fixed.failed == 0 and all(r.value == "A" for r in results.values()) and len(state.requests) == 12
        _, cached = run(cfg, cache, judge_plan(cfg, 2))
    assert cached.cached == 2 and len(state.requests) == 12


def revise_plan(cfg: ModelConfig) -> Plan:
    plan = Plan()
    plan.add("revise", "judge", cfg.model, [{"role": "user", "content": "Revise. Format: REVISED PREFERENCE: ... DONE"}], cfg.sampling(), parser="revised")
    return plan


def test_a_marker_less_revision_is_read_leniently_counted_and_stays_cached(tmp_path, openai_server):
    state, url = openai_server
    state.reply = "Libraries should open on weekends for working families.\nDONE"
    cfg = ModelConfig(model="openai/m", api_base=url)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = run(cfg, cache, revise_plan(cfg))
        r = next(iter(results.values()))
        assert r.ok and r.lenient and r.value == "Libraries should open on weekends for working families."
        assert counts.lenient == 1 and counts.failed == 0 and len(state.requests) == 3  # strict first: two re-asks
        assert "1 answers read leniently" in counts.line() and "read leniently" in explain(counts.as_dict())[0]
        _, again = run(cfg, cache, revise_plan(cfg))
        assert again.cached == 1 and again.lenient == 1 and len(state.requests) == 3
        strict = cfg.model_copy(update={"lenient": False})
        _, refused = run(strict, cache, revise_plan(strict))
    assert refused.failures == {"parse": 1}


def test_structured_output_sends_the_parsers_schema_and_reads_json(tmp_path, openai_server):
    state, url = openai_server
    state.reply = '{"choice": "B"}'
    cfg = ModelConfig(model="openai/m", api_base=url, structured_output=True)
    plain = ModelConfig(model="openai/m", api_base=url)
    assert set(judge_plan(cfg).calls).isdisjoint(judge_plan(plain).calls)  # the answer's form is part of the key
    assert set(judge_plan(cfg, parser=None).calls) == set(judge_plan(plain, parser=None).calls)  # free text is asked the same
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = run(cfg, cache, judge_plan(cfg, 1))
    fmt = state.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["properties"]["choice"]["enum"] == ["A", "B"]
    assert [r.value for r in results.values()] == ["B"]


def test_counts_add_up_with_failures_of_every_kind(tmp_path, openai_server):
    """A generator that answers, a judge that cannot be parsed for some items:
    the readers of failed calls are skipped, and every number agrees."""
    state, url = openai_server
    state.reply = "fine answer"
    gen = ModelConfig(model="openai/m", api_base=url)
    models = {"generator": gen, "judge": ModelConfig(model="sim/judge")}
    plan = Plan()
    for q in range(3):
        base = plan.add("answer", "generator", gen.model, [{"role": "user", "content": f"case {q}: answer"}], gen.sampling())
        crit = plan.add("check", "generator", gen.model, [{"role": "user", "content": f"case {q}: yes or no? {slot('a')}"}], gen.sampling(),
                        inputs={"a": base}, parser="yes_no")
        plan.add("judge", "judge", "sim/judge", [{"role": "user", "content": f"Age: 3\n\nResponse A: {slot('a')}\n\nResponse B: {slot('c')}\n\nA or B?"}],
                 models["judge"].sampling(), inputs={"a": base, "c": crit}, parser="choice")
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, counts = Runner(models, cache, progress=False, backoff_base=0.01).run(plan)
    assert counts.calls == 9 and adds_up(counts)
    assert counts.failures == {"parse": 3, "skipped": 3}  # every check fails ("fine answer" is no yes/no); its judges are skipped
    assert counts_line(counts.as_dict()) == "9 calls: 0 cached, 9 run, 6 failed (parse 3, skipped 3)"
    assert counts.by_step["judge"] == {"calls": 3, "cached": 0, "ran": 3, "failed": 3, "lenient": 0, "failures": "skipped 3"}
    assert explain(counts.as_dict()) == ["check: 3 of 3 calls have no answer (3 failed to parse)",
                                         "judge: 3 of 3 calls have no answer (3 not sent: an input call failed)"]


def test_old_manifest_counts_still_read():
    old = {"calls": 10, "cached": 4, "ran": 3, "failed": 1, "parse_failed": 1, "skipped": 1}
    assert counts_line(old) == "10 calls: 4 cached, 3 run, 3 failed (transport 1, parse 1, skipped 1)"
