"""Every call says how many requests it took and how long they took; a cached
call shows the latency it had when it was answered, and no request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

from persona_exp.execute import CallCache, Runner
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
DELAY = 0.03  # the fake server's time per request, a floor for the latency of each


def _plan(model: ModelConfig, n: int) -> Plan:
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", model.model, [{"role": "user", "content": f"Question {i}: A or B?"}], model.sampling(), parser="choice")
    return plan


def test_retries_count_as_attempts_and_their_time_adds_up(tmp_path, openai_server):
    state, url = openai_server
    state.delay = DELAY
    seen: set[str] = set()

    def first_fails(body):  # every question fails once with a 500, then is answered
        q = body["messages"][-1]["content"]
        if q in seen:
            return "A"
        seen.add(q)
        return {"status": 500}

    state.reply = first_fails
    model = ModelConfig(model="openai/test-model", api_base=url, concurrency=2, max_retries=2)
    plan = _plan(model, 3)
    with CallCache(tmp_path / "cache.sqlite") as cache:
        results, _ = Runner({"judge": model}, cache, progress=False, backoff_base=0.01).run(plan)
        stored = cache.get_many(plan.calls)
    for k, r in results.items():
        assert r.ok and r.attempts == 2 and r.latency_ms >= 2 * DELAY * 1000
        assert stored[k].usage["latency_ms"] == r.latency_ms  # kept with the answer

    state.reply, state.fail_status = "A", 500
    with CallCache(tmp_path / "other.sqlite") as cache:
        results, _ = Runner({"judge": model}, cache, progress=False, backoff_base=0.01).run(_plan(model, 1))
    (r,) = results.values()
    assert r.status == "failed" and r.attempts == 3 and r.latency_ms >= 3 * DELAY * 1000  # a failure has its requests too


def test_run_stores_latency_and_attempts_and_a_cached_rerun_keeps_the_latency(tmp_path, openai_server):
    state, url = openai_server
    state.delay = DELAY
    args = ["run", str(SPEC), "--no-progress", "--set", "population.size=200", "--set", "experiment.attributes=[age]",
            "--set", "experiment.n_personas=2", "--set", "experiment.n_questions=2", "--set", "experiment.n_resamples=100",
            "--set", "models.judge.model=openai/test-model", "--set", f"models.judge.api_base={url}"]

    def cli(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(EXE), *a], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    for _ in range(2):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
    first, again = (pl.read_parquet(run / "calls.parquet").sort("key") for run in sorted((tmp_path / ".persona-exp" / "runs" / "loo").iterdir()))
    judge = first.filter(pl.col("step") == "judge")
    assert judge.height == len(state.requests) > 0
    assert (~first["cached"]).all() and (first["attempts"] >= 1).all() and (first["latency_ms"] > 0).all()
    assert (judge["attempts"] == 1).all() and (judge["latency_ms"] >= DELAY * 1000).all()  # the server's delay is in it

    assert again["cached"].all() and (again["attempts"] == 0).all()
    assert again["latency_ms"].to_list() == first["latency_ms"].to_list()  # as it was when answered

    shown = cli("show", "latest", "--calls", "--step", "judge", "--limit", "1")
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if line.startswith("=== judge"))
    key = header.split(") ", 1)[1].split()[0]
    latency = again.filter(pl.col("key").str.starts_with(key))["latency_ms"].item()
    assert "cached" in header and "attempts 0" in header and f"latency {latency:.0f} ms" in header
