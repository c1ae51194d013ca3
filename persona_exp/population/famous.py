"""Famous-person populations (WikiPersonas, section 3.3 "Select Personas" and Table 7).

WikiPersonas picks axes along which preferences differ (politics, religion,
diet...), a few categories on each axis (liberal, conservative...), and
well-documented public figures associated with each category. Here that
structure is declared in YAML::

    about: what the set is (optional)
    axes:
      politics:
        about: U.S. political orientation      # optional
        categories:
          Progressive:
            - name: Bernie Sanders
              description: One neutral sentence about the person's public role.

An axis needs at least one category and a category at least one person; a
person is listed at most once per axis but may appear on several axes, as in
the paper (Barack Obama is on its age, gender and family-status axes), in
which case each (person, axis) is its own persona. Without a file, the
embedded set ``data/famous_people.yaml`` is used (4 axes x 4 categories x 3
people, descriptions written for this project). Mistakes are reported as
SpecError naming the file, line, column and field.

:func:`build_famous_population` draws ``size`` personas stratified by axis,
then by category within an axis: every stratum gets an equal share (capped by
how many people it has, the rest going to strata with people left), leftovers
go to strata chosen at random, and people are drawn at random without
replacement within their category. Everything depends only on the seed and the
set; ``size=None`` takes everyone. Personas keep the declared order. Each
persona has ``persona_id`` (``axis:name-slug``, stable across seeds), ``name``,
``axis``, ``category`` and ``description``.

The paper's language-model step G.1 (asking a model for categories and
people per axis) is ``population.llm.generate_axes``: it runs in
:mod:`persona_exp.population.llm`, which builds a :class:`FamousSet` from the
model's lines and hands it to :func:`build_famous_population` like a file. The
longer "persona gold" description is written by the wikipersona experiment
(its ``gold`` condition), not here.
"""

from __future__ import annotations

import random
import re
import unicodedata
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Sequence

import polars as pl
import xxhash
from pydantic import Field, StringConstraints

from persona_exp.errors import DataError, InvalidArgumentError, SpecError
from persona_exp.plan.keys import canonical_json
from persona_exp.population.stored import Population, population_key
from persona_exp.spec.loader import Located, parse_yaml, read_spec_file, validate
from persona_exp.spec.models import Strict

__all__ = [
    "EMBEDDED_FAMOUS",
    "FAMOUS_COLUMNS",
    "FamousAxis",
    "FamousPerson",
    "FamousSet",
    "allocate",
    "build_famous_population",
    "build_famous_from_spec",
    "famous_fingerprint",
    "famous_people",
    "load_famous",
    "sample_famous",
    "slug",
]

EMBEDDED_FAMOUS = "famous_people.yaml"
FAMOUS_COLUMNS = ("persona_id", "name", "axis", "category", "description")
_SCHEMA = {c: pl.String for c in FAMOUS_COLUMNS}

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class FamousPerson(Strict):
    """One public figure: a name and a one-sentence neutral description."""

    name: Text
    description: Text


class FamousAxis(Strict):
    """An axis of disagreement: categories, each with the people associated with it."""

    about: str = ""
    categories: dict[Text, Annotated[list[FamousPerson], Field(min_length=1)]] = Field(min_length=1)


class FamousSet(Strict):
    """A whole famous-person file."""

    about: str = ""
    axes: dict[Text, FamousAxis] = Field(min_length=1)


# --------------------------------------------------------------------------- loading


def _embedded_text() -> str:
    resource = resources.files("persona_exp.population").joinpath("data").joinpath(EMBEDDED_FAMOUS)
    try:
        return resource.read_text(encoding="utf-8")
    except OSError as exc:  # pragma: no cover - a broken installation
        raise DataError(f"cannot read the packaged data file data/{EMBEDDED_FAMOUS}: {exc}") from exc


