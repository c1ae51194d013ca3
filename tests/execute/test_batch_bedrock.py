"""Bedrock batches (``bedrock/<Claude or Nova>`` with ``execution: batch``)
against a local fake of Bedrock's model invocation jobs and S3
(fake_bedrock_server), through litellm's own bedrock files and batches code
and boto3: answers land in the call cache once, failed records go online (to
the fake's bedrock-runtime, by the role's api_base), a killed run resumes its
jobs, and a submission cut short is found again by its input file.

The redirections needed to reach a local server (litellm's HTTP client for
AWS hosts it writes itself, boto3's endpoint variable) live here and in the
fake's module, never in persona-exp's code."""

from __future__ import annotations

import asyncio
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
from persona_exp.execute.prices import price
from persona_exp.spec import ModelConfig

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from fake_bedrock_server import BUCKET, ROLE_ARN, FakeBedrockServer, aws_env, default_reply, fail_every, route_litellm_here  # noqa: E402
from batch_testing import check_resumed, dead_pid, judge_plan, lost_create_found_in_same_run, lost_create_kept_then_collected, question, submit_only  # noqa: E402

CLAUDE = "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0"  # litellm's table has batch prices for it
NOVA = "bedrock/amazon.nova-lite-v1:0"


@pytest.fixture
def fake(monkeypatch):
    """Starts a fake Bedrock (``fake(delay=..., fail=...)``) with litellm and boto3 routed to it."""
    servers = []
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_NAME", "AWS_WEB_IDENTITY_TOKEN", "AWS_BATCH_ROLE_ARN",
                 "AWS_S3_BUCKET_NAME", "AWS_S3_OUTPUT_BUCKET_NAME", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)

    def start(**kw) -> FakeBedrockServer:
        srv = FakeBedrockServer(**kw).__enter__()
        servers.append(srv)
        for k, v in aws_env(srv.url).items():
            monkeypatch.setenv(k, v)
        route_litellm_here(srv.url, lambda obj, name, value: monkeypatch.setattr(obj, name, value))
        return srv

    yield start
    for srv in servers:
        srv.__exit__()


def expected_choice(i: int) -> str:
    """What the fake answers to question i, from its rule (a hash of the prompt's text)."""
    return default_reply(question(i))


def bedrock_cfg(url: str, model: str = CLAUDE, **kw) -> ModelConfig:
    """A Bedrock batch role; api_base is where its online calls (failed records' retries) go."""
    return ModelConfig(model=model, api_base=url, execution="batch", batch_bucket=BUCKET,
                       **{"batch_role_arn": ROLE_ARN, "batch_poll": 0.05, "max_tokens": 5, **kw})


def test_answers_are_cached_once_and_failed_records_are_sent_online(fake, tmp_path):
    fails = fail_every(4)
    srv = fake(delay=0.2, fail=fails)
    cfg = bedrock_cfg(srv.url, batch_size=10)
    plan = judge_plan(cfg, 30)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        rows = cache.batches()
        again, counts2 = Runner({"judge": cfg}, cache, progress=False).run(plan)
        stored = cache.get_many(plan.calls)
    prompts = [question(i) for i in range(30)]
    failed = {p for p in prompts if fails(p)}
    assert 0 < len(failed) < 30  # the rule fails some records, not all
    assert (counts.ran, counts.failed) == (30, 0) and (counts2.cached, counts2.ran) == (30, 0)
    assert sorted(srv.submitted) == sorted(prompts) and set(srv.submitted.values()) == {1}  # every call submitted once
    assert set(srv.online) == failed and set(srv.online.values()) == {1}  # exactly the failed records went online, once each
    assert srv.requests["POST jobs"] == 3 and srv.unauthorized == 0  # every request was signed with the AWS key
    assert srv.roles == [ROLE_ARN] * 3 and {j["modelId"] for j in srv.jobs.values()} == {CLAUDE.removeprefix("bedrock/")}
    assert len(rows) == 3 and sum(r["calls"] for r in rows) == 30 and all(r["collected_at"] and r["state"] == "completed" for r in rows)
    assert sum(r["failed"] for r in rows) == len(failed) and sum(r["answered"] for r in rows) == 30 - len(failed)
    assert all(r["provider"] == "bedrock" and r["input_file"].startswith(f"s3://{BUCKET}/") for r in rows)
    assert all(r["output_file"] == f"{r['output_file'].rsplit('/', 2)[0]}/{r['batch_id'].rsplit('/', 1)[-1]}/"
               f"{r['input_file'].rsplit('/', 1)[-1]}.out" for r in rows)  # the file Bedrock writes for the job
    assert all(results[c.key].value == expected_choice(i) for i, c in enumerate(plan.calls.values()))
    assert {k: r.value for k, r in again.items()} == {k: r.value for k, r in results.items()}
    assert "AWS_S3_BUCKET_NAME" not in os.environ  # set for the downloads only
    job_arns = {r["batch_id"] for r in rows}
    per_token = price(CLAUDE, batch=True)
    assert per_token[0] < price(CLAUDE)[0]  # the table's batch price, not the online one
    for c in plan.calls.values():
        p, usage = c.messages[-1]["content"], stored[c.key].usage
        if p in failed:
            assert "batch" not in usage  # answered online
        else:
            assert usage["batch"] in job_arns and usage["prompt_tokens"] == len(p.split())  # the fake's usage, read from Claude's shape
            assert usage["cost"] == pytest.approx(usage["prompt_tokens"] * per_token[0] + usage["completion_tokens"] * per_token[1])


