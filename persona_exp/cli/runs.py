"""`persona-exp runs` and `persona-exp show RUN`: what is stored."""

from __future__ import annotations

import argparse

import polars as pl

from persona_exp.cli.output import print_frame, print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list stored runs")
    p.add_argument("experiment", nargs="?", help="only runs of this experiment")
    p.add_argument("--dir", default=".persona-exp", help="output folder (default .persona-exp)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_main)
    s = sub.add_parser("show", help="summarize a stored run")
    s.add_argument("run", help="run id (or a prefix), run name, latest, latest~N, experiment:latest~N, or experiment/run-id")
    s.add_argument("--dir", default=".persona-exp", help="output folder (default .persona-exp)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--calls", action="store_true", help="print the run's calls: what each was sent, what the model answered, how it was read")
    s.add_argument("--step", help="with --calls: only this step (e.g. judge, revise)")
    s.add_argument("--persona", help="with --calls: only the calls of this persona's items (e.g. p0007)")
    s.add_argument("--limit", type=int, default=5, help="with --calls: at most this many calls (default 5)")
    s.set_defaults(handler=show_main)


def _status(run) -> str:
    """ok, some calls failed, or no answers at all (such a run is never `latest`)."""
    from persona_exp.execute.runner import failures_of
    from persona_exp.store.runs import nothing_succeeded

    if nothing_succeeded(run):
        return "no answers (not latest)"
    return "some failed" if failures_of(run.manifest.get("counts", {}))[0] else "ok"


def list_main(args: argparse.Namespace) -> int:
    from persona_exp.execute.runner import failures_of
    from persona_exp.store import scan_runs

    runs, damaged = scan_runs(args.dir, args.experiment)
    rows = [
        {"experiment": r.experiment, "run": r.run_id, "name": r.manifest.get("name"), "created": r.created,
         "calls": r.manifest.get("counts", {}).get("calls"), "cached": r.manifest.get("counts", {}).get("cached"),
         "ran": r.manifest.get("counts", {}).get("ran"), "failed": failures_of(r.manifest.get("counts", {}))[0], "status": _status(r),
         "overrides": " ".join(r.manifest.get("overrides") or []), "note": r.manifest.get("note")}
        for r in runs
    ]
    # A damaged folder is listed, not hidden: latest, diff and report skip it.
    rows += [{"experiment": d.experiment, "run": d.run_id, "name": None, "created": None, "calls": None, "cached": None, "ran": None,
              "failed": None, "status": f"damaged: {d.why}", "overrides": "", "note": None} for d in damaged]
    if args.json:
        print_json(rows)
    elif not rows:
        print(f"no stored runs under {args.dir}")
    else:
        print_frame(pl.DataFrame(rows, infer_schema_length=None), "stored runs")
        for d in damaged:
            print(f"damaged run folder {d.path}: {d.why}; latest, diff and report skip it. Rerun its spec (the cache keeps its "
                  "answers) and move the folder away.")
    return 0


def show_main(args: argparse.Namespace) -> int:
    from persona_exp.store import load_run, resolve_run

    info = resolve_run(args.dir, args.run)
    metrics, tables = load_run(info)
    m = info.manifest
    if args.calls:
        return _show_calls(tables, args)
    if args.json:
        print_json({"manifest": m, "metrics": metrics, "tables": {k: v.height for k, v in tables.items()}})
        return 0
    c = m.get("counts", {})
    print(f"{m['experiment']} / {info.run_id}" + (f" [{m['name']}]" if m.get("name") else "") + f"  ({m.get('kind')}, created {m.get('created')})")
    if m.get("note"):
        print(f"  note from the researcher: {m['note']}")
    print(f"  spec {m.get('spec_path')}  seed {m.get('seed')}  spec hash {m.get('spec_hash', '')[:12]}  plan hash {m.get('plan_hash', '')[:12]}")
    for role, model in m.get("models", {}).items():
        print(f"  {role}: {model['model']}" + (f" (reported: {', '.join(model['reported'])})" if model.get("reported") else ""))
    from persona_exp.execute.runner import counts_line

    print(f"  {counts_line(c)}; tokens {c.get('prompt_tokens', 0) + c.get('completion_tokens', 0):,}; cost ${c.get('cost', 0):.4f}")
    if m.get("executor"):  # runs stored before it was recorded have none
        print(f"  calls sent by the {m['executor']} executor")
    for note in m.get("notes", []) or []:
        print(f"  note: {note}")
    t = m.get("timings", {})
    print("  timings: " + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()))
    print("  tables: " + ", ".join(f"{k} ({v.height} rows)" for k, v in tables.items()))
    from persona_exp.experiments import HEADLINES

    headline = HEADLINES.get(m.get("kind", ""))
    if headline and headline in tables:
        from persona_exp.store import SIMULATED, is_simulated, label_simulated

        title = f"headline: {metrics['title']}" if metrics.get("title") else "headline"  # says over which units and what survives means
        print_frame(tables[headline], label_simulated(title) if is_simulated(m) and SIMULATED not in title else title)
    return 0


