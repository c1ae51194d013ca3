"""Calling models: litellm for every provider, an in-process path for `sim/`.

litellm is imported lazily (it takes seconds) and told to use its bundled price
table, so neither the CLI's start-up nor an offline run touches the network.
Transient failures (429, 5xx, timeouts, connection errors) are retried with
exponential backoff and jitter, honouring Retry-After; other errors fail the
call at once. Error texts are scrubbed of secret-looking environment values
before they are stored or shown.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from persona_exp.execute import sim
from persona_exp.spec.models import ModelConfig

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
            settings = {"sim": optional_params.get("sim") or (optional_params.get("extra_body") or {}).get("sim")}
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
    usage: dict[str, int]
    model: str
    cost: float | None


class CallFailed(Exception):
    """A call failed for good (after retries, or with an error no retry can fix)."""


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


def _retry_after(exc: BaseException) -> float | None:
    for headers in (getattr(exc, "headers", None), getattr(getattr(exc, "response", None), "headers", None)):
        try:
            value = headers.get("retry-after") if headers else None
        except Exception:  # noqa: BLE001 - foreign header objects
            value = None
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _transient(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status == 429 or status == 408 or status >= 500
    name = type(exc).__name__
    return any(s in name for s in ("Timeout", "Connection", "RateLimit", "ServiceUnavailable", "InternalServer"))


class Caller:
    """Sends calls for one model role with its concurrency, rate limits and retries."""

    def __init__(self, config: ModelConfig, *, backoff_base: float = 1.0):
        self.config = config
        self.semaphore = asyncio.Semaphore(config.concurrency)
        self.limiter = RateLimiter(config.rpm, config.tpm)
        self.backoff_base = backoff_base

    async def __call__(self, messages: list[dict[str, str]], replicate: int = 0) -> Answer:
        """One answer; ``replicate`` > 0 asks for another sample of the same
        request (a provider seed, when one is set, is offset by it so that the
        samples differ; the simulator draws a different sample)."""
        cfg = self.config
        if cfg.is_sim:
            text, usage = sim.complete(cfg.model, messages, cfg.sampling(), replicate=replicate)
            return Answer(text, usage, cfg.model, 0.0)
        lt = litellm()
        estimate = sum(len(m["content"]) for m in messages) // 4 + (cfg.max_tokens or 256)
        kwargs: dict[str, Any] = {k: v for k, v in cfg.sampling().items()}
        if replicate and kwargs.get("seed") is not None:
            kwargs["seed"] = kwargs["seed"] + replicate
        if cfg.api_base:
            kwargs["api_base"] = cfg.api_base
        attempt = 0
        while True:
            await self.limiter.acquire(estimate)
            try:
                async with self.semaphore:
                    resp = await lt.acompletion(
                        model=cfg.model, messages=messages, timeout=cfg.timeout, num_retries=0, max_retries=0, **kwargs
                    )
            except Exception as exc:  # noqa: BLE001 - provider errors come in many types
                if not _transient(exc) or attempt >= cfg.max_retries:
                    raise CallFailed(scrub(f"{type(exc).__name__}: {exc}")[:500]) from None
                wait = _retry_after(exc)
                if wait is None:
                    wait = min(60.0, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.5)
                attempt += 1
                await asyncio.sleep(wait)
                continue
            text = resp.choices[0].message.content or ""
            usage = {
                "prompt_tokens": int(getattr(resp.usage, "prompt_tokens", 0) or 0),
                "completion_tokens": int(getattr(resp.usage, "completion_tokens", 0) or 0),
            }
            cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")  # litellm already priced it
            if cost is None:
                try:
                    cost = float(lt.completion_cost(completion_response=resp))
                except Exception:  # noqa: BLE001 - no price known for this model
                    cost = None
            return Answer(text, usage, str(getattr(resp, "model", cfg.model) or cfg.model), cost)
