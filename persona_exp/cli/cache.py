"""`persona-exp cache stats|prune|check`: housekeeping of the call cache."""

from __future__ import annotations

import argparse

from persona_exp.cli.output import print_json


def open_cache(path: str):  # noqa: ANN201 - execute.CallCache, imported late to keep the CLI's start fast
    """The cache file at ``path``, opened; a missing one is an error, never a new empty cache."""
    from pathlib import Path

    from persona_exp.errors import DataError
    from persona_exp.execute import CallCache

    if not Path(path).exists():
        raise DataError(f"{path}: no cache file here; run an experiment first or pass --path.")
    return CallCache(path)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="call-cache housekeeping")
    p.add_argument("action", choices=["stats", "prune", "check"], help="stats; prune --older-than DAYS; check: is the file intact (exit 2 if not)")
    p.add_argument("--path", default=".persona-exp/cache.sqlite", help="cache file (default .persona-exp/cache.sqlite)")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="prune: delete calls older than this many days")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from persona_exp.errors import DataError
    from persona_exp.execute.cache import damaged

    with open_cache(args.path) as cache:
        if args.action == "check":
            problems = cache.check()  # SQLite's quick_check: every page and row readable
            if problems:
                raise damaged(args.path, "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more problems" if len(problems) > 3 else ""), hint=False)
            n = cache.stats()["calls"]
            print_json({"path": args.path, "ok": True, "calls": n}) if args.json else print(f"{args.path}: intact, {n} calls")
            return 0
        if args.action == "stats":
            s = cache.stats()
            if args.json:
                print_json(s)
            else:
                print(f"{s['path']}: {s['calls']} calls, {s['bytes'] / 1e6:.1f} MB")
                for model, n in s["by_model"].items():
                    print(f"  {model or '(unknown model)'}: {n}")
            return 0
        if args.older_than is None:
            raise DataError("cache prune needs --older-than DAYS (nothing is deleted without it).")
        removed = cache.prune(older_than_days=args.older_than)
        print(f"removed {removed} calls older than {args.older_than:g} days")
        return 0
