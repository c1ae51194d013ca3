"""Batch execution against a local fake provider (fake_batch_server): answers
land in the call cache once, failed lines go online, a killed run resumes its
batches without submitting any call again, and `persona-exp batches` lists and
cancels them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persona_exp.cli import main as cli
from persona_exp.errors import SpecError
from persona_exp.execute import CallCache, Runner
from persona_exp.spec import ModelConfig

sys.path.insert(0, str(Path(__file__).parent))
from fake_batch_server import FakeBatchServer, fail_every  # noqa: E402
from batch_testing import check_resumed, dead_pid, judge_plan, submit_only  # noqa: E402

KEY = "sk-test-FAKEKEY-0123456789abcdef"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def expected_choice(i: int) -> str:
    """What the fake provider answers to question i, computed here from its rule (a hash of the messages)."""
    messages = [{"role": "user", "content": f"Question {i}: A or B?"}]
    return "A" if hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()[0] % 2 == 0 else "B"


def batch_cfg(url: str, **kw) -> ModelConfig:
    return ModelConfig(model="openai/m", api_base=url, execution="batch", **{"batch_poll": 0.05, **kw})


def test_answers_are_cached_once_and_failed_lines_are_retried_online(tmp_path):
    fails = fail_every(4)
    with FakeBatchServer(delay=0.2, fail=fails) as srv:
        cfg = batch_cfg(srv.url, batch_size=10)
        plan = judge_plan(cfg, 30)
        with CallCache(tmp_path / "c.sqlite") as cache:
            results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
            rows = cache.batches()
            again, counts2 = Runner({"judge": cfg}, cache, progress=False).run(plan)
            stored = cache.get_many(plan.calls)
    failed_keys = [k for k in plan.calls if fails(k)]
    assert 0 < len(failed_keys) < 30  # the rule fails some lines, not all
    assert (counts.ran, counts.failed) == (30, 0) and (counts2.cached, counts2.ran) == (30, 0)
    assert sorted(srv.submitted) == sorted(plan.calls) and set(srv.submitted.values()) == {1}  # every call submitted once
    assert sum(srv.online.values()) == len(failed_keys)  # exactly the failed lines went online, once each
    assert len(rows) == 3 and sum(r["calls"] for r in rows) == 30 and all(r["collected_at"] and r["state"] == "completed" for r in rows)
    assert sum(r["failed"] for r in rows) == len(failed_keys)
    by_key = {c.key: i for i, c in enumerate(plan.calls.values())}
    assert all(results[k].value == expected_choice(by_key[k]) for k in plan.calls)
    assert {k: r.value for k, r in again.items()} == {k: r.value for k, r in results.items()}
    batch_lines = [k for k in plan.calls if k not in failed_keys]
    assert all(stored[k].usage.get("batch", "").startswith("batch_") for k in batch_lines)  # answered by a batch, recorded as such
    assert all("batch" not in stored[k].usage for k in failed_keys)  # answered online
    assert srv.requests["POST batches"] == 3


CHILD = """
import sys
from persona_exp.execute import CallCache, Runner
from persona_exp.execute.runner import CallResult
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig
url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = ModelConfig(model="openai/m", api_base=url, execution="batch", batch_poll=0.05, batch_size=25)
plan = Plan()
for i in range(n):
    plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Question {i}: A or B?"}], cfg.sampling(), parser="choice")
with CallCache(path) as cache:
    results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
