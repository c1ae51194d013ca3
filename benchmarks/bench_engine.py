#!/usr/bin/env python
"""Speed and memory of persona_exp's plan compiler and runner, against baselines measured in one run.

Three cases, at the scale of the PERSONA paper (1,586 personas x 200 prompts):

1. Compiling the plan (``Plan.add`` with the leave-one-out experiment's
   rendered templates) against building the same number of plain Python dicts
   from the same rendered strings (no hashing, no merging). Each side runs in
   its own child process, which reports its wall time and its peak RSS
   (``resource.getrusage(RUSAGE_SELF).ru_maxrss``).
2. Rerunning that plan with every call cached (``sim/`` models), against the
   lookup floor: fetching every answer from the same SQLite file with plain
   ``sqlite3`` batched ``SELECT ... WHERE key IN (...)`` queries.
3. Sending calls to a local OpenAI-compatible server (127.0.0.1, 50 ms per
   request) with concurrency 64: ``Runner`` against a bare ``asyncio.gather``
   loop of ``litellm.acompletion`` calls under a semaphore of 64.

    python benchmarks/bench_engine.py              # full scale (a few minutes)
    python benchmarks/bench_engine.py --quick      # 1/10 of the personas, 300 calls to the server
    python benchmarks/bench_engine.py --json out.json

Exit status: 0 when every correctness check holds, even if a target is missed
(the table is a report); 1 when a check fails or a case raises.
"""

from __future__ import annotations

import os

# Before anything can import litellm: its bundled price table (no download), and
# a dummy key for the local server. Only this process and its children see them.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_TELEMETRY"] = "False"
os.environ["OPENAI_API_KEY"] = "sk-bench-dummy-key-not-secret"

import argparse
import asyncio
import gc
import json
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from _loopback import LoopbackServer
from _report import Report  # shared by the benchmarks
from _report import print_table as _print_table

try:
    import persona_exp
    from persona_exp.execute import sim
    from persona_exp.execute.cache import CallCache
    from persona_exp.execute.runner import Runner
    from persona_exp.steps import fill_template
    try:  # the leave-one-out experiment's default templates
        from persona_exp.steps.templates import ANSWER, CRITIQUE, JUDGE, REVISE
    except ImportError:
        from persona_exp.experiments.loo import ANSWER, CRITIQUE, JUDGE, REVISE
    from persona_exp.plan import Plan, slot
    from persona_exp.spec.models import ModelConfig
except ImportError as exc:  # pragma: no cover - reported, not handled
    sys.exit(f"cannot import persona_exp ({exc}); build and install the package first.")


SEED = 20240611
N_PERSONAS = 1586
N_PROMPTS = 200
LATENCY_S = 0.050
CONCURRENCY = 64
SQLITE_BATCH = 900  # same batch size as the cache's bulk lookup

GENERATOR = ModelConfig(model="sim/generator")
JUDGE_MODEL = ModelConfig(model="sim/judge")


# --------------------------------------------------------------------------- data


_RACES = ("White", "Black or African American", "Asian", "American Indian", "Two or more races", "Some other race", "Native Hawaiian")
_EDUCATION = (
    "Less than high school", "High school diploma", "Some college, no degree", "Associate's degree",
    "Bachelor's degree", "Master's degree", "Professional degree", "Doctorate",
)
_OCCUPATIONS = (
    "Registered nurse", "Truck driver", "Elementary school teacher", "Software developer", "Retail salesperson",
    "Construction laborer", "Accountant", "Cook", "Janitor", "Police officer", "Farmer", "Electrician",
    "Customer service representative", "Home health aide", "Lawyer", "Mechanic", "Cashier", "Pharmacist",
    "Warehouse worker", "Retired", "Student", "Not in labor force",
)
_MARITAL = ("Never married", "Married", "Divorced", "Separated", "Widowed")
_STATES = (
    "Alabama", "Alaska", "Arizona", "California", "Colorado", "Florida", "Georgia", "Illinois", "Iowa", "Maine",
    "Michigan", "Minnesota", "Montana", "New Mexico", "New York", "Ohio", "Oregon", "Pennsylvania", "Texas",
    "Utah", "Vermont", "Virginia", "Washington", "Wisconsin",
)
_RELIGIONS = ("Protestant", "Catholic", "Jewish", "Muslim", "Buddhist", "Hindu", "Unaffiliated", "Atheist", "Agnostic", "Mormon")
_POLITICS = ("Liberal", "Moderate", "Conservative", "Very liberal", "Very conservative", "Libertarian", "Apolitical")
_LEVELS = ("low", "average", "high")
_DOMAINS = ("extraversion", "agreeableness", "conscientiousness", "negative emotionality", "open-mindedness")
_QUIRKS = (
    "collects vintage postcards", "hums while cooking", "always arrives early", "keeps a detailed budget",
    "talks to houseplants", "reads the last page first", "never uses elevators", "tracks the weather daily",
)


