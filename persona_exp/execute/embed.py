"""Text embeddings, for the diversity stage of WikiPersonas' candidate filter.

Any provider litellm knows answers through ``litellm.aembedding``; every
vector is stored in the call cache under a key made of the model, the
endpoint (``api_base``: another server is another model) and the input text, so a rerun (or another experiment embedding the same text) asks
nothing again. ``sim/embed`` is the offline model: a hashed bag of words and
word pairs, L2-normalised, so texts that share words are close (cosine) and
unrelated ones are not, which is all a diversity filter needs to be tested;
it is not a semantic model.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import xxhash

from persona_exp.errors import ExecutionError
from persona_exp.plan.keys import node_key

SIM_MODEL = "sim/embed"
SIM_DIM = 256
_WORD = re.compile(r"[a-z0-9']+")
_BATCH = 64  # inputs per request: well under the providers' limits


def cache_key(model: str, text: str, api_base: str | None = None) -> str:
    """The cache key of one text's embedding: the model, its endpoint and the text
    (keyed like every call, see plan.keys)."""
    return node_key("embed", {"model": model, "api_base": api_base, "text": text})


def sim_embed(text: str) -> list[float]:
    """The offline embedding: hashed words and adjacent word pairs."""
    words = _WORD.findall(text.lower())
    v = np.zeros(SIM_DIM)
    for token in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))]:
        h = xxhash.xxh3_64_intdigest(token.encode())
        v[h % SIM_DIM] += 1.0 if (h >> 32) & 1 else -1.0
    n = float(np.linalg.norm(v))
    return (v / n).tolist() if n else v.tolist()


async def _remote(model: str, texts: list[str], api_base: str | None) -> list[list[float]]:
    from persona_exp.execute.llm import litellm

    lt = litellm()
    out: list[list[float]] = []
    for i in range(0, len(texts), _BATCH):
        batch = texts[i: i + _BATCH]
        kwargs = {"api_base": api_base} if api_base else {}
        try:
            resp = await lt.aembedding(model=model, input=batch, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any provider error becomes one clear message
            raise ExecutionError(f"embedding with {model!r} failed ({type(exc).__name__}: {str(exc)[:300]}); check the model name "
                                 "and the provider's credentials, or use model: sim/embed to run offline.") from None
        data = sorted(resp.data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
        out.extend([list(map(float, d["embedding"] if isinstance(d, dict) else d.embedding)) for d in data])
    if len(out) != len(texts):
        raise ExecutionError(f"embedding with {model!r} returned {len(out)} vectors for {len(texts)} texts; the provider's answer is incomplete.")
    return out


def cached(model: str, texts: Sequence[str], cache_path: Path | None, api_base: str | None = None) -> dict[str, list[float]]:
    """The embeddings of ``texts`` already in the cache (text -> vector)."""
    if cache_path is None or not Path(cache_path).exists():
        return {}
    from persona_exp.execute.cache import CallCache

    keys = {cache_key(model, t, api_base): t for t in texts}
    with CallCache(cache_path) as cache:
        found = cache.get_many(keys)
    return {keys[k]: json.loads(c.response) for k, c in found.items()}


def embed(model: str, texts: Sequence[str], cache_path: Path | None, *, api_base: str | None = None) -> dict[str, list[float]]:
    """Embeddings of ``texts`` (text -> vector): from the cache, else computed
    (``sim/embed``) or asked of the provider, then stored."""
    unique = list(dict.fromkeys(texts))
    if model == SIM_MODEL:
        return {t: sim_embed(t) for t in unique}
    have = cached(model, unique, cache_path, api_base)
    todo = [t for t in unique if t not in have]
    if todo:
        vectors = asyncio.run(_remote(model, todo, api_base))
        if cache_path is not None:
            from persona_exp.execute.cache import CallCache

            with CallCache(cache_path) as cache:
                for t, v in zip(todo, vectors):
                    cache.put(cache_key(model, t, api_base), json.dumps(v), {"prompt_tokens": len(t.split())}, model)
        have.update(zip(todo, vectors))
    return have
