"""The top-level experiment spec: what a YAML file under experiments/ holds."""

from __future__ import annotations

import re
from typing import Annotated, Any, Union

from pydantic import Field, field_validator, model_validator

from persona_exp.analysis import AnalysisSpec
from persona_exp.errors import InvalidArgumentError, did_you_mean
from persona_exp.experiments import agreement, conditioning, dpf, loo, wikipersona
from persona_exp.experiments.base import check_design_size, checked_prompt_filters
from persona_exp.population import PopulationSpec, attribute
from persona_exp.population.build import DEFAULT_SIZE
from persona_exp.population.famous import FAMOUS_COLUMNS
from persona_exp.prompts.filters import DEFAULT_FILTERS
from persona_exp.spec.models import FieldError, ModelConfig, OutputSpec, Strict

DEFAULT_PROMPT_FILTERS: list[Any] = [dict(f) for f in DEFAULT_FILTERS]


class PromptsSpec(Strict):
    """Where questions come from and how they are filtered (PERSONA 3.2)."""

    source: str = Field("default", min_length=1, description='"default" (embedded questions) or a PRISM-format file')
    text_column: str | None = Field(None, min_length=1)
    topic_column: str | None = Field(None, min_length=1)
    filters: list[Any] = Field(default_factory=lambda: list(DEFAULT_PROMPT_FILTERS), description="prompt filters, in order (see persona_exp.prompts.filters)")

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: list[Any]) -> list[Any]:
        return checked_prompt_filters(value)


class ExperimentSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100, description="runs are stored under this name")
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1, description="the seed of every draw of the run (personas, questions, orders, resamples)")
    models: dict[str, ModelConfig]
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    prompts: PromptsSpec = Field(default_factory=PromptsSpec)
    experiment: Annotated[Union[loo.Params, dpf.Params, agreement.Params, conditioning.Params, wikipersona.Params], Field(discriminator="kind")]
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @model_validator(mode="after")
    def _across_blocks(self) -> "ExperimentSpec":
        """The checks that need two blocks: planted simulator effects name
        attributes of this population, and a DPF design (population x pairs
        per persona) stays plannable."""
        famous = self.population.source == "famous"
        known = [c for c in FAMOUS_COLUMNS if c != "persona_id"] if famous else None
        for role, cfg in self.models.items():
            for name in (cfg.sim.effects if cfg.sim else {}):
                path = ("models", role, "sim", "effects", name)
                if known is not None:
                    if name.strip().lower() not in known:
                        raise FieldError(path, f"unknown attribute {name!r} of a famous persona{did_you_mean(name, known)}; "
                                               f"the simulated judge sees {', '.join(known)}", key=True)
                    continue
                try:
                    attribute(name)
                except InvalidArgumentError as exc:
                    try:  # the simulator also reads "household-language"
                        attribute(re.sub(r"[\s_-]+", " ", name.strip()))
                    except InvalidArgumentError:
                        raise FieldError(path, str(exc).rstrip("."), key=True) from None
        if isinstance(self.experiment, dpf.Params) and not famous:
            size = self.population.size if self.population.size is not None else DEFAULT_SIZE
            try:
                check_design_size({"personas": size, "prompts per persona": self.experiment.pairs_per_persona()})
            except ValueError as exc:
                raise FieldError(("experiment", "n_train"), str(exc)) from None
        return self