def test_a_nova_job_is_read_in_the_converse_shape_and_the_role_may_come_from_the_environment(fake, tmp_path, monkeypatch):
    """Nova answers in the Converse shape; with no batch_role_arn in the
    spec, the job runs as litellm's AWS_BATCH_ROLE_ARN names."""
    srv = fake(delay=0.1)
    env_role = "arn:aws:iam::123456789012:role/from-the-environment"
    monkeypatch.setenv("AWS_BATCH_ROLE_ARN", env_role)
    cfg = bedrock_cfg(srv.url, model=NOVA, batch_role_arn=None)
    plan = judge_plan(cfg, 6)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        stored = cache.get_many(plan.calls)
    assert (counts.ran, counts.failed) == (6, 0) and sum(srv.online.values()) == 0 and srv.roles == [env_role]
    (job,) = srv.jobs.values()
    record = json.loads(next(v for (b, k), v in srv.objects.items() if k.endswith(".jsonl")).decode().splitlines()[0])
    assert "anthropic_version" not in record["modelInput"] and job["modelId"] == "amazon.nova-lite-v1:0"  # a Converse request
    assert all(results[c.key].value == expected_choice(i) for i, c in enumerate(plan.calls.values()))
    words = [len(question(i).split()) for i in range(6)]  # the fake's usage, read from the Converse shape
    assert [(stored[k].usage["prompt_tokens"], stored[k].usage["completion_tokens"]) for k in plan.calls] == [(w, 1) for w in words]


CHILD = """
import sys
sys.path.insert(0, sys.argv[4])
from fake_bedrock_server import BUCKET, ROLE_ARN, route_litellm_here
from persona_exp.execute import CallCache, Runner
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig
url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
route_litellm_here(url)
cfg = ModelConfig(model="bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", api_base=url, execution="batch", batch_bucket=BUCKET,
                  batch_role_arn=ROLE_ARN, batch_poll=0.05, batch_size=25, max_tokens=5)
plan = Plan()
for i in range(n):
    plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Question {i}: A or B?"}], cfg.sampling(), parser="choice")
with CallCache(path) as cache:
    results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
print(counts.ran, counts.cached, counts.failed)
"""


def test_kill_9_during_polling_then_rerun_creates_no_job_again(fake, tmp_path):
    n = 60
    path = tmp_path / "c.sqlite"
    srv = fake(delay=4.0)
    args = [sys.executable, "-c", CHILD, srv.url, str(path), str(n), str(HERE)]
    env = {**os.environ, **aws_env(srv.url)}
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    check_resumed(srv, path, rerun, n, "POST jobs")


