"""Content keys for plan nodes and LLM calls.

A node's key is ``xxh3_128(canonical JSON of (kind, params, input keys))``, so
keys form a Merkle DAG: a node changes exactly when its own parameters or the
key of something it reads changes. An LLM call's key covers what can change
the answer (model, endpoint, fully rendered messages, sampling parameters,
replicate index, the structured form asked for) and nothing else: timeouts,
retries, concurrency, rate limits and API keys are left out, so tuning how calls
are sent never invalidates the cache. The endpoint (api_base, api_version, or
the name a role gives it with ``cache_as``) is absent for a provider's default
endpoint, so such keys are the same as before endpoints counted.
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
        "endpoint",  # which server answers (see ModelConfig.endpoint)
        "sim",  # settings of the offline simulator (planted effects, noise, strength)
    }
)


# One encoder for all keys (json.dumps would build a new one per call).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_string = json.encoder.encode_basestring  # the C escaper the encoder itself uses for ensure_ascii=False


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, shortest round-trip floats; NaN refused."""
    try:
        return _ENCODER.encode(obj).encode()
    except ValueError as exc:  # NaN or infinity somewhere in the parameters
        raise InvalidArgumentError(f"cannot hash parameters containing NaN or infinity: {exc}") from None
    except TypeError as exc:
        raise InvalidArgumentError(f"cannot hash parameters: {exc}") from None


def node_key(kind: str, params: Mapping[str, Any], inputs: Sequence[str] = ()) -> str:
    """Key of a plan node: 32 hex digits of xxh3-128."""
    return xxhash.xxh3_128_hexdigest(canonical_json([kind, params, list(inputs)]))


def sampling_json(sampling: Mapping[str, Any]) -> bytes:
    """Canonical JSON of the sampling fields that count (see ``call_key``)."""
    return canonical_json({k: v for k, v in sampling.items() if k in SAMPLING_FIELDS and v is not None})


def _message_json(m: Mapping[str, Any]) -> bytes:
    if len(m) == 2 and "role" in m and "content" in m and isinstance(m["content"], str):
        # The common case, written directly (same bytes as canonical_json, without sorting a dict).
        if isinstance(m["role"], str):
            return b'{"content":' + _string(m["content"]).encode() + b',"role":' + _string(m["role"]).encode() + b"}"
    return canonical_json(m)


def call_key(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    sampling: Mapping[str, Any],
    replicate: int = 0,
    *,
    inputs: Mapping[str, str] | None = None,
    sampling_bytes: bytes | None = None,
    response_format: str | None = None,
) -> str:
    """Key of one LLM call: ``node_key("llm_call", {inputs, messages, model,
    replicate, response_format, sampling})``, with sampling fields outside
    ``SAMPLING_FIELDS`` left out, ``inputs`` (slot name -> key of the call that
    fills it) only when given, and ``response_format`` (the parser whose JSON
    schema the call asks for as structured output) only when given.

    The canonical JSON is assembled from its parts so a plan can serialize each
    role's sampling settings once (``sampling_bytes``) instead of once per call;
    the bytes are exactly those of ``canonical_json`` of the whole structure.
    """
    s = sampling_bytes if sampling_bytes is not None else sampling_json(sampling)
    head = b'["llm_call",{'
    if inputs:
        if all(type(k) is str and type(v) is str for k, v in inputs.items()):  # slot name -> key: written directly, same bytes
            head += b'"inputs":{' + b",".join(_string(k).encode() + b":" + _string(v).encode() for k, v in sorted(inputs.items())) + b"},"
        else:
            head += b'"inputs":' + canonical_json(dict(inputs)) + b","
    body = (
        head + b'"messages":[' + b",".join(_message_json(m) for m in messages) + b'],"model":'
        + (_string(model).encode() if isinstance(model, str) else canonical_json(model))
        + b',"replicate":' + (str(replicate).encode() if type(replicate) is int else canonical_json(replicate))
        + (b',"response_format":' + _string(response_format).encode() if response_format is not None else b"")
        + b',"sampling":' + s + b"},[]]"
    )
    return xxhash.xxh3_128_hexdigest(body)
