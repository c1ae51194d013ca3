"""What a plan will cost before it runs, and the guards that hold a run to a budget.

Estimate. A call's prompt is counted with the tokenizer of its model
(litellm's ``token_counter`` on the rendered messages; the simulator counts
words, as it reports them), its slots (answers of other calls) are counted as
the answers they hold when those are cached and otherwise as the expected
answer of their step. Expected answers come, per step, from what is known
before guessing: answers of that step already in the cache; for simulated roles
a free pilot of the step's first calls through the simulator; the role's
``max_tokens`` (an upper bound); a few tokens for answers a strict parser
reads as a label; otherwise ``GUESS_TOKENS``. Each step says which one it used.
Where a step has answers in the cache, its prompts are also scaled by what the
provider reported for them against what the tokenizer counts (a served model's
chat template adds a system prompt and markers the tokenizer never sees), and
the share of its cached answers that fail their strict parser prices the
re-asks such answers cost (each re-ask resends the conversation so far).

Guards. :class:`Budget` refuses to start a plan whose estimate would take the
spending over ``--max-cost`` and tells the runner when actual spending has
reached it; :func:`limit_plan` keeps the first N calls of each step (a smoke
run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from persona_exp.errors import PersonaExpError
from persona_exp.execute.cache import CallCache
from persona_exp.execute.parsers import ParseFailure, parse
from persona_exp.execute.prices import price  # noqa: F401 - also read from here (tests, callers)
from persona_exp.plan.plan import Call, Plan
from persona_exp.spec.models import ModelConfig

GUESS_TOKENS = 256  # an answer's length when nothing better is known (free text, no max_tokens, nothing cached)
LABEL_TOKENS = {"choice": 3, "yes_no": 3, "needs_revision": 10, "a_better": 40}  # answers a strict parser reads as a label
PILOT_CALLS = 20  # calls per step the simulator answers to measure its answer lengths
CALIBRATION_CALLS = 50  # cached calls per step whose reported prompt tokens calibrate the count
REASKS = 2  # re-asks after an unparseable answer (the runner's default)
REASK_TOKENS = 30  # the re-ask message ("Your answer could not be read. ...")


class BudgetExceeded(PersonaExpError):
    """The estimate of what is left to run would take the spending over ``--max-cost``."""


@dataclass
class StepEstimate:
    step: str
    role: str
    model: str
    calls: int
    to_run: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None  # None: no price known for the model
    lengths: str  # where the expected answer length came from
    execution: str = "online"  # how its calls go: online, or by the provider's batch API (batch prices)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Estimate:
    steps: list[StepEstimate]

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.steps)

    @property
    def cost(self) -> float | None:
        costs = [s.cost for s in self.steps if s.to_run]
        return None if any(c is None for c in costs) else float(sum(costs))

    @property
    def unpriced(self) -> list[str]:
        return sorted({s.model for s in self.steps if s.to_run and s.cost is None})


class _Counter:
    """Prompt and answer token counts in a model's own tokenizer, each distinct text counted once."""

    def __init__(self) -> None:
        self.memo: dict[tuple[str, str], int] = {}

    def messages(self, model: str, messages: list[dict[str, str]]) -> int:
        if model.startswith("sim/"):
            return sum(len(m["content"].split()) for m in messages)
        from persona_exp.execute.llm import litellm

        return int(litellm().token_counter(model=model, messages=messages))

    def text(self, model: str, text: str) -> int:
        if model.startswith("sim/"):
            return len(text.split())
        key = (model, text)
        if key not in self.memo:
            from persona_exp.execute.llm import litellm

            self.memo[key] = int(litellm().token_counter(model=model, text=text)) if text else 0
        return self.memo[key]


def _read(c: Call, text: str) -> tuple[str, bool]:
    """What a cached answer puts into a reader's slot (the parsed text, as the
    runner does), and whether its strict parser read it."""
    try:
        value = parse(c.parser, text)
    except ParseFailure:
        return text, False
    return (value if isinstance(value, str) else text), True


