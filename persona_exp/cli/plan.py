"""`persona-exp plan SPEC`: what a run would do and cost, before anything is spent."""

from __future__ import annotations

import argparse

import polars as pl

from persona_exp.cli.output import print_frame, print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="show the plan of a spec: calls per step, cached, to run, tokens, cost")
    p.add_argument("spec")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=main)


def _price(model: str) -> tuple[float, float] | None:
    """Per-token input and output prices from litellm's bundled table (None if unknown)."""
    if model.startswith("sim/"):
        return 0.0, 0.0
    from persona_exp.execute.llm import litellm

    info = litellm().model_cost.get(model) or litellm().model_cost.get(model.split("/", 1)[-1])
    if not info or info.get("input_cost_per_token") is None:
        return None
    return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)


def summarize(prep) -> dict:
    from persona_exp.diff import spec_changes
    from persona_exp.execute import CallCache
    from persona_exp.store import list_runs, load_run

    plan = prep.design.plan
    models = prep.spec.models
    cached: set[str] = set()
    if prep.cache_path.exists():
        with CallCache(prep.cache_path) as cache:
            cached = cache.contains_many(plan.calls)
    previous = list_runs(prep.root, prep.spec.name)
    last_keys: set[str] = set()
    changes: list[dict] = []
    changed_items: list[dict] = []
    if previous:
        last = previous[-1]
        _, tables = load_run(last)
        if "calls" in tables:
            last_keys = set(tables["calls"]["key"].to_list())
        changes = spec_changes(last.manifest.get("spec", {}), prep.spec.model_dump(mode="json"))
        if "design" in tables:
            changed_items = changed_design(tables["design"], prep.design.items)
    rows = []
    total_cost: float | None = 0.0
    for step, calls in plan.by_step().items():
        todo = [c for c in calls if c.key not in cached]
        model = models[calls[0].role]
        out_tokens = model.max_tokens or 256
        tokens_in = sum(sum(len(m["content"]) for m in c.messages) // 4 + out_tokens * len(c.inputs) for c in todo)
        tokens_out = out_tokens * len(todo)
        price = _price(model.model)
        cost = None if price is None else tokens_in * price[0] + tokens_out * price[1]
        total_cost = None if cost is None or total_cost is None else total_cost + cost
        rows.append(
            {"step": step, "model": model.model, "requested": plan.requested[step], "calls": len(calls), "cached": len(calls) - len(todo),
             "to_run": len(todo), "new_since_last_run": sum(c.key not in last_keys for c in calls) if previous else None,
             "est_tokens": tokens_in + tokens_out, "est_cost_usd": cost}
        )
    return {"experiment": prep.spec.name, "steps": rows, "total_calls": len(plan), "to_run": sum(r["to_run"] for r in rows),
            "est_cost_usd": total_cost, "last_run": previous[-1].run_id if previous else None,
            "changed_since_last_run": changes,
            "changed_items": changed_items, "pending": str(prep.pending) if prep.pending else None}


def changed_design(old: pl.DataFrame, new: pl.DataFrame) -> list[dict]:
    """Per call column of the design (``*_key``): of the items present in both
    runs (matched on their id columns), how many now use a different call."""
    ids = [c for c in new.columns if not c.endswith("_key") and new[c].dtype == pl.String and c in old.columns]
    keys = [c for c in new.columns if c.endswith("_key") and c in old.columns]
    if not ids or not keys:
        return []
    joined = new.select(ids + keys).unique(subset=ids).join(old.select(ids + keys).unique(subset=ids), on=ids, how="left", suffix="_old")
    matched = joined.filter(pl.col(keys[0] + "_old").is_not_null())
    out = []
    for k in keys:
        changed = matched.filter(pl.col(k) != pl.col(k + "_old")).height
        out.append({"call": k.removesuffix("_key"), "items": matched.height, "changed": changed, "new_items": joined.height - matched.height})
    return out


def main(args: argparse.Namespace) -> int:
    from persona_exp.pipeline import prepare

    prep = prepare(args.spec, args.overrides, dry=True)
    summary = summarize(prep)
    if args.json:
        print_json(summary)
        return 0
    frame = pl.DataFrame(summary["steps"]).with_columns(pl.col("est_cost_usd").cast(pl.Float64))
    print_frame(frame, f"plan of {summary['experiment']}")
    cost = "unknown (no price for some model)" if summary["est_cost_usd"] is None else f"${summary['est_cost_usd']:.4f}"
    print(f"{summary['total_calls']} calls, {summary['to_run']} to run; estimated cost {cost}")
    if summary["pending"]:
        print(f"the plan goes further: {summary['pending']} `persona-exp run` answers these calls first, then plans the rest.")
    if summary["last_run"]:
        print(f"compared with the last run {summary['last_run']}:")
        for ch in summary["changed_since_last_run"] or [{"field": "(no spec field changed)", "old": "", "new": ""}]:
            print(f"  {ch['field']}: {ch['old']!r} -> {ch['new']!r}" if ch["old"] != "" else f"  {ch['field']}")
        for it in summary["changed_items"]:
            if it["changed"] or it["new_items"]:
                print(f"  {it['call']}: {it['changed']} of {it['items']} items use a changed call; {it['new_items']} new items")
    return 0
