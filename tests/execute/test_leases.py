"""Leases: two processes on one cache never send the same call twice.

A lease is taken only on a call with no answer and no live lease of another
owner; it lapses when not renewed (a killed process) and is given back when the
call finishes. A runner puts a call another process holds aside, takes its
answer as cached once it appears, and sends it itself when the lease lapses or
is given back without an answer.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from contextlib import closing
from pathlib import Path

import polars as pl

from persona_exp.execute import CallCache, Runner
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")


def test_a_lease_goes_to_one_owner_until_released_or_lapsed(tmp_path):
    path = tmp_path / "cache.sqlite"
    with CallCache(path) as a, CallCache(path) as b:
        assert a.take(["k1", "k2"], 60) == ({}, {"k1", "k2"})
        assert b.take(["k1", "k2", "k3"], 60) == ({}, {"k3"})  # k1, k2: a's, live
        assert a.take(["k1"], 60) == ({}, {"k1"})  # the owner takes its own again (a renewal)

        a.release("k1")  # a's call failed: no answer, the lease is given back
        assert b.take(["k1"], 60) == ({}, {"k1"})

        a.put("k2", "the answer")
        answered, taken = b.take(["k2"], 60)
        assert answered["k2"].response == "the answer" and not taken  # answered: nothing to lease

        assert a.take(["k4"], 0.2) == ({}, {"k4"})
        assert b.take(["k4"], 60)[1] == set()
        time.sleep(0.3)  # a stopped renewing (killed): its lease lapses
        assert b.take(["k4"], 60)[1] == {"k4"}
        assert a.take(["k4"], 60)[1] == set()  # and now b's


def test_close_gives_back_every_lease_and_reading_never_creates_the_table(tmp_path):
    path = tmp_path / "cache.sqlite"
    with CallCache(path) as reader:
        reader.get_many(["k"])
        reader.stats()
    with closing(sqlite3.connect(path)) as db:
        assert "leases" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}  # `plan` and `cache stats` write nothing
    a = CallCache(path)
    a.take(["k1", "k2"], 60)
    a.close()
    with CallCache(path) as b:
        assert b.take(["k1", "k2"], 60)[1] == {"k1", "k2"}


def _plan(model: ModelConfig, n: int) -> Plan:
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", model.model, [{"role": "user", "content": f"Question {i}: A or B?"}], model.sampling(), parser="choice")
    return plan


def _sent(state) -> Counter:
    return Counter(r["body"]["messages"][-1]["content"] for r in state.requests)


def _hold_then(path, key: str, after: float, then) -> threading.Thread:
    """Another process in miniature: holds the lease on ``key`` for ``after`` seconds, then ``then(cache)``."""
    holder = CallCache(path)
    assert holder.take([key], 60)[1] == {key}

    def work() -> None:
        time.sleep(after)
        then(holder)
        holder.close()

    t = threading.Thread(target=work)
    t.start()
    return t


def _timed(state) -> dict[str, float]:
    """The server answers "A" and notes when each question reached it (wall clock)."""
    arrived: dict[str, float] = {}

    def reply(body):
        arrived.setdefault(body["messages"][-1]["content"], time.time())
        return "A"

    state.reply = reply
    return arrived


def test_a_call_leased_elsewhere_is_awaited_and_counted_cached(tmp_path, openai_server):
    state, url = openai_server
    model = ModelConfig(model="openai/test-model", api_base=url, concurrency=2)
    plan = _plan(model, 4)
    held = next(iter(plan.calls))
    path = tmp_path / "cache.sqlite"
    CallCache(path).close()
    t = _hold_then(path, held, 1.0, lambda cache: (cache.put(held, "B"), cache.release(held)))
    with CallCache(path) as cache:
        results, counts = Runner({"judge": model}, cache, progress=False).run(plan)
    t.join()
    assert plan.calls[held].messages[0]["content"] not in _sent(state) and sum(_sent(state).values()) == 3
    assert results[held].cached and results[held].value == "B" and results[held].attempts == 0
    assert (counts.cached, counts.ran) == (1, 3)


def test_a_lease_given_back_without_answer_or_lapsed_lets_this_process_send(tmp_path, openai_server):
    state, url = openai_server
    arrived = _timed(state)
    model = ModelConfig(model="openai/test-model", api_base=url, concurrency=2)
    plan = _plan(model, 3)
    failed, killed, remote = list(plan.calls)
    path = tmp_path / "cache.sqlite"
    CallCache(path).close()
    # A process that takes a lease for 60 s and dies without giving it back: on
    # this machine its lease is free at once (its owner is gone) ...
    code = "import os, sys\nfrom persona_exp.execute import CallCache\nCallCache(sys.argv[1]).take([sys.argv[2]], 60.0)\nos._exit(0)"
    subprocess.run([sys.executable, "-c", code, str(path), killed], check=True, timeout=120)
    with closing(sqlite3.connect(path)) as db:
        dead_lapses = db.execute("SELECT expires_at FROM leases WHERE key = ?", (killed,)).fetchone()[0]
        # ... while one of another machine, which cannot be asked, is waited for until it lapses.
        lapses = time.time() + 2.0
        db.execute("INSERT INTO leases VALUES (?, ?, ?)", (remote, "another-machine:4242:abcdef", lapses))
        db.commit()
    given_back: list[float] = []
    t = _hold_then(path, failed, 0.8, lambda cache: (cache.release(failed), given_back.append(time.time())))  # its call failed there
    with CallCache(path) as cache:
        results, counts = Runner({"judge": model}, cache, progress=False).run(plan)
    t.join()
    assert sorted(_sent(state).values()) == [1, 1, 1]
    assert arrived[plan.calls[failed].messages[0]["content"]] >= given_back[0]
    assert arrived[plan.calls[killed].messages[0]["content"]] < dead_lapses - 30
    assert arrived[plan.calls[remote].messages[0]["content"]] >= lapses
    assert all(r.value == "A" and not r.cached and r.attempts == 1 for r in results.values())
    assert (counts.cached, counts.ran) == (0, 3)


def test_two_identical_runs_at_once_send_every_call_once(tmp_path, openai_server):
    """Two `persona-exp run` processes on one cache. The server holds its
    answers until both processes have sent a request (each sends with its own
    API key, which the cache keys ignore), so the runs overlap for sure. A
    third of the judges first answer unreadably, so re-asks are shared too."""
    state, url = openai_server
    both = threading.Event()
    unreadable: set[str] = set()

    def reply(body):
        with state.lock:
            keys = {r["auth"] for r in state.requests}
        if len(keys) >= 2:
            both.set()
        both.wait(timeout=60)
        time.sleep(0.05)
        first = body["messages"][0]["content"]
        if len(body["messages"]) == 1 and zlib.crc32(first.encode()) % 3 == 0:
            unreadable.add(first)
            return "I cannot choose."
        return "A"

    state.reply = reply
    args = ["--no-progress", "--set", "population.size=200", "--set", "experiment.attributes=[age, sex]",
            "--set", "experiment.n_personas=3", "--set", "experiment.n_questions=3", "--set", "experiment.n_resamples=100",
            "--set", "models.judge.model=openai/test-model", "--set", f"models.judge.api_base={url}", "--set", "models.judge.concurrency=3"]
    env = dict(os.environ)
    prep = subprocess.run([str(EXE), "plan", str(SPEC), *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert prep.returncode == 0, prep.stderr  # builds the population both runs then read

    procs = [subprocess.Popen([str(EXE), "run", str(SPEC), *args, "--json"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**env, "OPENAI_API_KEY": f"sk-test-run-{n}-0123456789"}) for n in (1, 2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs

    assert both.is_set() and len({r["auth"] for r in state.requests}) == 2  # both processes sent calls
    bodies = Counter(json.dumps(r["body"], sort_keys=True) for r in state.requests)
    assert max(bodies.values()) == 1, [b for b, n in bodies.items() if n > 1][:1]  # every call and every re-ask sent once

    runs = sorted((tmp_path / ".persona-exp" / "runs" / "loo").iterdir())
    assert len(runs) == 2
    tables = [pl.read_parquet(run / "calls.parquet").join(pl.read_parquet(run / "transcripts.parquet"), on="key").sort("key") for run in runs]
    judge = [t.filter(pl.col("step") == "judge") for t in tables]
    n = judge[0].height
    assert judge[0]["key"].to_list() == judge[1]["key"].to_list() and len(bodies) == n + len(unreadable) and 0 < len(unreadable) < n
    for t in tables:
        assert t["status"].to_list() == ["ok"] * t.height and t["text"].null_count() == 0
    assert judge[0]["value"].to_list() == judge[1]["value"].to_list() == ["A"] * n
    assert judge[0]["reasks"].to_list() == judge[1]["reasks"].to_list()  # the same attempts, though sent by one of them
    # A judge call asked once was sent by one run and taken from the cache by the other.
    once = [(a, b) for a, b, r in zip(judge[0]["cached"], judge[1]["cached"], judge[0]["reasks"]) if r == 0]
    assert len(once) == n - len(unreadable) and all(a != b for a, b in once)
    assert all(t.filter(pl.col("cached"))["attempts"].eq(0).all() for t in judge)