def _pilot(plan: Plan, models: Mapping[str, ModelConfig], steps: set[str], hits: Mapping[str, Any]) -> dict[str, list[tuple[int, str]]]:
    """(completion tokens, output) of the first calls of simulated steps, answered
    by the simulator on a throwaway in-memory cache (seeded with the cached
    answers those calls read): free, offline, nothing kept."""
    from persona_exp.execute.runner import run_in_memory

    chosen: dict[str, Call] = {}
    count: dict[str, int] = {}
    for c in plan.calls.values():
        if c.step in steps and count.get(c.step, 0) < PILOT_CALLS and all(k in chosen or k in hits for k in c.inputs.values()):
            chosen[c.key] = c
            count[c.step] = count.get(c.step, 0) + 1
    need: set[str] = set()  # cached calls the chosen ones read, with what those read
    stack = [k for c in chosen.values() for k in c.inputs.values() if k not in chosen]
    while stack:
        k = stack.pop()
        if k not in need:
            need.add(k)
            stack.extend(plan.calls[k].inputs.values())
    if not chosen or any(k not in hits and not models[plan.calls[k].role].is_sim for k in need):
        return {}  # never ask a real model here
    sub = Plan()
    sub.include(c for k, c in plan.calls.items() if k in chosen or k in need)
    results, _ = run_in_memory(models, sub, [hits[k] for k in need & set(hits)])
    out: dict[str, list[tuple[int, str]]] = {}
    for r in results.values():
        if r.ok and r.key in chosen:
            out.setdefault(r.step, []).append((r.completion_tokens, r.output()))
    return out


