"""Diverse candidate answers (WikiPersonas section 3.3, step 3, and appendix B).

Plain sampling barely changes what an answer says, so candidates come from a
chain-of-thought prompt that first picks an axis and a category of user and
then answers for that category, sampled ``n`` times (paper: 50 at temperature
2.0, top_p 0.8). Before judging, the candidates are filtered for comparable
quality and for diversity by the stages a spec lists (``experiment.filter``),
in order, each narrowing the pool the next one sees:

- ``lexical`` (the default, free): candidates must parse and have a length
  within a band around the median (length is the quality signal generic
  reward models lean on most), then a greedy farthest-point pass keeps up to
  ``keep`` whose word-set Jaccard similarity to every kept one stays below
  ``max_similarity``.
- ``embedding`` (paper B.3): the same farthest-point pass on the cosine
  similarity of text embeddings (``persona_exp.execute.embed``: any litellm
  provider, cached; ``sim/embed`` offline). The paper runs k-means with k = 4
  and keeps per cluster the answer farthest from the other centres; a greedy
  farthest-point pass picks spread-out answers the same way without a
  clustering step whose result depends on its initialisation.
- ``reward`` (paper B.2): a model role scores each candidate (an
  LLM-as-judge prompt answering with a number); candidates under
  ``min_score`` are dropped, and with ``span`` the ``span`` candidates of the
  smallest score range are kept (paper: 20 of 50), so that the pair a judge
  sees differs in whom it suits, not in generic quality. A candidate whose
  score cannot be read is kept and counted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping, Sequence, Union

import numpy as np
from pydantic import Field

from persona_exp.plan import Plan
from persona_exp.spec.models import Strict
from persona_exp.steps.calls import add_call
from persona_exp.steps.templates import Templated

_WORD = re.compile(r"[a-z0-9']+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

REWARD_SCORE = (
    "You are a generic reward model. Rate how good the response below is as an answer to the question: helpful, "
    "correct, clear and harmless, whoever asks. Do not reward a particular opinion or audience.\n\n"
    "Question: {question}\n\n"
    "Response: {response}\n\n"
    "Reply with one number from 1 (very poor) to 10 (excellent) and nothing else."
)


class LexicalStage(Strict):
    kind: Literal["lexical"] = "lexical"
    length_band: float = Field(2.0, gt=1, le=100, description="keep candidates between median/band and median*band words")
    max_similarity: float = Field(0.8, gt=0, le=1, description="word-set Jaccard similarity above which a candidate is a near-duplicate")


class EmbeddingStage(Strict):
    kind: Literal["embedding"] = "embedding"
    model: str = Field("sim/embed", min_length=1, description="a litellm embedding model (any provider), or sim/embed offline")
    api_base: str | None = Field(None, description="the embedding endpoint, when not the provider's default")
    max_similarity: float = Field(0.9, gt=-1, le=1, description="cosine similarity above which a candidate is a near-duplicate of a kept one")


class RewardStage(Templated):
    TEMPLATE_FIELDS = {"template": ("question", "response")}
    kind: Literal["reward"] = "reward"
    role: str = Field("reward", min_length=1, description="the model role that scores candidates (defined under models)")
    min_score: float | None = Field(None, ge=-1e9, le=1e9, description="drop candidates scored below this (on the scale the template asks for)")
    span: int | None = Field(None, ge=2, le=1000, description="keep this many candidates of the smallest score range (paper: 20 of 50)")
    template: str = REWARD_SCORE


FilterStage = Annotated[Union[LexicalStage, EmbeddingStage, RewardStage], Field(discriminator="kind")]


@dataclass(frozen=True)
class Selection:
    """What the filter did with one question's candidates."""

    kept: list[int]  # indices into the candidates, in the order picked
    failed: int  # candidates whose call failed or did not parse
    out_of_band: int  # dropped for their length
    too_similar: int  # dropped as near-duplicates of a kept one
    low_reward: int = 0  # dropped by a reward stage (under min_score or outside the span)
    unscored: int = 0  # kept by a reward stage without a readable score


