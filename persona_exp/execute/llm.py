"""Calling models: litellm for every provider, an in-process path for `sim/`.

litellm is imported lazily (it takes seconds) and told to use its bundled price
table, so neither the CLI's start-up nor an offline run touches the network.
Before anything is sent, ``check_model_names`` and ``preflight`` resolve each
role's provider, credentials and endpoint (bad ones are spec errors, exit 2).
Transient failures (429, 5xx, timeouts, connection errors) are retried with
exponential backoff and jitter; a Retry-After (seconds or an HTTP date, wherever
litellm put it) pauses the whole role that long. Authentication errors are never
retried and stop the role's other calls. An empty answer, or one cut at
max_tokens when a parser needs it whole, is not an answer: asked again, then a
failure. Error texts are scrubbed of secret-looking environment values before
they are stored or shown. Each answer (or failure) says how many requests it
took and how long they took (see ``Meter``), for the calls table.

A role with ``deployments`` sends through a litellm Router built from them
(routing strategy, per-deployment rpm/tpm/weight, fallbacks in reserve) with the
Router's own retries off, so this module's retries, Retry-After pauses,
empty-answer handling and metering apply unchanged; the answer says which
deployment gave it (its name or api_base, never a key).
"""

from __future__ import annotations

import asyncio
import difflib
import email.utils
import importlib.util
import os
import random
import re
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from persona_exp.errors import SpecError
from persona_exp.execute import sim
from persona_exp.spec.models import ModelConfig

SIM_MODELS = ("sim/judge", "sim/generator")
EMPTY_RETRIES = 2  # an empty or cut answer is asked for again this often before the call fails
MAX_RETRY_AFTER = 600.0  # seconds: a longer Retry-After is shortened to this

# The variables litellm's validate_environment accepts for a few common providers
# (any one will do; tests check this against litellm). For these, a missing key
# is found without importing litellm, which takes seconds; the others ask litellm.
KEY_VARIABLES = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
}


def _provider_prefix(model: str) -> str | None:
    return model.split("/", 1)[0] if "/" in model else None

_litellm = None


def litellm():  # noqa: ANN201 - module object
    """The litellm module, imported once, offline-safe."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_TELEMETRY", "False")
        import litellm as lt

        lt.telemetry = False
        lt.suppress_debug_info = True
        lt.drop_params = True
        register_sim_provider(lt)
        _litellm = lt
    return _litellm


def register_sim_provider(lt: Any) -> None:
    """Makes `litellm.completion(model="sim/judge", ...)` answer from the simulator."""
    from litellm import CustomLLM, ModelResponse

    class SimLLM(CustomLLM):
        def _answer(self, model: str, messages: list, optional_params: dict) -> ModelResponse:
            settings = {"sim": optional_params.get("sim") or (optional_params.get("extra_body") or {}).get("sim"), "temperature": optional_params.get("temperature")}
            text, usage = sim.complete(f"sim/{model.split('/')[-1]}", messages, settings)
            return lt.ModelResponse(
                model=f"sim/{model.split('/')[-1]}",
                choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                usage={**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
            )

        def completion(self, model, messages, *args, optional_params=None, **kwargs):  # type: ignore[override]
            return self._answer(model, messages, optional_params or kwargs.get("optional_params") or {})

        async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):  # type: ignore[override]
            return self._answer(model, messages, optional_params or kwargs.get("optional_params") or {})

    if not any(item.get("provider") == "sim" for item in lt.custom_provider_map):
        lt.custom_provider_map = [*lt.custom_provider_map, {"provider": "sim", "custom_handler": SimLLM()}]


_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)


def scrub(text: str) -> str:
    """Removes the values of secret-looking environment variables from a text."""
    for name, value in os.environ.items():
        if value and len(value) >= 6 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "***")
    return re.sub(r"\b(sk-[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+", r"\1***", text)


@dataclass
class Answer:
    text: str
    usage: dict[str, int]  # tokens of every attempt this answer took (discarded empty ones included)
    model: str
    cost: float | None
    attempts: int = 1  # requests sent for it: transport retries and empty-answer retries included
    latency_ms: float | None = None  # wall time of those requests, summed (see Meter)
    deployment: str | None = None  # which of the role's deployments answered (None: the role has none)


class Meter:
    """Counts the requests of one call and sums their wall time: the time
    from sending a request to its answer or error, over every attempt (retries
    included, as tokens are), but not the waits between attempts (backoff,
    Retry-After, rate limits, a free concurrency slot), which say nothing of
    the provider's speed. Used as ``with meter:`` around each request."""

    def __init__(self) -> None:
        self.requests = 0
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> "Meter":
        self.requests += 1
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._start

    @property
    def ms(self) -> float | None:
        return self.seconds * 1000.0 if self.requests else None  # no request, no latency