def estimate(plan: Plan, models: Mapping[str, ModelConfig], cache: CallCache | None, known: Mapping[str, Any] | None = None) -> Estimate:
    """Tokens and cost of the calls of ``plan`` that are neither in ``cache``
    nor in ``known`` (results an earlier stage of the run already has)."""
    known = known or {}
    hits = cache.get_many(plan.calls) if cache is not None else {}
    answers: dict[str, str] = {}  # key -> output, for calls answered already
    seen: dict[str, list[tuple[int, str]]] = {}
    reported: dict[str, list[tuple[Call, int]]] = {}  # step -> cached calls with the prompt tokens the provider reported
    strict: dict[str, list[bool]] = {}  # step -> whether each cached answer passed its strict parser
    for key, c in plan.calls.items():
        if key in known and getattr(known[key], "ok", False):
            r = known[key]
            answers[key] = r.output()
            seen.setdefault(c.step, []).append((r.completion_tokens, answers[key]))
        elif key in hits:
            answers[key], parsed = _read(c, hits[key].response)
            seen.setdefault(c.step, []).append((int(hits[key].usage.get("completion_tokens", 0) or 0), answers[key]))
            if not models[c.role].is_sim and hits[key].usage.get("prompt_tokens"):
                reported.setdefault(c.step, []).append((c, int(hits[key].usage["prompt_tokens"])))
            if c.parser is not None:
                strict.setdefault(c.step, []).append(parsed)
    by_step = {s: calls for s, calls in plan.by_step().items() if calls}  # a declared step can plan no call (an empty design)
    blind = {s for s, calls in by_step.items() if s not in seen and models[calls[0].role].is_sim}
    if blind:
        pilot = _pilot(plan, models, blind, hits)
        seen.update(pilot)
    counter = _Counter()
    expected: dict[str, float] = {}  # step -> expected completion tokens
    source: dict[str, str] = {}
    for step, calls in by_step.items():
        cfg, obs = models[calls[0].role], seen.get(step)
        if obs:
            expected[step] = sum(n for n, _ in obs) / len(obs)
            source[step] = f"{'simulated pilot' if step in blind else 'cached answers'} (n={len(obs)})"
        elif cfg.max_tokens:
            expected[step], source[step] = float(cfg.max_tokens), "max_tokens (upper bound)"
        elif calls[0].parser in LABEL_TOKENS:
            expected[step], source[step] = float(LABEL_TOKENS[calls[0].parser]), f"short {calls[0].parser} answer"
        else:
            expected[step], source[step] = float(GUESS_TOKENS), f"guess ({GUESS_TOKENS}; set max_tokens or run --limit first)"
    slot_memo: dict[tuple[str, str], float] = {}

    def slot(step: str, model: str) -> float:
        """Expected tokens of an answer of ``step`` read by ``model``."""
        if (step, model) not in slot_memo:
            obs = seen.get(step)
            slot_memo[(step, model)] = sum(counter.text(model, t) for _, t in obs) / len(obs) if obs else expected[step]
        return slot_memo[(step, model)]

    def scale(step: str, model: str) -> float:
        """Reported / counted prompt tokens over (up to CALIBRATION_CALLS of)
        the step's cached calls whose inputs are known; 1 without any.
        The first cached attempt's usage is what the cache keeps."""
        pairs = [(c, n) for c, n in reported.get(step, []) if all(k in answers for k in c.inputs.values())][:CALIBRATION_CALLS]
        counted = sum(counter.messages(model, c.render({k: answers[k] for k in c.inputs.values()})) for c, _ in pairs)
        return sum(n for _, n in pairs) / counted if pairs and counted else 1.0

    rows = []
    for step, calls in by_step.items():
        role = calls[0].role
        model = models[role].model
        todo = [c for c in calls if c.key not in answers and c.key not in known]
        prompt = 0.0
        for c in todo:
            prompt += counter.messages(model, c.render({k: "" for k in c.inputs.values()}))
            for k in c.inputs.values():
                prompt += counter.text(model, answers[k]) if k in answers else slot(plan.calls[k].step, model)
        if todo:
            prompt *= scale(step, model)
        completion = expected[step] * len(todo)
        failing = strict.get(step)
        share = failing.count(False) / len(failing) if failing else 0.0
        if share and todo:
            # Re-ask k resends the prompt plus k answers and re-ask messages.
            per_call = prompt / len(todo)
            prompt += share * len(todo) * (REASKS * per_call + REASKS * (REASKS + 1) / 2 * (expected[step] + REASK_TOKENS))
            completion += share * len(todo) * REASKS * expected[step]
            source[step] += f"; {share:.0%} of its cached answers needed re-asks"
        batched = models[role].execution == "batch"
        p = price(model, batch=batched)
        cost = None if p is None else prompt * p[0] + completion * p[1]
        rows.append(StepEstimate(step, role, model, len(calls), len(todo), round(prompt), round(completion), cost, source[step],
                                 "batch" if batched else "online"))
    return Estimate(rows)


def limit_plan(plan: Plan, n: int, always: Mapping[str, Any] = {}) -> tuple[Plan, list[Call]]:
    """The first ``n`` calls of each step whose inputs are kept too, as a plan, and the calls left out. Calls
    in ``always`` (answered by an earlier stage) are kept and count toward n."""
    out, left = Plan(), []
    per_step: dict[str, int] = {}
    for c in plan.calls.values():
        if c.key in always:
            per_step[c.step] = per_step.get(c.step, 0) + 1
    for c in plan.calls.values():
        fits = per_step.get(c.step, 0) < n and all(k in out.calls for k in c.inputs.values())
        if c.key in always or fits:
            out.include([c])
            out.requested[c.step] += 1
            per_step[c.step] = per_step.get(c.step, 0) + (c.key not in always)
        else:
            left.append(c)
    return out, left


