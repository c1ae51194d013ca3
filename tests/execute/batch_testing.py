"""What the batch tests of every provider share: the fake servers' plumbing,
the plan they run, and the scenarios that go the same way whichever provider
serves the batch (test_batch.py, test_batch_vertex.py, test_batch_bedrock.py)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from persona_exp.execute import CallCache, Runner
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig


class LocalServer:
    """A fake provider on 127.0.0.1 in a thread of the test process, counting
    what it was given: ``submitted`` (each item submitted, over every batch or job: a custom id or a prompt),
    ``online`` (prompts sent one by one) and ``requests`` ("METHOD kind")."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0):
        import threading

        self.submitted: Counter[str] = Counter()
        self.online: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def dead_pid() -> int:
    """The id of a process that has ended (an owner of records that is gone)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def question(i: int) -> str:
    return f"Question {i}: A or B?"


def judge_plan(cfg: ModelConfig, n: int) -> Plan:
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", cfg.model, [{"role": "user", "content": question(i)}], cfg.sampling(), parser="choice")
    return plan


def submit_only(cache: CallCache, cfg: ModelConfig, plan: Plan) -> None:
    """Submits the plan's calls in a batch and returns without waiting for it (a run killed while polling)."""
    import asyncio

    from persona_exp.execute.batch import _RoleBatches
    from persona_exp.execute.llm import Caller
    from persona_exp.execute.progress import Progress
    from persona_exp.execute.runner import CallResult

    runner = Runner({"judge": cfg}, cache, progress=False)
    role = _RoleBatches(runner, "judge", list(plan.calls.values()), Caller(cfg), {}, Progress(len(plan), enabled=False), CallResult)
    asyncio.run(role._submit(list(plan.calls)))


def check_resumed(srv: LocalServer, path: Path, rerun: subprocess.CompletedProcess, n: int, creates: str) -> None:
    """After a run killed with -9 while polling three batches: its rerun
    answered all ``n`` calls from them, submitted none again (``creates``: the
    provider's create request) and sent none online; all are cached."""
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.split() == [str(n), "0", "0"]  # all answered by the resumed batches (none was cached before)
    assert len(srv.submitted) == n and set(srv.submitted.values()) == {1} and srv.requests[creates] == 3
    assert sum(srv.online.values()) == 0
    with CallCache(path) as cache:
        assert cache.stats()["calls"] == n and all(r["collected_at"] for r in cache.batches())


def lost_create_found_in_same_run(srv: Any, cfg: ModelConfig, folder: Path, expected: Callable[[int], str]) -> None:
    """The provider made the job but the connection dropped before its id came
    back: the run looks the job up by its input file instead of creating a second one."""
    srv.drop_create_responses = 1
    plan = judge_plan(cfg, 6)
    with CallCache(folder / "c.sqlite") as cache:
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        rows = cache.batches()
    assert srv.drop_create_responses == 0 and srv.requests["GET list"] >= 1  # the answer was lost, and the run listed the jobs
    assert (counts.ran, counts.failed) == (6, 0) and srv.requests["POST jobs"] == 1 and set(srv.submitted.values()) == {1}
    assert len(rows) == 1 and rows[0]["state"] == "completed" and rows[0]["batch_id"] == next(iter(srv.jobs))
    assert all(results[c.key].value == expected(i) for i, c in enumerate(plan.calls.values()))


def lost_create_kept_then_collected(srv: Any, cfg: ModelConfig, folder: Path, expected: Callable[[int], str]) -> None:
    """The create's answer is lost and the job listing is down too: the calls
    fail for this run, but the record is kept as lost (the job may exist); the
    next run looks it up before submitting anything, finds it, collects it."""
    srv.drop_create_responses, srv.failing_lists = 1, 10**6
    plan = judge_plan(cfg, 6)
    with CallCache(folder / "c.sqlite") as cache:
        _, down = Runner({"judge": cfg}, cache, progress=False).run(plan)
        (row,) = cache.batches()
    assert down.failures == {"transport": 6} and row["state"] == "lost" and row["batch_id"] is None and srv.requests["POST jobs"] == 1
    srv.failing_lists = 0
    with CallCache(folder / "c.sqlite") as cache:
        results, up = Runner({"judge": cfg}, cache, progress=False).run(plan)
        (row,) = cache.batches()
    assert (up.ran, up.failed) == (6, 0) and row["state"] == "completed" and srv.requests["POST jobs"] == 1 and set(srv.submitted.values()) == {1}
    assert all(results[c.key].value == expected(i) for i, c in enumerate(plan.calls.values()))
