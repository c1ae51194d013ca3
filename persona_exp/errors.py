"""The exceptions persona-exp raises on bad input.

Every user-facing error is a ``PersonaExpError``; the CLI prints those as one
paragraph without a traceback and exits with code 2. Errors about the values of
an argument also derive from ``ValueError`` so generic callers can catch them.
The native core (``persona_exp._core``) raises the classes below by name, which
keeps this module the single place where the hierarchy is defined.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


class PersonaExpError(Exception):
    """Base class of every error persona-exp reports to a user.

    ``field`` names the spec field the error is about (``"experiment.n_questions"``,
    ``"population.filters[1]"``) when it is raised after the spec was read,
    e.g. while planning; the pipeline then puts that field's file:line:column
    in front of the message (see ``persona_exp.spec.loader.located_errors``).
    """

    exit_code = 2

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field


class DataError(PersonaExpError, ValueError):
    """Input data (an array, a file, a column) cannot be used as given."""


class EmptyInputError(DataError):
    """An input that needs at least one element has none."""


class LengthMismatchError(DataError):
    """Arrays that must align element by element have different lengths."""


class NaNError(DataError):
    """An input contains NaN where a number or a label is required."""


class CategoryError(DataError):
    """A label lies outside the categories 0..k-1 (or is a negative other than -1)."""


class WeightError(DataError):
    """Sampling weights are negative, all zero, or not finite."""


class InvalidArgumentError(PersonaExpError, ValueError):
    """A parameter (level, method, sample size...) has an unusable value."""


class PlanError(PersonaExpError):
    """A plan cannot be built from the spec as given."""


class ExecutionError(PersonaExpError):
    """Running calls failed in a way no retry can fix (e.g. an unknown model)."""


class SpecError(PersonaExpError, ValueError):
    """An experiment spec (YAML file or --set override) is malformed; the message
    starts with file:line:column and the field path."""


def did_you_mean(word: object, choices: Iterable[str], show: Callable[[str], str] = repr) -> str:
    """`` (did you mean 'religion'?)`` for the closest of ``choices`` to a
    misspelt ``word`` (case ignored), or ``""`` when none is close: the one
    place every "unknown name" message gets its suggestion from. ``show``
    writes the suggestion (quoted by default; a template field in braces)."""
    if not isinstance(word, str) or not word:
        return ""
    by_key: dict[str, str] = {}
    for c in choices:
        by_key.setdefault(str(c).casefold(), str(c))
    close = difflib.get_close_matches(word.casefold(), list(by_key), n=1, cutoff=0.6)
    return f" (did you mean {show(by_key[close[0]])}?)" if close else ""


__all__ = [  # the error classes (did_you_mean is a helper, importable by name)
    "PersonaExpError",
    "DataError",
    "EmptyInputError",
    "LengthMismatchError",
    "NaNError",
    "CategoryError",
    "WeightError",
    "InvalidArgumentError",
    "SpecError",
    "PlanError",
    "ExecutionError",
]
