"""A killed run loses no finished call; two runs can share one cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from persona_exp.execute import CallCache, Runner
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig

N = 40

SCRIPT = textwrap.dedent(
    """
    import sys
    from persona_exp.execute import CallCache, Runner
    from persona_exp.plan import Plan
    from persona_exp.spec import ModelConfig

    url, cache_path, start, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    model = ModelConfig(model="openai/test-model", api_base=url, concurrency=2, max_retries=2)
    plan = Plan()
    for i in range(start, start + n):
        plan.add("judge", "judge", model.model, [{"role": "user", "content": f"Question {i}: A or B?"}], model.sampling(), parser="choice")
    with CallCache(cache_path) as cache:
        results, counts = Runner({"judge": model}, cache, progress=False, backoff_base=0.01).run(plan)
    assert all(r.value == "A" for r in results.values()), counts
    print(counts.ran, counts.cached)
    """
)


def _plan(model: ModelConfig, start: int, n: int) -> Plan:
    plan = Plan()
    for i in range(start, start + n):
        plan.add("judge", "judge", model.model, [{"role": "user", "content": f"Question {i}: A or B?"}], model.sampling(), parser="choice")
    return plan


def _contents(state) -> list[str]:
    return [r["body"]["messages"][-1]["content"] for r in state.requests]


def test_kill_minus_nine_then_rerun_resends_no_finished_call(tmp_path, openai_server):
    state, url = openai_server
    state.delay = 0.05
    cache_path = tmp_path / "cache.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, url, str(cache_path), "0", str(N)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(state.requests) < 12 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with CallCache(cache_path) as cache:
        finished = {c.key for c in cache.get_many(_plan(ModelConfig(model="openai/test-model", api_base=url), 0, N).calls).values()}
    assert 0 < len(finished) < N
    sent_before = len(state.requests)

    model = ModelConfig(model="openai/test-model", api_base=url, concurrency=2)
    plan = _plan(model, 0, N)
    with CallCache(cache_path) as cache:
        results, counts = Runner({"judge": model}, cache, progress=False).run(plan)
    resent = _contents(state)[sent_before:]
    finished_contents = {plan.calls[k].messages[0]["content"] for k in finished}
    assert not finished_contents & set(resent)
    assert counts.cached == len(finished) and counts.ran == N - len(finished)
    assert [results[k].value for k in plan.calls] == ["A"] * N  # same as an uninterrupted run


def test_two_runs_share_one_cache(tmp_path, openai_server):
    state, url = openai_server
    state.delay = 0.01
    cache_path = tmp_path / "cache.sqlite"
    CallCache(cache_path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, url, str(cache_path), str(start), "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for start in (0, 15)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with CallCache(cache_path) as cache:
        assert cache.stats()["calls"] == 45