@dataclass
class Budget:
    """``--max-cost``: what may be spent in this run, and what has been.

    Calls in flight are held at their step's estimated cost: a call waits
    while the spending plus what those in flight are expected to cost would
    pass the budget, so that many calls in flight at once (a high
    concurrency, a Ray cluster's batches) cannot all be sent on the last
    dollars; with nothing in flight a call is sent until the spending reaches
    the budget, as one call at a time would be."""

    max_cost: float
    spent: float = 0.0
    stopped: int = 0  # calls not sent because the budget was reached
    per_call: dict[str, float] = field(default_factory=dict)  # step -> estimated cost of one of its calls (from the preflight estimates)
    held: float = 0.0  # estimated cost of the calls in flight
    holding: int = 0  # calls in flight

    def preflight(self, est: Estimate, what: str = "the run") -> None:
        """Raises BudgetExceeded (nothing is sent) when ``est`` cannot be priced or
        would take the spending over the budget."""
        if est.cost is None:
            raise BudgetExceeded(
                f"--max-cost {self.max_cost:g}: no price is known for {', '.join(est.unpriced)}, so the spending of {what} cannot "
                f"be held to a budget; pick a model in litellm's price table or run without --max-cost."
            )
        if self.spent + est.cost > self.max_cost:
            spent = f" after ${self.spent:.4f} spent on earlier stages (their answers are cached)" if self.spent else ""
            raise BudgetExceeded(
                f"--max-cost {self.max_cost:g}: {what} is estimated at ${est.cost:.4f} ({est.tokens:,} tokens){spent}, over the budget; "
                f"nothing more was sent. Raise --max-cost, make the run smaller (--limit N, fewer items), or see `persona-exp plan`."
            )
        self.per_call.update({s.step: s.cost / s.to_run for s in est.steps if s.to_run and s.cost})

    def spend(self, cost: float | None) -> None:
        self.spent += cost or 0.0

    def waits(self, step: str) -> bool:
        """Whether a call of ``step`` should wait for calls in flight to say what they cost."""
        return self.holding > 0 and self.spent + self.held + self.per_call.get(step, 0.0) > self.max_cost

    def hold(self, step: str) -> float:
        guess = self.per_call.get(step, 0.0)
        self.holding += 1
        self.held += guess
        return guess

    def unhold(self, guess: float) -> None:
        self.holding -= 1
        self.held = self.held - guess if self.holding else 0.0

    @property
    def reached(self) -> bool:
        """Spending has reached the budget (free calls never reach it)."""
        return self.spent > 0 and self.spent >= self.max_cost

    def message(self) -> str:
        return f"not sent: the budget (--max-cost {self.max_cost:g}) was reached after ${self.spent:.4f}"



def run_plan(models: Mapping[str, ModelConfig], cache: CallCache, plan: Plan, known: Mapping[str, Any] | None = None, *,
             progress: bool = True, budget: Budget | None = None, limit: int | None = None, what: str = "the run",
             on_estimate: Callable[[Estimate], None] | None = None, executor: Any = None) -> tuple[dict, Any, Estimate]:
    """Runs ``plan`` under the run's guards and returns the results, the
    counts and the estimate made before sending. ``limit`` keeps the first N
    calls of each step (the others get the status ``not_run`` and are not
    counted); ``budget`` refuses a plan whose estimate goes over it and stops
    sending when the spending reaches it (unsent calls are ``skipped``)."""
    from persona_exp.execute.runner import CallResult, Runner

    known = {k: r for k, r in (known or {}).items() if r.status != "not_run"}
    left: list[Call] = []
    if limit is not None:
        plan, left = limit_plan(plan, limit, always=known)
    est = estimate(plan, models, cache, known)
    if on_estimate is not None:
        on_estimate(est)
    if budget is not None and not budget.reached:
        budget.preflight(est, what)
    results, counts = Runner(models, cache, progress=progress, budget=budget, executor=executor).run(plan, known=known)  # executor: see Runner
    for c in left:
        results[c.key] = CallResult(c.key, c.step, c.role, "not_run", False, error=f"left out by --limit {limit}")
    return results, counts, est
