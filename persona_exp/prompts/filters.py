"""Prompt filters, declared by name so that a YAML spec can list them.

PERSONA kept 3,868 of PRISM's 8,011 opening prompts: those with a question
mark, of at least five words, that an LLM judged controversial. The first two
rules are here, with deduplication and regex include/exclude. The LLM
classifier needs model calls, so it is built where the run's models and call
cache are: :class:`persona_exp.steps.classify.ControversialFilter`, which the
pipeline makes from a spec's ``{controversial: true}`` or ``{controversial:
{role: generator, template: "..."}}`` entry. Anything with a ``name`` and an
``apply(frame) -> frame`` that keeps a subset of the rows plugs in the same
way, passed directly or registered under a name with ``register_filter``.

A spec list looks like ``[{question_mark: true}, {min_words: 5}, {dedupe: true},
{exclude: "(?i)recipe"}, {controversial: true}]``; a flag set to ``false``
switches its filter off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import polars as pl

from persona_exp.errors import DataError, InvalidArgumentError, did_you_mean
from persona_exp.prompts._frame import check_frame, normalize_text


@runtime_checkable
class Filter(Protocol):
    """What ``filter_prompts`` needs: a name for the report and a row subset.

    ``apply`` receives a prompt frame and returns the rows to keep (same
    columns, no new rows); ``filter_prompts`` counts what it removed.
    """

    name: str

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame: ...


class FilterStep(NamedTuple):
    """One line of a filter report: how many prompts a filter removed."""

    name: str
    before: int
    removed: int
    after: int


FilterFactory = Callable[[Any], "Filter | None"]

#: PERSONA's rules (question mark, at least five words) plus deduplication: the default of every spec.
DEFAULT_FILTERS: tuple[Mapping[str, Any], ...] = ({"question_mark": True}, {"min_words": 5}, {"dedupe": True})


def _keep(frame: pl.DataFrame, mask: list[bool]) -> pl.DataFrame:
    return frame.filter(pl.Series("keep", mask, dtype=pl.Boolean))


@dataclass(frozen=True)
class QuestionMark:
    """Keep prompts that contain a question mark (PERSONA's first rule)."""

    name = "question_mark"

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("text").str.contains("?", literal=True))


@dataclass(frozen=True)
class MinWords:
    """Keep prompts of at least ``minimum`` whitespace-separated words (PERSONA: 5)."""

    minimum: int
    name = "min_words"

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        # Python's split() is the definition of a word here, so count with it.
        return _keep(frame, [len(t.split()) >= self.minimum for t in frame.get_column("text")])


@dataclass(frozen=True)
class Dedupe:
    """Keep the first of prompts that are equal ignoring case and whitespace."""

    name = "dedupe"

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        seen: set[str] = set()
        mask = []
        for text in frame.get_column("text"):
            key = normalize_text(text)
            mask.append(key not in seen)
            seen.add(key)
        return _keep(frame, mask)


@dataclass(frozen=True)
class _RegexFilter:
    patterns: tuple[str, ...]
    name = "regex"
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = []
        for pattern in self.patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise InvalidArgumentError(f"{self.name}: {pattern!r} is not a valid regular expression ({exc}).") from exc
        object.__setattr__(self, "_compiled", tuple(compiled))

    def _matches(self, text: str) -> bool:
        return any(p.search(text) for p in self._compiled)


@dataclass(frozen=True)
class Include(_RegexFilter):
    """Keep prompts matched (anywhere, Python ``re``) by at least one pattern."""

    name = "include"

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return _keep(frame, [self._matches(t) for t in frame.get_column("text")])


@dataclass(frozen=True)
class Exclude(_RegexFilter):
    """Drop prompts matched (anywhere, Python ``re``) by any pattern."""

    name = "exclude"

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return _keep(frame, [not self._matches(t) for t in frame.get_column("text")])


# --------------------------------------------------------------------------- declared by name


def _flag(make: Callable[[], Filter], name: str) -> FilterFactory:
    def factory(param: Any) -> Filter | None:
        if param is None or param is True:
            return make()
        if param is False:
            return None
        raise InvalidArgumentError(f"{name} takes true or false, got {param!r}.")

    return factory


def _min_words(param: Any) -> Filter:
    if isinstance(param, bool) or not isinstance(param, int) or param < 1:
        raise InvalidArgumentError(f"min_words takes a whole number of at least 1, got {param!r}.")
    return MinWords(param)


def _patterns(name: str, param: Any) -> tuple[str, ...]:
    if isinstance(param, str):
        param = [param]
    if not isinstance(param, (list, tuple)) or not param or not all(isinstance(p, str) and p for p in param):
        raise InvalidArgumentError(f"{name} takes a regular expression or a list of them, got {param!r}.")
    return tuple(param)