@pytest.mark.parametrize("cut", ["after_create", "before_create"])
def test_a_run_killed_between_upload_and_the_job_arn_finds_its_job_by_listing(fake, tmp_path, cut):
    """A run killed after uploading (the input file's s3:// id recorded) but
    before hearing the job's ARN: the rerun lists the region's jobs through
    boto3 (other users' newer ones among them, over several pages) and takes
    the one reading that file, creating none (``after_create``); when no job
    reads it (``before_create``), the calls are submitted anew, once."""
    import litellm

    from persona_exp.execute.batch import submit, target

    srv = fake(delay=0.1, page_size=3)
    cfg = bedrock_cfg(srv.url)
    plan = judge_plan(cfg, 8)
    srv.objects[(BUCKET, "other/input.jsonl")] = b""
    with CallCache(tmp_path / "c.sqlite") as cache:
        cache.owner = f"{socket.gethostname()}:{dead_pid()}:cut"  # as if a process now gone had claimed them
        t = target("judge", cfg)
        assert cache.batch_claim("pe-cut", t.info(), list(plan.calls)) == list(plan.calls)
        data = "\n".join(json.dumps({"custom_id": c.key, "method": "POST", "url": "/v1/chat/completions",
                                     "body": {"model": t.model, "messages": c.messages, "max_tokens": 5}}) for c in plan.calls.values()).encode()
        if cut == "after_create":
            asyncio.run(submit(t, data, "pe-cut", lambda fid: cache.batch_update("pe-cut", input_file=fid)))
        else:
            f = asyncio.run(litellm.acreate_file(file=("pe-cut.jsonl", data), purpose="batch", **t.kwargs()))
            cache.batch_update("pe-cut", input_file=f.id)
    for _ in range(7):  # other users' jobs since: the one sought is on the third page of the newest first
        srv.add_job(f"s3://{BUCKET}/other/input.jsonl")
    assert srv.requests["POST jobs"] == (1 if cut == "after_create" else 0)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        rows = {r["local_id"]: r for r in cache.batches()}
    assert srv.requests["POST jobs"] == 1 and len(srv.submitted) == 8 and set(srv.submitted.values()) == {1}  # no call sent twice
    assert (counts.ran, counts.failed) == (8, 0) and srv.requests["GET list"] >= 3
    assert rows["pe-cut"]["state"] == ("completed" if cut == "after_create" else "abandoned")
    assert len(rows) == (1 if cut == "after_create" else 2)
    assert all(results[c.key].value == expected_choice(i) for i, c in enumerate(plan.calls.values()))


def test_a_create_whose_answer_is_lost_is_found_in_the_same_run(fake, tmp_path):
    srv = fake(delay=0.1)
    lost_create_found_in_same_run(srv, bedrock_cfg(srv.url), tmp_path, expected_choice)


def test_a_lost_create_the_provider_cannot_be_asked_about_is_kept_not_sent_again(fake, tmp_path):
    srv = fake(delay=0.1)
    lost_create_kept_then_collected(srv, bedrock_cfg(srv.url), tmp_path, expected_choice)
    assert srv.requests["GET list"] >= 1


@pytest.mark.parametrize("finished", [0, 3])
def test_a_stopped_job_keeps_what_it_finished_and_the_next_run_submits_the_rest(fake, tmp_path, finished):
    """`persona-exp batches --cancel` stops the job (boto3's StopModelInvocationJob).
    The records it had finished are read from where Bedrock writes them
    (litellm names no output file for a stopped job) and cached, not paid
    twice; the others fail (transport) and the next run submits only those.
    A job stopped before it finished any wrote nothing: all go again."""
    path = tmp_path / "c.sqlite"
    srv = fake(delay=600)
    srv.finished_before_stop = finished
    cfg = bedrock_cfg(srv.url)
    plan = judge_plan(cfg, 5)
    with CallCache(path) as cache:
        submit_only(cache, cfg, plan)
    arn = next(iter(srv.jobs))
    assert cli(["batches", "--path", str(path), "--cancel", arn]) == 0
    assert srv.requests["POST stop"] == 1 and srv.jobs[arn]["status"] in ("Stopping", "Stopped")
    with CallCache(path) as cache:
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        row = cache.batch(arn)
    assert counts.failures == {"transport": 5 - finished} and counts.ran == 5 and row["state"] == "cancelled" and row["collected_at"]
    assert row["answered"] == finished and srv.requests["GET object"] == 1 and row["output_file"].endswith(".jsonl.out")
    assert all(results[c.key].value == expected_choice(i) for i, c in enumerate(plan.calls.values()) if results[c.key].ok)
    srv.delay = 0.05
    with CallCache(path) as cache:
        _, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
    assert counts.failed == 0 and counts.cached == finished and srv.requests["POST jobs"] == 2
    assert sorted(srv.submitted.values()) == sorted([1] * finished + [2] * (5 - finished))


