"""Experiment kinds, one module each; ``KINDS`` maps the spec's
``experiment.kind`` to its module."""

from __future__ import annotations

from types import ModuleType

from persona_exp.experiments import agreement, conditioning, dpf, loo, wikipersona

KINDS: dict[str, ModuleType] = {"loo": loo, "dpf": dpf, "agreement": agreement, "conditioning": conditioning, "wikipersona": wikipersona}
#: Per kind, the stored table that summarizes a run.
HEADLINES: dict[str, str] = {kind: module.HEADLINE_TABLE for kind, module in KINDS.items()}

__all__ = ["HEADLINES", "KINDS"]