print(counts.ran, counts.cached, counts.failed)
"""


def test_azure_batches_go_through_litellms_azure_routes(tmp_path, monkeypatch):
    """An azure/ role (its endpoint, api_version and the key named by
    api_key_env): the file, the batch and the answers go through litellm's
    Azure routes (/openai/files, /openai/batches) to the fake, once each."""
    monkeypatch.setenv("MY_AZURE_KEY", "fake-azure-key-0000")
    with FakeBatchServer(delay=0.2) as srv:
        cfg = ModelConfig(model="azure/gpt-4o-mini", api_base=srv.root, api_version="2024-10-21", api_key_env="MY_AZURE_KEY",
                          execution="batch", batch_poll=0.05)
        plan = judge_plan(cfg, 6)
        with CallCache(tmp_path / "c.sqlite") as cache:
            results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
            (row,) = cache.batches()
    assert counts.ran == 6 and counts.failed == 0 and srv.requests["POST files"] == 1 and srv.requests["POST batches"] == 1
    assert row["provider"] == "azure" and row["key_env"] == "MY_AZURE_KEY" and set(srv.submitted.values()) == {1} and not srv.online
    assert all(results[c.key].value == expected_choice(i) for i, c in enumerate(plan.calls.values()))


def test_kill_9_during_polling_then_rerun_submits_no_call_again(tmp_path):
    n = 60
    path = tmp_path / "c.sqlite"
    with FakeBatchServer(delay=4.0) as srv:
        child = subprocess.Popen([sys.executable, "-c", CHILD, srv.url, str(path), str(n)], env={**os.environ, "OPENAI_API_KEY": KEY},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while sum(srv.submitted.values()) < n and time.time() < deadline and child.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)  # it is polling now
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGKILL)
        child.wait()
        with CallCache(path) as cache:
            live = [r for r in cache.batches() if r["collected_at"] is None]
            assert cache.stats()["calls"] == 0 and len(live) == 3 and all(r["batch_id"] for r in live)
        rerun = subprocess.run([sys.executable, "-c", CHILD, srv.url, str(path), str(n)], env={**os.environ, "OPENAI_API_KEY": KEY},
                               capture_output=True, text=True, timeout=120)
        check_resumed(srv, path, rerun, n, "POST batches")


@pytest.mark.parametrize("provider_took_it", [True, False])
def test_a_submission_cut_short_is_found_at_the_provider_or_sent_again(tmp_path, provider_took_it):
    """A run killed between recording a batch and hearing the provider's id:
    the rerun finds the batch by the record's id in its metadata (no second
    submission), or, when the provider never got it, submits the calls anew."""
    import asyncio

    from persona_exp.execute.batch import submit, target

    with FakeBatchServer(delay=0.1) as srv:
        cfg = batch_cfg(srv.url)
        plan = judge_plan(cfg, 8)
        with CallCache(tmp_path / "c.sqlite") as cache:
            cache.owner = f"{socket.gethostname()}:{dead_pid()}:cut"  # as if a process now gone had claimed them
            t = target("judge", cfg)
            assert cache.batch_claim("pe-cut", t.info(), list(plan.calls)) == list(plan.calls)
            if provider_took_it:
                lines = [json.dumps({"custom_id": c.key, "method": "POST", "url": "/v1/chat/completions",
                                     "body": {"model": "m", "messages": c.messages}}) for c in plan.calls.values()]
                asyncio.run(submit(t, "\n".join(lines).encode(), "pe-cut"))
        with CallCache(tmp_path / "c.sqlite") as cache:
            _, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
            rows = {r["local_id"]: r for r in cache.batches()}
    assert counts.failed == 0 and counts.ran == 8
    assert set(srv.submitted.values()) == {1} and len(srv.submitted) == 8 and srv.requests["POST batches"] == 1
    assert rows["pe-cut"]["state"] == ("completed" if provider_took_it else "abandoned")
    assert len(rows) == (1 if provider_took_it else 2)


def test_a_cut_short_submission_the_provider_cannot_be_asked_about_is_never_sent_again(tmp_path):
    """The batch a killed run submitted, while the provider's listing is down:
    a lookup that fails is not "not found". The rerun fails the calls for now
    and keeps the record; once the provider answers, the next run finds the
    batch and collects it. Nothing is submitted twice."""
    import asyncio

    from persona_exp.execute.batch import submit, target

    with FakeBatchServer(delay=0.1) as srv:
        cfg = batch_cfg(srv.url, max_retries=2)
        plan = judge_plan(cfg, 8)
        with CallCache(tmp_path / "c.sqlite") as cache:
            cache.owner = f"{socket.gethostname()}:{dead_pid()}:cut"
            t = target("judge", cfg)
            cache.batch_claim("pe-cut", t.info(), list(plan.calls))
            lines = [json.dumps({"custom_id": c.key, "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": "m", "messages": c.messages}}) for c in plan.calls.values()]
            asyncio.run(submit(t, "\n".join(lines).encode(), "pe-cut", lambda fid: cache.batch_update("pe-cut", input_file=fid)))
        srv.failing_lists = 10**6
        with CallCache(tmp_path / "c.sqlite") as cache:
            _, down = Runner({"judge": cfg}, cache, progress=False).run(plan)
            (row,) = cache.batches()
        assert down.failed == 8 and down.failures == {"transport": 8} and srv.requests["POST batches"] == 1
        assert row["state"] == "submitting" and row["batch_id"] is None  # kept: a rerun looks again
        srv.failing_lists = 0
        with CallCache(tmp_path / "c.sqlite") as cache:
            _, up = Runner({"judge": cfg}, cache, progress=False).run(plan)
            (row,) = cache.batches()
    assert up.failed == 0 and up.ran == 8 and row["state"] == "completed" and row["batch_id"] is not None
    assert srv.requests["POST batches"] == 1 and set(srv.submitted.values()) == {1} and len(srv.submitted) == 8 and not srv.online


def test_lines_that_cannot_be_read_answer_nothing_and_block_nothing():
    """A broken output line, one without a custom_id, and bodies that are not
    chat completions: each is no answer for its call (sent again online),
    and none stops the batch's other answers from being collected."""
    from persona_exp.execute.batch import _answer_of, read_lines

    good = {"custom_id": "k1", "response": {"status_code": 200, "body": {"choices": [{"message": {"content": "A"}, "finish_reason": "stop"}],
                                                                         "usage": {"prompt_tokens": 3, "completion_tokens": 1}}}}
    odd = {"custom_id": "k2", "response": {"status_code": 200, "body": {"choices": "A"}}}
    data = "\n".join([json.dumps(good), "{broken", json.dumps({"response": {}}), json.dumps(odd), json.dumps([1, 2])]).encode()
    lines = read_lines(data)
    assert set(lines) == {"k1", "k2"}
    assert _answer_of(lines["k1"]["body"]) == ("A", "stop", 3, 1, None) and _answer_of(lines["k2"]["body"]) is None
    for body in (None, {}, {"choices": []}, {"choices": [{"message": None}]}, {"choices": [{"message": {"content": "A"}}], "usage": {"prompt_tokens": "x"}}):
        assert _answer_of(body) is None, body


