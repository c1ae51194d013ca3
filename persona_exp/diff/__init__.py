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


def paired_rates(
    ta: dict[str, pl.DataFrame],
    tb: dict[str, pl.DataFrame],
    *,
    table: str,
    ids: list[str],
    outcome: str,
    group: list[str],
    cluster: str,
    metric: str,
    n_resamples: int,
    seed: int,
    examples: int,
    overall: bool = True,
) -> dict[str, Any]:
    """The change of a rate (the mean of a 0/1 ``outcome`` per item) between two
    runs, per group and overall, over the items both runs judged (matched on
    ``ids``), with a paired cluster-bootstrap interval of B - A; and the items
    whose outcome flipped. The per-item differences d = b - a lie in {-1, 0, 1};
    (d + 1) / 2 is a rate in [0, 1] whose bootstrap interval maps back to one for
    the mean difference (percentile intervals are affine-equivariant)."""
    from persona_exp import stats

    for t, run in ((ta, "A"), (tb, "B")):
        if table not in t:
            raise DataError(f"run {run} has no {table} table, so its {metric} cannot be compared.")
    cols = list(dict.fromkeys([*ids, *group, cluster, outcome]))
    sa = ta[table].select(cols).filter(pl.col(outcome).is_not_null())
    sb = tb[table].select(cols).filter(pl.col(outcome).is_not_null())
    shared = sa.join(sb.select([*ids, outcome]), on=ids, suffix="_b", validate="1:1").with_columns(
        pl.concat_str([pl.col(g).cast(pl.String) for g in group], separator="/").alias("_group"))
    groups = [(g, shared.filter(pl.col("_group") == g)) for g in shared["_group"].unique(maintain_order=True).to_list()]
    if overall and len(groups) > 1:
        groups.append(("all", shared))
    metrics = []
    for name, g in groups:
        a, b = g[outcome].cast(pl.Float64).to_numpy(), g[f"{outcome}_b"].cast(pl.Float64).to_numpy()
        if g.height >= 2:
            _, lo, hi = stats.win_rate((b - a + 1) / 2, clusters=g[cluster].cast(pl.String).to_numpy(), n_resamples=n_resamples, seed=seed)
            lo, hi = 2 * lo - 1, 2 * hi - 1
        else:
            lo = hi = float("nan")
        d = float((b - a).mean()) if g.height else float("nan")
        metrics.append({"metric": f"{metric}[{name}]", "a": float(a.mean()) if g.height else float("nan"), "b": float(b.mean()) if g.height else float("nan"),
                        "delta": d, "low": lo, "high": hi, "flagged": bool(lo > 0 or hi < 0), "items": g.height})
    flipped = shared.filter(pl.col(outcome) != pl.col(f"{outcome}_b"))
    by_group = flipped.group_by("_group").len().sort("len", descending=True).select(pl.col("_group").alias("group"), pl.col("len").alias("flips")).to_dicts()
    ex = [" / ".join(f"{c} {r[c]}" for c in ids) + f": {r[outcome]} -> {r[outcome + '_b']}" for r in flipped.head(examples).iter_rows(named=True)]
    return {"metrics": metrics, "flips": {"shared": shared.height, "total": flipped.height, "by_group": by_group, "examples": ex}}


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
