"""Pydantic models shared by every experiment spec.

Specs are strict: an unknown key is an error (a typo must never be silently
ignored in a paid run). The experiment-specific blocks live with the
experiments and plug into the top-level spec.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimConfig(Strict):
    """Settings of the offline simulated models (`sim/judge`, `sim/generator`).

    ``effects`` plants an effect size per persona attribute (0 = the attribute
    does not move the judge; larger = it matters more); ``default_effect``
    applies to attributes not listed. ``noise`` scales the judge's logistic
    noise; ``strength`` is how strongly `sim/generator` revises toward what a
    persona favours. ``inconsistent_rate`` is how often the simulated LLM
    consistency check calls a profile impossible. ``draw`` picks another sample
    of every call of the role (see `persona_exp.execute.sim`).
    """

    effects: dict[str, float] = Field(default_factory=dict)
    default_effect: float = Field(1.0, ge=0)
    noise: float = Field(1.0, gt=0)
    strength: float = Field(1.0, ge=0)
    inconsistent_rate: float = Field(0.085, ge=0, le=1, description="share of profiles the simulated consistency check rejects (PERSONA: about 8.5%)")
    seed: int = 0
    draw: int = Field(0, ge=0, description="another sample of the same calls (new noise draws); runs differing only here are an A/A test")


class ModelConfig(Strict):
    """One model role (judge, generator, critic...): which model and how to call it."""

    model: str = Field(min_length=1, description="litellm model name, e.g. openai/gpt-4o, ollama/llama3, sim/judge")
    temperature: float | None = Field(0.0, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: PositiveInt | None = None
    seed: int | None = None
    api_base: str | None = Field(None, description="endpoint of an OpenAI-compatible server (vLLM, Ollama...); part of the call key")
    api_version: str | None = Field(None, description="API version of the endpoint (Azure); part of the call key")
    cache_as: str | None = Field(
        None, min_length=1, description="names the endpoint in the call keys instead of api_base/api_version: moving a server keeps its cached answers"
    )
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable holding this role's API key (read when calling, never stored)"
    )
    structured_output: bool = Field(False, description="ask for JSON matching each answer's parser (response_format), where the provider supports it")
    lenient: bool = Field(True, description="read a marker-less answer as a whole where the parser declares it (counted as lenient)")
    concurrency: PositiveInt = 16
    rpm: PositiveInt | None = Field(None, description="requests-per-minute limit")
    tpm: PositiveInt | None = Field(None, description="tokens-per-minute limit")
    max_retries: NonNegativeInt = 6
    timeout: PositiveFloat = 120.0
    replicates: PositiveInt = Field(1, description="samples per call; each is its own cached answer")
    sim: SimConfig | None = None

    @property
    def is_sim(self) -> bool:
        return self.model.startswith("sim/")

    def endpoint(self) -> dict[str, str] | None:
        """Which server answers, as the call key sees it: ``cache_as`` when set
        (on purpose: the user says two servers give the same answers), else the
        api_base (without a trailing slash) and api_version; None for the
        provider's default endpoint, so those keys are as they always were."""
        if self.cache_as:
            return {"cache_as": self.cache_as}
        out = {k: v for k, v in (("api_base", (self.api_base or "").rstrip("/")), ("api_version", self.api_version)) if v}
        return out or None

    def sampling(self) -> dict[str, Any]:
        """The request fields that change the answer (they enter the call key):
        sampling parameters, the endpoint, the simulator's settings, and
        whether answers come as structured output."""
        out: dict[str, Any] = {
            k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p), ("max_tokens", self.max_tokens), ("seed", self.seed)) if v is not None
        }
        if self.is_sim:
            out["sim"] = (self.sim or SimConfig()).model_dump()
        endpoint = self.endpoint()
        if endpoint:
            out["endpoint"] = endpoint
        if self.structured_output:
            out["structured_output"] = True
        return out


class OutputSpec(Strict):
    """Where runs and the call cache live (relative paths: to the working directory)."""

    dir: str = ".persona-exp"
    cache: str | None = Field(None, description="cache file; default <dir>/cache.sqlite")