def test_bedrock_output_records_read_as_openai_lines():
    """Claude's and Nova's answers, an error record, a cut answer, an
    unknown shape and a broken line: answers, errors, never a crash."""
    from persona_exp.execute.batch import from_bedrock, read_lines

    claude = {"recordId": "k1", "modelInput": {}, "modelOutput": {"content": [{"type": "text", "text": "A"}, {"type": "text", "text": "!"}],
                                                                  "stop_reason": "end_turn", "usage": {"input_tokens": 7, "output_tokens": 2},
                                                                  "model": "claude-x"}}
    nova = {"recordId": "k2", "modelOutput": {"output": {"message": {"content": [{"text": "B"}]}}, "stopReason": "max_tokens",
                                              "usage": {"inputTokens": 5, "outputTokens": 9}}}
    error = {"recordId": "k3", "modelInput": {}, "error": {"errorCode": 429, "errorMessage": "Too many tokens"}}
    odd = {"recordId": "k4", "modelOutput": {"generation": "C", "prompt_token_count": 3}}
    data = "\n".join([json.dumps(claude), json.dumps(nova), "{not json", json.dumps(error), "", json.dumps(odd)]).encode()
    lines = read_lines(from_bedrock(data))
    assert set(lines) == {"k1", "k2", "k3", "k4"}
    one = lines["k1"]["body"]
    assert one["choices"][0]["message"]["content"] == "A!" and one["choices"][0]["finish_reason"] == "stop" and one["model"] == "claude-x"
    assert one["usage"] == {"prompt_tokens": 7, "completion_tokens": 2}
    two = lines["k2"]["body"]
    assert two["choices"][0]["message"]["content"] == "B" and two["choices"][0]["finish_reason"] == "length"
    assert two["usage"] == {"prompt_tokens": 5, "completion_tokens": 9} and "model" not in two
    assert lines["k3"] == {"error": "status 429: Too many tokens"}
    assert "error" in lines["k4"] and "generation" in lines["k4"]["error"]
    assert from_bedrock(b"") == b""
    # shapes that are half right: strings where objects belong, tokens that are not numbers
    half = [{"recordId": "h1", "modelOutput": {"output": "text"}}, {"recordId": "h2", "modelOutput": {"output": {"message": "hi"}}},
            {"recordId": "h3", "modelOutput": {"content": [{"text": "A"}], "usage": {"input_tokens": "x"}}},
            {"recordId": "h4", "modelOutput": {"content": "A"}}]
    lines = read_lines(from_bedrock("\n".join(json.dumps(h) for h in half).encode()))
    assert set(lines) == {"h1", "h2", "h3", "h4"} and all("error" in v for v in lines.values()), lines


# --- spec errors, prices -------------------------------------------------------------


def _spec_error(*sets: str) -> str:
    from persona_exp.pipeline import load_spec

    spec = Path(__file__).parents[2] / "experiments" / "loo.yaml"
    with pytest.raises(SpecError) as err:
        load_spec(spec, list(sets))
    return str(err.value)


