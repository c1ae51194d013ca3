"""The batch path at scale: 100,000 calls of a role with ``execution: batch``
through a local fake batch provider (tests/execute/fake_batch_server.py).

1. submit: a child process runs the plan; it writes and uploads the batch
   files (2 batches of 50,000) and starts polling;
2. kill: the child is killed with SIGKILL while it polls;
3. resume + collect: the same command again resumes polling the recorded
   batches, collects them into the call cache and sends the failed lines
   (about 1 in 200) online.

It checks that every call was submitted exactly once, that the rerun created
no batch, that exactly the failed lines went online, and that the cache holds
every call once with the provider's answer; and prints the timings.
``--quick`` runs 5,000 calls. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "execute"))
from fake_batch_server import FakeBatchServer, default_reply, fail_every  # noqa: E402

KEY = "sk-bench-FAKEKEY-0123456789abcdef"

CHILD = """
import sys, time
t0 = time.perf_counter()
from persona_exp.execute import CallCache, Runner
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig
url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = ModelConfig(model="openai/m", api_base=url, execution="batch", batch_poll=0.5)
plan = Plan()
for i in range(n):
    plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Item {i}: which answer, A or B?"}], cfg.sampling(), parser="choice")
t1 = time.perf_counter()
with CallCache(path) as cache:
    results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
t2 = time.perf_counter()
print(counts.ran, counts.cached, counts.failed, f"{t1 - t0:.3f}", f"{t2 - t1:.3f}", flush=True)
"""


def messages_of(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Item {i}: which answer, A or B?"}]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="5,000 calls")
    ap.add_argument("--delay", type=float, default=None, help="seconds a batch takes at the fake provider (default: enough to kill while polling)")
    a = ap.parse_args(argv)
    n = 5_000 if a.quick else a.calls
    delay = a.delay if a.delay is not None else max(5.0, n / 10_000)
    fails = fail_every(200)
    ok = True

    def check(name: str, good: bool, detail: str) -> None:
        nonlocal ok
        ok &= bool(good)
        print(f"  check {'ok  ' if good else 'FAIL'} {name}: {detail}", flush=True)

    env = {**os.environ, "OPENAI_API_KEY": KEY}
    with tempfile.TemporaryDirectory() as tmp, FakeBatchServer(delay=delay, fail=fails) as srv:
        path = str(Path(tmp) / "cache.sqlite")
        cmd = [sys.executable, "-c", CHILD, srv.url, path, str(n)]
        print(f"batch path: {n:,} calls, fake provider at 127.0.0.1, batches complete {delay:g} s after creation, 1 line in 200 fails")
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while sum(srv.submitted.values()) < n and child.poll() is None:
            time.sleep(0.02)
        submitted_at = time.perf_counter() - t0
        time.sleep(1.0)  # polling now
        alive = child.poll() is None
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.perf_counter() - t0
        print(f"  submit: {n:,} calls in {srv.requests['POST batches']} batches, {submitted_at:.1f} s from start "
              f"(process start, import and plan included); killed (SIGKILL) while polling at {killed_at:.1f} s")
        check("killed during polling", alive, "the first run was still polling when killed" if alive else child.stderr.read()[-500:])
        from persona_exp.execute import CallCache

        with CallCache(path) as cache:
            live = [r for r in cache.batches() if r["collected_at"] is None]
            before = cache.stats()["calls"]
        check("nothing answered before the kill", before == 0 and len(live) == srv.requests["POST batches"],
              f"{before} answers cached, {len(live)} live batches recorded")
        batches_before = srv.requests["POST batches"]
        t1 = time.perf_counter()
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True)
        resume = time.perf_counter() - t1
        if rerun.returncode != 0:
            check("rerun finished", False, rerun.stderr[-800:])
            return 1
        ran, cached, failed, plan_s, run_s = rerun.stdout.split()
        done = max(b["_at"] for b in srv.batches.values()) + delay
        print(f"  resume + collect: the rerun took {resume:.1f} s ({float(plan_s):.1f} s import and plan, {float(run_s):.1f} s in the runner, "
              f"of which the batches' remaining time at the provider was about {max(0.0, done - (time.time() - resume)):.1f} s)")
        failed_keys = [k for k in srv.submitted if fails(k)]
        check("every call submitted once", len(srv.submitted) == n and set(srv.submitted.values()) == {1},
              f"{len(srv.submitted):,} distinct custom ids, each submitted {sorted(set(srv.submitted.values()))} times")
        check("no batch created by the rerun", srv.requests["POST batches"] == batches_before, f"{srv.requests['POST batches']} batches in all")
        check("failed lines sent online, once each", sum(srv.online.values()) == len(failed_keys) and set(srv.online.values()) <= {1},
              f"{len(failed_keys)} failed lines, {sum(srv.online.values())} online requests")
        check("rerun counts", (int(ran), int(cached), int(failed)) == (n, 0, 0), f"ran {ran}, cached {cached}, failed {failed}")
        with CallCache(path) as cache:
            rows = cache._db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM calls").fetchone()
            answers = [r[0] for r in cache._db.execute("SELECT response FROM calls ORDER BY key")]
            collected = all(r["collected_at"] for r in cache.batches())
        want = sorted(default_reply({"messages": messages_of(i)}) for i in range(n))
        check("every call cached once", rows == (n, n) and collected, f"{rows[0]:,} rows, {rows[1]:,} distinct keys; batches collected: {collected}")
        check("answers are the provider's", sorted(answers) == want, "the multiset of cached answers equals the provider's rule over all calls")
    print(f"  total: {time.perf_counter() - t0:.1f} s for {n:,} calls (submit {submitted_at:.1f} s, resume and collect {resume:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
