"""Personas as prompt text, and the leave-one-out variants of PERSONA section 4.1.

``render_persona(row)`` writes one ``Label: value`` line per attribute in the
canonical order (the paper's appendix A), e.g. ``"Age: 34\\nSex: Female"``; the
simulated judge and the experiments parse exactly this. Attributes whose value
is unknown (null) are left out rather than written as "None".

``loo_variants(frame, a_i)`` builds, for ``n_personas`` personas to whom
``a_i`` applies, a version with ``k`` random other applicable attributes and
the same version plus ``a_i``. Each draw depends only on ``(seed, a_i)`` and
the persona's id, so the same call gives the same pairs and a larger
``n_personas`` keeps every pair a smaller one drew (prefix-stable designs).
"""

from __future__ import annotations

import random
import warnings
from typing import Any, Literal, Mapping, NamedTuple, Sequence

import polars as pl

from persona_exp.errors import DataError, InvalidArgumentError
from persona_exp.population.attributes import ATTRIBUTES, attribute

__all__ = ["LooPair", "LooShortfallWarning", "LooVariants", "render_persona", "loo_variants"]

_ORDER = {a.name: i for i, a in enumerate(ATTRIBUTES)}


class LooPair(NamedTuple):
    """One persona's two versions: ``base`` (k attributes without a_i) and ``with_attribute`` (base + a_i)."""

    persona_id: str
    base: tuple[str, ...]
    with_attribute: tuple[str, ...]


class LooShortfallWarning(UserWarning):
    """Fewer personas than asked for have the attribute; all of them were used."""


class LooVariants(list):
    """The pairs (a list of LooPair) with what was asked and what was available."""

    def __init__(self, pairs: Sequence[LooPair], attribute: str, requested: int, available: int) -> None:
        super().__init__(pairs)
        self.attribute = attribute
        self.requested = requested
        self.available = available

    @property
    def shortfall(self) -> bool:
        return self.available < self.requested


def _canonical(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(dict.fromkeys(names), key=_ORDER.__getitem__))


def _text(value: Any) -> str:
    return " ".join(str(value).split())


def render_persona(
    row: Mapping[str, Any],
    attributes: Sequence[str] | None = None,
    *,
    style: Literal["lines", "prose"] = "lines",
) -> str:
    """A persona as text: ``"lines"`` (``Label: value`` per attribute, canonical order) or ``"prose"``.

    ``attributes`` (names or labels) selects a subset; None renders every
    attribute the row has. An unknown name raises InvalidArgumentError.
    """
    if attributes is None:
        names = [a.name for a in ATTRIBUTES if a.name in row]
    else:
        if isinstance(attributes, str):
            attributes = [attributes]
        names = list(_canonical([attribute(n).name for n in attributes]))
    present = [(attribute(n), row.get(n)) for n in names if row.get(n) is not None]
    if style == "lines":
        return "\n".join(f"{a.label}: {_text(v)}" for a, v in present)
    if style != "prose":
        raise InvalidArgumentError(f"style is {style!r}; expected 'lines' or 'prose'.")
    sentences = []
    values = dict((a.name, v) for a, v in present)
    age, sex = values.pop("age", None), values.pop("sex", None)
    if age is not None and sex is not None:
        sentences.append(f"This person is a {age}-year-old {_text(sex).lower()}.")
    elif age is not None:
        sentences.append(f"This person is {age} years old.")
    elif sex is not None:
        sentences.append(f"This person's sex is {_text(sex).lower()}.")
    for name, value in values.items():
        sentences.append(f"{attribute(name).label}: {_text(value).rstrip('.')}.")
    return " ".join(sentences)


def loo_variants(
    frame: pl.DataFrame,
    attribute: str,
    *,
    n_personas: int = 40,
    k: int = 3,
    seed: int = 0,
) -> LooVariants:
    """Leave-one-out pairs for ``attribute`` (see the module docstring).

    Personas are chosen among those for whom the attribute applies
    (``Attribute.applies``); when there are fewer than ``n_personas`` all of
    them are used and a LooShortfallWarning says so (the result's
    ``available`` and ``requested`` tell it too). A persona with fewer than
    ``k`` other applicable attributes gets all of them as its base.
    """
    target = _attribute(attribute)
    for name, value, minimum in (("n_personas", n_personas, 1), ("k", k, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidArgumentError(f"{name} must be an integer of at least {minimum}, got {value!r}.")
    if "persona_id" not in frame.columns:
        raise DataError("the persona frame has no 'persona_id' column; build it with build_population.")
    if target.name not in frame.columns:
        raise DataError(f"the persona frame has no {target.name!r} column.")
    rows = [r for r in frame.iter_rows(named=True) if target.applies(r)]
    # The first n personas (in population order) to whom the attribute applies.
    # A population is a sequence of independent weighted draws, so these are a
    # random sample of them; and the choice is prefix-stable both ways: more
    # personas, or a larger population (whose first personas are the smaller
    # one's), keep the personas chosen before and their contexts (drawn by
    # seed, attribute and persona id), so a larger run pays only for new calls.
    rows_chosen = rows[:n_personas]
    others = [a for a in ATTRIBUTES if a.name != target.name and a.name in frame.columns]
    pairs = []
    for row in rows_chosen:
        pool = [a.name for a in others if a.applies(row)]
        rng = random.Random(f"loo|{int(seed)}|{target.name}|{row['persona_id']}")
        base = _canonical(rng.sample(pool, min(k, len(pool))))
        pairs.append(LooPair(str(row["persona_id"]), base, _canonical([*base, target.name])))
    if len(rows) < n_personas:
        warnings.warn(
            f"{target.name} applies to {len(rows)} personas of {frame.height}, fewer than the {n_personas} asked for; "
            "all of them are used.",
            LooShortfallWarning,
            stacklevel=2,
        )
    return LooVariants(pairs, target.name, n_personas, len(rows))


def _attribute(name: str):
    return attribute(name)