class CallFailed(Exception):
    """A call failed for good (after retries, or with an error no retry can fix).
    ``reason``: auth, transport (transient errors outlasted the retries),
    rejected (the provider refused the request), empty or truncated;
    ``usage`` and ``cost``: what the attempts that were thrown away cost;
    ``text``: the last answer, when there was one (a truncated answer's text);
    ``attempts`` and ``latency_ms``: the requests sent and their time (see Meter)."""

    def __init__(self, message: str, reason: str = "transport", usage: Mapping[str, int] | None = None, cost: float | None = 0.0,
                 text: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.usage = dict(usage or {"prompt_tokens": 0, "completion_tokens": 0})
        self.cost = cost
        self.text = text
        self.attempts = 0
        self.latency_ms: float | None = None


class RateLimiter:
    """Requests- and tokens-per-minute limits over a sliding one-minute window."""

    def __init__(self, rpm: int | None, tpm: int | None):
        self.rpm, self.tpm = rpm, tpm
        self.events: deque[tuple[float, int]] = deque()
        self.lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if self.rpm is None and self.tpm is None:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.events and now - self.events[0][0] >= 60.0:
                    self.events.popleft()
                used = sum(t for _, t in self.events)
                ok_r = self.rpm is None or len(self.events) < self.rpm
                ok_t = self.tpm is None or used + tokens <= self.tpm or not self.events
                if ok_r and ok_t:
                    self.events.append((now, tokens))
                    return
                await asyncio.sleep(max(0.01, 60.0 - (now - self.events[0][0])))


def _header(headers: Any, name: str) -> str | None:
    try:
        value = headers.get(name) if headers else None
    except Exception:  # noqa: BLE001 - foreign header objects
        return None
    return None if value is None else str(value)


def retry_after(exc: BaseException) -> float | None:
    """Seconds a provider asked to wait (Retry-After in seconds or as an HTTP
    date, or retry-after-ms), from wherever litellm put the headers: its own
    ``litellm_response_headers``, the exception's ``headers`` or its response's."""
    response = getattr(exc, "response", None)
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None), getattr(response, "headers", None)):
        ms = _header(headers, "retry-after-ms")
        value = _header(headers, "retry-after")
        try:
            if ms is not None:
                return min(MAX_RETRY_AFTER, max(0.0, float(ms) / 1000))
            if value is not None:
                return min(MAX_RETRY_AFTER, max(0.0, float(value)))
        except ValueError:
            pass
        if value is not None:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - time.time()))
    return None


_AUTH_TEXT = re.compile(r"missing credentials|api[_ ]?key|unauthori[sz]ed|authentication", re.I)


def classify(exc: BaseException) -> str:
    """auth (never retried), transient (retried) or rejected (fails at once).
    litellm reports a missing key as a 500 "Missing credentials", so the text counts too."""
    status = getattr(exc, "status_code", None)
    names = " ".join(t.__name__ for t in type(exc).__mro__)
    if status in (401, 403) or "Authentication" in names or "PermissionDenied" in names or (status != 429 and _AUTH_TEXT.search(str(exc))):
        return "auth"
    if isinstance(status, int):
        return "transient" if status in (408, 409, 429) or status >= 500 else "rejected"
    return "transient" if any(s in names for s in ("Timeout", "Connection", "RateLimit", "ServiceUnavailable", "InternalServer")) else "rejected"