def make_personas(n: int, seed: int = SEED) -> list[str]:
    """``n`` distinct personas, each as 11 ``Key: value`` lines (about 450 characters)."""
    import random

    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        lines = [
            f"Age: {rng.randint(18, 90)}",
            f"Sex: {rng.choice(('Male', 'Female'))}",
            f"Race: {rng.choice(_RACES)}",
            f"Education: {rng.choice(_EDUCATION)}",
            f"Occupation: {rng.choice(_OCCUPATIONS)}",
            f"Marital status: {rng.choice(_MARITAL)}",
            f"Household income: ${rng.randrange(8_000, 250_000, 500):,}",
            f"State: {rng.choice(_STATES)}",
            f"Religion: {rng.choice(_RELIGIONS)}",
            f"Political views: {rng.choice(_POLITICS)}",
            "Big Five: " + ", ".join(f"{rng.choice(_LEVELS)} {d}" for d in _DOMAINS),
            f"Defining quirk: {rng.choice(_QUIRKS)}",
        ]
        text = "\n".join(lines)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def make_prompts(n: int) -> list[str]:
    """The package's default prompt set, topped up with reworded copies to ``n`` distinct questions."""
    from importlib import resources

    texts: list[str] = []
    try:
        raw = resources.files("persona_exp.prompts").joinpath("default_prompts.jsonl").read_text(encoding="utf-8")
        texts = [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]
    except (FileNotFoundError, ModuleNotFoundError, KeyError, json.JSONDecodeError):
        texts = []
    if not texts:
        texts = [f"Is it better to save money early in life or to spend it on experiences while young? (variant {i})" for i in range(n)]
    out: list[str] = []
    i = 0
    while len(out) < n:
        base = texts[i % len(texts)]
        round_ = i // len(texts)
        out.append(base if round_ == 0 else f"In a few sentences, and thinking of your own situation: {base} (version {round_ + 1})")
        i += 1
    return out


_TAILORED = (
    "Money is a real constraint, so the cheaper path deserves weight.",
    "Family obligations can reasonably come before abstract principles.",
    "A cautious first step lets you change course later.",
    "Local conditions where you live may change the answer.",
    "Time is limited, so choose what fits your schedule.",
)


def flip(pi: int, qi: int) -> bool:
    """A cheap deterministic coin for which answer the judge sees as A (stands in for seeded_flip)."""
    return (((pi * 2654435761) ^ (qi * 40503)) >> 7) & 1 == 1


# --------------------------------------------------------------------------- the two compile loops


def compile_plan(personas: list[str], questions: list[str]) -> Plan:
    """The leave-one-out shape: per (persona, question) a base answer, a critique, a revision and a judgment.

    The templates are rendered exactly as ``steps.add_call`` does
    (values and slots through ``fill_template``); the base answer is added once
    per persona, so the plan merges it into one call per question.
    """
    gen, jm = GENERATOR.model, JUDGE_MODEL.model
    gs, js = GENERATOR.sampling(), JUDGE_MODEL.sampling()
    fill = fill_template
    s_completion, s_critique, s_a, s_b = slot("completion"), slot("critique"), slot("response_a"), slot("response_b")
    plan = Plan()
    for pi, persona in enumerate(personas):
        for qi, q in enumerate(questions):
            base = plan.add("base_answer", "generator", gen, [{"role": "user", "content": fill(ANSWER, {"question": q})}], gs)
            critique = plan.add(
                "critique", "generator", gen,
                [{"role": "user", "content": fill(CRITIQUE, {"question": q, "persona": persona, "completion": s_completion})}],
                gs, inputs={"completion": base},
            )
            revised = plan.add(
                "revise", "generator", gen,
                [{"role": "user", "content": fill(REVISE, {"question": q, "completion": s_completion, "critique": s_critique})}],
                gs, inputs={"completion": base, "critique": critique}, parser="revised",
            )
            order = {"response_a": revised, "response_b": base} if flip(pi, qi) else {"response_a": base, "response_b": revised}
            plan.add(
                "judge", "judge", jm,
                [{"role": "user", "content": fill(JUDGE, {"question": q, "persona": persona, "response_a": s_a, "response_b": s_b})}],
                js, inputs=order, parser="choice",
            )
    return plan


