"""`persona-exp diff A B`: what changed between two runs, and what it did to the results."""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from persona_exp.cli.output import print_frame, print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="compare two runs: spec, plan, each run's metrics and their changes with CIs, flipped judgments")
    p.add_argument("a", help="run id, latest, latest~N, or a spec path (its latest run)")
    p.add_argument("b", nargs="?", default=None, help="the newer run (default: the latest run of A's experiment)")
    p.add_argument("--dir", default=".persona-exp")
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--multiplicity", choices=["holm", "bh", "none"], default=None,
                   help="correction over the metrics' changes (default: run B's analysis.multiplicity, holm unless set)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--md", action="store_true", help="Markdown report")
    p.set_defaults(handler=main)


def _resolve(root: str, ref: str, experiment: str | None):
    from persona_exp.store import resolve_run

    if ref.endswith((".yaml", ".yml")) or Path(ref).is_file():
        from persona_exp.pipeline import load_spec

        spec = load_spec(ref)
        return resolve_run(root, "latest", spec.name)
    return resolve_run(root, ref, experiment)


def _bare_latest(ref: str) -> bool:
    return ref == "latest" or ref.startswith("latest~")


def main(args: argparse.Namespace) -> int:
    from persona_exp.diff import diff_runs, legend, metric_cells, to_markdown

    if args.b is not None and _bare_latest(args.a):
        # `diff latest~1 latest`: the two runs of B's experiment, whatever ran since.
        b = _resolve(args.dir, args.b, None)
        a = _resolve(args.dir, args.a, b.experiment)
    else:
        a = _resolve(args.dir, args.a, None)
        b = _resolve(args.dir, "latest", a.experiment) if args.b is None else _resolve(args.dir, args.b, None)
    d = diff_runs(a, b, n_resamples=args.n_resamples, seed=args.seed, multiplicity=args.multiplicity)
    if args.json:
        print_json(d)
        return 0
    if args.md:
        print(to_markdown(d), end="")
        return 0
    print(f"diff {d['a']} -> {d['b']}")
    for w in d["warnings"]:
        print(f"WARNING: {w}")
    print("spec:" if d["spec"] else "spec: no change")
    for c in d["spec"]:
        print(f"  {c['field']}: {c['old']!r} -> {c['new']!r}")
    p = d["plan"]
    print(f"plan: {p['added']} calls added, {p['removed']} removed, {p['reused']} reused; {p['served_from_cache_in_b']} served from the cache in B")
    if d["metrics"]:
        rows = [{"metric": m["metric"], **dict(zip(("A", "B", "change", "how"), metric_cells(m))),
                 "adj. p": m["p_adjusted"], "survives": "*" if m["flagged"] else ""} for m in d["metrics"]]
        print_frame(pl.DataFrame(rows, schema_overrides={"adj. p": pl.Float64}), "metrics: " + legend(d), limit=200)
    f = d["flips"]
    print(f"flipped judgments: {f['total']} of {f['shared']} shared")
    for ex in f["examples"]:
        print(f"  {ex}")
    return 0