def _located(path: str | PathLike[str] | None) -> Located:
    if path is None:
        return parse_yaml(_embedded_text(), f"embedded {EMBEDDED_FAMOUS}")
    p = Path(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise SpecError(
            f"{p}: the famous-person file {what}; give a YAML file of axes -> categories -> people "
            "(see persona_exp/population/famous.py), or leave population.people out for the embedded set."
        )
    return read_spec_file(p)


def slug(text: str) -> str:
    """``"Beyoncé Knowles"`` -> ``"beyonce-knowles"``; names without Latin letters get a short hash."""
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    out = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")
    return out or "h" + xxhash.xxh3_64_hexdigest(text.encode("utf-8"))[:10]


def _check(fset: FamousSet, loc: Located) -> None:
    """What the model cannot say: a person listed twice on one axis (ids would collide)."""
    for axis, spec in fset.axes.items():
        seen: dict[str, tuple[str, int]] = {}
        for category, people in spec.categories.items():
            for i, person in enumerate(people):
                key = slug(person.name)
                path = ("axes", axis, "categories", category, i, "name")
                if key in seen:
                    first_cat, first_i = seen[key]
                    first = loc.where(("axes", axis, "categories", first_cat, first_i, "name"))
                    raise SpecError(
                        f"{loc.where(path)}: axes.{axis}.categories.{category}[{i}].name: {person.name!r} is already "
                        f"listed on the {axis!r} axis (at {first}, category {first_cat!r}); a person appears at most "
                        "once per axis (they may appear on other axes)."
                    )
                seen[key] = (category, i)
    axis_slugs: dict[str, str] = {}
    for axis in fset.axes:
        s = slug(axis)
        if s in axis_slugs:
            raise SpecError(
                f"{loc.where(('axes', axis), key=True)}: axes.{axis}: the axis names {axis_slugs[s]!r} and {axis!r} "
                "differ only in case or punctuation; use one name."
            )
        axis_slugs[s] = axis


def load_famous(path: str | PathLike[str] | None = None) -> FamousSet:
    """The famous-person set of ``path`` (YAML), or the embedded set; SpecError names file, line and field."""
    loc = _located(path)
    if not isinstance(loc.data, dict):
        raise SpecError(f"{loc.source}: a famous-person file is a mapping with an 'axes' key (axes -> categories -> people).")
    fset = validate(loc, FamousSet)
    _check(fset, loc)
    return fset


def famous_people(source: FamousSet | str | PathLike[str] | None = None) -> pl.DataFrame:
    """Every (person, axis) entry of a set, in declared order, with the persona columns."""
    fset = source if isinstance(source, FamousSet) else load_famous(source)
    rows = [
        {"persona_id": f"{slug(axis)}:{slug(p.name)}", "name": p.name, "axis": axis, "category": category, "description": p.description}
        for axis, spec in fset.axes.items()
        for category, people in spec.categories.items()
        for p in people
    ]
    return pl.DataFrame(rows, schema=_SCHEMA)


def famous_fingerprint(path: FamousSet | str | PathLike[str] | None = None) -> str:
    """xxh3-128 of the set's text (the file's bytes, or the embedded file; a
    set built in memory: its canonical JSON): changes whenever the set does."""
    if isinstance(path, FamousSet):
        return xxhash.xxh3_128_hexdigest(canonical_json(path.model_dump(mode="json")))
    if path is None:
        return xxhash.xxh3_128_hexdigest(_embedded_text().encode("utf-8"))
    try:
        return xxhash.xxh3_128_hexdigest(Path(path).read_bytes())
    except OSError as exc:
        raise DataError(f"cannot read the famous-person file {path}: {exc}") from None


# --------------------------------------------------------------------------- sampling


def allocate(n: int, capacities: Sequence[int], rng: random.Random) -> list[int]:
    """Split ``n`` over strata as evenly as their capacities allow; leftovers go to random strata.

    Needs ``0 <= n <= sum(capacities)``. Each round gives every stratum with
    room the same share; when the share would be below one, the remaining
    units go to distinct strata drawn with ``rng``.
    """
    if n < 0 or n > sum(capacities):
        raise InvalidArgumentError(f"cannot allocate {n} over strata holding {sum(capacities)}.")
    alloc = [0] * len(capacities)
    remaining = n
    open_ = [i for i, c in enumerate(capacities) if c > 0]
    while remaining > 0:
        share = remaining // len(open_)
        if share == 0:
            for i in rng.sample(open_, remaining):
                alloc[i] += 1
            break
        for i in open_:
            give = min(share, capacities[i] - alloc[i])
            alloc[i] += give
            remaining -= give
        open_ = [i for i in open_ if alloc[i] < capacities[i]]
    return alloc


def _select_axes(frame: pl.DataFrame, axes: Sequence[str] | None, source: str) -> pl.DataFrame:
    if axes is None:
        return frame
    if isinstance(axes, str):
        axes = [axes]
    declared = list(dict.fromkeys(frame["axis"].to_list()))
    if not axes:
        raise InvalidArgumentError(f"population.axes is empty; name at least one axis of {source} ({', '.join(declared)}), or leave it out.")
    by_key = {a.casefold(): a for a in declared}
    unknown = [a for a in axes if str(a).casefold() not in by_key]
    if unknown:
        raise InvalidArgumentError(
            f"population.axes names {', '.join(repr(a) for a in unknown)}, not an axis of {source}; "
            f"its axes are {', '.join(declared)}."
        )
    chosen = {by_key[str(a).casefold()] for a in axes}
    return frame.filter(pl.col("axis").is_in(sorted(chosen)))


def sample_famous(
    frame: pl.DataFrame,
    size: int | None,
    *,
    seed: int,
    axes: Sequence[str] | None = None,
    source: str = "the famous-person set",
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """``size`` personas of ``frame`` (see the module docstring) and the strata: axis, category, available, drawn."""
    pool = _select_axes(frame, axes, source)
    total = pool.height
    if size is None:
        size = total
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidArgumentError(f"population.size must be a positive integer, got {size!r}.")
    if size > total:
        where = f" on the axes {', '.join(dict.fromkeys(pool['axis'].to_list()))}" if axes is not None else ""
        raise DataError(
            f"population.size is {size} but {source} has {total} famous personas{where}; lower the size, leave it "
            "out to take everyone, or add people to the file."
        )
    axis_names = list(dict.fromkeys(pool["axis"].to_list()))
    groups: dict[str, dict[str, list[int]]] = {}
    for i, (axis, category) in enumerate(zip(pool["axis"].to_list(), pool["category"].to_list())):
        groups.setdefault(axis, {}).setdefault(category, []).append(i)
    per_axis = allocate(size, [sum(len(v) for v in groups[a].values()) for a in axis_names], random.Random(f"famous-axes|{int(seed)}"))
    keep: list[int] = []
    strata: list[dict[str, Any]] = []
    for axis, n_axis in zip(axis_names, per_axis):
        cats = list(groups[axis])
        per_cat = allocate(n_axis, [len(groups[axis][c]) for c in cats], random.Random(f"famous-categories|{int(seed)}|{axis}"))
        for category, n_cat in zip(cats, per_cat):
            rows = groups[axis][category]
            picked = sorted(random.Random(f"famous-people|{int(seed)}|{axis}|{category}").sample(rows, n_cat))
            keep.extend(picked)
            strata.append({"axis": axis, "category": category, "available": len(rows), "drawn": n_cat})
    return pool[sorted(keep)], strata


def build_famous_population(
    people: FamousSet | str | PathLike[str] | None = None,
    size: int | None = None,
    axes: Sequence[str] | None = None,
    *,
    seed: int,
    source: str | None = None,
) -> Population:
    """A famous-person population: ``size`` personas (None = all) of the set in ``people`` (a file, None = embedded,
    or a :class:`FamousSet` built in memory, e.g. from a model's answers, described by ``source``),
    restricted to ``axes`` if given, stratified by axis and category, seeded."""
    in_memory = isinstance(people, FamousSet)
    fset = people if in_memory else load_famous(people)
    n_people = sum(len(v) for a in fset.axes.values() for v in a.categories.values())
    n_categories = sum(len(a.categories) for a in fset.axes.values())
    counts = f"{len(fset.axes)} axes, {n_categories} categories, {n_people} entries"
    if source is None:
        source = ("famous-person set built in memory" if in_memory else
                  f"famous-person file {people}" if people is not None else f"embedded famous-person set ({EMBEDDED_FAMOUS})")
    frame, strata = sample_famous(famous_people(fset), size, seed=seed, axes=axes, source=source)
    report = {
        "source": f"{source}: {counts}",
        "kind": "famous",
        "spec": {"source": "famous", "people": None if people is None or in_memory else str(people), "size": size,
                 "axes": None if axes is None else list(axes)},
        "seed": int(seed),
        "size": frame.height,
        "available": sum(s["available"] for s in strata),
        "set_fingerprint": famous_fingerprint(fset if in_memory else people),
        "strata": strata,
        "notes": [
            "Personas are drawn stratified by axis, then by category, without replacement.",
            "Descriptions are the set's one-sentence descriptions, not the WikiPersonas paper's language-model "
            "'persona gold' summaries (the wikipersona experiment writes those for its gold condition).",
        ],
    }
    return Population(frame, report, population_key(frame))


def build_famous_from_spec(spec: Any, *, seed: int) -> Population:
    """The hook for ``PopulationSpec(source="famous", people=..., axes=..., size=...)``.

    ``size=None`` takes everyone, so the spec's ``size`` should default to None
    for famous populations (a census default of 200 exceeds a set of a few
    dozen people and is reported as such).
    """
    return build_famous_population(getattr(spec, "people", None), getattr(spec, "size", None), getattr(spec, "axes", None), seed=seed)