def compile_dicts(personas: list[str], questions: list[str]) -> list[dict[str, Any]]:
    """The same loop and the same rendered strings, one plain dict per call: no keys, no hashing, no merging."""
    gen, jm = GENERATOR.model, JUDGE_MODEL.model
    gs, js = GENERATOR.sampling(), JUDGE_MODEL.sampling()
    fill = fill_template
    s_completion, s_critique, s_a, s_b = slot("completion"), slot("critique"), slot("response_a"), slot("response_b")
    out: list[dict[str, Any]] = []
    add = out.append
    for pi, persona in enumerate(personas):
        for qi, q in enumerate(questions):
            base = {"step": "base_answer", "role": "generator", "model": gen, "sampling": gs, "parser": None, "inputs": {},
                    "messages": ({"role": "user", "content": fill(ANSWER, {"question": q})},)}
            add(base)
            critique = {"step": "critique", "role": "generator", "model": gen, "sampling": gs, "parser": None, "inputs": {"completion": base},
                        "messages": ({"role": "user", "content": fill(CRITIQUE, {"question": q, "persona": persona, "completion": s_completion})},)}
            add(critique)
            revised = {"step": "revise", "role": "generator", "model": gen, "sampling": gs, "parser": "revised",
                       "inputs": {"completion": base, "critique": critique},
                       "messages": ({"role": "user", "content": fill(REVISE, {"question": q, "completion": s_completion, "critique": s_critique})},)}
            add(revised)
            order = {"response_a": revised, "response_b": base} if flip(pi, qi) else {"response_a": base, "response_b": revised}
            add({"step": "judge", "role": "judge", "model": jm, "sampling": js, "parser": "choice", "inputs": order,
                 "messages": ({"role": "user", "content": fill(JUDGE, {"question": q, "persona": persona, "response_a": s_a, "response_b": s_b})},)})
    return out


# --------------------------------------------------------------------------- child processes (cases 1 and 2)


