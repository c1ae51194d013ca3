"""Diverse candidate answers (WikiPersonas section 3.3, step 3, and appendix B).

Plain sampling barely changes what an answer says, so candidates come from a
chain-of-thought prompt that first picks an axis and a category of user and
then answers for that category, sampled ``n`` times. Before judging, the
candidates are filtered for comparable quality and for diversity. The paper
clusters sentence embeddings and checks a generic reward model; with no
embedding or reward model offline, this filter is lexical and documented as
such: candidates must parse and have a length within a band around the median
(length is the quality signal generic reward models lean on most), then a
greedy farthest-point pass keeps up to ``keep`` candidates whose word-set
Jaccard similarity to every kept one stays below ``max_similarity``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from persona_exp.plan import Plan
from persona_exp.steps.calls import add_call

_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class Selection:
    """What the filter did with one question's candidates."""

    kept: list[int]  # indices into the candidates, in the order picked
    failed: int  # candidates whose call failed or did not parse
    out_of_band: int  # dropped for their length
    too_similar: int  # dropped as near-duplicates of a kept one


def sample_candidates(ctx: Any, step: str, role: str, template: str, questions: Mapping[str, Mapping[str, str]], n: int) -> tuple[Plan, dict[str, list[str]], Mapping[str, Any]]:
    """``n`` samples (replicates) of ``template`` per question id, parsed with
    ``cot_response``, answered in one stage. Returns the stage plan, the call
    keys per question id and the results."""
    plan = Plan()
    keys = {qid: [add_call(plan, ctx, step, role, template, values, parser="cot_response", replicate=r) for r in range(n)] for qid, values in questions.items()}
    return plan, keys, ctx.run_stage(plan)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


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
    kept = [min(band, key=lambda i: (abs(lengths[i] - median), i))]
    pool = [i for i in band if i != kept[0]]
    too_similar = 0
    while pool and len(kept) < keep:
        nearest = {i: max(jaccard(words[i], words[k]) for k in kept) for i in pool}
        close = [i for i in pool if nearest[i] >= max_similarity]
        too_similar += len(close)
        pool = [i for i in pool if nearest[i] < max_similarity]
        if not pool:
            break
        best = min(pool, key=lambda i: (nearest[i], i))
        kept.append(best)
        pool.remove(best)
    return Selection(kept, failed, len(ok) - len(band), too_similar)