def sample_candidates(ctx: Any, step: str, role: str, template: str, questions: Mapping[str, Any], n: int,
                      templates: Mapping[str, str] | None = None, sampling: Mapping[str, Any] | None = None) -> tuple[Plan, dict[str, list[str]], Mapping[str, Any]]:
    """``n`` samples (replicates) of ``template`` per question id (or of
    ``templates[qid]``), parsed with ``cot_response``, answered in one stage.
    A question's values are a mapping, or a function of the sample index
    (a category per sample);
    ``sampling`` overrides the role's sampling fields for these calls only.
    Returns the stage plan, the call keys per question id and the results."""
    plan = Plan()
    keys = {}
    for qid, values in questions.items():
        keys[qid] = [_sampled_call(plan, ctx, step, role, (templates or {}).get(qid, template),
                                    values(r) if callable(values) else values, sampling, r) for r in range(n)]
    return plan, keys, ctx.run_stage(plan)


def _sampled_call(plan: Plan, ctx: Any, step: str, role: str, template: str, values: Mapping[str, str], sampling: Mapping[str, Any] | None, r: int) -> str:
    if not sampling:
        return add_call(plan, ctx, step, role, template, values, parser="cot_response", replicate=r)
    from persona_exp.steps.calls import fill_template

    base = ctx.sampling.get(role)
    if base is None:
        base = ctx.sampling[role] = ctx.models[role].sampling()
    merged = {**base, **{k: v for k, v in sampling.items() if v is not None}}
    return plan.add(step, role, ctx.models[role].model, [{"role": "user", "content": fill_template(template, values)}], merged,
                    parser="cot_response", replicate=r)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _farthest(pool: list[int], keep: int, first: int, similarity: Any, max_similarity: float) -> tuple[list[int], int]:
    """Greedy farthest-point selection from ``first``: each next pick is the
    candidate least similar to those kept; candidates at or above
    ``max_similarity`` to a kept one are dropped. Returns (kept, dropped)."""
    kept = [first]
    pool = [i for i in pool if i != first]
    dropped = 0
    while pool and len(kept) < keep:
        nearest = {i: max(similarity(i, k) for k in kept) for i in pool}
        dropped += sum(1 for i in pool if nearest[i] >= max_similarity)
        pool = [i for i in pool if nearest[i] < max_similarity]
        if not pool:
            break
        best = min(pool, key=lambda i: (nearest[i], i))
        kept.append(best)
        pool.remove(best)
    return kept, dropped


