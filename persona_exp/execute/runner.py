"""Running a plan: cached answers first, then the misses, step by step.

Cache hits are looked up in bulk and never go through litellm. Misses run
concurrently under each role's limits; every finished call is committed to the
cache at once, so a killed run loses nothing. A call whose input failed is
skipped (and retried by the next run, like the failure itself). Only answers
are cached: never an error, an empty answer, or one cut short that a parser needs.

An unparseable answer is re-asked with the reason. Re-asks are cached under
their attempt number, so a rerun replays the ones it has and then sends up to
``max_reasks`` new ones: a parse failure is asked again, not served from the
cache as if it were an answer. Where the parser declares a lenient reading and
the role allows it, an answer still unparseable after the re-asks is read that
way and counted as lenient.

Two processes on one cache never send the same call twice: before sending a
miss of a model that is not simulated, the runner leases its key in the cache
(see execute.cache). A call another process holds a live lease on is put
aside while the others run, then looked for again every ``LEASE_POLL`` seconds:
its answer, once there, is taken as cached; when the lease lapses or is given
back without an answer (that call failed there), this process sends it. Calls
of simulated roles take no lease: the simulator is local, free and fast, and a
lease would cost more than answering twice. A scratch cache (``:memory:``) has
nothing to share and takes none either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from persona_exp.errors import ExecutionError, PersonaExpError
from persona_exp.execute.cache import CachedCall, CallCache
from persona_exp.execute.llm import Caller, CallFailed
from persona_exp.execute.parsers import ParseFailure, lenient, parse, response_format
from persona_exp.execute.progress import Progress
from persona_exp.plan.keys import node_key
from persona_exp.plan.plan import Call, Plan
from persona_exp.spec.models import ModelConfig


@dataclass(slots=True)
class CallResult:
    key: str
    step: str
    role: str
    status: str  # ok | failed | parse_failed | skipped
    cached: bool
    text: str | None = None
    value: Any = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    error: str | None = None
    reasks: int = 0
    reason: str | None = None  # why it failed: one of REASONS (None when ok)
    lenient: bool = False  # read by the parser's declared lenient reading
    attempts: int = 0  # requests this run sent for it (retries and re-asks included); 0 when the cache answered it
    latency_ms: float | None = None  # those requests' wall time, summed (see llm.Meter); cached: what it took when answered
    deployment: str | None = None  # which of the role's deployments answered (see llm.make_router); cached: the one that did then

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def output(self) -> str:
        """What fills a later call's slot: the parsed value when it is text."""
        return self.value if isinstance(self.value, str) else (self.text or "")


# Why a call has no answer, in the order they are listed, with what each means.
REASONS = {
    "auth": "the provider refused the credentials",
    "transport": "network or server errors outlasted the retries",
    "rejected": "the provider refused the request",
    "empty": "empty answers",
    "truncated": "answers cut at max_tokens",
    "parse": "failed to parse",
    "skipped": "not sent: an input call failed",
    "budget": "not sent: the --max-cost budget was reached",
}
_STATUS_REASON = {"failed": "transport", "parse_failed": "parse", "skipped": "skipped"}


def reason_of(r: "CallResult") -> str | None:
    return None if r.ok else (r.reason or _STATUS_REASON.get(r.status, "transport"))


