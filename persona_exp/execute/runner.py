"""Running a plan: cached answers first, then the misses, step by step.

Cache hits are looked up in bulk and never go through litellm. Misses run
concurrently under each role's limits; every finished call is committed to the
cache at once, so a killed run loses nothing. A call whose input failed is
skipped (and retried by the next run, like the failure itself).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from persona_exp.errors import ExecutionError
from persona_exp.execute.cache import CallCache
from persona_exp.execute.llm import Caller, CallFailed
from persona_exp.execute.parsers import ParseFailure, parse
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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def output(self) -> str:
        """What fills a later call's slot: the parsed value when it is text."""
        return self.value if isinstance(self.value, str) else (self.text or "")


@dataclass
class RunCounts:
    calls: int = 0
    cached: int = 0
    ran: int = 0
    failed: int = 0
    parse_failed: int = 0
    skipped: int = 0
    reasks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_unknown: int = 0
    by_step: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Runner:
    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        cache: CallCache,
        *,
        max_reasks: int = 2,
        progress: bool = True,
        backoff_base: float = 1.0,
    ):
        self.backoff_base = backoff_base
        self._out: tuple[dict[str, CallResult], RunCounts] | None = None
        self.models = dict(models)
        self.cache = cache
        self.max_reasks = max_reasks
        self.show_progress = progress

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
        callers = {role: Caller(cfg, backoff_base=self.backoff_base) for role, cfg in self.models.items()}
        results: dict[str, CallResult] = {k: known[k] for k in plan.calls if k in known}
        counts = RunCounts(calls=len(plan))
        progress = Progress(len(plan) - len(results), enabled=self.show_progress)
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
                        results[c.key] = CallResult(c.key, c.step, c.role, "skipped", False, error="an input call failed")
                        progress.advance(failed=True)
                    elif c.key in hits:
                        h = hits[c.key]
                        r = CallResult(c.key, c.step, c.role, "ok", True, h.response, None, h.model, h.usage.get("prompt_tokens", 0), h.usage.get("completion_tokens", 0), h.usage.get("cost"))
                        results[c.key] = await self._finish(c, r, callers[c.role], results)
                        progress.advance(cached=True, failed=not results[c.key].ok)
                    else:
                        todo.append(c)
                await self._run_misses(todo, callers, results, progress)
        finally:
            progress.close()
        for r in results.values():
            s = counts.by_step.setdefault(r.step, {"calls": 0, "cached": 0, "ran": 0, "failed": 0})
            s["calls"] += 1
            counts.cached += r.cached
            s["cached"] += r.cached
            ran = not r.cached and r.status in ("ok", "parse_failed")
            counts.ran += ran
            s["ran"] += ran
            bad = r.status != "ok"
            s["failed"] += bad
            counts.failed += r.status == "failed"
            counts.parse_failed += r.status == "parse_failed"
            counts.skipped += r.status == "skipped"
            counts.reasks += r.reasks
            if not r.cached:
                counts.prompt_tokens += r.prompt_tokens
                counts.completion_tokens += r.completion_tokens
                if r.cost is None and r.status != "skipped" and r.text is not None:
                    counts.cost_unknown += 1
                counts.cost += r.cost or 0.0
        self._out = (results, counts)

    async def _run_misses(self, todo: list[Call], callers: dict[str, Caller], results: dict[str, CallResult], progress: Progress) -> None:
        if not todo:
            return
        queue: asyncio.Queue[Call] = asyncio.Queue()
        for c in todo:
            queue.put_nowait(c)
        sim_only = all(self.models[c.role].is_sim for c in todo)
        workers = 1 if sim_only else min(len(todo), sum(self.models[r].concurrency for r in {c.role for c in todo}))

        async def worker() -> None:
            while not queue.empty():
                c = queue.get_nowait()
                r = await self._call(c, callers[c.role], results)
                results[c.key] = r
                progress.advance(failed=not r.ok, tokens=r.prompt_tokens + r.completion_tokens, cost=r.cost)

        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _call(self, c: Call, caller: Caller, results: dict[str, CallResult]) -> CallResult:
        messages = c.render({k: results[k].output() for k in c.inputs.values()})
        try:
            ans = await caller(messages, c.replicate)
        except CallFailed as exc:
            return CallResult(c.key, c.step, c.role, "failed", False, error=str(exc))
        self.cache.put(c.key, ans.text, {**ans.usage, "cost": ans.cost}, ans.model)
        r = CallResult(c.key, c.step, c.role, "ok", False, ans.text, None, ans.model, ans.usage["prompt_tokens"], ans.usage["completion_tokens"], ans.cost)
        return await self._finish(c, r, caller, results, messages)

    async def _finish(self, c: Call, r: CallResult, caller: Caller, results: dict[str, CallResult], messages: list[dict[str, str]] | None = None) -> CallResult:
        """Parses the answer; an unparseable one is re-asked (each re-ask cached too)."""
        text = r.text or ""
        for attempt in range(self.max_reasks + 1):
            try:
                r.value = parse(c.parser, text)
                r.text = text
                return r
            except ParseFailure as pf:
                if attempt == self.max_reasks:
                    r.status, r.error, r.text = "parse_failed", f"unparseable answer after {attempt} re-asks: {pf}", text
                    return r
                if messages is None:
                    messages = c.render({k: results[k].output() for k in c.inputs.values()})
                messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": f"Your answer could not be read. {pf}"}]
                rkey = node_key("reask", {"of": c.key, "attempt": attempt + 1, "messages": messages[-2:]})
                hit = self.cache.get(rkey)
                r.reasks += 1
                if hit is not None:
                    text = hit.response
                    continue
                try:
                    ans = await caller(messages, c.replicate)
                except CallFailed as exc:
                    r.status, r.error = "failed", str(exc)
                    return r
                self.cache.put(rkey, ans.text, {**ans.usage, "cost": ans.cost}, ans.model)
                r.cached = False
                r.prompt_tokens += ans.usage["prompt_tokens"]
                r.completion_tokens += ans.usage["completion_tokens"]
                r.cost = None if ans.cost is None or r.cost is None else r.cost + ans.cost
                text = ans.text
        return r


def value_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
