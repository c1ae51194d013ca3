"""Experiment kinds, one module each; ``KINDS`` maps the spec's
``experiment.kind`` to its module."""

from __future__ import annotations

from types import ModuleType

from persona_exp.experiments import agreement, conditioning, dpf, loo

KINDS: dict[str, ModuleType] = {"loo": loo, "dpf": dpf, "agreement": agreement, "conditioning": conditioning}

__all__ = ["KINDS"]
