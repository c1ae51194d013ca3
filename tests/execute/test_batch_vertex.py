"""Vertex AI batches (``vertex_ai/gemini-...`` with ``execution: batch``)
against a local fake of Vertex's batch prediction and Cloud Storage APIs
(fake_vertex_server), through litellm's own vertex_ai files and batches code:
answers land in the call cache once, failed rows go online (to the fake's
generateContent), a killed run resumes its jobs, and a submission cut short
is found again by its input file.

The redirections litellm needs to reach a local server (api_base, its guard
against private addresses, the storage.googleapis.com download) live here and
in the fake's module, never in persona-exp's code."""

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

pytest.importorskip("google.auth", reason="Vertex AI needs google-auth: pip install 'persona-exp[vertex]' (the test extra has it)")

from persona_exp.cli import main as cli  # noqa: E402
from persona_exp.errors import ExecutionError, SpecError  # noqa: E402
from persona_exp.execute import CallCache, Runner  # noqa: E402
from persona_exp.execute.prices import price  # noqa: E402
from persona_exp.plan import Plan  # noqa: E402
from persona_exp.spec import ModelConfig  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from fake_vertex_server import BUCKET, LOCATION, PROJECT, FakeVertexServer, fail_every, route_litellm_here, service_account  # noqa: E402
from batch_testing import check_resumed, dead_pid, judge_plan, lost_create_found_in_same_run, lost_create_kept_then_collected, question, submit_only  # noqa: E402

MODEL = "vertex_ai/gemini-2.5-flash"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    """A service account key file (a key made for the tests); its token_uri is set per server."""
    return service_account("http://placeholder")


def vertex_env(srv: FakeVertexServer, key: dict, folder: Path) -> dict[str, str]:
    """The environment a Vertex user sets (project, location, credentials), here pointing at the fake."""
    path = folder / "service-account.json"
    path.write_text(json.dumps({**key, "token_uri": f"{srv.url}/token"}))
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "VERTEXAI_PROJECT": PROJECT, "VERTEXAI_LOCATION": LOCATION}


@pytest.fixture
def fake(tmp_path, monkeypatch, key_file):
    """Starts a fake Vertex (``fake(delay=..., fail=...)``) with litellm routed to it."""
    servers = []

    def start(**kw) -> FakeVertexServer:
        srv = FakeVertexServer(**kw).__enter__()
        servers.append(srv)
        for k, v in vertex_env(srv, key_file, tmp_path).items():
            monkeypatch.setenv(k, v)
        route_litellm_here(srv.url, lambda obj, name, value: monkeypatch.setattr(obj, name, value))
        return srv

    yield start
    for srv in servers:
        srv.__exit__()


def expected_choice(i: int) -> str:
    """What the fake answers to question i, from its rule (a hash of the prompt's text), computed here."""
    return "A" if hashlib.sha256(question(i).encode()).digest()[0] % 2 == 0 else "B"


def vertex_cfg(url: str, **kw) -> ModelConfig:
    return ModelConfig(model=MODEL, api_base=url, execution="batch", batch_bucket=BUCKET, **{"batch_poll": 0.05, **kw})


