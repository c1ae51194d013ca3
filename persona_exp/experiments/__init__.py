"""Experiment kinds, one module each; ``KINDS`` maps the spec's
``experiment.kind`` to its module."""

from __future__ import annotations

from types import ModuleType

from persona_exp.experiments import dpf, loo

KINDS: dict[str, ModuleType] = {"loo": loo, "dpf": dpf}

__all__ = ["KINDS"]