def _rss_bytes() -> int:
    """Peak RSS of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def child_compile(mode: str, n_personas: int, n_prompts: int) -> dict[str, Any]:
    personas, questions = make_personas(n_personas), make_prompts(n_prompts)
    gc.collect()
    rss_before = _rss_bytes()
    t0 = time.perf_counter()
    built = compile_plan(personas, questions) if mode == "plan" else compile_dicts(personas, questions)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": seconds, "peak_rss": _rss_bytes(), "rss_before": rss_before}
    if mode == "plan":
        out.update(calls=len(built), requested=dict(built.requested), steps=list(built.steps), plan_key=built.plan_key())
        # What steps.add_call adds on top: it calls ModelConfig.sampling() for every call.
        n = 20_000
        t1 = time.perf_counter()
        for _ in range(n):
            GENERATOR.sampling()
        out["sampling_us"] = (time.perf_counter() - t1) / n * 1e6
    else:
        out.update(dicts=len(built))
    return out


def _cached_answer(call, base_texts: dict[str, str]) -> tuple[str, str]:
    """A realistic cached answer for a call of the plan (the shape sim/ models give), and the model name."""
    content = call.messages[0]["content"]
    if call.step == "base_answer":
        text = sim.base_answer(content)
        base_texts[call.key] = text
        return text, GENERATOR.model
    if call.step == "critique":
        persona = content.split("DEMOGRAPHIC:\n", 1)[1].split("\n\n", 1)[0]
        return f"EVALUATION: The answer is generic for this reader:\n{persona}\nSUGGESTIONS: Tie it to their situation.\nDONE", GENERATOR.model
    if call.step == "revise":
        extra = _TAILORED[int(call.key[:8], 16) % len(_TAILORED)]
        return f"REVISED PREFERENCE: {base_texts[call.inputs['completion']]} {extra}\nDONE", GENERATOR.model
    return ("A" if int(call.key[-1], 16) % 2 else "B"), JUDGE_MODEL.model


def child_rerun(n_personas: int, n_prompts: int, workdir: str) -> dict[str, Any]:
    personas, questions = make_personas(n_personas), make_prompts(n_prompts)
    t0 = time.perf_counter()
    plan = compile_plan(personas, questions)
    out: dict[str, Any] = {"compile_seconds": time.perf_counter() - t0, "calls": len(plan), "plan_key": plan.plan_key()}

    path = os.path.join(workdir, "cache.sqlite")
    base_texts: dict[str, str] = {}
    t0 = time.perf_counter()
    with CallCache(path) as cache:  # every put commits on its own (autocommit), as the runner's puts do
        for c in plan.calls.values():
            text, model = _cached_answer(c, base_texts)
            cache.put(c.key, text, {"prompt_tokens": len(c.messages[0]["content"].split()), "completion_tokens": len(text.split()), "cost": 0.0}, model)
    out["fill_seconds"] = time.perf_counter() - t0
    out["cache_bytes"] = sum(os.path.getsize(os.path.join(workdir, f)) for f in os.listdir(workdir))
    del base_texts

    # Baseline: the lookup floor, every answer fetched once with plain sqlite3.
    gc.collect()
    t0 = time.perf_counter()
    db = sqlite3.connect(path)
    found: dict[str, tuple[str, Any]] = {}
    keys = list(plan.calls)
    for start in range(0, len(keys), SQLITE_BATCH):
        batch = keys[start : start + SQLITE_BATCH]
        for k, response, usage in db.execute(f"SELECT key, response, usage FROM calls WHERE key IN ({','.join('?' * len(batch))})", batch):
            found[k] = (response, json.loads(usage))
    db.close()
    out["floor_seconds"] = time.perf_counter() - t0
    out["floor_found"] = len(found)
    del found, keys
    gc.collect()

    # Ours: the runner, end to end, on the fully cached plan.
    with CallCache(path) as cache:
        t0 = time.perf_counter()
        results, counts = Runner({"generator": GENERATOR, "judge": JUDGE_MODEL}, cache, progress=False).run(plan)
        out["run_seconds"] = time.perf_counter() - t0
    out["counts"] = {k: v for k, v in counts.as_dict().items() if k != "by_step"}
    out["by_step"] = counts.by_step
    out["results"] = len(results)
    out["bad_choices"] = sum(1 for r in results.values() if r.step == "judge" and r.value not in ("A", "B"))
    out["bad_revisions"] = sum(1 for r in results.values() if r.step == "revise" and not (isinstance(r.value, str) and r.value and "REVISED" not in r.value))
    out["peak_rss"] = _rss_bytes()
    return out


def run_child(args: list[str], timeout: float = 3600) -> dict[str, Any]:
    """Runs this script as a child process and returns the JSON it prints on its last line."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# --------------------------------------------------------------------------- local server (case 3)


def throughput_prompts(n: int, tag: str) -> list[list[dict[str, str]]]:
    """``n`` distinct judge prompts (no cache can answer them)."""
    personas = make_personas(min(n, 200), seed=SEED + 1)
    q = "Should people choose a career mainly for the income it pays or for how meaningful they find it?"
    return [
        [{"role": "user", "content": fill_template(JUDGE, {"question": f"{q} [{tag} {i}]", "persona": personas[i % len(personas)],
                                                              "response_a": sim.base_answer(f"{tag}{i}"), "response_b": sim.base_answer(f"{tag}{i}b")})}]
        for i in range(n)
    ]


def bare_loop(lt: Any, cfg: ModelConfig, prompts: list[list[dict[str, str]]]) -> tuple[float, float, list[str]]:
    """The baseline: asyncio.gather over litellm.acompletion under a semaphore, same request fields as the runner."""
    sampling = cfg.sampling()

    async def main() -> list[str]:
        sem = asyncio.Semaphore(cfg.concurrency)

        async def one(messages: list[dict[str, str]]) -> str:
            async with sem:
                resp = await lt.acompletion(model=cfg.model, messages=messages, api_base=cfg.api_base, timeout=cfg.timeout,
                                            num_retries=0, max_retries=0, **sampling)
            return resp.choices[0].message.content or ""

        return await asyncio.gather(*(one(m) for m in prompts))

    c0, t0 = time.process_time(), time.perf_counter()
    texts = asyncio.run(main())
    return time.perf_counter() - t0, time.process_time() - c0, texts


