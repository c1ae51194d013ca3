"""Content keys for plan nodes and LLM calls.

A node's key is ``xxh3_128(canonical JSON of (kind, params, input keys))``, so
keys form a Merkle DAG: a node changes exactly when its own parameters or the
key of something it reads changes. An LLM call's key covers what changes the
answer (model, fully rendered messages, sampling parameters, replicate index)
and nothing else: timeouts, retries, concurrency, API keys and endpoints are
left out, so tuning how calls are sent never invalidates the cache.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import xxhash

from persona_exp.errors import InvalidArgumentError

# Request fields that can change a model's output; every other request field is ignored.
SAMPLING_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "seed",
        "stop",
        "response_format",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "reasoning_effort",
        "sim",  # settings of the offline simulator (planted effects, noise, strength)
    }
)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, shortest round-trip floats; NaN refused."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError as exc:  # NaN or infinity somewhere in the parameters
        raise InvalidArgumentError(f"cannot hash parameters containing NaN or infinity: {exc}") from None
    except TypeError as exc:
        raise InvalidArgumentError(f"cannot hash parameters: {exc}") from None


def node_key(kind: str, params: Mapping[str, Any], inputs: Sequence[str] = ()) -> str:
    """Key of a plan node: 32 hex digits of xxh3-128."""
    return xxhash.xxh3_128_hexdigest(canonical_json([kind, params, list(inputs)]))


def call_key(model: str, messages: Sequence[Mapping[str, Any]], sampling: Mapping[str, Any], replicate: int = 0) -> str:
    """Key of one LLM call; sampling fields outside ``SAMPLING_FIELDS`` do not count."""
    kept = {k: v for k, v in sampling.items() if k in SAMPLING_FIELDS and v is not None}
    return node_key("llm_call", {"model": model, "messages": list(messages), "sampling": kept, "replicate": replicate})
