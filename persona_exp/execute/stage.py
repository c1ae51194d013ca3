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
from persona_exp.execute.runner import CallResult, Runner
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
            missing = len(new) - len(cached)
            if missing:
                step = next(plan.calls[k].step for k in new if k not in cached)
                raise StagePending(step, self.plan, missing)
        with CallCache(self.cache_path) as cache:
            results, _ = Runner(self.models, cache, progress=self.progress and not self.dry).run(plan, known=self.results)
        self.results.update(results)
        return results