def runner_loop(cfg: ModelConfig, prompts: list[list[dict[str, str]]], workdir: str) -> tuple[float, float, Any, dict[str, Any]]:
    """Ours: a one-step plan of the same calls, run by Runner with a fresh (empty) cache."""
    plan = Plan()
    sampling = cfg.sampling()
    for m in prompts:
        plan.add("judge", "judge", cfg.model, m, sampling, parser="choice")
    fd, path = tempfile.mkstemp(suffix=".sqlite", dir=workdir)
    os.close(fd)
    os.remove(path)
    with CallCache(path) as cache:
        c0, t0 = time.process_time(), time.perf_counter()
        results, counts = Runner({"judge": cfg}, cache, progress=False).run(plan)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return seconds, cpu, counts, results


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    case: str
    unit: str  # "s", "bytes" or "calls/s"
    ours: float | None
    baseline: str
    baseline_value: float | None
    target_kind: str  # "max" (ours <= target) or "min_ratio" (ours/base >= target)
    target: float
    note: str = ""
    ratio: float | None = None
    passed: bool | None = None

    def __post_init__(self) -> None:
        if self.ours is not None and self.baseline_value:
            self.ratio = self.ours / self.baseline_value
        if self.ours is None:
            return
        if self.target_kind == "max":
            self.passed = self.ours <= self.target
        elif self.target_kind == "min_ratio" and self.ratio is not None:
            self.passed = self.ratio >= self.target

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "-"
        if self.unit == "s":
            return f"{value:.2f} s" if value >= 1 else f"{value * 1e3:.0f} ms"
        if self.unit == "bytes":
            return f"{value / 1e9:.2f} GB" if value >= 1e9 else f"{value / 1e6:.0f} MB"
        return f"{value:,.0f} calls/s"

    def ratio_text(self) -> str:
        return "-" if self.ratio is None else f"ours/base {self.ratio:.2f}x"

    def target_text(self) -> str:
        if self.target_kind == "max":
            return f"ours <= {self.fmt(self.target)}"
        return f"ours >= {self.target:g}x base"

    def result_text(self) -> str:
        return "SKIP" if self.passed is None else ("PASS" if self.passed else "MISS")


def gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


# --------------------------------------------------------------------------- cases


def bench_compile(rep: Report, n_personas: int, n_prompts: int, scale: float) -> dict[str, Any]:
    pairs = n_personas * n_prompts
    unique = n_prompts + 3 * pairs
    print(f"\n[compile] {n_personas} personas x {n_prompts} prompts: {4 * pairs:,} Plan.add calls, {unique:,} unique calls", flush=True)
    ours = run_child(["--_child", "plan", "--personas", str(n_personas), "--prompts", str(n_prompts)])
    base = run_child(["--_child", "dicts", "--personas", str(n_personas), "--prompts", str(n_prompts)])
    print(f"    ours {ours['seconds']:.2f} s, peak RSS {gb(ours['peak_rss'])} (before the loop {gb(ours['rss_before'])}); "
          f"plain dicts {base['seconds']:.2f} s, peak RSS {gb(base['peak_rss'])}", flush=True)
    label = f"compile {n_personas}x{n_prompts} ({unique:,} calls)"
    rep.row(f"{label}: time", "s", ours["seconds"], "same loop, plain dicts (no hashing)", base["seconds"], "max", 30.0 * scale)
    rep.row(f"{label}: peak RSS", "bytes", ours["peak_rss"], "plain dicts, peak RSS", base["peak_rss"], "max", 4e9 * scale)
    expected_requested = {"base_answer": pairs, "critique": pairs, "revise": pairs, "judge": pairs}
    rep.check("plan has the expected unique calls", ours["calls"] == unique, f"{ours['calls']:,} unique (expected {unique:,})")
    rep.check("plan counts every requested call", ours["requested"] == expected_requested,
              f"requested {ours['requested']} (expected {pairs:,} per step)")
    rep.check("baseline built one dict per Plan.add", base["dicts"] == 4 * pairs, f"{base['dicts']:,} dicts")
    rep.notes.append(
        f"compile: {4 * pairs:,} Plan.add calls ({4 * pairs / ours['seconds']:,.0f}/s, {ours['seconds'] / (4 * pairs) * 1e6:.1f} us each); "
        f"the base answer is added once per persona and merged to {n_prompts} calls; no second judge call per pair "
        f"(4 adds per pair is the issue's 'about 1.3 million calls', {unique:,} of them unique)"
    )
    rep.notes.append(
        f"compile: sampling settings are computed once per role, as steps.add_call does "
        f"(ModelConfig.sampling() costs {ours['sampling_us']:.1f} us for a sim/ model)"
    )
    rep.notes.append(
        f"memory: peak RSS of a child process (resource.getrusage ru_maxrss) that only builds the data; "
        f"includes {gb(ours['rss_before'])} (ours) / {gb(base['rss_before'])} (dicts) of interpreter, imports and inputs before the loop"
    )
    return ours


