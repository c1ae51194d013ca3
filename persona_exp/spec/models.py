"""Pydantic models shared by every experiment spec.

Specs are strict: an unknown key is an error (a typo must never be silently
ignored in a paid run). The experiment-specific blocks live with the
experiments and plug into the top-level spec.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any, Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

SEED_MAX = 2**63 - 1  # seeds are stored and hashed as signed 64-bit integers
# litellm providers whose files and batches API takes OpenAI-format JSONL (for vertex_ai, litellm converts it to
# Gemini requests staged in a Cloud Storage bucket, and the answers back; for bedrock, to the model's own requests
# staged in an S3 bucket, whose answers persona-exp reads back itself)
BATCH_PROVIDERS = ("openai", "azure", "hosted_vllm", "litellm_proxy", "vertex_ai", "bedrock")
GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^/\s][^\s]*)?$")  # a bucket name, optionally /prefix
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # a bucket name (S3's rules), no folder
IAM_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# Bedrock models whose batch requests litellm writes in the model's own format, and whose answers persona-exp reads:
# Anthropic's Claude (the Messages API) and Amazon's Nova (Converse), bare or behind a cross-region profile (us., eu., ...)
BEDROCK_BATCH_MODEL = re.compile(r"^bedrock/(converse/|invoke/)?([a-z]{2,6}(-gov)?\.)?(anthropic\.claude|amazon\.nova)[\w.:-]*$")


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


ROUTING = ("simple-shuffle", "least-busy", "usage-based-routing", "usage-based-routing-v2", "latency-based-routing", "cost-based-routing")


class Deployment(Strict):
    """One server of a role that has several (litellm Router deployments): the
    role's requests are spread over them by ``routing``. Keys are read from
    the environment variable named here when calling, never stored."""

    name: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$",
                             description="what the transcript records for the calls it answered (default: its api_base); fallbacks name it")
    api_base: str | None = Field(None, min_length=1, description="endpoint of this deployment (None: the provider's default)")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable holding this deployment's API key")
    api_version: str | None = Field(None, min_length=1, description="API version of the endpoint (Azure)")
    model: str | None = Field(None, min_length=1, description="litellm model name at this deployment (default: the role's model)")
    rpm: int | None = Field(None, ge=1, le=10_000_000, description="this deployment's requests-per-minute limit (the Router routes by it)")
    tpm: int | None = Field(None, ge=1, le=10_000_000_000, description="this deployment's tokens-per-minute limit (the Router routes by it)")
    weight: float | None = Field(None, gt=0, le=1_000_000, description="share of the requests under simple-shuffle, relative to the others")

    def label(self, index: int) -> str:
        """What the transcript records: the name, else the api_base, else the index."""
        return self.name or (self.api_base or "").rstrip("/") or f"deployment {index}"


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
    execution: typing.Literal["online", "batch"] = Field(
        "online", description="online: one request per call; batch: the provider's batch API (about half price, answers within its "
        "completion window; see persona_exp.execute.batch). Not part of the call key: the same request gets the same cached answer")
    batch_poll: float = Field(30.0, ge=0.01, le=3600, description="batch: seconds between looks at a submitted batch")
    batch_size: int = Field(50_000, ge=1, le=50_000, description="batch: most calls per batch file (OpenAI takes at most 50,000)")
    batch_bucket: str | None = Field(
        None, min_length=1, description="batch on Vertex AI (vertex_ai/gemini-...): the Cloud Storage bucket, optionally with a "
        "folder (my-bucket or my-bucket/persona-exp), where batch files are written and Vertex writes its answers; the credentials "
        "need write access to it. Batch on Bedrock (bedrock/...): the S3 bucket (a bare name, in the job's region) that batch "
        "files are uploaded to and Bedrock writes its answers to")
    batch_role_arn: str | None = Field(
        None, min_length=1, description="batch on Bedrock: the IAM role the batch job assumes to read and write batch_bucket "
        "(arn:aws:iam::<account>:role/<name>); unset: litellm's AWS_BATCH_ROLE_ARN environment variable")
    deployments: list[Deployment] | None = Field(
        None, min_length=1, max_length=1000, description="several servers of this role, through litellm's Router; needs cache_as (the "
        "servers are declared equivalent, so which one answers is not part of a call's identity)")
    routing: str = Field("simple-shuffle", description="how the Router spreads requests over the deployments: " + ", ".join(ROUTING))
    fallbacks: list[str] | None = Field(None, min_length=1, description="names of deployments held in reserve: sent to only when a request "
                                        "to the others failed")
    sim: SimConfig | None = None

    @model_validator(mode="after")
    def _deployments_are_declared_equivalent(self) -> "ModelConfig":
        """Deployments need ``cache_as``: the keys cannot name a server when any
        of several may answer, so the user names what they stand for."""
        from persona_exp.errors import did_you_mean

        if self.routing not in ROUTING:
            raise FieldError(("routing",), f"unknown routing strategy {self.routing!r}{did_you_mean(self.routing, ROUTING)}; litellm's Router has "
                             + ", ".join(ROUTING))
        if not self.deployments:
            if self.fallbacks:
                raise FieldError(("fallbacks",), "fallbacks name deployments, and this role has none; list its servers under deployments")
            return self
        if self.is_sim:
            raise FieldError(("deployments",), "the simulator runs in process and has no deployments; remove deployments or use a served model")
        if not self.cache_as:
            raise FieldError(("deployments",), "several deployments need cache_as: a name for what they serve (e.g. cache_as: llama3-8b-vllm), "
                             "which the call keys use instead of any one server, so that the deployments share cached answers; set it only "
                             "when they serve the same model with the same weights")
        for field in ("api_base", "api_key_env", "api_version"):
            if getattr(self, field) is not None:
                raise FieldError((field,), f"with deployments, {field} belongs to each deployment; move it into the deployments list")
        labels = [d.label(i) for i, d in enumerate(self.deployments)]
        for i, label in enumerate(labels):
            if label in labels[:i]:
                raise FieldError(("deployments", i), f"{label!r} is listed twice (as item {labels.index(label)} too); give each deployment "
                                 "its own api_base or name")
        names = [d.name for d in self.deployments if d.name]
        for i, name in enumerate(self.fallbacks or []):
            if name not in names:
                raise FieldError(("fallbacks", i), f"no deployment is named {name!r}{did_you_mean(name, names)}; give the deployment a name: field")
        if self.fallbacks and set(self.fallbacks) >= set(d.label(i) for i, d in enumerate(self.deployments)):
            raise FieldError(("fallbacks",), "every deployment is a fallback, so none would get the requests first; leave at least one out")
        return self

    def deployment_configs(self) -> list["ModelConfig"]:
        """Each deployment as a role of its own (its model and endpoint), for
        the checks made before sending (model names, keys, reachability)."""
        return [self.model_copy(update={"model": d.model or self.model, "api_base": d.api_base, "api_key_env": d.api_key_env,
                                        "api_version": d.api_version, "deployments": None, "fallbacks": None}) for d in self.deployments or ()]

    @model_validator(mode="after")
    def _batch_needs_a_batch_api(self) -> "ModelConfig":
        """The simulator answers in process (there is nothing to submit), and
        a batch goes to one endpoint through litellm's files and batches API,
        which persona-exp uses for OpenAI-compatible servers, Azure, Vertex
        AI (Gemini, whose batch files live in a Cloud Storage bucket) and
        Bedrock (Claude and Nova, whose batch files live in an S3 bucket)."""
        if self.execution != "batch":
            return self
        if self.is_sim:
            raise FieldError(("execution",), f"{self.model} is the offline simulator, which answers in process: there is no batch API to "
                             "submit to; remove execution: batch, or use a provider's model")
        prefix = self.model.split("/", 1)[0] if "/" in self.model else None
        if prefix is not None and prefix not in BATCH_PROVIDERS:
            raise FieldError(("execution",), f"batch execution goes through litellm's files and batches API, which persona-exp uses for "
                             f"{', '.join(BATCH_PROVIDERS)} models; {self.model!r} is {'an' if prefix[:1] in 'aeiou' else 'a'} {prefix} model: use execution: online for it")
        if getattr(self, "deployments", None):
            raise FieldError(("execution",), "a batch is submitted to one endpoint, and this role has several deployments; "
                             "use execution: online with deployments, or one api_base with execution: batch")
        if prefix == "vertex_ai":
            if not self.model.split("/")[-1].startswith("gemini"):
                raise FieldError(("model",), f"Vertex AI batches through litellm take Google's Gemini models (publishers/google/models/...), "
                                 f"and {self.model!r} is not one; use a vertex_ai/gemini-... model, or execution: online for it")
            if not self.batch_bucket:
                raise FieldError(("batch_bucket",), "a Vertex AI batch is read from and written to Cloud Storage: name the bucket "
                                 "(e.g. batch_bucket: my-bucket, or my-bucket/persona-exp for a folder in it) that the Google "
                                 "credentials may write to")
            if self.api_key_env:
                raise FieldError(("api_key_env",), "Vertex AI batches authenticate with Google credentials (GOOGLE_APPLICATION_CREDENTIALS "
                                 "or gcloud's application-default login), not with an API key; remove api_key_env")
        if prefix == "bedrock":
            if not BEDROCK_BATCH_MODEL.match(self.model):
                raise FieldError(("model",), f"Bedrock batches through litellm take Anthropic's Claude and Amazon's Nova models, whose "
                                 f"requests litellm writes and whose answers persona-exp reads, and {self.model!r} is not one; use e.g. "
                                 "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0 or bedrock/amazon.nova-lite-v1:0, or execution: online for it")
            if not self.batch_bucket:
                raise FieldError(("batch_bucket",), "a Bedrock batch is read from and written to S3: name the bucket (e.g. batch_bucket: "
                                 "my-bucket), in the job's region, that the AWS credentials and the batch role may write to")
            if self.api_key_env:
                raise FieldError(("api_key_env",), "Bedrock batches sign their requests with AWS credentials (AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY, or a profile), not with an API key; remove api_key_env")
        return self

    @model_validator(mode="after")
    def _bucket_is_a_vertex_or_bedrock_bucket(self) -> "ModelConfig":
        """``batch_bucket`` only means something to Vertex AI and Bedrock
        batches, and ``batch_role_arn`` to Bedrock's; either set for another
        provider is a mistake worth saying."""
        bedrock = self.model.startswith("bedrock/")
        if self.batch_role_arn is not None:
            if not bedrock:
                raise FieldError(("batch_role_arn",), f"batch_role_arn is the IAM role a Bedrock batch job assumes, and {self.model!r} is "
                                 "not a bedrock/ model; remove batch_role_arn")
            if not IAM_ROLE_ARN.match(self.batch_role_arn):
                raise FieldError(("batch_role_arn",), f"{self.batch_role_arn!r} is not an IAM role's ARN: give it as "
                                 "arn:aws:iam::<12-digit account>:role/<role name>, e.g. arn:aws:iam::123456789012:role/bedrock-batch")
        if self.batch_bucket is None:
            return self
        if bedrock:
            if not S3_BUCKET.match(self.batch_bucket):
                raise FieldError(("batch_bucket",), f"{self.batch_bucket!r} is not an S3 bucket name: give the bare name in lower case "
                                 "(3 to 63 letters, digits, dots and hyphens; no s3://, no folder: litellm writes Bedrock batch files at "
                                 "the bucket's top level), e.g. my-bucket")
            return self
        if not self.model.startswith("vertex_ai/"):
            raise FieldError(("batch_bucket",), f"batch_bucket is where Vertex AI and Bedrock batches are staged, and {self.model!r} is not a "
                             "vertex_ai/ model nor a bedrock/ one; remove batch_bucket")
        if not GCS_BUCKET.match(self.batch_bucket):
            raise FieldError(("batch_bucket",), f"{self.batch_bucket!r} is not a Cloud Storage bucket name: give the bare name in lower "
                             "case, optionally with a folder, e.g. my-bucket or my-bucket/persona-exp (no gs://)")
        return self

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
