"""The `persona-exp` command line: a thin shell over the library.

Each verb will live in its own module of this package; this module builds the
parser, dispatches, and turns `PersonaExpError`s into one-paragraph messages
with exit code 2 (never a traceback for bad input).
"""

from __future__ import annotations

import argparse
import signal
import sys

from persona_exp import __version__
from persona_exp.cli import batches, cache, census, diff, export, init, plan, population, power, report, run, runs
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
    for module in (init, run, plan, power, runs, diff, report, export, cache, batches, population, census):
        module.add(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm and Kubernetes send before a kill) stops a run as Ctrl-C does."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command is None:
            parser.print_help()
            return 0
        return int(args.handler(args) or 0)
    except PersonaExpError as exc:
        print(f"persona-exp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (`persona-exp diff ... | head`): stop quietly, as other Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return 141
    except KeyboardInterrupt as exc:
        from persona_exp.execute import cache

        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"persona-exp: {how}; the {cache.STORED:,} answers this run finished are in the cache, "
              "so rerunning the same command continues from there.", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