class Caller:
    """Sends calls for one model role with its concurrency, rate limits and retries."""

    def __init__(self, config: ModelConfig, *, backoff_base: float = 1.0):
        self.config = config
        self.semaphore = asyncio.Semaphore(config.concurrency)
        self.limiter = RateLimiter(config.rpm, config.tpm)
        self.backoff_base = backoff_base
        self.resume_at = 0.0  # monotonic time before which the role sends nothing (a provider's Retry-After)
        self.auth_error: str | None = None  # once the provider refused the credentials, the role's calls fail at once
        self.router = make_router(config) if config.deployments else None

    async def __call__(
        self,
        messages: list[dict[str, str]],
        replicate: int = 0,
        *,
        slots: dict[str, str] | None = None,
        whole: bool = False,
        response_format: dict[str, Any] | None = None,
    ) -> Answer:
        """One answer; ``replicate`` > 0 asks for another sample of the same
        request (a provider seed, when one is set, is offset by it so that the
        samples differ; the simulator draws a different sample). ``slots``, the
        call's filled slots, tell the simulator where its answers are.
        ``whole``: a parser needs the answer whole, so one cut at max_tokens is
        not an answer; ``response_format``: structured output to ask for.
        The answer (or the CallFailed) carries the requests sent and their time."""
        meter = Meter()
        try:
            ans = await self._ask(meter, messages, replicate, slots, whole, response_format)
        except CallFailed as exc:
            exc.attempts, exc.latency_ms = meter.requests, meter.ms
            raise
        ans.attempts, ans.latency_ms = meter.requests, meter.ms
        return ans

    def request(self, replicate: int = 0, response_format: dict[str, Any] | None = None) -> dict[str, Any]:
        """The keyword arguments of a request besides model and messages:
        sampling (a provider seed offset by the replicate), the endpoint, the
        key named by api_key_env, structured output. The batch path writes the
        same fields into its request lines (execute.batch)."""
        cfg = self.config
        kwargs: dict[str, Any] = {k: v for k, v in cfg.sampling().items() if k not in ("sim", "endpoint", "structured_output")}
        if replicate and kwargs.get("seed") is not None:
            kwargs["seed"] = kwargs["seed"] + replicate
        kwargs.update({k: v for k, v in (("api_base", cfg.api_base), ("api_version", cfg.api_version)) if v})
        if cfg.api_key_env:
            kwargs["api_key"] = os.environ.get(cfg.api_key_env, "")
        if response_format is not None:
            kwargs["response_format"] = response_format
        return kwargs

    async def _ask(self, meter: Meter, messages: list[dict[str, str]], replicate: int, slots: dict[str, str] | None, whole: bool,
                   response_format: dict[str, Any] | None) -> Answer:
        cfg = self.config
        if cfg.is_sim:
            with meter:
                text, usage = sim.complete(cfg.model, messages, cfg.sampling(), replicate=replicate, slots=slots)
            if not text.strip():  # the simulator is deterministic: asking again would give the same
                raise CallFailed(f"empty: {cfg.model} gave an empty answer", "empty", usage)
            return Answer(text, usage, cfg.model, 0.0)
        lt = litellm()
        estimate = sum(len(m["content"]) for m in messages) // 4 + (cfg.max_tokens or 256)
        kwargs = self.request(replicate, response_format)
        send = lt.acompletion if self.router is None else self.router.acompletion  # a Router's deployments carry their endpoints
        spent = {"prompt_tokens": 0, "completion_tokens": 0}
        cost: float | None = 0.0  # of every attempt with an answer (None once one has no known price)
        attempt = empties = 0
        while True:
            if self.auth_error:
                raise CallFailed(self.auth_error, "auth", spent, cost)
            pause = self.resume_at - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            await self.limiter.acquire(estimate)
            try:
                async with self.semaphore:
                    with meter:
                        resp = await send(
                            model=cfg.model if self.router is None else ROLE_GROUP, messages=messages, timeout=cfg.timeout, num_retries=0, max_retries=0, **kwargs
                        )
            except Exception as exc:  # noqa: BLE001 - provider errors come in many types
                kind = classify(exc)
                message = scrub(f"{type(exc).__name__}: {exc}")[:500]
                if kind == "auth":
                    self.auth_error = message
                    raise CallFailed(message, "auth", spent, cost) from None
                if kind != "transient" or attempt >= cfg.max_retries:
                    raise CallFailed(message, "transport" if kind == "transient" else "rejected", spent, cost) from None
                wait = retry_after(exc)
                if wait is None:
                    wait = min(60.0, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.5)
                else:  # the provider said how long: the whole role waits, not just this call
                    self.resume_at = max(self.resume_at, time.monotonic() + wait)
                attempt += 1
                await asyncio.sleep(wait)
                continue
            choice = resp.choices[0]
            text = choice.message.content or ""
            finish = getattr(choice, "finish_reason", None)
            for k in spent:
                spent[k] += int(getattr(resp.usage, k, 0) or 0)
            price = _response_cost(lt, resp)
            cost = None if price is None or cost is None else cost + price
            bad = "empty" if not text.strip() else "truncated" if whole and finish == "length" else None
            if bad:
                # At temperature 0 the same request is cut at the same place again:
                # asking twice more would only pay for the same answer.
                if empties >= EMPTY_RETRIES or (bad == "truncated" and cfg.temperature == 0):
                    why = "an empty answer" if bad == "empty" else f"an answer cut at max_tokens={cfg.max_tokens} (raise max_tokens)"
                    raise CallFailed(f"{bad}: the model gave {why} {empties + 1} times", bad, spent, cost, text)
                empties += 1
                continue
            return Answer(text, dict(spent), str(getattr(resp, "model", cfg.model) or cfg.model), cost, deployment=self._deployment(resp))

    def _deployment(self, resp: Any) -> str | None:
        """The deployment that answered, from the id the Router put on the response."""
        if self.router is None:
            return None
        return (getattr(resp, "_hidden_params", None) or {}).get("model_id")