def _show_calls(tables: dict[str, pl.DataFrame], args: argparse.Namespace) -> int:
    """The transcript of the run's calls, filtered by step and persona."""
    import json

    from persona_exp.errors import DataError

    if "transcripts" not in tables:
        raise DataError("this run has no transcripts table (it was stored by an older version); rerun it to record what each call was sent.")
    calls = tables["calls"].join(tables["transcripts"], on="key", how="left")
    if args.step:
        if args.step not in set(calls["step"].to_list()):
            raise DataError(f"--step {args.step}: the run has no such step; its steps: {', '.join(sorted(set(calls['step'].to_list())))}.")
        calls = calls.filter(pl.col("step") == args.step)
    if args.persona:
        design = tables.get("design")
        if design is None or "persona_id" not in design.columns:
            raise DataError("--persona: this run's design has no persona_id column.")
        rows = design.filter(pl.col("persona_id").cast(pl.String) == args.persona)
        if rows.height == 0:
            raise DataError(f"--persona {args.persona}: no item of this run has that persona.")
        keys = {k for col in rows.columns if col.endswith("_key") for k in rows[col].drop_nulls().cast(pl.String).to_list()}
        reads = dict(zip(calls["key"].to_list(), calls["inputs"].to_list())) if "inputs" in calls.columns else {}
        todo = list(keys)
        while todo:  # and the calls they read (a revision reads its critique), so the persona's whole chain shows
            for k in reads.get(todo.pop()) or []:
                if k not in keys:
                    keys.add(k)
                    todo.append(k)
        calls = calls.filter(pl.col("key").is_in(list(keys)))
    shown = calls.head(max(args.limit, 0))
    if args.json:
        print_json([{**r, "messages": json.loads(r["messages"]) if r["messages"] else None} for r in shown.to_dicts()])
        return 0
    for r in shown.iter_rows(named=True):
        state = r["status"] + (f" ({r['reason']})" if r.get("reason") and r["status"] != "ok" else "") + (", lenient" if r.get("lenient") else "")
        latency = "-" if r.get("latency_ms") is None else f"{r['latency_ms']:.0f} ms"  # as answered, for a cached call
        print(f"=== {r['step']} ({r['role']}, {r['model'] or '-'}) {r['key'][:12]}  {state}; "
              f"{'cached' if r['cached'] else 'sent'}; tokens {r['prompt_tokens']}+{r['completion_tokens']}; re-asks {r.get('reasks') or 0}"
              f"; attempts {r.get('attempts') or 0}; latency {latency}" + (f"; deployment {r['deployment']}" if r.get("deployment") else ""))
        for msg in json.loads(r["messages"]) if r.get("messages") else []:
            print(f"--- {msg['role']}:\n{msg['content']}")
        print(f"--- answer:\n{r['text'] if r['text'] is not None else '(none)'}")
        if r["value"] is not None and r["value"] != r["text"]:
            print(f"--- read as: {r['value']}")
        if r["error"]:
            print(f"--- error: {r['error']}")
    print(f"({shown.height} of {calls.height} calls shown; --limit N for more)")
    return 0