@dataclass
class RunCounts:
    """One definition everywhere: ``calls = cached + ran``, where a call is
    cached when the cache answered it without a request this run, and ran
    otherwise (sent, or not sent because an input failed). ``failed`` counts the
    calls without an answer, whichever way they went, and ``failures`` splits it
    by reason (see REASONS). ``lenient`` answers are answers (not failed)."""

    calls: int = 0
    cached: int = 0
    ran: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    lenient: int = 0
    reasks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_unknown: int = 0
    by_step: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, r: "CallResult") -> None:
        s = self.by_step.setdefault(r.step, {"calls": 0, "cached": 0, "ran": 0, "failed": 0, "lenient": 0, "failures": ""})
        why = reason_of(r)
        self.calls += 1
        self.cached += r.cached
        self.ran += not r.cached
        self.lenient += r.lenient
        self.reasks += r.reasks
        for k, v in (("calls", 1), ("cached", r.cached), ("ran", not r.cached), ("failed", why is not None), ("lenient", r.lenient)):
            s[k] += int(v)
        if why is not None:
            self.failed += 1
            self.failures[why] = self.failures.get(why, 0) + 1
            step = dict(_reason_counts(s["failures"]))
            step[why] = step.get(why, 0) + 1
            s["failures"] = ", ".join(f"{k} {step[k]}" for k in REASONS if k in step)
        if not r.cached:
            self.prompt_tokens += r.prompt_tokens
            self.completion_tokens += r.completion_tokens
            if r.cost is None and r.prompt_tokens + r.completion_tokens:
                self.cost_unknown += 1
            self.cost += r.cost or 0.0

    @property
    def parse_failed(self) -> int:
        return self.failures.get("parse", 0)

    @property
    def skipped(self) -> int:
        return self.failures.get("skipped", 0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return counts_line(self.as_dict())


def _reason_counts(text: str) -> list[tuple[str, int]]:
    return [(k, int(n)) for k, n in (part.rsplit(" ", 1) for part in text.split(", ") if part)]


def failures_of(c: Mapping[str, Any]) -> tuple[int, dict[str, int]]:
    """Total failed and by reason, from the counts of a run (this version's,
    or a manifest written before failures had reasons)."""
    if "failures" in c:
        return int(c.get("failed", 0)), dict(c["failures"])
    old = {"transport": int(c.get("failed", 0) or 0), "parse": int(c.get("parse_failed", 0) or 0), "skipped": int(c.get("skipped", 0) or 0)}
    return sum(old.values()), {k: v for k, v in old.items() if v}


def counts_line(c: Mapping[str, Any]) -> str:
    """``N calls: C cached, R run, F failed (reason n, ...)`` for the summary
    line, ``show`` and the report alike."""
    failed, why = failures_of(c)
    line = f"{c.get('calls', 0)} calls: {c.get('cached', 0)} cached, {c.get('ran', 0)} run, {failed} failed"
    if why:
        line += " (" + ", ".join(f"{k} {why[k]}" for k in sorted(why, key=lambda k: list(REASONS).index(k) if k in REASONS else 99)) + ")"
    if c.get("lenient"):
        line += f"; {c['lenient']} answers read leniently"
    return line


def explain(c: Mapping[str, Any]) -> list[str]:
    """Per step, what failed and why, and what was read leniently: the lines
    that say why a statistic has fewer items than planned, or none."""
    out = []
    for step, s in (c.get("by_step") or {}).items():
        reasons = _reason_counts(s.get("failures", "")) if isinstance(s.get("failures"), str) else []
        if reasons:
            out.append(f"{step}: {s.get('failed', 0)} of {s.get('calls', 0)} calls have no answer (" + "; ".join(f"{n} {REASONS.get(k, k)}" for k, n in reasons) + ")")
        if s.get("lenient"):
            out.append(f"{step}: {s['lenient']} of {s.get('calls', 0)} answers lacked the format's markers and were read leniently (the whole answer)")
    return out


LEASE_POLL = 0.5  # seconds between looks at the calls another process is sending


def default_lease_seconds(models: Mapping[str, ModelConfig]) -> float:
    """How long a lease lasts unless renewed: twice the longest request
    timeout of the roles that lease, and at least a minute. A runner renews its
    leases every quarter of that, so a live process keeps them through retries
    and Retry-After pauses however long; the length only counts when renewals
    stop: a killed process's calls are free again after it, and a renewal late
    by a slow request or a cache locked for its 60 s timeout does not lose one."""
    timeouts = [cfg.timeout for cfg in models.values() if not cfg.is_sim]
    return max(60.0, 2.0 * max(timeouts, default=0.0))


class Runner:
    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        cache: CallCache,
        *,
        max_reasks: int = 2,
        progress: bool = True,
        backoff_base: float = 1.0,
        budget: Any = None,
        lease_seconds: float | None = None,
        executor: Any = None,
    ):
        self.lease_seconds = lease_seconds or default_lease_seconds(models)
        self.budget = budget  # execute.budget.Budget: stop sending once spending reaches --max-cost
        self.backoff_base = backoff_base
        self._out: tuple[dict[str, CallResult], RunCounts] | None = None
        self.models = dict(models)
        self.cache = cache
        self.max_reasks = max_reasks
        self.show_progress = progress
        self.executor = executor  # None: calls are sent from this process; else e.g. execute.ray_executor.RayExecutor (its actors send them)

    def run(self, plan: Plan, known: Mapping[str, CallResult] | None = None) -> tuple[dict[str, CallResult], RunCounts]:
        """Runs the plan; calls in ``known`` (answered by an earlier stage of
        the same run) are taken as they are and counted as they were then."""
        for c in plan.calls.values():
            if c.role not in self.models:
                raise ExecutionError(f"step {c.step} uses the model role {c.role!r}, which the spec's models do not define.")
        # The results travel through an attribute, not asyncio.run's return value:
        # Python 3.11 formats the finished main task (sorting a dict of a million
        # keys) when asyncio.run restores the SIGINT handler.
        asyncio.run(self._run(plan, known or {}))
        out, self._out = self._out, None
        return out

    async def _run(self, plan: Plan, known: Mapping[str, CallResult]) -> None:
        if self.executor is not None:
            callers = self.executor.callers(self.models, self.backoff_base)
        else:
            callers = {role: Caller(cfg, backoff_base=self.backoff_base) for role, cfg in self.models.items()}
        results: dict[str, CallResult] = {k: known[k] for k in plan.calls if k in known}
        progress = Progress(len(plan) - len(results), enabled=self.show_progress)
        leasing = not self.cache.in_memory and not all(cfg.is_sim for cfg in self.models.values())
        renewals = asyncio.create_task(self._renew()) if leasing else None  # none for the simulator: no lease to renew
        try:
            for level in plan.levels():
                calls = [c for c in level if c.key not in results]
                if not calls:
                    continue
                progress.step(", ".join(dict.fromkeys(c.step for c in calls)))
                hits = self.cache.get_many(c.key for c in calls)
                todo: list[Call] = []
                for c in calls:
                    if any(not results[k].ok for k in c.inputs.values()):
                        results[c.key] = CallResult(c.key, c.step, c.role, "skipped", False, error="an input call failed", reason="skipped")
                        progress.advance(failed=True)
                    elif c.key in hits and hits[c.key].response.strip():  # a blank answer cached by an older version is no answer
                        await self._cached(c, hits[c.key], callers[c.role], results, progress)
                    else:
                        todo.append(c)
                # by the provider's batch API (execute.batch): the calls of batch roles, and those of online roles that a live
                # batch holds (collected from it, not paid for twice)
                if todo:
                    from persona_exp.execute.batch import held_by_batches, run_batched

                    held = {c.key for c in held_by_batches(self, [c for c in todo if self.models[c.role].execution != "batch"])}
                    batched = [c for c in todo if self.models[c.role].execution == "batch" or c.key in held]
                    if batched:
                        todo = [c for c in todo if self.models[c.role].execution != "batch" and c.key not in held]
                        todo += await run_batched(self, batched, callers, results, progress, CallResult)  # + its failed lines, sent online
                await self._run_misses(todo, callers, results, progress)
        finally:
            progress.close()
            if renewals is not None:
                renewals.cancel()
                with contextlib.suppress(PersonaExpError):
                    self.cache.release_all()  # on an error or Ctrl-C too; leases that could not be given back lapse
        counts = RunCounts()
        for r in results.values():
            counts.add(r)
        self._out = (results, counts)

    async def _cached(self, c: Call, h: CachedCall, caller: Caller, results: dict[str, CallResult], progress: Progress) -> None:
        """A call the cache answered (before this run, or another process during it)."""
        r = CallResult(c.key, c.step, c.role, "ok", True, h.response, None, h.model, h.usage.get("prompt_tokens", 0),
                       h.usage.get("completion_tokens", 0), h.usage.get("cost"), latency_ms=h.usage.get("latency_ms"),
                       deployment=h.usage.get("deployment"))
        results[c.key] = await self._finish(c, r, caller, results)
        progress.advance(cached=True, failed=not results[c.key].ok)

    def _leases(self, c: Call) -> bool:
        """Whether sending ``c`` takes a lease (not for the simulator, nor a scratch cache)."""
        return not self.cache.in_memory and not self.models[c.role].is_sim

    async def _renew(self) -> None:
        """Keeps this runner's leases alive while their calls are in flight."""
        while True:
            await asyncio.sleep(self.lease_seconds / 4)
            with contextlib.suppress(PersonaExpError):  # a failed renewal (a full disk) only lets leases lapse
                self.cache.renew(self.lease_seconds)

    async def _run_misses(self, todo: list[Call], callers: dict[str, Caller], results: dict[str, CallResult], progress: Progress) -> None:
        if not todo:
            return
        queue = deque(todo)
        aside: list[Call] = []  # leased by another process, which is sending them
        sim_only = all(self.models[c.role].is_sim for c in todo)
        most = 1 if sim_only else sum(self.models[r].concurrency for r in {c.role for c in todo})
        if self.executor is not None:
            most = self.executor.workers(most, len(todo))

        budget = self.budget
        settled = asyncio.Event()  # set when a call in flight has finished (and what it cost is spent)

        async def worker() -> None:
            while queue:
                c = queue.popleft()
                while budget is not None and budget.waits(c.step):  # those in flight may spend what is left: see what they cost
                    settled.clear()
                    await settled.wait()
                if budget is not None and budget.reached:
                    budget.stopped += 1
                    results[c.key] = CallResult(c.key, c.step, c.role, "skipped", False, error=budget.message(), reason="budget")
                    progress.advance(failed=True)
                    continue
                leased = self._leases(c)
                if leased:
                    answered, taken = self.cache.take([c.key], self.lease_seconds)
                    if c.key in answered:
                        await self._cached(c, answered[c.key], callers[c.role], results, progress)
                        continue
                    if not taken:
                        aside.append(c)
                        continue
                guess = budget.hold(c.step) if budget is not None else 0.0
                try:
                    r = await self._call(c, callers[c.role], results)
                finally:
                    if leased:
                        self.cache.release(c.key)
                    if budget is not None:
                        budget.unhold(guess)
                if budget is not None:
                    budget.spend(r.cost)
                    settled.set()
                results[c.key] = r
                progress.advance(failed=not r.ok, tokens=r.prompt_tokens + r.completion_tokens, cost=r.cost)

        while True:
            await asyncio.gather(*(worker() for _ in range(min(most, len(queue)))))
            if not aside:
                return
            await asyncio.sleep(LEASE_POLL)
            waiting = aside[:]
            aside.clear()
            answered, taken = self.cache.take([c.key for c in waiting], self.lease_seconds)  # one transaction for all
            for c in waiting:
                if c.key in answered:
                    await self._cached(c, answered[c.key], callers[c.role], results, progress)
                elif c.key in taken:
                    queue.append(c)  # this process's to send now (the worker's take renews the lease)
                else:
                    aside.append(c)

    async def _call(self, c: Call, caller: Caller, results: dict[str, CallResult]) -> CallResult:
        outputs = {k: results[k].output() for k in c.inputs.values()}
        messages = c.render(outputs)
        try:
            ans = await caller(messages, c.replicate, slots={name: outputs[k] for name, k in c.inputs.items()}, **self._asks(c))
        except CallFailed as exc:
            return CallResult(c.key, c.step, c.role, "failed", False, text=exc.text, error=str(exc), reason=exc.reason,
                              prompt_tokens=exc.usage["prompt_tokens"], completion_tokens=exc.usage["completion_tokens"], cost=exc.cost,
                              attempts=exc.attempts, latency_ms=exc.latency_ms)
        self.cache.put(c.key, ans.text, {**ans.usage, "cost": ans.cost, "latency_ms": ans.latency_ms, **_deployed(ans)}, ans.model)
        r = CallResult(c.key, c.step, c.role, "ok", False, ans.text, None, ans.model, ans.usage["prompt_tokens"], ans.usage["completion_tokens"], ans.cost,
                       attempts=ans.attempts, latency_ms=ans.latency_ms, deployment=ans.deployment)
        return await self._finish(c, r, caller, results, messages)

    async def _lease_or_answer(self, key: str) -> CachedCall | None:
        """Waits until this process holds the lease on ``key`` (None) or
        another process has answered it (its answer)."""
        while True:
            answered, taken = self.cache.take([key], self.lease_seconds)
            if key in answered:
                return answered[key]
            if taken:
                return None
            await asyncio.sleep(LEASE_POLL)

    def _asks(self, c: Call) -> dict[str, Any]:
        """What a call asks of the answer: whole (a parser reads it) and, when
        the role wants structured output, the parser's JSON form."""
        structured = self.models[c.role].structured_output and c.parser is not None
        return {"whole": c.parser is not None, "response_format": response_format(c.parser) if structured else None}

    async def _finish(self, c: Call, r: CallResult, caller: Caller, results: dict[str, CallResult], messages: list[dict[str, str]] | None = None) -> CallResult:
        """Parses the answer. An unparseable one is re-asked with the reason:
        cached re-asks are replayed, then up to ``max_reasks`` new ones are sent
        (attempt numbers go on, so every run asks anew). A lenient reading, when
        declared and allowed, ends the re-asks once the first ``max_reasks``
        attempts have been made, so an answer read leniently stays cached.
        A re-ask another process sent while this one waited for its lease
        counts as sent by this run: two identical runs make the same attempts."""
        first = text = r.text or ""
        attempt = sent = shared = 0
        allowed = False  # a lenient reading exists for the first answer, and the role allows it
        while True:
            try:
                r.value = parse(c.parser, text)
                r.text = text
                return r
            except ParseFailure as pf:
                failure = pf
            attempt += 1
            if attempt == 1:
                allowed = self.models[c.role].lenient and lenient(c.parser, first) is not None
            if messages is None:
                messages = c.render({k: results[k].output() for k in c.inputs.values()})
            messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": f"Your answer could not be read. {failure}"}]
            rkey = node_key("reask", {"of": c.key, "attempt": attempt, "messages": messages[-2:]})
            hit = self.cache.get(rkey)
            if hit is not None and hit.response.strip():
                r.reasks += 1
                text = hit.response
                continue
            if sent + shared >= self.max_reasks or (allowed and attempt > self.max_reasks):
                break
            leased = self._leases(c)
            if leased:
                hit = await self._lease_or_answer(rkey)
                if hit is not None:
                    shared += 1
                    r.reasks += 1
                    text = hit.response
                    continue
            if r.cached:  # from here on it is sent: its tokens, cost, requests and time are this run's re-asks only
                r.cached, r.prompt_tokens, r.completion_tokens, r.cost, r.attempts, r.latency_ms = False, 0, 0, 0.0, 0, None
            try:
                slots = {name: results[k].output() for name, k in c.inputs.items()}
                ans = await caller(messages, c.replicate, slots=slots, **self._asks(c))
                self.cache.put(rkey, ans.text, {**ans.usage, "cost": ans.cost, "latency_ms": ans.latency_ms}, ans.model)  # before the lease goes
            except CallFailed as exc:
                r.status, r.error, r.reason = "failed", str(exc), exc.reason
                r.text = exc.text or text
                _add_spending(r, exc)
                return r
            finally:
                if leased:
                    self.cache.release(rkey)
            sent += 1
            r.reasks += 1
            _add_spending(r, ans)
            text = ans.text
        if allowed:
            r.value, r.text, r.lenient = lenient(c.parser, first), first, True
            return r
        r.status, r.reason, r.text = "parse_failed", "parse", text
        again = "a rerun asks again" if self.max_reasks else "a rerun replays it from the cache"
        r.error = (f"unparseable answer after {attempt - 1} re-asks ({sent} sent in this run; {again}): {failure} "
                   f"The answer began: {' '.join(text.split())[:160]!r}")
        return r


