"""`persona-exp batches [--cancel ID]`: the provider batches recorded in a call cache.

Roles with ``execution: batch`` submit their calls as provider batches and
record each one in the cache database (see execute.batch); this lists them,
live ones first to mind, and cancels one at its provider. Nothing here needs
the spec: a record names its provider, endpoint and the variable holding its key.
"""

from __future__ import annotations

import argparse

from persona_exp.cli.output import print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batches", help="provider batches of roles with execution: batch: list them, or cancel one")
    p.add_argument("--path", default=".persona-exp/cache.sqlite", help="cache file (default .persona-exp/cache.sqlite)")
    p.add_argument("--cancel", metavar="ID", help="cancel this batch (the provider's batch id, or the record's pe-... id) at its provider")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from persona_exp.cli.cache import open_cache
    from persona_exp.execute.batch import cancel_recorded, summarize

    with open_cache(args.path) as cache:
        if args.cancel:
            row = summarize([cancel_recorded(cache, args.cancel)])[0]
            if args.json:
                print_json(row)
            else:
                after = ("a rerun submits its calls in a new batch" if row["state"] == "abandoned"
                         else "a rerun collects what it answered and submits the rest again")
                print(f"batch {row['batch']}: {row['state']}" + (f" ({row['note']})" if row["state"] == "abandoned" and row["note"] else "") + f"; {after}")
            return 0
        rows = summarize(cache.batches())
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"{args.path}: no batches recorded (roles with execution: batch record theirs here)")
        return 0
    live = sum(not r["collected"] and r["state"] != "abandoned" for r in rows)
    print(f"{args.path}: {len(rows)} batches, {live} live (a run of their spec polls and collects them)")
    for r in rows:
        status = "collected" if r["collected"] else r["state"]
        print(f"  {r['batch']}  {r['role']}  {r['provider']}/{r['model']} at {r['endpoint']}  {status}  {r['calls']:,} calls "
              f"({r['answered']:,} answered, {r['failed']:,} failed)  created {r['created']} UTC, updated {r['updated']} UTC"
              + (f"  note: {r['note']}" if r["note"] else ""))
    return 0
