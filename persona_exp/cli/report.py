"""`persona-exp report RUN [-o file.html] [--against OTHER]`: a self-contained HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run (plots, tables, population vs census)",
        description="Write one self-contained HTML file (no network needed to view it) with the run's manifest summary, "
        "headline tables and plots. With --against, the two runs side by side and every metric's change (RUN - OTHER) "
        "with its paired bootstrap interval.",
    )
    p.add_argument("run", help="run id (or a prefix), latest, latest~N, experiment/run-id, or a spec path (its latest run)")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="HTML file to write (default: report-<run-id>.html, or report-<run-id>-vs-<other-id>.html)")
    p.add_argument("--against", default=None, metavar="OTHER", help="compare with this run (deltas are RUN - OTHER)")
    p.add_argument("--dir", default=".persona-exp", help="output folder (default .persona-exp)")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples for the deltas of --against (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from persona_exp.cli.diff import _resolve
    from persona_exp.report import render_report, write_report

    run = _resolve(args.dir, args.run, None)
    other = _resolve(args.dir, args.against, None) if args.against else None
    html = render_report(run, other, n_resamples=args.n_resamples, seed=args.seed)
    default = f"report-{run.run_id}.html" if other is None else f"report-{run.run_id}-vs-{other.run_id}.html"
    path = write_report(Path(args.output) if args.output else Path(default), html)
    print(f"report of {run.experiment}/{run.run_id}" + (f" against {other.run_id}" if other else "") + f" written to {path} ({len(html.encode()) / 1024:,.0f} KiB)")
    return 0