ROLE_GROUP, RESERVE_GROUP = "role", "reserve"  # the Router's model groups: the deployments tried first, and the fallbacks


def make_router(cfg: ModelConfig) -> Any:
    """A litellm Router over the role's deployments. Each deployment's id is
    its label (name or api_base), which the Router puts on the responses it
    gives, so the transcript can say who answered without any key. The
    Router's retries are off (the Caller retries), as are its cooldowns,
    which would otherwise take a deployment out for a while after a few
    errors the Caller is still retrying; fallbacks are a second model group
    the Router tries, within the same request, when one to the first failed."""
    lt = litellm()
    reserve = set(cfg.fallbacks or ())
    model_list = []
    for i, d in enumerate(cfg.deployments or ()):
        params: dict[str, Any] = {"model": d.model or cfg.model}
        params.update({k: v for k, v in (("api_base", d.api_base), ("api_version", d.api_version), ("rpm", d.rpm), ("tpm", d.tpm),
                                          ("weight", d.weight)) if v is not None})
        if d.api_key_env:
            params["api_key"] = os.environ.get(d.api_key_env, "")  # held in memory only, as for a role's api_key_env
        label = d.label(i)
        model_list.append({"model_name": RESERVE_GROUP if label in reserve else ROLE_GROUP, "litellm_params": params, "model_info": {"id": label}})
    return lt.Router(model_list=model_list, routing_strategy=cfg.routing, num_retries=0, max_fallbacks=len(reserve) or None,
                     fallbacks=[{ROLE_GROUP: [RESERVE_GROUP]}] if reserve else [], timeout=cfg.timeout, disable_cooldowns=True)


def _response_cost(lt: Any, resp: Any) -> float | None:
    cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")  # litellm already priced it
    if cost is None:
        try:
            cost = float(lt.completion_cost(completion_response=resp))
        except Exception:  # noqa: BLE001 - no price known for this model
            cost = None
    return cost


def check_model_names(models: Mapping[str, ModelConfig], loc: Any) -> None:
    """Every role's model names a provider litellm can route (or one of the
    simulator's models): a typo is a spec error at its line, before anything is
    planned or sent. A provider-qualified name litellm does not list
    (``openai/<new model>``) is accepted: providers serve more than litellm knows."""
    for role, path, cfg in each_endpoint(models):
        field = path if path[-1] == "model" else ("models", path[1], "model")  # a deployment without its own model uses the role's
        where = f"{loc.where(field)}: {'.'.join(map(str, field))}"
        if cfg.is_sim:
            if cfg.model not in SIM_MODELS:
                raise SpecError(f"{where}: unknown simulated model {cfg.model!r}; the simulator has {' and '.join(SIM_MODELS)}.")
            continue
        if _provider_prefix(cfg.model) in KEY_VARIABLES:
            continue  # litellm routes <provider>/<any name> for these
        lt = litellm()
        try:
            lt.get_llm_provider(cfg.model, api_base=cfg.api_base)
        except Exception:  # noqa: BLE001 - litellm raises its BadRequestError
            close = difflib.get_close_matches(cfg.model, [*lt.model_cost, *SIM_MODELS], n=3, cutoff=0.7)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise SpecError(
                f"{where}: litellm knows no provider for {cfg.model!r}. Name it as provider/model, e.g. openai/gpt-4o-mini, "
                f"anthropic/claude-3-5-haiku-20241022, ollama/llama3, or openai/<name> with api_base for an OpenAI-compatible server.{hint}"
            ) from None


def each_endpoint(models: Mapping[str, ModelConfig]) -> list[tuple[str, tuple, ModelConfig]]:
    """Every (role, spec path of its model, config) to check before sending:
    a role with deployments stands for each of them (``judge.deployments[1]``
    in messages, which the spec loader locates at that entry), with that
    deployment's model, endpoint and key variable."""
    out = []
    for role, cfg in models.items():
        if not cfg.deployments:
            out.append((role, ("models", role, "model"), cfg))
            continue
        for i, (d, one) in enumerate(zip(cfg.deployments, cfg.deployment_configs())):
            out.append((f"{role}.deployments[{i}]", ("models", role, "deployments", i, "model" if d.model else "api_base"), one))
    return out


