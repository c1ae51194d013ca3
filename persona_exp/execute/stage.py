"""Staged execution: run part of a plan while the rest is still being planned.

Some plans depend on what models say: questions a generator wrote, the
candidates a filter kept, the winner of a tournament's first round, the
profiles a consistency check let through. A step then hands the calls it
needs answered to the :class:`Stager`, which runs them with the same runner and
cache as the final run and returns their results. Everything staged becomes
part of the run's plan (so the calls table, the counts and ``persona-exp
diff`` see it), and the final run takes staged results as they are instead of
asking again.

A *dry* stager (``persona-exp plan``) never calls a model: it answers from the
cache, and when a staged call is not cached it raises :class:`StagePending`, so
the plan is shown up to the point where it depends on answers not yet given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from persona_exp.execute.cache import CallCache
from persona_exp.execute.budget import run_plan
from persona_exp.execute.runner import CallResult, run_in_memory
from persona_exp.plan import Plan
from persona_exp.spec.models import ModelConfig
from persona_exp.steps.context import StagePending


class Stager:
    def __init__(self, models: Mapping[str, ModelConfig], cache_path: Path, *, dry: bool = False, progress: bool = True):
        self.models = dict(models)
        self.cache_path = Path(cache_path)
        self.dry = dry
        self.progress = progress
        self.plan = Plan()  # every staged call, in the order staged
        self.results: dict[str, CallResult] = {}
        self.budget = None  # execute.budget.Budget of the run (--max-cost), shared with its final step
        self.limit: int | None = None  # --limit: the first N calls of each staged step
        self.executor = None  # where staged calls are sent from (None: this process; see execute.ray_executor)
        self.estimates: list = []  # execute.budget.Estimate of each stage, made before it ran
        self.simulate = False  # dry: answer staged calls of simulated roles in memory and plan on (see _in_memory)
        self.simulated = 0  # staged calls so answered

    def __call__(self, plan: Plan) -> dict[str, CallResult]:
        self.plan.update(plan)
        new = [k for k in plan.calls if k not in self.results]
        if not new:
            return {k: self.results[k] for k in plan.calls}
        if self.dry:
            cached: set[str] = set()
            if self.cache_path.exists():
                with CallCache(self.cache_path) as cache:
                    cached = cache.contains_many(new)
            todo = [k for k in new if k not in cached]
            if todo and self.simulate and all(self.models[plan.calls[k].role].is_sim for k in todo):
                return self._in_memory(plan)
            if todo:
                raise StagePending(plan.calls[todo[0]].step, self.plan, len(todo))
        with CallCache(self.cache_path) as cache:
            results, _, est = run_plan(self.models, cache, plan, self.results, progress=self.progress and not self.dry, budget=self.budget,
                                       limit=self.limit, what=f"the staged step {plan.steps[-1] if plan.steps else ''}", executor=self.executor)
        self.estimates.append(est)
        self.results.update(results)
        return results

    def _in_memory(self, plan: Plan) -> dict[str, CallResult]:
        """Answers a stage whose missing calls are all simulated on a scratch
        cache holding the real cache's answers for it: the simulator is free
        and offline, so a dry plan can go on; nothing is written to the cache."""
        seed = []
        if self.cache_path.exists():
            with CallCache(self.cache_path) as cache:
                seed = list(cache.get_many(plan.calls).values())
        results, counts = run_in_memory(self.models, plan, seed, known=self.results)
        self.simulated += counts.ran
        self.results.update(results)
        return results