def _add_spending(r: CallResult, spent: Any) -> None:
    """Adds a re-ask's tokens, cost, requests and time (an Answer, or the
    CallFailed of one that got none) to its call's result."""
    r.prompt_tokens += spent.usage["prompt_tokens"]
    r.completion_tokens += spent.usage["completion_tokens"]
    r.cost = None if spent.cost is None or r.cost is None else r.cost + spent.cost
    r.attempts += spent.attempts
    r.latency_ms = _plus(r.latency_ms, spent.latency_ms)


def _deployed(ans: Any) -> dict[str, str]:
    """The deployment that answered, for the cache row (only when there is one, so other rows stay as they were)."""
    return {"deployment": ans.deployment} if ans.deployment else {}


def _plus(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def value_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def run_in_memory(models: Mapping[str, ModelConfig], plan: Plan, seed: Any = (), known: Mapping[str, CallResult] | None = None) -> tuple[dict[str, CallResult], RunCounts]:
    """Runs a plan on a scratch cache holding the cached answers ``seed``:
    for the simulator's free, offline answers while planning (an estimate's
    pilot, a dry stage). Nothing is written to the real cache."""
    with CallCache(":memory:") as scratch:
        for h in seed:
            scratch.put(h.key, h.response, h.usage, h.model)
        return Runner(models, scratch, progress=False).run(plan, known=known or {})
