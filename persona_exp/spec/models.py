"""Pydantic models shared by every experiment spec.

Specs are strict: an unknown key is an error (a typo must never be silently
ignored in a paid run). The experiment-specific blocks live with the
experiments and plug into the top-level spec.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

SEED_MAX = 2**63 - 1  # seeds are stored and hashed as signed 64-bit integers


class FieldError(ValueError):
    """A validator's error about one part of the value it checks (``path``,
    relative to it: a list item, a dict key, one field of a model): the
    loader points at that part's line instead of the whole value's;
    ``key=True`` points at a mapping key rather than its value."""

    def __init__(self, path: Sequence[str | int], message: str, *, key: bool = False) -> None:
        super().__init__(message)
        self.path, self.key = tuple(path), key


def unwrap(tp: Any) -> list[Any]:
    """The types an annotation may hold (Optional, unions and Annotated opened)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in unwrap(arg) if t is not type(None)]
    return [tp]


def no_duplicates(values: Sequence[Any], same: Callable[[Any], Any] | None = None) -> None:
    """A list of a spec names each thing once: a second ``age`` in a list
    of attributes is a mistake (or a copy-paste) that would double work or
    silently count twice. ``same`` maps a value to what identifies it (e.g.
    an attribute's canonical name). Raises FieldError at the repeated item."""
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        ident = same(value) if same else value
        key = ident.strip().casefold() if isinstance(ident, str) else json.dumps(ident, sort_keys=True, default=str)
        if key in seen:
            raise FieldError((i,), f"{value!r} is listed more than once (first as item {seen[key]}); list it once")
        seen[key] = i


class Strict(BaseModel):
    """Base of every spec block: unknown keys are errors, numbers are finite,
    and ``true``/``false`` is not a number (YAML reads ``yes`` as true, which
    pydantic would otherwise take as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, bool) and name in cls.model_fields:
                    kinds = unwrap(cls.model_fields[name].annotation)
                    if bool not in kinds and any(k in (int, float) for k in kinds):
                        raise FieldError((name,), f"expected a number, got {str(value).lower()}")
        return data


class SimConfig(Strict):
    """Settings of the offline simulated models (`sim/judge`, `sim/generator`).

    ``effects`` plants an effect size per persona attribute (0 = the attribute
    does not move the judge; larger = it matters more); ``default_effect``
    applies to attributes not listed. ``noise`` scales the judge's logistic
    noise; ``strength`` is how strongly `sim/generator` revises toward what a
    persona favours. ``quality`` weighs the shared quality term every persona's
    utility has (0: only planted effects move the judge, so nothing planted
    means no condition can win). ``inconsistent_rate`` is how often the
    simulated LLM consistency check calls a profile impossible. ``draw`` picks
    another sample of every call of the role (see `persona_exp.execute.sim`).
    """

    effects: dict[str, typing.Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=dict, description="planted effect per persona attribute name, 0 (none) to 100; an unknown name is an error"
    )
    default_effect: float = Field(1.0, ge=0, le=100, description="effect of the attributes not in effects")
    noise: float = Field(1.0, gt=0, le=100, description="scale of the judge's logistic noise")
    strength: float = Field(1.0, ge=0, le=100, description="how strongly sim/generator revises toward the persona (weighs 1 + 7 * strength candidates)")
    longer_revisions: float = Field(0.5, ge=0, le=1, description="share of sim/generator revisions longer than the answer they revise "
                                    "(0.5: length says nothing about which is chosen; 0: always shorter, as the DPF instruction asks)")
    inconsistent_rate: float = Field(0.085, ge=0, le=1, description="share of profiles the simulated consistency check rejects (PERSONA: about 8.5%)")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="fixes the simulated world (preferences, quality, noise)")
    draw: int = Field(0, ge=0, le=1_000_000, description="another sample of the same calls (new noise draws); runs differing only here are an A/A test")
    quality: float = Field(1.0, ge=0, le=100, description="weight of the shared quality term in every persona's utility (0: off, so that only "
                           "planted effects move the judge)")

    @model_serializer(mode="wrap")
    def _default_quality_unwritten(self, handler: Any) -> Any:
        """The dump enters every sim call key: ``quality`` at its default is
        left out, so settings that do not set it keep the keys (and cached
        answers) they had before the knob existed."""
        out = handler(self)
        if isinstance(out, dict) and self.quality == 1.0:
            out.pop("quality", None)
        return out


class ModelConfig(Strict):
    """One model role (judge, generator, critic...): which model and how to call it."""

    model: str = Field(min_length=1, description="litellm model name, e.g. openai/gpt-4o, ollama/llama3, sim/judge")
    temperature: float | None = Field(0.0, ge=0, le=2, description="sampling temperature, 0 to 2 (None: the provider's default)")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling share, above 0 and at most 1 (None: the provider's default)")
    max_tokens: int | None = Field(None, ge=1, le=1_000_000, description="answer length limit in tokens (None: the provider's default)")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="the provider's sampling seed, where it supports one")
    api_base: str | None = Field(None, min_length=1, description="endpoint of an OpenAI-compatible server (vLLM, Ollama...); part of the call key")
    api_version: str | None = Field(None, min_length=1, description="API version of the endpoint (Azure); part of the call key")
    cache_as: str | None = Field(
        None, min_length=1, description="names the endpoint in the call keys instead of api_base/api_version: moving a server keeps its cached answers"
    )
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable holding this role's API key (read when calling, never stored)"
    )
    structured_output: bool = Field(False, description="ask for JSON matching each answer's parser (response_format), where the provider supports it")
    lenient: bool = Field(True, description="read a marker-less answer as a whole where the parser declares it (counted as lenient)")
    concurrency: int = Field(16, ge=1, le=1024, description="calls of this role in flight at once")
    rpm: int | None = Field(None, ge=1, le=10_000_000, description="requests-per-minute limit")
    tpm: int | None = Field(None, ge=1, le=10_000_000_000, description="tokens-per-minute limit")
    max_retries: int = Field(6, ge=0, le=100, description="retries of a transient error (429, 5xx, timeouts) before the call fails")
    timeout: float = Field(120.0, gt=0, le=86_400, description="seconds to wait for one answer (at most a day)")
    replicates: int = Field(1, ge=1, le=1000, description="samples per call; each is its own cached answer")
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

    dir: str = Field(".persona-exp", description="folder of runs, populations and the cache; relative to the working directory, "
                     "not to the spec (where runs, show, diff and report look by default)")
    cache: str | None = Field(None, description="cache file; default <dir>/cache.sqlite (relative: to the working directory)")