def test_a_bedrock_batch_role_needs_a_bucket_and_a_role(monkeypatch):
    msg = _spec_error(f"models.judge.model={CLAUDE}", "models.judge.execution=batch")
    assert "models.judge.batch_bucket" in msg and "S3" in msg and "loo.yaml:" in msg
    from persona_exp.execute.batch import target

    monkeypatch.delenv("AWS_BATCH_ROLE_ARN", raising=False)
    unchecked = ModelConfig(model=CLAUDE).model_copy(update={"execution": "batch"})  # built in code, past the spec's check
    with pytest.raises(SpecError, match=r"models\.judge\.batch_bucket"):
        target("judge", unchecked)
    no_role = ModelConfig(model=CLAUDE, execution="batch", batch_bucket=BUCKET)
    with pytest.raises(SpecError, match=r"models\.judge\.batch_role_arn") as err:
        target("judge", no_role)
    assert "AWS_BATCH_ROLE_ARN" in str(err.value)
    monkeypatch.setenv("AWS_BATCH_ROLE_ARN", "my-role")
    with pytest.raises(SpecError, match=r"models\.judge\.batch_role_arn: AWS_BATCH_ROLE_ARN .* not an IAM role"):
        target("judge", no_role)
    monkeypatch.setenv("AWS_BATCH_ROLE_ARN", ROLE_ARN)
    t = target("judge", no_role)
    assert (t.provider, t.model, t.role_arn, t.bucket, t.key_env, t.api_base) == ("bedrock", CLAUDE.removeprefix("bedrock/"), ROLE_ARN, BUCKET,
                                                                                 None, None)
    assert "api_key" not in t.kwargs() and t.kwargs()["s3_bucket_name"] == BUCKET
    routed = target("judge", ModelConfig(model="bedrock/converse/amazon.nova-pro-v1:0", execution="batch", batch_bucket=BUCKET))
    assert routed.model == "amazon.nova-pro-v1:0"  # litellm's route is no part of the job's model id
    bare = ModelConfig(model="anthropic.claude-3-haiku-20240307-v1:0").model_copy(update={"execution": "batch", "batch_bucket": BUCKET})
    with pytest.raises(SpecError, match=r"models\.judge\.model: .*bedrock/anthropic\.claude-3-haiku"):
        target("judge", bare)


def test_bucket_role_and_model_mistakes_are_spec_errors():
    base = (f"models.judge.model={CLAUDE}", "models.judge.execution=batch")
    for bucket in ("s3://my-bucket", "my-bucket/runs", "My_Bucket"):
        bad = _spec_error(*base, f"models.judge.batch_bucket={bucket}")
        assert "models.judge.batch_bucket" in bad and "not an S3 bucket name" in bad
    role = _spec_error(*base, "models.judge.batch_bucket=my-bucket", "models.judge.batch_role_arn=arn:aws:iam::12:role/x")
    assert "models.judge.batch_role_arn" in role and "not an IAM role" in role
    elsewhere = _spec_error("models.judge.model=openai/gpt-4o-mini", f"models.judge.batch_role_arn={ROLE_ARN}")
    assert "models.judge.batch_role_arn" in elsewhere and "not a bedrock/ model" in elsewhere
    other = _spec_error("models.judge.model=openai/gpt-4o-mini", "models.judge.batch_bucket=my-bucket")
    assert "models.judge.batch_bucket" in other and "bedrock/" in other
    llama = _spec_error("models.judge.model=bedrock/meta.llama3-8b-instruct-v1:0", "models.judge.execution=batch",
                        "models.judge.batch_bucket=my-bucket")
    assert "models.judge.model" in llama and "Claude" in llama and "Nova" in llama
    key = _spec_error(*base, "models.judge.batch_bucket=my-bucket", "models.judge.api_key_env=MY_KEY")
    assert "models.judge.api_key_env" in key and "AWS credentials" in key
    ok = ModelConfig(model=CLAUDE, execution="batch", batch_bucket="my-bucket.2026", batch_role_arn=ROLE_ARN)
    assert ok.sampling() == ModelConfig(model=CLAUDE).sampling()  # neither the mode, the bucket nor the role enters the call keys
    assert ModelConfig(model=CLAUDE, batch_bucket="my-bucket", batch_role_arn=ROLE_ARN).execution == "online"  # kept while switched


def test_batch_prices_for_bedrock_models_come_from_litellms_table():
    from persona_exp.execute.llm import litellm

    table = litellm().model_cost
    discounted = [k for k, v in table.items() if str(v.get("litellm_provider", "")).startswith("bedrock")
                  and v.get("input_cost_per_token_batches") is not None]
    assert discounted and any("claude" in k for k in discounted)
    info = table[CLAUDE.removeprefix("bedrock/")]
    assert price(CLAUDE, batch=True) == (info["input_cost_per_token_batches"], info["output_cost_per_token_batches"])
    plain = table[NOVA.removeprefix("bedrock/")]
    assert plain.get("input_cost_per_token_batches") is None  # no batch price listed: the online one, an upper bound
    assert price(NOVA, batch=True) == price(NOVA) == (plain["input_cost_per_token"], plain["output_cost_per_token"])
    for route in ("converse", "invoke"):  # litellm's Bedrock routes name the same model
        assert price(CLAUDE.replace("bedrock/", f"bedrock/{route}/"), batch=True) == price(CLAUDE, batch=True)
