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
_METRIC = re.compile(r"^([a-z_]+)([+-])([0-9]*\.?[0-9]+)$")
# The word of a metric-scale effect per experiment kind (ATTR=WORD+D or WORD-D):
# what the kind's headline metrics are. Leave-one-out's is calibrated on the
# bulk path (kappa-DROP only), the others' on the brute-force path.
METRIC_WORDS = {"loo": "kappa", "agreement": "kappa", "conditioning": "accuracy", "dpf": "rate", "wikipersona": "winrate"}


@dataclass(frozen=True)
class Effect:
    """One planted effect: on the simulator's scale (``size``, the judge's
    effect multiplier for the attribute; unplanted attributes keep the
    default effect) or on the metric's (``metric``: the signed difference on
    the kind's headline metric, e.g. -0.1 for a kappa 0.1 below the others'
    mean), mapped to ``size`` by calibration."""

    attribute: str
    size: float | None = None
    metric: float | None = None
    text: str = ""

    @property
    def label(self) -> str:
        return self.text or f"{self.attribute}={self.size:g}"


def parse_effect(text: str, kind: str) -> Effect:
    """``ATTR=SIZE`` (simulator scale, e.g. religion=4.0) or ``ATTR=WORD+D`` /
    ``ATTR=WORD-D`` on the kind's headline metric (WORD from ``METRIC_WORDS``):
    leave-one-out ``religion=kappa-0.1`` (its kappa 0.1 below the others'
    mean); WikiPersonas ``religion=winrate+0.1`` (the condition's win rate 0.1
    above 0.5); DPF ``rate+D`` (the share preferring the revision, from 0.5);
    conditioning ``accuracy+D`` (a mode's accuracy minus the base mode's);
    agreement ``kappa+D`` (a judge pair's kappa, from 0)."""
    word = METRIC_WORDS.get(kind)
    example = {"loo": "kappa-0.1"}.get(kind, f"{word}+0.1" if word else "")
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise InvalidArgumentError(f"--effect {text!r}: write ATTRIBUTE=SIZE (the simulator's scale, e.g. religion=4.0)"
                                   + (f" or ATTRIBUTE={word}{'-DROP' if kind == 'loo' else '+D'} on the metric (e.g. religion={example})." if word else "."))
    if kind == "loo":
        from persona_exp.population import attribute

        try:
            name = attribute(name).name
        except Exception as exc:
            raise InvalidArgumentError(f"--effect {text!r}: {exc}") from None
    m = _METRIC.match(value.replace(" ", "").lower())
    if m:
        said, sign, amount = m.group(1).replace("_", ""), m.group(2), float(m.group(3))
        if word is None:
            raise InvalidArgumentError(f"--effect {text!r}: a {kind} spec has no metric-scale effect; give the simulator's scale, e.g. {name}=4.0.")
        if said != word or (kind == "loo" and sign != "-"):
            raise InvalidArgumentError(f"--effect {text!r}: on the metric's scale a {kind} spec takes {name}={word}{'-DROP' if kind == 'loo' else '+D or -D'} "
                                       f"(e.g. {name}={example}), or the simulator's scale, e.g. {name}=4.0.")
        if not 0 < amount < 1:
            raise InvalidArgumentError(f"--effect {text!r}: a {'kappa drop' if kind == 'loo' else 'difference on the metric'} is between 0 and 1.")
        return Effect(name, None, amount if sign == "+" else -amount, f"{name}={word}{sign}{amount:g}")
    try:
        size = float(value)
    except ValueError:
        raise InvalidArgumentError(f"--effect {text!r}: {value!r} is neither a number (the simulator's effect, e.g. 4.0)"
                                   + (f" nor {word}{'-DROP' if kind == 'loo' else '+D'} (e.g. {example})." if word else ".")) from None
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
