"""Comparing two stored runs of one experiment: what changed in the spec and
the plan, every metric as each run reported it and how it moved (a paired
interval over the items both runs share when they share them, an unpaired one
from each run's own interval when not), which changes survive the
multiplicity correction, and which judgments flipped."""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from persona_exp.analysis import Estimate, Multiplicity, describe, normal_p, survivors, unpaired_difference
from persona_exp.errors import DataError
from persona_exp.experiments import KINDS
from persona_exp.store import RunInfo, load_run


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def spec_changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Spec fields whose resolved values differ, as {field, old, new}."""
    fa, fb = _flatten(a), _flatten(b)
    return [{"field": k, "old": fa.get(k), "new": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def plan_changes(calls_a: pl.DataFrame, calls_b: pl.DataFrame) -> dict[str, Any]:
    """Calls added, removed and reused between the runs, per step."""
    ka = dict(zip(calls_a["key"].to_list(), calls_a["step"].to_list()))
    kb = dict(zip(calls_b["key"].to_list(), calls_b["step"].to_list()))
    steps = sorted(set(ka.values()) | set(kb.values()))
    per_step = []
    for s in steps:
        a = {k for k, v in ka.items() if v == s}
        b = {k for k, v in kb.items() if v == s}
        per_step.append({"step": s, "added": len(b - a), "removed": len(a - b), "reused": len(a & b)})
    cached_b = int(calls_b["cached"].sum()) if "cached" in calls_b.columns else 0
    return {
        "added": len(set(kb) - set(ka)),
        "removed": len(set(ka) - set(kb)),
        "reused": len(set(ka) & set(kb)),
        "served_from_cache_in_b": cached_b,
        "by_step": per_step,
    }


PAIRED_SHARE = 0.9  # a change is paired when the shared items are at least this share of each run's items for it
LOW_OVERLAP = 0.5  # the diff warns when the runs share less than this share of the smaller run's judgments


def reported(metrics: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """A run's headline metrics by name, as the run reported them; runs stored
    before ``headline`` existed give theirs from the per-kind metric blocks."""
    if isinstance(metrics.get("headline"), list):
        return {m["metric"]: m for m in metrics["headline"]}
    if kind == "dpf":
        v = metrics.get("verification_rate")
        return {"prefers_revision[all]": v} if isinstance(v, dict) else {}
    block = {"loo": "kappa", "agreement": "kappa", "conditioning": "accuracy", "wikipersona": "win_rate"}.get(kind)
    return {f"{block}[{k}]": v for k, v in (metrics.get(block) or {}).items() if isinstance(v, dict)}


def _interval(m: dict[str, Any] | None) -> tuple[float | None, float | None, float | None]:
    if m is None:
        return None, None, None
    return tuple(None if m.get(k) is None else float(m[k]) for k in ("estimate", "low", "high"))  # type: ignore[return-value]


def compare_metrics(ma: dict[str, dict], mb: dict[str, dict], paired: dict[str, dict], *, level: float, method: Multiplicity) -> list[dict[str, Any]]:
    """Every metric of both runs: each run's own value and interval, the
    change B - A with a paired interval when the runs share (nearly) all of the
    metric's items, else an unpaired one from the two runs' own standard
    errors; flagged when the change survives the multiplicity correction and
    its interval is a real one (finite, of positive width)."""
    rows = []
    for name in dict.fromkeys([*ma, *mb]):
        a, b = ma.get(name), mb.get(name)
        (ea, la, ha), (eb, lb, hb) = _interval(a), _interval(b)
        row: dict[str, Any] = {"metric": name, "a": ea, "a_low": la, "a_high": ha, "b": eb, "b_low": lb, "b_high": hb,
                               "over_a": (a or {}).get("over"), "over_b": (b or {}).get("over"), "delta": None, "low": None, "high": None, "p": None,
                               "comparison": None, "items": None, "status": "removed" if b is None else "added" if a is None else "compared", "warning": None,
                               "usable": False}
        if a is not None and b is not None:
            pc = paired.get(name)
            delta = (eb - ea) if ea is not None and eb is not None else float("nan")
            share = min(pc["items"] / pc["items_a"], pc["items"] / pc["items_b"]) if pc and pc["items_a"] and pc["items_b"] else 0.0
            if pc and share >= PAIRED_SHARE:
                shift = delta - pc["delta"]  # the change on the shared items, moved onto the runs' own values
                est = Estimate(delta, pc["low"] + shift, pc["high"] + shift, pc["se"], n=pc["items"], method=pc["method"], warning=pc["warning"], null=0.0,
                               p=pc["p"] if abs(shift) < 1e-12 else normal_p(delta, 0.0, pc["se"]))
                row["comparison"] = f"paired over {pc['items']:,} shared items ({pc['over']})"
            else:
                est = unpaired_difference(a, b, level)
                n_a, n_b = (pc["items_a"], pc["items_b"]) if pc else (a.get("n", "?"), b.get("n", "?"))
                row["comparison"] = f"unpaired: {pc['items'] if pc else 0:,} of {n_a:,} / {n_b:,} items shared; from each run's own interval"
            if not est.usable:
                est = dataclasses.replace(est, p=float("nan"), warning=est.warning or "no usable interval of the change")
            row.update(delta=est.estimate, low=est.low, high=est.high, p=est.p, items=pc["items"] if pc else 0, warning=est.warning, usable=est.usable)
        rows.append(row)
    adj, keep = survivors([r["p"] if r["p"] is not None else float("nan") for r in rows], method, 1 - level)
    for r, x, k in zip(rows, adj, keep):
        r["p_adjusted"] = x if r["status"] == "compared" else None
        r["flagged"] = bool(k and r["status"] == "compared")
    return rows


def diff_runs(a: RunInfo, b: RunInfo, *, n_resamples: int = 1000, seed: int = 0, examples: int = 5, multiplicity: Multiplicity | None = None) -> dict[str, Any]:
    """What changed between two runs of one experiment and what it did to every
    metric (see ``compare_metrics``); the multiplicity correction is B's
    ``analysis.multiplicity`` unless given."""
    if a.manifest.get("kind") != b.manifest.get("kind") or a.experiment != b.experiment:
        raise DataError(
            f"cannot diff runs of different experiments: {a.experiment}/{a.run_id} ({a.manifest.get('kind')}) and "
            f"{b.experiment}/{b.run_id} ({b.manifest.get('kind')}); diff two runs of one experiment."
        )
    metrics_a, ta = load_run(a)
    metrics_b, tb = load_run(b)
    kind = a.manifest["kind"]
    level = float(metrics_b.get("level", metrics_a.get("level", 0.95)))
    method = multiplicity or (b.manifest.get("spec", {}).get("analysis") or {}).get("multiplicity") or "holm"
    changes = KINDS[kind].diff(ta, tb, n_resamples=n_resamples, level=level, seed=seed, examples=examples)
    rows = compare_metrics(reported(metrics_a, kind), reported(metrics_b, kind), {c["metric"]: c for c in changes["metrics"]}, level=level, method=method)
    f = changes["flips"]
    n_a, n_b = f.get("a", 0), f.get("b", 0)
    share = f["shared"] / min(n_a, n_b) if min(n_a, n_b) else 0.0  # of the smaller run's judgments, the share the other has too
    warnings = []
    if share < LOW_OVERLAP:
        warnings.append(f"low overlap: the runs share {f['shared']:,} of {n_a:,} (A) and {n_b:,} (B) judgments ({share:.1%}), so metrics are compared "
                        "unpaired, each run resampled on its own design, and flipped judgments cover only the shared ones")
    degenerate = [r["metric"] for r in rows if r["status"] == "compared" and not r["usable"]]
    if degenerate:
        warnings.append(f"{len(degenerate)} change(s) have no usable interval and are never flagged: {', '.join(degenerate[:5])}{' ...' if len(degenerate) > 5 else ''}")
    return {
        "a": f"{a.experiment}/{a.run_id}",
        "b": f"{b.experiment}/{b.run_id}",
        "spec": spec_changes(a.manifest.get("spec", {}), b.manifest.get("spec", {})),
        "plan": plan_changes(ta["calls"], tb["calls"]),
        "metrics": rows,
        "flips": f,
        "overlap": {"shared": f["shared"], "a": n_a, "b": n_b, "share": share},
        "multiplicity": {"method": method, "alpha": 1 - level, "family": sum(1 for r in rows if r["p"] is not None and r["p"] == r["p"])},
        "level": level,
        "warnings": warnings,
    }


def _num(x: Any, fmt: str = ".4f") -> str:
    return "-" if x is None or x != x else format(x, fmt)


def cell(value: Any, low: Any, high: Any, signed: bool = False) -> str:
    """ "0.512 [0.450, 0.571]", or the value alone when there is no interval."""
    f = "+.3f" if signed else ".3f"
    if value is None:
        return "-"
    if low is None or high is None or low != low or high != high:
        return _num(value, f) + " (no CI)"
    return f"{_num(value, f)} [{_num(low, f)}, {_num(high, f)}]"


def metric_cells(m: dict[str, Any]) -> tuple[str, str, str, str]:
    """A diff metric as text: A and B with their intervals, the change (or
    added/removed), and how it was compared (with any warning)."""
    change = cell(m["delta"], m["low"], m["high"], signed=True) if m["status"] == "compared" else m["status"]
    how = (m["comparison"] or "") + (f" ({m['warning']})" if m.get("warning") else "")
    return cell(m["a"], m["a_low"], m["a_high"]), cell(m["b"], m["b_low"], m["b_high"]), change, how


def legend(d: dict[str, Any]) -> str:
    m = d["multiplicity"]
    return (f"B - A with a {d['level']:.0%} interval (paired over shared items when the runs share them, else unpaired from each run's own interval); "
            f"{describe(m['method'], m['alpha'], m['family'])} (null: no change)")


def to_markdown(d: dict[str, Any]) -> str:
    lines = [f"# diff {d['a']} -> {d['b']}", ""]
    lines += [x for w in d.get("warnings", []) for x in (f"> **Warning:** {w}", "")]
    lines += ["## Spec"]
    lines += [f"- `{c['field']}`: `{c['old']!r}` -> `{c['new']!r}`" for c in d["spec"]] or ["- no change"]
    p = d["plan"]
    lines += ["", "## Plan", f"- calls added {p['added']}, removed {p['removed']}, reused {p['reused']}; served from the cache in B: {p['served_from_cache_in_b']}", "",
              "| step | added | removed | reused |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['added']} | {s['removed']} | {s['reused']} |" for s in p["by_step"]]
    lines += ["", "## Metrics", "", legend(d), "", "| metric | A | B | change | how | adj. p | survives |", "|---|---|---|---|---|---|---|"]
    for m in d["metrics"]:
        a, b, change, how = metric_cells(m)
        lines.append(f"| {m['metric']} | {a} | {b} | {change} | {how} | "
                     f"{_num(m.get('p_adjusted'), '.3g')} | {'yes' if m['flagged'] else ''} |")
    f = d["flips"]
    lines += ["", "## Flipped judgments", f"- {f['total']} of {f['shared']} shared judgments flipped"]
    lines += [f"- {row['group']}: {row['flips']}" for row in f["by_group"][:20]]
    lines += [f"- e.g. {ex}" for ex in f["examples"]]
    return "\n".join(lines) + "\n"
