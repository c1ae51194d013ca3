"""The top-level experiment spec: what a YAML file under experiments/ holds."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from persona_exp.analysis import AnalysisSpec
from persona_exp.experiments import agreement, conditioning, dpf, loo, wikipersona
from persona_exp.population import PopulationSpec
from persona_exp.prompts.filters import DEFAULT_FILTERS
from persona_exp.spec.models import ModelConfig, OutputSpec, Strict

DEFAULT_PROMPT_FILTERS: list[Any] = [dict(f) for f in DEFAULT_FILTERS]


class PromptsSpec(Strict):
    """Where questions come from and how they are filtered (PERSONA 3.2)."""

    source: str = Field("default", description='"default" (embedded questions) or a PRISM-format file')
    text_column: str | None = None
    topic_column: str | None = None
    filters: list[Any] = Field(default_factory=lambda: list(DEFAULT_PROMPT_FILTERS))


class ExperimentSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="runs are stored under this name")
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1, description="the seed of every draw of the run (personas, questions, orders, resamples)")
    models: dict[str, ModelConfig]
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    prompts: PromptsSpec = Field(default_factory=PromptsSpec)
    experiment: Annotated[Union[loo.Params, dpf.Params, agreement.Params, conditioning.Params, wikipersona.Params], Field(discriminator="kind")]
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
