"""`persona-exp census fetch`: download the Census Bureau's ACS 1-year PUMS zips into the cache."""

from __future__ import annotations

import argparse
import sys

from persona_exp.cli.output import print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("census", help="census microdata (ACS PUMS): fetch the Bureau's files")
    verbs = p.add_subparsers(dest="census_command", metavar="SUBCOMMAND")
    p.set_defaults(handler=lambda args: _help(p))
    f = verbs.add_parser(
        "fetch",
        help="download ACS 1-year PUMS zips (csv_p<st>.zip, csv_h<st>.zip) unless already present",
        description=(
            "Download the Census Bureau's ACS 1-year PUMS zips of a state (or the nation) for a year, "
            "check them and keep them in a cache folder; files already there are not downloaded again. "
            "Point population.persons / population.housing at the printed paths."
        ),
    )
    f.add_argument("--year", required=True, type=int, help="survey year, 2017 or later (2020 was not released)")
    f.add_argument("--state", required=True, help="postal code (WY), name (Wyoming), FIPS code (56), or us for the nation")
    f.add_argument("--kind", choices=("person", "housing", "both"), default="person", help="which file(s) (default person)")
    f.add_argument("--dest", default=None, metavar="DIR", help="folder for the zips (default: the PUMS cache, downloads/<year>)")
    f.add_argument("--base-url", default=None, metavar="URL", help="server to download from instead of the Bureau's (a mirror)")
    f.add_argument("--force", action="store_true", help="download again even when a good copy is present")
    f.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    f.add_argument("--no-progress", action="store_true", help="no progress display")
    f.add_argument("--json", action="store_true", help="print what was fetched as JSON")
    f.set_defaults(handler=fetch_main)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def fetch_main(args: argparse.Namespace) -> int:
    from persona_exp.census.fetch import fetch_pums

    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    fetched = fetch_pums(args.year, args.state, args.kind, dest=args.dest, base_url=args.base_url, force=args.force,
                         progress=progress, timeout=args.timeout)
    if args.json:
        print_json([{"path": str(f.path), "url": f.url, "kind": f.kind, "downloaded": f.downloaded, "bytes": f.size,
                     "members": list(f.members)} for f in fetched])
        return 0
    for f in fetched:
        what = f"downloaded from {f.url}" if f.downloaded else "already present, not downloaded again"
        print(f"{f.kind} file {f.path} ({_size(f.size)}; {', '.join(f.members)}): {what}")
    by_kind = {f.kind: f.path for f in fetched}
    sets = [f"--set population.{'persons' if k == 'person' else 'housing'}={p}" for k, p in by_kind.items()]
    print("use it in a spec with " + " ".join(sets))
    return 0
