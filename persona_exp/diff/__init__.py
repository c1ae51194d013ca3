"""Comparing two stored runs of one experiment: what changed in the spec and
the plan, how every metric moved (with a paired bootstrap interval of the change
over the items both runs share), and which judgments flipped."""

from __future__ import annotations

from typing import Any

import polars as pl

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


def diff_runs(a: RunInfo, b: RunInfo, *, n_resamples: int = 1000, seed: int = 0, examples: int = 5) -> dict[str, Any]:
    if a.manifest.get("kind") != b.manifest.get("kind") or a.experiment != b.experiment:
        raise DataError(
            f"cannot diff runs of different experiments: {a.experiment}/{a.run_id} ({a.manifest.get('kind')}) and "
            f"{b.experiment}/{b.run_id} ({b.manifest.get('kind')}); diff two runs of one experiment."
        )
    _, ta = load_run(a)
    _, tb = load_run(b)
    module = KINDS[a.manifest["kind"]]
    out: dict[str, Any] = {
        "a": f"{a.experiment}/{a.run_id}",
        "b": f"{b.experiment}/{b.run_id}",
        "spec": spec_changes(a.manifest.get("spec", {}), b.manifest.get("spec", {})),
        "plan": plan_changes(ta["calls"], tb["calls"]),
    }
    out.update(module.diff(ta, tb, n_resamples=n_resamples, seed=seed, examples=examples))
    return out


def to_markdown(d: dict[str, Any]) -> str:
    lines = [f"# diff {d['a']} -> {d['b']}", "", "## Spec"]
    lines += [f"- `{c['field']}`: `{c['old']!r}` -> `{c['new']!r}`" for c in d["spec"]] or ["- no change"]
    p = d["plan"]
    lines += ["", "## Plan", f"- calls added {p['added']}, removed {p['removed']}, reused {p['reused']}; served from the cache in B: {p['served_from_cache_in_b']}", "",
              "| step | added | removed | reused |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['added']} | {s['removed']} | {s['reused']} |" for s in p["by_step"]]
    lines += ["", "## Metrics", "", "| metric | A | B | delta | CI low | CI high | CI excludes 0 |", "|---|---|---|---|---|---|---|"]
    for m in d["metrics"]:
        lines.append(f"| {m['metric']} | {m['a']:.4f} | {m['b']:.4f} | {m['delta']:+.4f} | {m['low']:+.4f} | {m['high']:+.4f} | {'yes' if m['flagged'] else ''} |")
    f = d["flips"]
    lines += ["", "## Flipped judgments", f"- {f['total']} of {f['shared']} shared judgments flipped"]
    lines += [f"- {row['group']}: {row['flips']}" for row in f["by_group"][:20]]
    lines += [f"- e.g. {ex}" for ex in f["examples"]]
    return "\n".join(lines) + "\n"