def preflight(models: Mapping[str, ModelConfig], source: str, *, reach: bool = True, connect_timeout: float = 3.0) -> list[SpecError]:
    """Credentials and endpoints, before anything is sent: a missing API key
    is a spec error naming the environment variable to set; with ``reach``, an
    ``api_base`` nothing listens on is one too (a TCP connection, no request).
    A fallback deployment's problem is returned instead of raised, for the
    caller to show as a warning: fallbacks are reserves, and the run can go
    on without them (a request the primaries fail then fails as it would
    with no fallback)."""
    reserves = {f"{role}.deployments[{i}]" for role, cfg in models.items() for i, d in enumerate(cfg.deployments or ())
                if d.label(i) in (cfg.fallbacks or ())}
    warnings: list[SpecError] = []
    for role, _, cfg in each_endpoint(models):
        try:
            _check_endpoint(role, cfg, source, reach, connect_timeout)
        except SpecError as exc:
            if role not in reserves:
                raise
            exc.args = (f"{exc} (a fallback: the run goes on without it)",)
            warnings.append(exc)
    return warnings


def _check_endpoint(role: str, cfg: ModelConfig, source: str, reach: bool, connect_timeout: float) -> None:
    """One endpoint's key variable and, with ``reach``, its api_base; ``role`` names it in messages."""
    if cfg.is_sim:
        return
    if cfg.api_key_env:
        if not os.environ.get(cfg.api_key_env):
            raise SpecError(
                f"{source}: models.{role}.api_key_env: the environment variable {cfg.api_key_env} is not set; "
                f"set it to the key for {cfg.model} (export {cfg.api_key_env}=...) and run again."
            )
    else:
        known = KEY_VARIABLES.get(_provider_prefix(cfg.model) or "")
        if known is not None:
            missing = [] if any(k in os.environ for k in known) else list(known)
        else:
            lt = litellm()
            default_base = lt.get_llm_provider(cfg.model, api_base=cfg.api_base)[3]
            missing = [
                k for k in lt.validate_environment(cfg.model, api_base=cfg.api_base).get("missing_keys", [])
                if not (k.endswith("_API_BASE") and (cfg.api_base or default_base)) and not (k.endswith("_API_VERSION") and cfg.api_version)
            ]
        google = _provider_prefix(cfg.model) == "vertex_ai"  # Google credentials, not an API key
        aws = _provider_prefix(cfg.model) in ("bedrock", "sagemaker")
        if missing and aws and _aws_credentials():  # a profile or an instance role: boto3's chain finds what the variables do not hold
            missing = []
        if missing:
            local = " (a local server that checks no key accepts any value)" if cfg.api_base else ""
            names = " or ".join(missing) if known else ", ".join(missing)  # the table's are alternatives, litellm's all needed
            how = ("and provide Google credentials (GOOGLE_APPLICATION_CREDENTIALS or gcloud's application-default login)" if google
                   else "or name an AWS profile with AWS_PROFILE" if aws
                   else f"or name the variable that holds the key with models.{role}.api_key_env")
            raise SpecError(
                f"{source}: models.{role}: no credentials for {cfg.model}: litellm reads {names} from the environment, "
                f"and {'it is' if len(missing) == 1 else 'none is' if known else 'they are'} not set. Set "
                f"{'it' if len(missing) == 1 else 'one' if known else 'them'}{local}, e.g. export {missing[0]}=..., {how}."
            )
        if google and not installed("google.auth"):
            raise SpecError(f"{source}: models.{role}: litellm signs Vertex AI requests with google-auth, which is not installed here; "
                            "install it with pip install 'persona-exp[vertex]' and run again.")
    if reach and cfg.api_base:
        _reachable(cfg.api_base, f"{source}: models.{role}.api_base", connect_timeout)


def _aws_credentials() -> bool:
    """Whether boto3 (installed with litellm) finds AWS credentials: variables, a profile, an instance role."""
    try:
        import boto3

        return boto3.Session().get_credentials() is not None
    except Exception:  # noqa: BLE001 - a broken profile file: as good as none
        return False


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (an optional extra's, e.g. google.auth), without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # its parent package is missing
        return False


def _reachable(url: str, where: str, timeout: float) -> None:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SpecError(f"{where}: {url!r} is not a URL (e.g. http://127.0.0.1:8000/v1).") from None
    if not parts.hostname:
        raise SpecError(f"{where}: {url!r} is not a URL (e.g. http://127.0.0.1:8000/v1).")
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise SpecError(f"{where}: nothing answers at {url} ({why} after trying {parts.hostname}:{port}); start the server or correct the address.") from None
