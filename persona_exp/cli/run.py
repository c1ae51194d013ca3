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
    p.add_argument("--max-cost", type=float, default=None, metavar="USD",
                   help="refuse to start when the estimate exceeds USD; stop sending once the spending reaches it (exit 1, answers kept)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="smoke run: only the first N calls of each step")
    p.add_argument("--name", default=None, help="a name for the stored run, usable wherever a run is referred to (e.g. show pilot-20)")
    p.add_argument("--note", default=None, help="a free-text note stored with the run and shown by `runs` and `show`")
    p.add_argument("--executor", default="local", metavar="local|ray[=ADDRESS]",
                   help="where calls are sent from: this process (local, default) or Ray actors, on a local Ray cluster (ray) or an existing "
                        "one (ray=ADDRESS); this process alone writes the cache either way. Needs pip install 'persona-exp[ray]'")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from persona_exp.pipeline import run

    outcome = run(args.spec, args.overrides, progress=not args.no_progress and not args.json, max_cost=args.max_cost, limit=args.limit,
                  name=args.name, note=args.note, executor=args.executor)
    c = outcome.counts
    if args.json:
        print_json({"run_id": outcome.run_id, "run_dir": str(outcome.run_dir), "counts": c.as_dict(), "metrics": outcome.analysis.metrics})
    else:
        print_frame(outcome.analysis.headline, outcome.analysis.title)
        for note in outcome.manifest["notes"]:
            print(f"note: {note}")
        if _undefined(outcome.analysis.headline):
            print("why some statistics are undefined: " + ("calls had no answer, see the notes above." if c.failed or c.lenient else
                  "no call failed; nan marks a statistic these answers leave undefined (e.g. kappa when one label was given throughout)."))
        cost = f"${c.cost:.4f}" + (f" (+{c.cost_unknown} calls of unknown price)" if c.cost_unknown else "")
        print(f"run {outcome.run_id} stored in {outcome.run_dir}")
        print(f"tokens {c.prompt_tokens + c.completion_tokens:,}, cost {cost}")
    print(c.line(), file=sys.stderr if args.json else sys.stdout)
    if args.json:  # otherwise they are among the notes printed above
        for guard in ("limit", "budget"):
            if outcome.manifest.get(guard, {}).get("note"):
                print(outcome.manifest[guard]["note"], file=sys.stderr)
    if outcome.manifest.get("budget", {}).get("stopped"):
        return 1  # the note says why; the unsent calls are not failures a rerun of the same command should be told to fix
    if c.failed:
        groups: dict[tuple, list[dict]] = {}
        for r in outcome.failures:  # one line per step, role and reason, with its first error
            groups.setdefault((r["step"], r["role"], r.get("reason") or r["status"]), []).append(r)
        for (step, role, reason), rs in list(groups.items())[:10]:
            print(f"  failed: {step} ({role}, {reason}){f' x{len(rs)}' if len(rs) > 1 else ''}: {rs[0]['error']}", file=sys.stderr)
        if len(groups) > 10:
            print(f"  ... and {sum(len(rs) for rs in list(groups.values())[10:])} more (see the calls table of the run)", file=sys.stderr)
        print(rerun_advice(c.failures), file=sys.stderr)
        return 1
    return 0


def _undefined(frame) -> bool:  # noqa: ANN001 - a polars frame
    """The headline has no rows, or a NaN (a statistic the answers left
    undefined; a missing value is one that does not apply, such as a baseline
    compared with itself)."""
    if frame.height == 0:
        return True
    return any(frame[col].dtype.is_float() and frame[col].is_nan().any() for col in frame.columns)


def rerun_advice(failures: dict[str, int]) -> str:
    """What rerunning the same command does with each kind of failure (nothing failed is cached)."""
    parts = []
    again = sum(n for k, n in failures.items() if k not in ("auth", "parse"))
    if again:
        parts.append(f"sends the {again} calls that got no answer again")
    if failures.get("parse"):
        parts.append(f"re-asks the {failures['parse']} answers that failed to parse, with new attempts")
    fix = [("auth", "fix the credentials named in the error"), ("truncated", "raise the role's max_tokens"),
           ("rejected", "check the request the provider refused")]
    first = [what for k, what in fix if failures.get(k)]
    if failures.get("auth"):
        parts.append(f"sends the {failures['auth']} calls refused for credentials again")
    advice = "some calls failed; rerunning the same command " + " and ".join(parts) + "."
    return advice + (f" First {', and '.join(first)}." if first else "")

