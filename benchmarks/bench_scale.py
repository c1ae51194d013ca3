#!/usr/bin/env python
"""PERSONA's paper-scale plan (experiments/persona_full.yaml) executed by the
local executor and by the Ray executor, on the simulator and against a
loopback OpenAI-compatible server.

The plan is compiled from the shipped spec; ``--fraction F`` keeps that share
of its personas (population.size and the test split scaled alike), so the
plan keeps its shape (base answers, critiques, revisions, verifications) at
F times the calls. Each (backend, executor) pair runs the whole plan on a
fresh cache file, after a warm-up on other calls (litellm imported, Ray's
actors started), and reports:

* calls/s: the plan's calls over the run's wall time;
* CPU per call: CPU time of the processes that execute the calls (the
  driver, plus the Ray actors for Ray), over the calls; "machine" is the
  whole machine's busy time from /proc/stat over the calls (the server, Ray's
  own daemons and anything else running included);
* the ratio of Ray's calls/s to the local executor's (target: >= 1.6 on two cores).

The loopback server answers at once (no latency: the client side is what is
measured), with text each step's parser reads (a revision in the REVISED
PREFERENCE format, "A" for a verification), in its own process.

    python benchmarks/bench_scale.py --fraction 0.01          # 1% of the plan (about 10,000 calls)
    python benchmarks/bench_scale.py --fraction 1              # the whole plan (951,942 calls: about 14 minutes on the simulator, 2 hours 20 minutes on the loopback server)
    python benchmarks/bench_scale.py --backends sim --executors local,ray --actors 2

Exit status: 0 when every correctness check holds (each run answers every
call, and both executors give the same answers), even if the target is
missed; 1 otherwise.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_TELEMETRY"] = "False"
os.environ["OPENAI_API_KEY"] = "sk-bench-dummy-key-not-secret"  # the loopback server checks none; the actors inherit it

import argparse
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _loopback import LoopbackServer
from _report import Report, print_table

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "persona_full.yaml"
PERSONAS, TEST_PERSONAS = 1586, 568  # the spec's population.size and persona_split.test
TARGET = 1.6


@dataclass
class Row:
    backend: str
    executor: str
    calls: int
    wall_s: float
    calls_per_s: float
    cpu_ms_per_call: float
    driver_ms_per_call: float
    machine_ms_per_call: float | None
    cores: float  # CPU seconds of the executing processes per wall second: how much of the machine the run got
    ratio: float | None = None
    passed: bool | None = None


# --------------------------------------------------------------------------- measuring


def machine_busy() -> float | None:
    """Seconds the whole machine's CPUs were busy since boot (/proc/stat), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def build(overrides: list[str], workdir: str) -> tuple[Any, Any]:
    """The spec's models and plan at the chosen share, compiled in ``workdir``."""
    from persona_exp.pipeline import prepare

    here = os.getcwd()
    os.chdir(workdir)
    try:
        prep = prepare(str(SPEC), overrides, progress=False)
    finally:
        os.chdir(here)
    return prep.spec.models, prep.design.plan


def warm_plan(models: Any, n: int) -> Any:
    """``n`` calls no run of the benchmark has (so they are sent), of the plan's roles."""
    from persona_exp.plan import Plan

    plan = Plan()
    for i in range(n):
        role = "judge" if i % 2 else "generator"
        cfg = models[role]
        plan.add("warm", role, cfg.model, [{"role": "user", "content": f"Warm-up question {i}: A or B?"}], cfg.sampling(), parser=None)
    return plan


def run_once(models: Any, plan: Any, executor: Any, workdir: str, tag: str, server: LoopbackServer | None) -> dict[str, Any]:
    """Runs the plan on a fresh cache: its results and counts, wall s, CPU s
    of the executing processes and of the driver alone, machine busy s, and
    the server's requests and CPU s (when there is one)."""
    from persona_exp.execute import CallCache, Runner

    with CallCache(Path(workdir) / f"warm-{tag}.sqlite") as cache:  # litellm imported, actors started and warm
        Runner(models, cache, progress=False, executor=executor).run(warm_plan(models, 256))
    actors_before = executor_cpu(executor)
    served0 = server.stats() if server else {"served": 0, "cpu_s": 0.0}
    busy0, cpu0, t0 = machine_busy(), own_cpu(), time.perf_counter()
    with CallCache(Path(workdir) / f"run-{tag}.sqlite") as cache:
        results, counts = Runner(models, cache, progress=False, executor=executor).run(plan)
    wall = time.perf_counter() - t0
    driver = own_cpu() - cpu0
    cpu = driver + executor_cpu(executor) - actors_before
    busy1 = machine_busy()
    served1 = server.stats() if server else {"served": 0, "cpu_s": 0.0}
    return {"results": results, "counts": counts, "wall": wall, "cpu": cpu, "driver": driver,
            "busy": None if busy0 is None or busy1 is None else busy1 - busy0,
            "served": served1["served"] - served0["served"], "server_cpu": served1["cpu_s"] - served0["cpu_s"]}


