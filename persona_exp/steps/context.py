"""What a step needs from the run it is part of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import polars as pl

from persona_exp.errors import PersonaExpError
from persona_exp.spec.models import ModelConfig


class StagePending(PersonaExpError):
    """Raised by a dry stage (``persona-exp plan``) when calls whose answers the
    rest of the plan depends on are not in the cache yet: the plan can only be
    shown up to them."""

    def __init__(self, step: str, plan: Any, missing: int):
        super().__init__(f"step {step}: {missing} of {len(plan)} calls are not cached yet, and the calls after them depend on their answers.")
        self.step, self.plan, self.missing = step, plan, missing


@dataclass
class Context:
    """Everything a step or an experiment needs to build its plan.

    ``stage(plan)`` runs a partial plan now (cache first, then the model) and
    returns its results by call key; the calls also become part of the run's
    plan. Without a stage runner (e.g. rebuilding keys for an export) only
    steps that need no answers at plan time can be used.
    """

    name: str
    seed: int
    params: Any
    models: Mapping[str, ModelConfig]
    personas: pl.DataFrame
    prompts: pl.DataFrame
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)  # per role, filled on first use
    stage: Callable[[Any], Mapping[str, Any]] | None = None
    analysis: Any = None  # the spec's analysis block (multiplicity); None = its defaults

    def run_stage(self, plan: Any) -> Mapping[str, Any]:
        if self.stage is None:
            raise PersonaExpError("this step needs model answers at plan time, but no stage runner was given.")
        return self.stage(plan)
