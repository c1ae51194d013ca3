"""The exceptions persona-exp raises on bad input.

Every user-facing error is a ``PersonaExpError``; the CLI prints those as one
paragraph without a traceback and exits with code 2. Errors about the values of
an argument also derive from ``ValueError`` so generic callers can catch them.
The native core (``persona_exp._core``) raises the classes below by name, which
keeps this module the single place where the hierarchy is defined.
"""

from __future__ import annotations


class PersonaExpError(Exception):
    """Base class of every error persona-exp reports to a user."""

    exit_code = 2


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


__all__ = [
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