def test_a_create_the_provider_refused_is_given_up_not_kept_as_lost(tmp_path):
    """A 400 to the create means no batch was made: even with the listing
    down, the record is abandoned (its calls fail as rejected) rather than
    kept as lost, which would hold its calls back from every later run."""
    with FakeBatchServer(delay=0.1) as srv:
        srv.reject_creates, srv.failing_lists = 1, 10**6
        cfg = batch_cfg(srv.url)
        plan = judge_plan(cfg, 4)
        with CallCache(tmp_path / "c.sqlite") as cache:
            _, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
            (row,) = cache.batches()
        assert counts.failures == {"rejected": 4} and row["state"] == "abandoned" and row["input_file"]
        srv.failing_lists = 0
        with CallCache(tmp_path / "c.sqlite") as cache:
            _, again = Runner({"judge": cfg}, cache, progress=False).run(plan)
    assert again.failed == 0 and srv.requests["POST batches"] == 2 and set(srv.submitted.values()) == {1}


def test_batches_command_lists_and_cancels(tmp_path, capsys):
    path = tmp_path / "c.sqlite"
    with FakeBatchServer(delay=600) as srv:
        cfg = batch_cfg(srv.url)
        plan = judge_plan(cfg, 5)
        with CallCache(path) as cache:
            submit_only(cache, cfg, plan)  # submitted, not waited for
        assert cli(["batches", "--path", str(path)]) == 0
        out = capsys.readouterr().out
        assert "1 batches, 1 live" in out and "batch_000001" in out and "5 calls" in out and KEY not in out
        assert cli(["batches", "--path", str(path), "--cancel", "batch_000001"]) == 0
        assert srv.batches["batch_000001"]["status"] == "cancelled"
        capsys.readouterr()
        assert cli(["batches", "--path", str(path), "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [(r["batch"], r["state"], r["calls"]) for r in listed] == [("batch_000001", "cancelled", 5)]
        # the next run collects the cancelled batch: its calls fail (nothing answered them) ...
        with CallCache(path) as cache:
            _, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        assert counts.failures == {"transport": 5}
        # ... and the one after submits them in a new batch
        srv.delay = 0.05
        with CallCache(path) as cache:
            _, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        assert counts.failed == 0 and set(srv.submitted.values()) == {2} and srv.requests["POST batches"] == 2
    assert cli(["batches", "--path", str(path), "--cancel", "nope"]) == 2
    assert "no batch of this cache" in capsys.readouterr().err


def test_batch_execution_is_refused_where_there_is_no_batch_api():
    with pytest.raises(ValueError, match="offline simulator"):
        ModelConfig(model="sim/judge", execution="batch")
    with pytest.raises(ValueError, match="is an anthropic model"):
        ModelConfig(model="anthropic/claude-3-5-haiku-20241022", execution="batch")
    with pytest.raises(ValueError, match="is a groq model"):
        ModelConfig(model="groq/llama3-8b-8192", execution="batch")
    with pytest.raises(ValueError, match="batch_poll"):
        ModelConfig(model="openai/m", execution="batch", batch_poll=0)
    assert ModelConfig(model="openai/m", execution="batch").sampling() == ModelConfig(model="openai/m").sampling()  # same call keys


def test_spec_error_names_the_field(tmp_path):
    from persona_exp.pipeline import load_spec

    spec = Path(__file__).parents[2] / "experiments" / "loo.yaml"
    with pytest.raises(SpecError) as err:
        load_spec(spec, ["models.judge.execution=batch"])
    assert "models.judge.execution" in str(err.value) and "simulator" in str(err.value)


def test_estimate_uses_the_batch_prices_of_litellms_table():
    from persona_exp.execute.budget import estimate
    from persona_exp.execute.llm import litellm

    info = litellm().model_cost["gpt-4o-mini"]
    online = ModelConfig(model="gpt-4o-mini", max_tokens=50)
    batch = online.model_copy(update={"execution": "batch"})
    plan = judge_plan(online, 4)
    e_online, e_batch = estimate(plan, {"judge": online}, None).steps[0], estimate(plan, {"judge": batch}, None).steps[0]
    assert (e_online.prompt_tokens, e_online.completion_tokens) == (e_batch.prompt_tokens, e_batch.completion_tokens)
    assert e_batch.execution == "batch" and e_online.execution == "online"
    want = e_batch.prompt_tokens * info["input_cost_per_token_batches"] + e_batch.completion_tokens * info["output_cost_per_token_batches"]
    assert e_batch.cost == pytest.approx(want) and e_batch.cost < e_online.cost


def test_plan_shows_which_calls_go_by_batch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = Path(__file__).parents[2] / "experiments" / "loo.yaml"
    sets = ["models.judge.model=openai/gpt-4o-mini", "experiment.n_personas=2", "experiment.n_questions=2", "population.size=100"]
    args = ["plan", str(spec), *[x for s in sets for x in ("--set", s)]]
    assert cli([*args, "--set", "models.judge.execution=batch", "--json"]) == 0
    batch = json.loads(capsys.readouterr().out)
    assert cli([*args, "--json"]) == 0
    online = json.loads(capsys.readouterr().out)
    steps = {r["step"]: r for r in batch["steps"]}
    assert steps["judge"]["execution"] == "batch" and {r["execution"] for s, r in steps.items() if s != "judge"} == {"online"}
    assert batch["to_run_by_batch"] == steps["judge"]["to_run"] > 0 and online["to_run_by_batch"] == 0
    judge_online = next(r for r in online["steps"] if r["step"] == "judge")
    assert steps["judge"]["est_tokens"] == judge_online["est_tokens"]
    assert steps["judge"]["est_cost_usd"] == pytest.approx(judge_online["est_cost_usd"] / 2)  # the table's batch prices are half for this model
    assert cli([*args, "--set", "models.judge.execution=batch"]) == 0
    out = capsys.readouterr().out
    assert "execution" in out and f"{steps['judge']['to_run']} of the calls to run go by the provider's batch API" in out


def test_a_provider_outage_while_polling_fails_the_calls_and_keeps_the_batch(tmp_path):
    """Looks at a batch that keep failing end the run's wait (reason
    transport) without giving the batch up: the rerun collects it, submitting nothing again."""
    with FakeBatchServer(delay=0.1) as srv:
        cfg = batch_cfg(srv.url, max_retries=0)
        plan = judge_plan(cfg, 6)
        srv.failing_polls = 10**6
        with CallCache(tmp_path / "c.sqlite") as cache:
            _, first = Runner({"judge": cfg}, cache, progress=False).run(plan)
            live = [r for r in cache.batches() if r["collected_at"] is None]
        assert first.failures == {"transport": 6} and len(live) == 1
        srv.failing_polls = 0
        with CallCache(tmp_path / "c.sqlite") as cache:
            results, second = Runner({"judge": cfg}, cache, progress=False).run(plan)
        assert (second.ran, second.failed) == (6, 0) and srv.requests["POST batches"] == 1 and set(srv.submitted.values()) == {1}
        assert all(r.value in ("A", "B") for r in results.values())


def test_a_role_switched_to_online_collects_its_live_batch_instead_of_paying_twice(tmp_path, capsys):
    with FakeBatchServer(delay=1.0) as srv:
        cfg = batch_cfg(srv.url)
        plan = judge_plan(cfg, 6)
        online = cfg.model_copy(update={"execution": "online"})
        with CallCache(tmp_path / "c.sqlite") as cache:
            submit_only(cache, cfg, plan)
            capsys.readouterr()
            results, counts = Runner({"judge": online}, cache, progress=False).run(plan)
            rows = cache.batches()
    err = capsys.readouterr().err
    assert "6 calls are in live batch batch_000001; waiting for it" in err and "persona-exp batches --cancel batch_000001" in err
    assert sum(srv.online.values()) == 0 and set(srv.submitted.values()) == {1} and srv.requests["POST batches"] == 1
    assert (counts.ran, counts.failed) == (6, 0) and rows[0]["collected_at"] is not None
    by_key = {c.key: i for i, c in enumerate(plan.calls.values())}
    assert all(results[k].value == expected_choice(by_key[k]) for k in plan.calls)


def test_once_the_live_batch_is_cancelled_an_online_role_sends_its_calls_online(tmp_path, capsys):
    path = tmp_path / "c.sqlite"
    with FakeBatchServer(delay=600) as srv:
        cfg = batch_cfg(srv.url)
        plan = judge_plan(cfg, 5)
        with CallCache(path) as cache:
            submit_only(cache, cfg, plan)
        assert cli(["batches", "--path", str(path), "--cancel", "batch_000001"]) == 0
        online = cfg.model_copy(update={"execution": "online"})
        with CallCache(path) as cache:
            results, counts = Runner({"judge": online}, cache, progress=False).run(plan)
            rows = cache.batches()
    assert (counts.ran, counts.failed) == (5, 0) and sum(srv.online.values()) == 5 and srv.requests["POST batches"] == 1
    assert rows[0]["state"] == "cancelled" and rows[0]["collected_at"] is not None
    assert all(r.value in ("A", "B") for r in results.values())
