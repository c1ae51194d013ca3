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


def summarize(prep) -> dict:
    from persona_exp.diff import spec_changes
    from persona_exp.execute import CallCache
    from persona_exp.execute.budget import estimate
    from persona_exp.store import list_runs, load_run, simulated_roles

    plan = prep.design.plan
    models = prep.spec.models
    with CallCache(prep.cache_path if prep.cache_path.exists() else ":memory:") as cache:
        total = estimate(plan, models, cache)
    est = {s.step: s for s in total.steps}
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
    for step, calls in plan.by_step().items():
        if not calls:  # declared by the design but given no call (e.g. nothing to compare): shown, not estimated
            rows.append({"step": step, "model": None, "requested": plan.requested[step], "calls": 0, "cached": 0, "to_run": 0,
                         "new_since_last_run": 0 if previous else None, "est_prompt_tokens": 0, "est_completion_tokens": 0,
                         "est_tokens": 0, "est_cost_usd": 0.0, "answer_lengths": None, "execution": None})
            continue
        e = est[step]
        rows.append(
            {"step": step, "model": e.model, "requested": plan.requested[step], "calls": len(calls), "cached": len(calls) - e.to_run,
             "to_run": e.to_run, "new_since_last_run": sum(c.key not in last_keys for c in calls) if previous else None,
             "est_prompt_tokens": e.prompt_tokens, "est_completion_tokens": e.completion_tokens, "est_tokens": e.tokens,
             "est_cost_usd": e.cost if e.to_run else 0.0, "answer_lengths": e.lengths, "execution": e.execution}
        )
    sim_roles = simulated_roles({role: cfg.model for role, cfg in models.items()})
    return {"experiment": prep.spec.name, "steps": rows, "total_calls": len(plan), "to_run": sum(r["to_run"] for r in rows),
            "to_run_by_batch": sum(r["to_run"] for r in rows if r["execution"] == "batch"),
            "est_tokens": total.tokens, "est_cost_usd": total.cost, "simulated": bool(sim_roles), "simulated_roles": sim_roles,
            "last_run": previous[-1].run_id if previous else None,
            "changed_since_last_run": changes,
            "changed_items": changed_items, "pending": str(prep.pending) if prep.pending else None,
            "simulated_staged_calls": prep.stager.simulated}


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
    from persona_exp.store import label_simulated

    prep = prepare(args.spec, args.overrides, dry=True, simulate=True)
    summary = summarize(prep)
    summary["warnings"] = prep.warnings  # missing credentials, an endpoint nothing answers at: a run would stop
    if args.json:
        print_json(summary)
        return 0
    frame = pl.DataFrame(summary["steps"]).with_columns(pl.col("est_cost_usd").cast(pl.Float64)).drop("est_prompt_tokens", "est_completion_tokens")
    if not any(r["execution"] == "batch" for r in summary["steps"]):
        frame = frame.drop("execution")  # every call goes online: the column would say nothing
    title = f"plan of {summary['experiment']}"
    print_frame(frame, label_simulated(title) if summary["simulated"] else title)
    unpriced = sorted({r["model"] for r in summary["steps"] if r["est_cost_usd"] is None})
    cost = f"unknown (no price for {', '.join(unpriced)})" if summary["est_cost_usd"] is None else f"${summary['est_cost_usd']:.4f}"
    print(f"{summary['total_calls']} calls, {summary['to_run']} to run; estimated {summary['est_tokens']:,} tokens, cost {cost}")
    if summary["to_run_by_batch"]:
        print(f"{summary['to_run_by_batch']} of the calls to run go by the provider's batch API (execution: batch), priced at litellm's "
              "batch prices where its table lists them (else at the online price); their answers come within the batch window, "
              "and re-asks after an unparseable answer go online.")
    for warning in prep.warnings:
        print(f"note: {warning}")
    for r in summary["steps"]:
        if r["calls"] == 0 and r["requested"]:
            print(f"note: step {r['step']}: its {r['requested']:,} requests are identical to calls of another step (same model, settings "
                  "and messages), so they are answered once and shared; give the role different settings if it should answer anew.")
    if summary["simulated_staged_calls"]:
        print(f"{summary['simulated_staged_calls']} staged calls of simulated roles were answered in memory to plan the rest (nothing was stored).")
    if summary["pending"]:
        print(f"the plan goes further: {summary['pending']} `persona-exp run` answers these calls first, then plans the rest; "
              "the estimate covers only the calls planned so far.")
    if summary["last_run"]:
        print(f"compared with the last run {summary['last_run']}:")
        for ch in summary["changed_since_last_run"] or [{"field": "(no spec field changed)", "old": "", "new": ""}]:
            print(f"  {ch['field']}: {ch['old']!r} -> {ch['new']!r}" if ch["old"] != "" else f"  {ch['field']}")
        for it in summary["changed_items"]:
            if it["changed"] or it["new_items"]:
                print(f"  {it['call']}: {it['changed']} of {it['items']} items use a changed call; {it['new_items']} new items")
    return 0