def test_answers_are_cached_once_and_failed_rows_are_sent_online(fake, tmp_path):
    fails = fail_every(4)
    srv = fake(delay=0.2, fail=fails)
    cfg = vertex_cfg(srv.url, batch_size=10)
    plan = judge_plan(cfg, 30)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        rows = cache.batches()
        again, counts2 = Runner({"judge": cfg}, cache, progress=False).run(plan)
        stored = cache.get_many(plan.calls)
    prompts = [question(i) for i in range(30)]
    failed = {p for p in prompts if fails(p)}
    assert 0 < len(failed) < 30  # the rule fails some rows, not all
    assert (counts.ran, counts.failed) == (30, 0) and (counts2.cached, counts2.ran) == (30, 0)
    assert sorted(srv.submitted) == sorted(prompts) and set(srv.submitted.values()) == {1}  # every call submitted once
    assert set(srv.online) == failed and set(srv.online.values()) == {1}  # exactly the failed rows went online, once each
    assert srv.requests["POST jobs"] == 3 and srv.unauthorized == 0  # every request carried Google's bearer token
    assert {j["model"] for j in srv.jobs.values()} == {"publishers/google/models/gemini-2.5-flash"}  # the lines named the bare model
    assert len(rows) == 3 and sum(r["calls"] for r in rows) == 30 and all(r["collected_at"] and r["state"] == "completed" for r in rows)
    assert sum(r["failed"] for r in rows) == len(failed) and sum(r["answered"] for r in rows) == 30 - len(failed)
    assert all(r["provider"] == "vertex_ai" and r["input_file"].startswith(f"gs://{BUCKET}/") for r in rows)
    assert all(r["output_file"].endswith("/predictions.jsonl") and "/prediction-model-" in r["output_file"] for r in rows)  # the job's own
    assert all(results[c.key].value == expected_choice(i) for i, c in enumerate(plan.calls.values()))
    assert {k: r.value for k, r in again.items()} == {k: r.value for k, r in results.items()}
    job_ids = {r["batch_id"] for r in rows}
    by_prompt = {c.messages[-1]["content"]: c.key for c in plan.calls.values()}
    per_token = price(MODEL, batch=True)
    for p, key in by_prompt.items():
        usage = stored[key].usage
        if p in failed:
            assert "batch" not in usage  # answered online
        else:
            assert usage["batch"] in job_ids
            assert usage["cost"] == pytest.approx(usage["prompt_tokens"] * per_token[0] + usage["completion_tokens"] * per_token[1])
            assert usage["prompt_tokens"] == len(p.split())  # the fake's usage, read through litellm's transform


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[4])
from fake_vertex_server import BUCKET, route_litellm_here
from persona_exp.execute import CallCache, Runner
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig
url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
route_litellm_here(url)
cfg = ModelConfig(model="vertex_ai/gemini-2.5-flash", api_base=url, execution="batch", batch_bucket=BUCKET, batch_poll=0.05, batch_size=25)
plan = Plan()
for i in range(n):
    plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Question {i}: A or B?"}], cfg.sampling(), parser="choice")
with CallCache(path) as cache:
    results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
