"""`persona-exp run SPEC`: run an experiment and store the run."""

from __future__ import annotations

import argparse
import sys

from persona_exp.cli.output import print_frame, print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment spec and store the run", description="Run an experiment spec: only calls missing from the cache are sent.")
    p.add_argument("spec", help="experiment YAML file, e.g. experiments/loo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec field (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from persona_exp.pipeline import run

    outcome = run(args.spec, args.overrides, progress=not args.no_progress and not args.json)
    c = outcome.counts
    if args.json:
        print_json({"run_id": outcome.run_id, "run_dir": str(outcome.run_dir), "counts": c.as_dict(), "metrics": outcome.analysis.metrics})
    else:
        print_frame(outcome.analysis.headline, outcome.analysis.title)
        for note in outcome.manifest["notes"]:
            print(f"note: {note}")
        cost = f"${c.cost:.4f}" + (f" (+{c.cost_unknown} calls of unknown price)" if c.cost_unknown else "")
        print(f"run {outcome.run_id} stored in {outcome.run_dir}")
        print(f"tokens {c.prompt_tokens + c.completion_tokens:,}, cost {cost}")
    failed = c.failed + c.parse_failed + c.skipped
    line = f"{c.calls} calls: {c.cached} cached, {c.ran} run, {failed} failed"
    print(line, file=sys.stderr if args.json else sys.stdout)
    if failed:
        bad = outcome.failures
        for r in bad[:10]:
            print(f"  failed: {r['step']} ({r['role']}, {r['status']}): {r['error']}", file=sys.stderr)
        if len(bad) > 10:
            print(f"  ... and {len(bad) - 10} more (see the calls table of the run)", file=sys.stderr)
        print("some calls failed; rerun the same command to retry only those.", file=sys.stderr)
        return 1
    return 0
