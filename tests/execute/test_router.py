"""Several deployments per role through litellm's Router, against two local
OpenAI-compatible servers: a failing one falls back to the other, requests are
spread by the chosen strategy, the cache identity is the declared ``cache_as``,
and the transcript says which deployment answered."""

from __future__ import annotations

import sys
import threading
from http.server import ThreadingHTTPServer

import pytest

from persona_exp.errors import SpecError
from persona_exp.execute import CallCache, Runner
from persona_exp.execute.llm import preflight
from persona_exp.pipeline import load_spec, transcripts
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig
from persona_exp.spec.shipped import shipped_specs


@pytest.fixture
def two_servers(openai_server):
    """The shared local server and a second one of the same kind: ((state, url), (state, url))."""
    first_state, first_url = openai_server
    shared = sys.modules[type(first_state).__module__]  # the conftest that defines the shared server
    state = shared._State()
    server = ThreadingHTTPServer(("127.0.0.1", 0), shared._handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield (first_state, first_url), (state, f"http://127.0.0.1:{server.server_address[1]}/v1")
    finally:
        server.shutdown()
        server.server_close()


def plan_of(cfg: ModelConfig, n: int) -> Plan:
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Question {i}: A or B?"}], cfg.sampling(), parser="choice")
    return plan


def run(cfg: ModelConfig, cache: CallCache, n: int = 6):
    plan = plan_of(cfg, n)
    results, counts = Runner({"judge": cfg}, cache, progress=False, backoff_base=0.01).run(plan)
    return plan, results, counts


def role(*deployments: dict, **kw) -> ModelConfig:
    return ModelConfig(model="openai/m", cache_as=kw.pop("cache_as", "m-served"), deployments=list(deployments), **kw)


def test_a_failing_deployment_falls_back_to_the_reserve_and_the_transcript_says_who_answered(tmp_path, two_servers):
    (bad, bad_url), (good, good_url) = two_servers
    bad.fail_status = 500
    cfg = role({"name": "main", "api_base": bad_url}, {"name": "spare", "api_base": good_url}, fallbacks=["spare"], max_retries=0)
    with CallCache(tmp_path / "c.sqlite") as cache:
        plan, results, counts = run(cfg, cache)
    # No retry of our own (max_retries 0): the Router's fallback answered within the one request.
    assert counts.failed == 0 and counts.ran == 6
    assert len(bad.requests) == 6 and len(good.requests) == 6
    table = transcripts(plan, results)
    assert table["deployment"].to_list() == ["spare"] * 6
    assert all(r.attempts == 1 for r in results.values())


def test_without_a_failure_the_reserve_gets_nothing(tmp_path, two_servers):
    (main, main_url), (spare, spare_url) = two_servers
    cfg = role({"name": "main", "api_base": main_url}, {"name": "spare", "api_base": spare_url}, fallbacks=["spare"])
    with CallCache(tmp_path / "c.sqlite") as cache:
        plan, results, _ = run(cfg, cache)
    assert len(main.requests) == 6 and spare.requests == []
    assert set(transcripts(plan, results)["deployment"].to_list()) == {"main"}


def test_simple_shuffle_spreads_requests_by_weight(tmp_path, two_servers):
    (heavy, heavy_url), (light, light_url) = two_servers
    cfg = role({"api_base": heavy_url, "weight": 4}, {"api_base": light_url, "weight": 1}, routing="simple-shuffle")
    with CallCache(tmp_path / "c.sqlite") as cache:
        plan, results, counts = run(cfg, cache, n=80)
    assert counts.failed == 0 and len(heavy.requests) + len(light.requests) == 80
    # Expected 64 : 16; both get some, and the heavier one clearly more (a binomial tail far below 1e-6).
    assert 5 <= len(light.requests) <= 30 < len(heavy.requests)
    answered = transcripts(plan, results)["deployment"].value_counts().rows()
    assert dict(answered) == {heavy_url: len(heavy.requests), light_url: len(light.requests)}


def test_latency_based_routing_prefers_the_faster_deployment(tmp_path, two_servers):
    (slow, slow_url), (fast, fast_url) = two_servers
    slow.delay = 0.3
    cfg = role({"api_base": slow_url}, {"api_base": fast_url}, routing="latency-based-routing", concurrency=2)
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, _, counts = run(cfg, cache, n=24)
    assert counts.failed == 0
    # Once both have answered, the slower one is seldom chosen.
    assert len(fast.requests) > len(slow.requests) >= 1


def test_the_declared_cache_as_is_the_identity_moving_or_adding_deployments_hits_the_cache(tmp_path, two_servers):
    (one, one_url), (two, two_url) = two_servers
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, _, first = run(role({"api_base": one_url}), cache)
        _, _, moved = run(role({"api_base": two_url}), cache)
        _, _, added = run(role({"api_base": one_url}, {"api_base": two_url}), cache)
        _, results, renamed = run(role({"api_base": one_url}, cache_as="another-model"), cache)
    assert (first.ran, moved.cached, added.cached, renamed.ran) == (6, 6, 6, 6)
    assert len(one.requests) == 12 and two.requests == []
    # A cached call reports the deployment that answered it then.
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, cached_again, _ = run(role({"api_base": two_url}), cache)
    assert {r.deployment for r in cached_again.values()} == {one_url}


def test_deployments_without_cache_as_are_a_spec_error_at_their_line(tmp_path):
    spec = tmp_path / "spec.yaml"
    base = shipped_specs()["loo.yaml"].read_text()
    spec.write_text(base.replace("  judge:\n    model: sim/judge\n", "  judge:\n    model: openai/m\n    deployments:\n"
                                 "      - api_base: http://127.0.0.1:1/v1\n      - api_base: http://127.0.0.1:2/v1\n", 1))
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    msg = str(err.value)
    line = spec.read_text().splitlines().index("    deployments:") + 2  # the loader points at the value: the list
    assert str(spec) in msg and f":{line}" in msg and "cache_as" in msg


def test_bad_routing_and_fallback_names_get_the_nearest_valid_name():
    with pytest.raises(ValueError, match="did you mean 'least-busy'"):
        role({"api_base": "http://127.0.0.1:1/v1"}, routing="least-bussy")
    with pytest.raises(ValueError, match="did you mean 'spare'"):
        role({"name": "main", "api_base": "http://127.0.0.1:1/v1"}, {"name": "spare", "api_base": "http://127.0.0.1:2/v1"}, fallbacks=["spaer"])
    with pytest.raises(ValueError, match="simulator"):
        ModelConfig(model="sim/judge", cache_as="x", deployments=[{"api_base": "http://127.0.0.1:1/v1"}])


def test_preflight_checks_each_deployment(two_servers, monkeypatch):
    (_, url), _ = two_servers
    monkeypatch.delenv("SECOND_KEY", raising=False)
    cfg = role({"api_base": url}, {"api_base": url.replace("/v1", "/w"), "api_key_env": "SECOND_KEY"})
    with pytest.raises(SpecError, match=r"models\.judge\.deployments\[1\]\.api_key_env: the environment variable SECOND_KEY"):
        preflight({"judge": cfg}, "spec.yaml")
    monkeypatch.setenv("SECOND_KEY", "local-key-value")
    nowhere = role({"api_base": url}, {"api_base": "http://127.0.0.1:9/v1"})
    with pytest.raises(SpecError, match=r"models\.judge\.deployments\[1\]\.api_base: nothing answers"):
        preflight({"judge": nowhere}, "spec.yaml", connect_timeout=1.0)


def test_show_calls_names_the_deployment_that_answered(tmp_path, two_servers, monkeypatch, capsys):
    from persona_exp.cli import main

    (_, first_url), (_, second_url) = two_servers
    base = shipped_specs()["loo.yaml"].read_text()
    spec = tmp_path / "spec.yaml"
    head, rest = base.split("  judge:\n", 1)
    judge = (f"  judge:\n    model: openai/m\n    cache_as: m-served\n    deployments:\n      - {{name: first, api_base: \"{first_url}\"}}\n"
             f"      - {{name: second, api_base: \"{second_url}\"}}\n    fallbacks: [second]\n")
    spec.write_text(head + judge + rest[rest.index("population:"):])
    monkeypatch.chdir(tmp_path)
    overrides = ["experiment.n_personas=2", "experiment.n_questions=2", "experiment.attributes=[age]"]
    assert main(["run", str(spec), "--no-progress", *(a for o in overrides for a in ("--set", o))]) == 0
    capsys.readouterr()
    assert main(["show", "latest", "--calls", "--step", "judge", "--limit", "2"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("; deployment first") == 2 and "; deployment second" not in shown


def test_a_fallbacks_problem_is_a_warning_and_a_primarys_stops_the_run(two_servers, monkeypatch):
    (_, url), _ = two_servers
    monkeypatch.delenv("SPARE_KEY", raising=False)
    dead_spare = role({"name": "main", "api_base": url}, {"name": "spare", "api_base": "http://127.0.0.1:9/v1"}, fallbacks=["spare"])
    keyless_spare = role({"name": "main", "api_base": url}, {"name": "spare", "api_base": url.replace("/v1", "/w"), "api_key_env": "SPARE_KEY"},
                         fallbacks=["spare"])
    warned = preflight({"judge": dead_spare}, "spec.yaml", connect_timeout=1.0) + preflight({"judge": keyless_spare}, "spec.yaml")
    assert [type(w) for w in warned] == [SpecError, SpecError]
    assert "deployments[1].api_base: nothing answers" in str(warned[0]) and "SPARE_KEY is not set" in str(warned[1])
    assert all("a fallback: the run goes on without it" in str(w) for w in warned)
    dead_main = role({"name": "main", "api_base": "http://127.0.0.1:9/v1"}, {"name": "spare", "api_base": url}, fallbacks=["spare"])
    with pytest.raises(SpecError, match=r"deployments\[0\]\.api_base: nothing answers"):
        preflight({"judge": dead_main}, "spec.yaml", connect_timeout=1.0)


def _deployments_spec(tmp_path, first: str, second: str) -> tuple:
    """loo.yaml with a judge of two deployments, the second a fallback; the spec's path and the line of each deployment."""
    base = shipped_specs()["loo.yaml"].read_text()
    head, rest = base.split("  judge:\n", 1)
    judge = (f"  judge:\n    model: openai/m\n    cache_as: m-served\n    deployments:\n      - {{name: first, api_base: \"{first}\"}}\n"
             f"      - {{name: second, api_base: \"{second}\"}}\n    fallbacks: [second]\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(head + judge + rest[rest.index("population:"):])
    lines = spec.read_text().splitlines()
    return spec, lines.index(f"      - {{name: first, api_base: \"{first}\"}}") + 1, lines.index(f"      - {{name: second, api_base: \"{second}\"}}") + 1


def test_a_dead_fallback_is_warned_about_at_its_line_and_a_dead_primary_refused_there(tmp_path, two_servers, monkeypatch, capsys):
    from persona_exp.cli import main

    (_, url), _ = two_servers
    monkeypatch.chdir(tmp_path)
    small = [a for o in ["experiment.n_personas=2", "experiment.n_questions=2", "experiment.attributes=[age]"] for a in ("--set", o)]
    spec, _, second = _deployments_spec(tmp_path, url, "http://127.0.0.1:9/v1")
    assert main(["run", str(spec), "--no-progress", *small]) == 0  # the primary answers: the dead reserve does not stop the run
    err = capsys.readouterr().err
    assert f"warning: {spec}:{second}:" in err and "models.judge.deployments[1].api_base: nothing answers at http://127.0.0.1:9/v1" in err
    spec, first, _ = _deployments_spec(tmp_path, "http://127.0.0.1:9/v1", url)
    assert main(["run", str(spec), "--no-progress", *small]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{first}:" in err and "models.judge.deployments[0].api_base: nothing answers" in err
