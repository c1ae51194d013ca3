"""What a power study is asked: planted effects, the grid of designs, and the
overrides that turn the spec into one replicate on the simulator."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Sequence

from persona_exp.errors import InvalidArgumentError

# Roles that judge (their verdicts carry the planted effects); the others write.
JUDGE_ROLES = ("judge", "critic", "reward")
_METRIC = re.compile(r"^(kappa)\s*-\s*([0-9]*\.?[0-9]+)$")


@dataclass(frozen=True)
class Effect:
    """One planted effect: on the simulator's scale (``size``, the judge's
    effect multiplier for the attribute; unplanted attributes keep the
    default effect) or on the metric's (``metric``: a kappa this much below
    the mean of the other attributes), mapped to ``size`` by calibration."""

    attribute: str
    size: float | None = None
    metric: float | None = None
    text: str = ""

    @property
    def label(self) -> str:
        return self.text or f"{self.attribute}={self.size:g}"


def parse_effect(text: str, kind: str) -> Effect:
    """``ATTR=SIZE`` (simulator scale, e.g. religion=4.0) or, for leave-one-out,
    ``ATTR=kappa-DROP`` (e.g. religion=kappa-0.1: its kappa 0.1 below the others' mean)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise InvalidArgumentError(f"--effect {text!r}: write ATTRIBUTE=SIZE (the simulator's scale, e.g. religion=4.0) or, for a "
                                   "leave-one-out spec, ATTRIBUTE=kappa-DROP (e.g. religion=kappa-0.1).")
    if kind == "loo":
        from persona_exp.population import attribute

        try:
            name = attribute(name).name
        except Exception as exc:
            raise InvalidArgumentError(f"--effect {text!r}: {exc}") from None
    m = _METRIC.match(value.replace(" ", ""))
    if m:
        if kind != "loo":
            raise InvalidArgumentError(f"--effect {text!r}: effects on the metric's scale are calibrated for leave-one-out specs (kappa-DROP); "
                                       f"for a {kind} spec give the simulator's scale, e.g. {name}=4.0.")
        drop = float(m.group(2))
        if not 0 < drop < 1:
            raise InvalidArgumentError(f"--effect {text!r}: a kappa drop is between 0 and 1.")
        return Effect(name, None, -drop, f"{name}=kappa-{drop:g}")
    try:
        size = float(value)
    except ValueError:
        raise InvalidArgumentError(f"--effect {text!r}: {value!r} is neither a number (the simulator's effect, e.g. 4.0) "
                                   "nor kappa-DROP (e.g. kappa-0.1).") from None
    if not 0 <= size <= 100:
        raise InvalidArgumentError(f"--effect {text!r}: the simulator's effect is between 0 (none) and 100.")
    return Effect(name, size, None, f"{name}={size:g}")


def parse_grid(items: Sequence[str]) -> list[dict[str, Any]]:
    """``--grid PATH=V1,V2,...`` flags; several flags make their product.
    Values must be positive integers (design sizes)."""
    axes: list[tuple[str, list[int]]] = []
    for item in items:
        path, sep, values = item.partition("=")
        path = path.strip()
        if not sep or not path or not values.strip():
            raise InvalidArgumentError(f"--grid {item!r}: write KEY.PATH=V1,V2,... (e.g. experiment.n_personas=10,20,40).")
        try:
            vals = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise InvalidArgumentError(f"--grid {item!r}: the values are design sizes, whole numbers separated by commas.") from None
        if not vals or min(vals) < 1:
            raise InvalidArgumentError(f"--grid {item!r}: give one or more sizes of at least 1.")
        if any(p == path for p, _ in axes):
            raise InvalidArgumentError(f"--grid {item!r}: {path} is given twice; put all its values in one flag.")
        axes.append((path, sorted(set(vals))))
    if not axes:
        return [{}]
    return [dict(zip([p for p, _ in axes], combo)) for combo in itertools.product(*(v for _, v in axes))]


def design_label(design: dict[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in design.items()) or "the spec's design"


def sim_overrides(spec: Any) -> list[str]:
    """Overrides that put every role of a spec on the simulator (roles that
    judge on sim/judge, the others on sim/generator); none for a simulated spec."""
    out = []
    for role, cfg in spec.models.items():
        if not cfg.is_sim:
            out.append(f"models.{role}.model=sim/{'judge' if any(r in role for r in JUDGE_ROLES) else 'generator'}")
    return out


def judge_roles(spec: Any) -> list[str]:
    """The roles whose simulated verdicts carry the planted effects."""
    return [role for role, cfg in spec.models.items() if cfg.model == "sim/judge" or any(r in role for r in JUDGE_ROLES)]


def effect_overrides(spec: Any, effects: dict[str, float]) -> list[str]:
    return [f"models.{role}.sim.effects.{attr}={size!r}" for role in judge_roles(spec) for attr, size in effects.items()]


def design_overrides(design: dict[str, Any]) -> list[str]:
    return [f"{k}={v}" for k, v in design.items()]