def select_diverse(texts: Sequence[str | None], keep: int, *, length_band: float = 2.0, max_similarity: float = 0.8) -> Selection:
    """Indices of up to ``keep`` comparable, mutually different candidates
    (``None`` = a failed candidate). The first pick is the candidate closest to
    the median length; each next pick is the one least similar to those kept."""
    ok = [i for i, t in enumerate(texts) if t]
    failed = len(texts) - len(ok)
    if not ok:
        return Selection([], failed, 0, 0)
    lengths = {i: len(texts[i].split()) for i in ok}  # type: ignore[union-attr]
    median = sorted(lengths.values())[len(ok) // 2]
    band = [i for i in ok if median / length_band <= lengths[i] <= median * length_band]
    words = {i: set(_WORD.findall(texts[i].lower())) for i in band}  # type: ignore[union-attr]
    first = min(band, key=lambda i: (abs(lengths[i] - median), i))
    kept, too_similar = _farthest(band, keep, first, lambda i, k: jaccard(words[i], words[k]), max_similarity)
    return Selection(kept, failed, len(ok) - len(band), too_similar)


def select_by_embedding(pool: Sequence[int], vectors: Mapping[int, Sequence[float]], keep: int, max_similarity: float) -> tuple[list[int], int]:
    """Up to ``keep`` candidates of ``pool`` spread out in embedding space
    (cosine); the first is the one nearest the pool's centre (the most typical
    answer). Returns (kept, dropped as near-duplicates)."""
    if not pool:
        return [], 0
    unit = {i: np.asarray(vectors[i], dtype=float) / (np.linalg.norm(vectors[i]) or 1.0) for i in pool}
    centre = np.mean([unit[i] for i in pool], axis=0)
    first = max(pool, key=lambda i: (float(unit[i] @ centre), -i))
    return _farthest(list(pool), keep, first, lambda i, k: float(unit[i] @ unit[k]), max_similarity)


def read_score(text: str | None) -> float | None:
    """The first number of a reward answer (``8``, ``Score: 7.5``), or None."""
    m = _NUMBER.search(text or "")
    return float(m.group()) if m and math.isfinite(float(m.group())) else None


def select_by_reward(pool: Sequence[int], scores: Mapping[int, float | None], min_score: float | None, span: int | None) -> tuple[list[int], int, int]:
    """The candidates of ``pool`` a reward stage keeps: scored ones at or above
    ``min_score``, then the ``span`` of them whose scores lie closest together
    (a window of sorted scores with the smallest max - min; ties: the higher
    window). Unscored candidates are kept. Returns (kept, dropped, unscored)."""
    unscored = [i for i in pool if scores.get(i) is None]
    scored = [i for i in pool if scores.get(i) is not None and (min_score is None or scores[i] >= min_score)]  # type: ignore[operator]
    if span is not None and len(scored) > span:
        ranked = sorted(scored, key=lambda i: (scores[i], i))
        start = min(range(len(ranked) - span + 1), key=lambda s: (scores[ranked[s + span - 1]] - scores[ranked[s]], -s))  # type: ignore[operator]
        scored = ranked[start: start + span]
    kept = [i for i in pool if i in set(scored) or i in set(unscored)]
    return kept, len(pool) - len(kept), len(unscored)


def filter_candidates(texts: Sequence[str | None], keep: int, stages: Sequence[Any], *, vectors: Mapping[int, Mapping[int, Sequence[float]]] | None = None,
                      scores: Mapping[int, Mapping[int, float | None]] | None = None) -> Selection:
    """Runs the filter ``stages`` (in order) over one question's candidates.
    ``vectors[s]`` and ``scores[s]`` are stage ``s``'s embeddings and reward
    scores by candidate index. Without a diversity stage the first ``keep``
    survivors are kept."""
    pool = [i for i, t in enumerate(texts) if t]
    failed, out_of_band, too_similar, low, unscored = len(texts) - len(pool), 0, 0, 0, 0
    for s, stage in enumerate(stages):
        if stage.kind == "lexical":
            sub = select_diverse([texts[i] if i in set(pool) else None for i in range(len(texts))], keep,
                                 length_band=stage.length_band, max_similarity=stage.max_similarity)
            pool, out_of_band, too_similar = sub.kept, out_of_band + sub.out_of_band, too_similar + sub.too_similar
        elif stage.kind == "embedding":
            pool, dropped = select_by_embedding(pool, (vectors or {})[s], keep, stage.max_similarity)
            too_similar += dropped
        else:
            pool, dropped, missing = select_by_reward(pool, (scores or {})[s], stage.min_score, stage.span)
            low, unscored = low + dropped, unscored + missing
    return Selection(pool[:keep], failed, out_of_band, too_similar, low, unscored)


def embed_candidates(ctx: Any, stage: EmbeddingStage, texts: Sequence[str]) -> dict[str, list[float]]:
    """The embeddings of ``texts`` for an embedding stage, through the run's
    call cache. A dry plan (``persona-exp plan``) asks no provider: texts not
    embedded yet stop the plan there, like staged calls not yet answered."""
    from persona_exp.execute.embed import SIM_MODEL, cached, embed
    from persona_exp.steps.context import StagePending

    stager = ctx.stage
    cache_path = getattr(stager, "cache_path", None)
    if stage.model != SIM_MODEL and getattr(stager, "dry", False):
        have = cached(stage.model, texts, cache_path, stage.api_base)
        missing = len(set(texts) - set(have))
        if missing:
            raise StagePending(f"embedding ({stage.model})", stager.plan, missing)
        return have
    return embed(stage.model, texts, cache_path, api_base=stage.api_base)