def _controversial(param: Any) -> Filter | None:
    """The name is known here, but the filter asks a model: without the run's
    models it can only be switched off."""
    if param is False:
        return None
    raise InvalidArgumentError(
        "controversial asks a language model for every prompt, so it needs the run's models and call cache: "
        "the pipeline builds it from a spec (prompts.filters), or pass "
        "persona_exp.steps.classify.ControversialFilter(ctx, role, template) itself."
    )


_REGISTRY: dict[str, FilterFactory] = {
    "question_mark": _flag(QuestionMark, "question_mark"),
    "min_words": _min_words,
    "dedupe": _flag(Dedupe, "dedupe"),
    "include": lambda param: Include(_patterns("include", param)),
    "exclude": lambda param: Exclude(_patterns("exclude", param)),
    "controversial": _controversial,
}


def known_filters() -> list[str]:
    """The filter names a spec may use, sorted."""
    return sorted(_REGISTRY)


def register_filter(name: str, factory: FilterFactory, *, replace: bool = False) -> None:
    """Make ``{name: param}`` in a spec build ``factory(param)``.

    This is how a filter that lives elsewhere becomes available to YAML
    specs. The factory returns a Filter, or None to mean "switched off".
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidArgumentError(f"filter name must be an identifier such as 'min_words', got {name!r}.")
    if name in _REGISTRY and not replace:
        raise InvalidArgumentError(f"a filter named '{name}' is already registered; pass replace=True to override it.")
    if not callable(factory):
        raise InvalidArgumentError(f"the factory of filter '{name}' must be callable, got {factory!r}.")
    _REGISTRY[name] = factory


def make_filter(spec: Any, where: str = "filter") -> Filter | None:
    """One filter from a spec: a Filter, a name, or a one-key mapping ``{name: param}``.

    Returns None for a flag filter switched off (``{dedupe: false}``).
    """
    if isinstance(spec, Filter):
        return spec
    if isinstance(spec, str):
        name, param = spec, None
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((name, param),) = spec.items()
    else:
        raise InvalidArgumentError(
            f"{where}: a filter is a name or a mapping with exactly one key such as {{min_words: 5}}, got {spec!r}."
        )
    factory = _REGISTRY.get(name)
    if factory is None:
        raise InvalidArgumentError(f"{where}: unknown filter '{name}'{did_you_mean(name, known_filters())}; known filters: {', '.join(known_filters())}.")
    try:
        made = factory(param)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{where}: {exc}") from exc
    if made is not None and not isinstance(made, Filter):
        raise InvalidArgumentError(f"{where}: the factory of filter '{name}' returned {made!r}, not a filter.")
    return made


def make_filters(specs: Any, where: str = "filters") -> list[Filter]:
    """All filters of a spec list (a YAML mapping is taken in its order)."""
    if specs is None:
        return []
    if isinstance(specs, Mapping):
        specs = [{name: param} for name, param in specs.items()]
    elif isinstance(specs, (str, bytes)) or not isinstance(specs, Iterable):
        raise InvalidArgumentError(f"{where} must be a list of filters such as [{{min_words: 5}}], got {specs!r}.")
    made = (make_filter(spec, f"{where}[{i}]") for i, spec in enumerate(specs))
    return [f for f in made if f is not None]


def filter_prompts(frame: pl.DataFrame, filters: Any) -> tuple[pl.DataFrame, list[FilterStep]]:
    """Apply filters in order; return the kept prompts and what each removed.

    Every spec is checked before any filter runs, so a typo in the last filter
    fails at once rather than after an expensive one.
    """
    check_frame(frame, ("text",), "filter_prompts")
    built = make_filters(filters)
    report: list[FilterStep] = []
    for f in built:
        before = frame.height
        out = f.apply(frame)
        if not isinstance(out, pl.DataFrame) or "text" not in out.columns or out.height > before:
            raise DataError(
                f"filter '{f.name}' must return a subset of the rows of the prompt frame it was given, "
                f"got {type(out).__name__}" + (f" with {out.height} rows from {before}." if isinstance(out, pl.DataFrame) else ".")
            )
        frame = out
        report.append(FilterStep(f.name, before, before - frame.height, frame.height))
    return frame, report


def format_report(report: Iterable[FilterStep]) -> str:
    """The report as aligned text lines, for logs and the command line."""
    steps = list(report)
    if not steps:
        return "no filters"
    width = max(len(s.name) for s in steps)
    return "\n".join(f"{s.name:<{width}}  {s.before:>7} -> {s.after:>7}  (removed {s.removed})" for s in steps)


__all__ = [
    "Dedupe",
    "Exclude",
    "Filter",
    "FilterStep",
    "Include",
    "MinWords",
    "QuestionMark",
    "filter_prompts",
    "format_report",
    "known_filters",
    "make_filter",
    "make_filters",
    "register_filter",
]