def executor_cpu(executor: Any) -> float:
    if executor is None or not executor.actors:
        return 0.0
    return float(sum(executor.ray.get([a.cpu_seconds.remote() for a in executor.actors])))


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fraction", type=float, default=0.01, help="share of the paper-scale plan's personas to run (default 0.01)")
    ap.add_argument("--backends", default="sim,loopback", help="comma-separated: sim, loopback")
    ap.add_argument("--executors", default="local,ray", help="comma-separated: local, ray")
    ap.add_argument("--actors", type=int, default=2, help="Ray actors (and the local Ray cluster's CPUs), default 2")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight per role against the loopback server")
    ap.add_argument("--json", default=None, help="write the rows and checks as JSON to this file")
    args = ap.parse_args(argv)
    if not 0 < args.fraction <= 1:
        ap.error("--fraction: give a share above 0 and at most 1")
    backends, executors = args.backends.split(","), args.executors.split(",")
    started = time.perf_counter()

    import persona_exp

    size = max(2, round(PERSONAS * args.fraction))
    share = [f"population.size={size}", f"experiment.persona_split.test={max(1, round(TEST_PERSONAS * size / PERSONAS))}"]
    print(f"persona_exp {persona_exp.__version__} | python {platform.python_version()} | {os.cpu_count()} cores | "
          f"load average {os.getloadavg()[0]:.2f} | fraction {args.fraction:g} ({size} of {PERSONAS} personas)", flush=True)
    report = Report(Row)
    remote = None
    server = LoopbackServer() if "loopback" in backends else None
    try:
        if "ray" in executors:
            from persona_exp.execute.ray_executor import RayExecutor

            remote = RayExecutor(actors=args.actors, num_cpus=args.actors)
        with tempfile.TemporaryDirectory() as workdir:
            for backend in backends:
                overrides = list(share)
                if backend == "loopback":
                    for role in ("generator", "judge"):
                        overrides += [f"models.{role}.model=openai/bench", f"models.{role}.api_base={server.api_base}",
                                      f"models.{role}.concurrency={args.concurrency}"]
                t = time.perf_counter()
                models, plan = build(overrides, workdir)
                print(f"\n{backend}: plan of {len(plan):,} calls compiled in {time.perf_counter() - t:.1f} s "
                      f"({size} of the whole plan's {PERSONAS:,} personas; `persona-exp plan` counts that plan's calls)", flush=True)
                answers: dict[str, dict[str, str | None]] = {}
                base_rate = None
                for name in executors:
                    executor = remote if name == "ray" else None
                    out = run_once(models, plan, executor, workdir, f"{backend}-{name}", server if backend == "loopback" else None)
                    results, counts, wall, cpu, busy = out["results"], out["counts"], out["wall"], out["cpu"], out["busy"]
                    if backend == "loopback":
                        report.note(f"{backend}/{name}: the server answered {out['served']:,} requests "
                                    f"with {1000 * out['server_cpu'] / max(1, counts.calls):.2f} ms CPU per call")
                    report.check(f"{backend}/{name}: every call answered", counts.failed == 0 and counts.calls == len(plan),
                                 counts.line())
                    answers[name] = {k: r.text for k, r in results.items()}
                    rate = counts.calls / wall
                    ratio = None if base_rate is None else rate / base_rate
                    base_rate = rate if name == "local" else base_rate
                    row = report.row(backend, name, counts.calls, wall, rate, 1000 * cpu / counts.calls, 1000 * out["driver"] / counts.calls,
                                     None if busy is None else 1000 * busy / counts.calls, cpu / wall, ratio, None if ratio is None else ratio >= TARGET)
                    print(f"    {backend}/{name}: {row.calls:,} calls in {wall:.1f} s = {rate:,.0f} calls/s, {row.cpu_ms_per_call:.2f} ms CPU per call"
                          + (f", {ratio:.2f}x local" if ratio else ""), flush=True)
                if len(answers) > 1:
                    first, *others = answers.values()
                    report.check(f"{backend}: the executors give the same answers", all(o == first for o in others), f"{len(first):,} calls compared")
    finally:
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
    print()
    print_table(["backend", "executor", "calls", "wall s", "calls/s", "CPU ms/call", "driver ms/call", "machine ms/call", "cores used", f"x local (target {TARGET})"],
                [[r.backend, r.executor, f"{r.calls:,}", f"{r.wall_s:.1f}", f"{r.calls_per_s:,.0f}", f"{r.cpu_ms_per_call:.2f}", f"{r.driver_ms_per_call:.2f}",
                  "-" if r.machine_ms_per_call is None else f"{r.machine_ms_per_call:.2f}", f"{r.cores:.2f}",
                  "-" if r.ratio is None else f"{r.ratio:.2f} {'PASS' if r.passed else 'MISS'}"] for r in report.rows],
                right=frozenset({2, 3, 4, 5, 6, 7, 8}))
    notes = ["CPU ms/call counts the driver and, for Ray, its actors; machine ms/call is every process of the machine "
             "(the loopback server, Ray's daemons, other users) over the calls; cores used is the executing processes' CPU "
             "seconds per wall second. x local = (cores used, Ray / local) x (CPU per call, local / Ray): on a busy machine the "
             "first factor is what others leave, the second what Ray costs.",
             "Answers on the sim backend are simulated (sim/ models)."]
    return report.finish(notes=notes, env={"cores": os.cpu_count(), "fraction": args.fraction, "actors": args.actors},
                         elapsed=time.perf_counter() - started, json_path=args.json, other="-")


if __name__ == "__main__":
    sys.exit(main())