def bench_rerun(rep: Report, n_personas: int, n_prompts: int, scale: float, compiled: dict[str, Any] | None) -> None:
    print(f"\n[cached rerun] {n_personas}x{n_prompts} plan with sim/ models, every call cached", flush=True)
    workdir = tempfile.mkdtemp(prefix="bench-engine-")
    try:
        res = run_child(["--_child", "rerun", "--personas", str(n_personas), "--prompts", str(n_prompts), "--workdir", workdir])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    n = res["calls"]
    print(f"    plan compiled again in {res['compile_seconds']:.2f} s; cache filled with {n:,} CallCache.put calls in "
          f"{res['fill_seconds']:.1f} s ({res['fill_seconds'] / n * 1e6:.0f} us each, {res['cache_bytes'] / 1e6:.0f} MB on disk)", flush=True)
    print(f"    runner {res['run_seconds']:.2f} s; sqlite3 lookup floor {res['floor_seconds']:.2f} s; "
          f"peak RSS of the rerun process {gb(res['peak_rss'])}", flush=True)
    rep.row(f"cached rerun ({n:,} calls)", "s", res["run_seconds"], "sqlite3 batched SELECT of every key", res["floor_seconds"], "max", 60.0 * scale)
    c = res["counts"]
    rep.check("rerun: every call cached, none run", c["calls"] == n and c["cached"] == n and c["ran"] == 0 and res["results"] == n,
              f"calls {c['calls']:,}, cached {c['cached']:,}, ran {c['ran']}, results {res['results']:,}")
    rep.check("rerun: no failures, parse failures, skips or re-asks",
              c["failed"] == 0 and c["reasks"] == 0,  # failed counts every reason: transport, parse, skipped...
              f"failed {c['failed']} {c['failures'] or ''}, reasks {c['reasks']}")
    rep.check("rerun: judge values are A/B and revisions parsed", res["bad_choices"] == 0 and res["bad_revisions"] == 0,
              f"bad choices {res['bad_choices']}, bad revisions {res['bad_revisions']}")
    rep.check("rerun: sqlite3 floor found every key", res["floor_found"] == n, f"{res['floor_found']:,} of {n:,}")
    if compiled is not None:
        rep.check("plan key identical across processes", compiled["plan_key"] == res["plan_key"], f"{compiled['plan_key']} vs {res['plan_key']}")
    rep.notes.append(
        f"cached rerun: cache filled directly (one CallCache.put per call, each committed on its own: "
        f"{res['fill_seconds']:.1f} s, {res['fill_seconds'] / n * 1e6:.0f} us per put), not by running the sim models; "
        f"Runner(progress=False).run(plan) timed end to end; peak RSS of that process {gb(res['peak_rss'])}"
    )


