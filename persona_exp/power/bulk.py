"""The simulated judge in bulk: every pairwise verdict of a design at once.

The per-call simulator (``persona_exp.execute.sim``) decides one judgment as
``utility(a) - utility(b) + noise > 0``, where a utility is
``quality * q . phi + sum over the persona's attributes of effect * v . phi``
(``phi`` the answer's word features, ``q`` and ``v`` seeded vectors). That is
linear in the features, so over all judgments of a design it is a few matrix
products: features of each distinct answer once, the difference ``phi_a -
phi_b`` per judgment, and each persona (attribute, value) vector dotted with
it once. Effects only reweigh those dot products, so trying another planted
effect costs one weighted sum, and the noise is an input (drawn vectorized
here, or taken from the per-call simulator to check that both agree).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from persona_exp.execute import sim as S

_SLOT = re.compile("\x00slot:[A-Za-z0-9_]+\x00")


def judge_frame(call: Any) -> str:
    """What the simulated judge reads a persona from: the prompt with the two
    answers taken out (the per-call judge blanks the answers it is given; the
    plan's slot sentinels mark exactly where they go)."""
    return _SLOT.sub(" ", "\n\n".join(m["content"] for m in call.messages))


@dataclass
class Judgments:
    """Many pairwise judgments of one simulated judge, reduced to what decides
    them: per judgment the quality part of the utility difference and, per
    (attribute, value) the persona shows, that vector's part (unweighted)."""

    quality_part: np.ndarray  # (J,) q . (phi_a - phi_b)
    rows: np.ndarray  # (E,) judgment of each persona entry
    attrs: np.ndarray  # (E,) index into ``attributes`` of each entry
    parts: np.ndarray  # (E,) v[attribute, value] . (phi_a - phi_b)
    attributes: list[str]  # normalised attribute names (as the simulator reads them)

    @property
    def n(self) -> int:
        return len(self.quality_part)

    def signal(self, sim: S.Simulator) -> np.ndarray:
        """utility(a) - utility(b) of every judgment for the judge ``sim``
        (its effects, default effect and quality weight)."""
        weights = np.array([sim.effect(a) for a in self.attributes], dtype=float)
        quality = float(getattr(sim, "quality", 1.0))
        out = quality * self.quality_part
        if len(self.rows):
            out = out + np.bincount(self.rows, weights=weights[self.attrs] * self.parts, minlength=self.n)
        return out


def prepare_judgments(answers_a: Sequence[str], answers_b: Sequence[str], personas: Sequence[Mapping[str, str]], seed: int) -> Judgments:
    """Judgments of answer ``a`` against ``b`` by each persona (the attributes
    as the simulator parses them), in the simulated world ``seed``."""
    texts = list(dict.fromkeys([*answers_a, *answers_b]))
    index = {t: i for i, t in enumerate(texts)}
    feats = np.array([S.features(t) for t in texts]).reshape(len(texts), S.DIM)
    diff = feats[[index[a] for a in answers_a]] - feats[[index[b] for b in answers_b]]
    q = S._vector(seed, "quality")
    attributes: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    rows, attrs, cols = [], [], []
    for j, persona in enumerate(personas):
        for attr, value in persona.items():
            name = S._norm_attr(attr)
            key = (attr, value.lower())
            if key not in pairs:
                pairs[key] = len(pairs)
            rows.append(j)
            attrs.append(attributes.setdefault(name, len(attributes)))
            cols.append(pairs[key])
    vectors = np.array([S._vector(seed, a, v) for a, v in pairs]).reshape(len(pairs), S.DIM)
    rows_a = np.asarray(rows, dtype=np.int64)
    cols_a = np.asarray(cols, dtype=np.int64)
    parts = np.einsum("ij,ij->i", vectors[cols_a], diff[rows_a]) if len(rows_a) else np.zeros(0)
    return Judgments(diff @ q, rows_a, np.asarray(attrs, dtype=np.int64), parts, list(attributes))


def logistic_noise(sim: S.Simulator, rng: np.random.Generator, n: int) -> np.ndarray:
    """Fresh noise for ``n`` decisions with the law of ``Simulator._noise``:
    ``noise * (L1 + temperature * L2)``, L1 and L2 standard logistic."""
    out = rng.logistic(size=n)
    if sim.temperature > 0:
        out = out + sim.temperature * rng.logistic(size=n)
    return sim.noise * out


def verdicts(judgments: Judgments, sim: S.Simulator, noise: np.ndarray) -> np.ndarray:
    """True where the judge picks answer A (as ``Simulator.judge``: the
    difference plus noise is above 0)."""
    return judgments.signal(sim) + noise > 0