print(counts.ran, counts.cached, counts.failed)
"""


def test_kill_9_during_polling_then_rerun_creates_no_job_again(fake, tmp_path, key_file):
    n = 60
    path = tmp_path / "c.sqlite"
    srv = fake(delay=4.0)
    env = {**os.environ, **vertex_env(srv, key_file, tmp_path)}
    args = [sys.executable, "-c", CHILD, srv.url, str(path), str(n), str(HERE)]
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


def _cut_short(srv: FakeVertexServer, folder: Path, create: bool) -> tuple[ModelConfig, Plan]:
    """A run of 8 calls killed after uploading its file (the gs:// id
    recorded), and after creating the job (``create``) or before, behind seven
    jobs of other users (three to a listing page: the one sought is on the third)."""
    import asyncio

    import litellm

    from persona_exp.execute.batch import target

    cfg = vertex_cfg(srv.url)
    plan = judge_plan(cfg, 8)
    srv.objects[(BUCKET, "other/input.jsonl")] = b""
    for _ in range(7):
        srv.add_job(f"gs://{BUCKET}/other/input.jsonl")
    with CallCache(folder / "c.sqlite") as cache:
        cache.owner = f"{socket.gethostname()}:{dead_pid()}:cut"  # as if a process now gone had claimed them
        t = target("judge", cfg)
        assert cache.batch_claim("pe-cut", t.info(), list(plan.calls)) == list(plan.calls)
        lines = [json.dumps({"custom_id": c.key, "method": "POST", "url": "/v1/chat/completions",
                             "body": {"model": t.model, "messages": c.messages}}) for c in plan.calls.values()]
        f = asyncio.run(litellm.acreate_file(file=("pe-cut.jsonl", "\n".join(lines).encode()), purpose="batch", **t.kwargs()))
        cache.batch_update("pe-cut", input_file=f.id)
        if create:
            asyncio.run(litellm.acreate_batch(completion_window="24h", endpoint="/v1/chat/completions", input_file_id=f.id, **t.kwargs()))
    return cfg, plan


def test_a_listing_longer_than_the_pages_read_is_no_answer(fake, tmp_path, monkeypatch):
    """When the job sought may be past the last page a lookup reads, the
    record is kept (its calls fail for this run) rather than taken for
    never created and submitted again; with the pages read, it is found."""
    from persona_exp.execute import batch_clouds

    srv = fake(delay=0.1, page_size=3)
    cfg, plan = _cut_short(srv, tmp_path, create=True)
    monkeypatch.setattr(batch_clouds, "FIND_PAGES", 2)
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, cut = Runner({"judge": cfg.model_copy(update={"max_retries": 1})}, cache, progress=False).run(plan)
        (row,) = cache.batches()
    assert cut.failures == {"transport": 8} and row["state"] == "submitting" and srv.requests["POST jobs"] == 1
    monkeypatch.setattr(batch_clouds, "FIND_PAGES", 20)
    with CallCache(tmp_path / "c.sqlite") as cache:
        _, whole = Runner({"judge": cfg}, cache, progress=False).run(plan)
        (row,) = cache.batches()
    assert (whole.ran, whole.failed) == (8, 0) and row["state"] == "completed" and srv.requests["POST jobs"] == 1


def test_a_lost_job_is_looked_for_and_cancelled_at_the_provider(fake, tmp_path, capsys):
    """`batches --cancel` on a record kept as lost: the job is looked up first
    and cancelled where it runs, not just forgotten here."""
    path = tmp_path / "c.sqlite"
    srv = fake(delay=600)
    srv.drop_create_responses, srv.failing_lists = 1, 10**6
    cfg = vertex_cfg(srv.url, max_retries=1)
    with CallCache(path) as cache:
        Runner({"judge": cfg}, cache, progress=False).run(judge_plan(cfg, 4))
        (row,) = cache.batches()
    assert row["state"] == "lost" and srv.requests["POST jobs"] == 1
    srv.failing_lists = 0
    capsys.readouterr()
    assert cli(["batches", "--path", str(path), "--cancel", row["local_id"]]) == 0
    job = next(iter(srv.jobs)).rsplit("/", 1)[-1]
    assert srv.requests["POST cancel"] == 1 and srv.jobs[job]["state"] == "JOB_STATE_CANCELLED" and job in capsys.readouterr().out
    with CallCache(path) as cache:
        assert cache.batch(row["local_id"])["batch_id"].endswith(job)


@pytest.mark.parametrize("cut", ["after_create", "before_create"])
def test_a_run_killed_between_upload_and_the_job_id_finds_its_job_by_listing(fake, tmp_path, cut):
    """A run killed after uploading (the input file's gs:// id recorded)
    but before hearing the job's id: the rerun lists the project's jobs (other
    users' among them, over several pages) and takes the one reading that
    file, creating none (``after_create``); when no job reads it
    (``before_create``), the calls are submitted anew, once."""
    srv = fake(delay=0.1, page_size=3)
    cfg, plan = _cut_short(srv, tmp_path, create=cut == "after_create")
    assert srv.requests["POST jobs"] == (1 if cut == "after_create" else 0)
    with CallCache(tmp_path / "c.sqlite") as cache:
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        rows = {r["local_id"]: r for r in cache.batches()}
    assert (counts.ran, counts.failed) == (8, 0) and srv.requests["GET list"] >= 3
    assert srv.requests["POST jobs"] == 1 and len(srv.submitted) == 8 + 0 and set(srv.submitted.values()) == {1}
    assert rows["pe-cut"]["state"] == ("completed" if cut == "after_create" else "abandoned")
    assert len(rows) == (1 if cut == "after_create" else 2)
    assert all(results[c.key].value == expected_choice(i) for i, c in enumerate(plan.calls.values()))


def test_a_create_whose_answer_is_lost_is_found_in_the_same_run(fake, tmp_path):
    srv = fake(delay=0.1)
    lost_create_found_in_same_run(srv, vertex_cfg(srv.url), tmp_path, expected_choice)


def test_a_lost_create_the_provider_cannot_be_asked_about_is_kept_not_sent_again(fake, tmp_path):
    srv = fake(delay=0.1)
    lost_create_kept_then_collected(srv, vertex_cfg(srv.url), tmp_path, expected_choice)


def test_a_cancelled_job_fails_its_calls_then_the_next_run_submits_them_again(fake, tmp_path, capsys):
    """A cancelled job wrote no output (litellm still names one, which must
    not be downloaded): its calls fail (transport) and are submitted again."""
    path = tmp_path / "c.sqlite"
    srv = fake(delay=600)
    cfg = vertex_cfg(srv.url)
    plan = judge_plan(cfg, 5)
    with CallCache(path) as cache:
        submit_only(cache, cfg, plan)
    job = next(iter(srv.jobs)).rsplit("/", 1)[-1]
    assert cli(["batches", "--path", str(path), "--cancel", job]) == 0
    assert srv.requests["POST cancel"] == 1 and srv.jobs[job]["state"] == "JOB_STATE_CANCELLED"  # (litellm looks again after cancelling)
    with CallCache(path) as cache:
        _, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        row = cache.batch(job)
    assert counts.failures == {"transport": 5} and row["state"] == "cancelled" and row["collected_at"] and row["output_file"] is None
    assert srv.requests["GET download"] == 0
    srv.delay = 0.05
    with CallCache(path) as cache:
        _, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
    assert counts.failed == 0 and set(srv.submitted.values()) == {2} and srv.requests["POST jobs"] == 2


def test_a_failed_vertex_row_reads_as_an_error():
    """litellm turns a failed Vertex row into an OpenAI error line (response null)."""
    from persona_exp.execute.batch import read_lines, staged_in

    line = {"id": "batch_req_1", "custom_id": "k1", "response": None, "error": {"code": "vertex_ai_error", "message": "Bad Request: quota"}}
    assert read_lines(json.dumps(line).encode()) == {"k1": {"error": "Bad Request: quota"}}
    assert staged_in("gs://b1/runs/x/litellm-vertex-files/publishers/google/models/m/prediction-model-1/predictions.jsonl") == "b1/runs/x"
    assert staged_in("gs://b1/litellm-vertex-files/publishers/google/models/m/u") == "b1"


# --- spec errors, the missing extra, prices -------------------------------------


def _spec_error(*sets: str) -> str:
    from persona_exp.pipeline import load_spec

    spec = Path(__file__).parents[2] / "experiments" / "loo.yaml"
    with pytest.raises(SpecError) as err:
        load_spec(spec, list(sets))
    return str(err.value)


def test_a_vertex_batch_role_needs_a_bucket():
    msg = _spec_error(f"models.judge.model={MODEL}", "models.judge.execution=batch")
    assert "models.judge.batch_bucket" in msg and "Cloud Storage" in msg and "loo.yaml:" in msg
    from persona_exp.execute.batch import target

    unchecked = ModelConfig(model=MODEL).model_copy(update={"execution": "batch"})  # built in code, past the spec's check
    with pytest.raises(SpecError, match=r"models\.judge\.batch_bucket"):
        target("judge", unchecked)


def test_bucket_and_model_mistakes_are_spec_errors():
    bad = _spec_error(f"models.judge.model={MODEL}", "models.judge.execution=batch", "models.judge.batch_bucket=gs://my-bucket")
    assert "models.judge.batch_bucket" in bad and "no gs://" in bad
    other = _spec_error("models.judge.model=openai/gpt-4o-mini", "models.judge.batch_bucket=my-bucket")
    assert "models.judge.batch_bucket" in other and "not a vertex_ai/ model" in other
    claude = _spec_error("models.judge.model=vertex_ai/claude-sonnet-4-5", "models.judge.execution=batch", "models.judge.batch_bucket=b1")
    assert "models.judge.model" in claude and "Gemini" in claude
    key = _spec_error(f"models.judge.model={MODEL}", "models.judge.execution=batch", "models.judge.batch_bucket=my-bucket/runs",
                      "models.judge.api_key_env=MY_KEY")
    assert "models.judge.api_key_env" in key and "Google credentials" in key
    ok = ModelConfig(model=MODEL, execution="batch", batch_bucket="my-bucket/runs/2026")
    assert ok.sampling() == ModelConfig(model=MODEL).sampling()  # neither the mode nor the bucket enters the call keys
    assert ModelConfig(model=MODEL, batch_bucket="my-bucket").execution == "online"  # kept while a role is switched to online


def test_without_google_auth_the_error_names_the_extra(monkeypatch):
    from persona_exp.execute.batch import target

    for name in [m for m in sys.modules if m == "google.auth" or m.startswith("google.auth.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "google.auth", None)  # import google.auth now raises ImportError
    with pytest.raises(ExecutionError, match=r"pip install 'persona-exp\[vertex\]'") as err:
        target("judge", ModelConfig(model=MODEL, execution="batch", batch_bucket=BUCKET))
    assert "models.judge.execution" in str(err.value)


def test_batch_prices_for_vertex_models_come_from_litellms_table():
    from persona_exp.execute.llm import litellm

    table = litellm().model_cost
    discounted = next(k for k, v in table.items() if k.startswith("vertex_ai/gemini") and v.get("input_cost_per_token_batches") is not None)
    info = table[discounted]
    assert price(discounted, batch=True) == (info["input_cost_per_token_batches"], info["output_cost_per_token_batches"])
    assert price(discounted, batch=True)[0] < price(discounted)[0]
    plain = table.get(MODEL) or table[MODEL.split("/", 1)[1]]
    assert plain.get("input_cost_per_token_batches") is None  # no batch price listed: the online one, an upper bound
    assert price(MODEL, batch=True) == price(MODEL) == (plain["input_cost_per_token"], plain["output_cost_per_token"])