def bench_throughput(rep: Report, n_calls: int, repeats: int) -> None:
    ideal = CONCURRENCY / LATENCY_S
    print(f"\n[throughput] {n_calls} calls to a local server (127.0.0.1, {LATENCY_S * 1e3:.0f} ms per request), "
          f"concurrency {CONCURRENCY} (ideal {ideal:,.0f} calls/s)", flush=True)
    from persona_exp.execute.llm import litellm

    t0 = time.perf_counter()
    lt = litellm()
    print(f"    litellm imported in {time.perf_counter() - t0:.1f} s", flush=True)
    server = LoopbackServer(LATENCY_S)
    workdir = tempfile.mkdtemp(prefix="bench-engine-")
    try:
        cfg = ModelConfig(model="openai/bench", api_base=server.api_base, concurrency=CONCURRENCY)
        sent = 0
        # Warm-up: client creation, first connections, lazy imports on both paths.
        warm = throughput_prompts(CONCURRENCY, "warm-bare")
        bare_loop(lt, cfg, warm)
        runner_loop(cfg, throughput_prompts(CONCURRENCY, "warm-ours"), workdir)
        sent += 2 * CONCURRENCY
        best_bare = best_ours = float("inf")
        cpu_bare: list[float] = []
        cpu_ours: list[float] = []
        all_bare_ok = all_ours_ok = True
        for k in range(repeats):
            prompts_b = throughput_prompts(n_calls, f"bare{k}")
            prompts_o = throughput_prompts(n_calls, f"ours{k}")
            gc.collect()
            t_b, c_b, texts = bare_loop(lt, cfg, prompts_b)
            ok_b = len(texts) == n_calls and all(t == "A" for t in texts)
            gc.collect()
            t_o, c_o, counts, results = runner_loop(cfg, prompts_o, workdir)
            ok_o = (counts.calls == n_calls and counts.ran == n_calls and counts.cached == 0 and counts.failed == 0
                    and counts.parse_failed == 0 and all(r.ok and r.value == "A" for r in results.values()))
            sent += 2 * n_calls
            cpu_bare.append(c_b / n_calls)
            cpu_ours.append(c_o / n_calls)
            print(f"    repeat {k + 1}: bare loop {n_calls / t_b:,.0f} calls/s ({t_b:.2f} s, {c_b / n_calls * 1e3:.2f} ms CPU per call), "
                  f"runner {n_calls / t_o:,.0f} calls/s ({t_o:.2f} s, {c_o / n_calls * 1e3:.2f} ms CPU per call)"
                  + ("" if ok_o else f"; runner counts {counts.as_dict()}"), flush=True)
            all_bare_ok &= ok_b
            all_ours_ok &= ok_o
            best_bare, best_ours = min(best_bare, t_b), min(best_ours, t_o)
        served = server.served()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rep.row(f"throughput, {n_calls} calls, 50 ms, conc {CONCURRENCY}", "calls/s", n_calls / best_ours,
            f"asyncio.gather + litellm.acompletion, sem {CONCURRENCY}", n_calls / best_bare, "min_ratio", 0.8)
    rep.check("throughput: bare loop completed every call", all_bare_ok, f"{repeats} x {n_calls} calls answered 'A'")
    rep.check("throughput: runner completed every call", all_ours_ok, f"{repeats} x {n_calls} calls ran, none cached or failed, all parsed 'A'")
    rep.check("throughput: server answered exactly the calls sent (no retries)", served == sent, f"served {served:,}, sent {sent:,}")
    rep.check("throughput: server stopped", server.proc.poll() is not None, f"exit code {server.proc.poll()}")
    rep.notes.append(
        f"throughput: best of {repeats} interleaved repeats per side after a {CONCURRENCY}-call warm-up each; both send the same request "
        f"fields (temperature 0, timeout, no retries); the server runs in its own process; ideal rate {ideal:,.0f} calls/s "
        f"(concurrency / latency); the runner writes each answer to a fresh SQLite cache"
    )
    rep.notes.append(
        f"throughput: client CPU per call (time.process_time of this process, server excluded), lowest of the repeats: "
        f"bare loop {min(cpu_bare) * 1e3:.2f} ms, runner {min(cpu_ours) * 1e3:.2f} ms; when both sides are CPU-bound the "
        f"calls/s ratio follows the inverse CPU ratio ({min(cpu_bare) / min(cpu_ours):.2f}x)"
    )


