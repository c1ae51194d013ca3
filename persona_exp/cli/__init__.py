"""The `persona-exp` command line: a thin shell over the library.

Each verb will live in its own module of this package; this module builds the
parser, dispatches, and turns `PersonaExpError`s into one-paragraph messages
with exit code 2 (never a traceback for bad input).
"""

from __future__ import annotations

import argparse
import sys

from persona_exp import __version__
from persona_exp.cli import cache, census, diff, export, plan, population, report, run, runs
from persona_exp.errors import PersonaExpError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persona-exp",
        description=(
            "Run declarative YAML experiments on how well language models serve different people: "
            "census-grounded persona populations, role-play judges, leave-one-out attribute influence, "
            "agreement statistics with bootstrap confidence intervals."
        ),
    )
    parser.add_argument("--version", action="version", version=f"persona-exp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (run, plan, runs, diff, report, export, cache, population, census):
        module.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            parser.print_help()
            return 0
        return int(args.handler(args) or 0)
    except PersonaExpError as exc:
        print(f"persona-exp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("persona-exp: interrupted; every finished call is in the cache, so rerunning continues from here.", file=sys.stderr)
        return 130