# --------------------------------------------------------------------------- report


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(args: argparse.Namespace, n_personas: int, n_calls: int) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "persona_exp": getattr(persona_exp, "__version__", "unknown"),
        "litellm": _version("litellm"),
        "aiohttp": _version("aiohttp"),
        "openai": _version("openai"),
        "httpx": _version("httpx"),
        "xxhash": _version("xxhash"),
        "pydantic": _version("pydantic"),
        "sqlite": sqlite3.sqlite_version,
        "quick": bool(args.quick),
        "personas": n_personas,
        "prompts": N_PROMPTS,
        "throughput_calls": n_calls,
        "repeats": args.repeats,
    }
    if hasattr(os, "getloadavg"):
        env["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            env["mem_total_gb"] = round(int(fh.readline().split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    return env


def print_env(env: dict[str, Any]) -> None:
    print("persona_exp engine benchmark")
    print(f"  persona_exp {env['persona_exp']} | litellm {env['litellm']} | aiohttp {env['aiohttp']} | openai {env['openai']} | "
          f"httpx {env['httpx']} | xxhash {env['xxhash']} | pydantic {env['pydantic']} | sqlite {env['sqlite']}")
    print(f"  python {env['python']} on {env['platform']}")
    print(f"  cores: {env['cpu_count']} (usable by this process: {env['usable_cores']})" +
          (f", memory {env['mem_total_gb']} GB" if "mem_total_gb" in env else ""))
    if "loadavg_at_start" in env:
        one, five, fifteen = env["loadavg_at_start"]
        warn = "  (busy machine: timings may be noisy)" if one > 1.5 else ""
        print(f"  load average at start: {one} / {five} / {fifteen} (1 / 5 / 15 min){warn}")
    print(f"  scale: {env['personas']} personas x {env['prompts']} prompts; {env['throughput_calls']} calls to the local server, "
          f"{env['repeats']} repeats" + (" (--quick)" if env["quick"] else ""))


def print_table(rows: list[Row]) -> None:
    headers = ("case", "ours", "baseline", "baseline value", "ratio", "target", "result")
    _print_table(headers, [(r.case, r.fmt(r.ours), r.baseline, r.fmt(r.baseline_value), r.ratio_text(), r.target_text(), r.result_text()) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the personas and 300 calls to the local server (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="write the environment, rows, checks and notes as JSON")
    parser.add_argument("--calls", type=int, default=None, help="calls per throughput run (default 2000; --quick 300)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved throughput repeats per side (default 3)")
    parser.add_argument("--_child", choices=("plan", "dicts", "rerun"), help=argparse.SUPPRESS)
    parser.add_argument("--personas", type=int, default=N_PERSONAS, help=argparse.SUPPRESS)
    parser.add_argument("--prompts", type=int, default=N_PROMPTS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        if args._child == "rerun":
            out = child_rerun(args.personas, args.prompts, args.workdir)
        else:
            out = child_compile(args._child, args.personas, args.prompts)
        print("RESULT " + json.dumps(out), flush=True)
        return 0

    scale = 0.1 if args.quick else 1.0
    n_personas = max(2, round(N_PERSONAS * scale))
    n_calls = args.calls or (300 if args.quick else 2000)
    repeats = max(1, args.repeats)
    args.repeats = repeats
    env = environment(args, n_personas, n_calls)
    print_env(env)

    # Time and memory targets are stated for full scale; --quick scales them with the plan size.
    plan_scale = n_personas / N_PERSONAS
    rep = Report(Row)
    t_start = time.perf_counter()
    compiled: dict[str, Any] | None = None

    def case_compile() -> None:
        nonlocal compiled
        compiled = bench_compile(rep, n_personas, N_PROMPTS, plan_scale)

    cases: list[tuple[str, Callable[[], None]]] = [
        ("compile", case_compile),
        ("cached rerun", lambda: bench_rerun(rep, n_personas, N_PROMPTS, plan_scale, compiled)),
        ("throughput", lambda: bench_throughput(rep, n_calls, repeats)),
    ]
    for name, run in cases:
        if hasattr(os, "getloadavg"):
            print(f"\n  (load average before {name}: {os.getloadavg()[0]:.2f})", end="", flush=True)
        try:
            run()
        except Exception as exc:  # one broken case must not hide the others
            rep.check(f"{name} ran", False, f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - t_start

    print("\n")
    print_table(rep.rows)
    print()
    notes = list(rep.notes)
    if args.quick:
        notes.append(f"--quick: {n_personas} of {N_PERSONAS} personas; the compile and rerun targets (time and memory) are scaled "
                     f"by {plan_scale:.3f}, so fixed costs weigh more and a quick MISS means little")
    notes.append("ratio: ours/base; for times and memory smaller is better, for calls/s larger is better")
    return rep.finish(notes=notes, env=env, elapsed=elapsed, json_path=args.json)


if __name__ == "__main__":
    sys.exit(main())
