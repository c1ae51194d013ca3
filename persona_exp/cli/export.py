"""`persona-exp export RUN --format jsonl|parquet|hf [-o PATH]`: preference pairs and judgments as datasets."""

from __future__ import annotations

import argparse
import sys


def add(sub: argparse._SubParsersAction) -> None:
    from persona_exp.export import FORMATS, TABLES

    p = sub.add_parser(
        "export",
        help="export a run's preference pairs and judgments (jsonl, parquet, or a Hugging Face datasets folder)",
        description="Export the preference pairs (prompt, chosen, rejected, persona, attribute...) or the judgments of a "
        "leave-one-out or DPF run. jsonl and parquet write one table to one file; hf writes a folder with both tables "
        "as parquet and a dataset card, readable by datasets.load_dataset(folder).",
    )
    p.add_argument("run", help="run id (or a prefix), latest, latest~N, experiment/run-id, or a spec path (its latest run)")
    p.add_argument("--format", required=True, choices=FORMATS, help="jsonl or parquet (one table, one file), or hf (a datasets folder with both tables)")
    p.add_argument("-o", "--output", default=None, metavar="PATH",
                   help="file (jsonl, parquet) or folder (hf) to write; default <experiment>-<run-id>-<table>.<format> or <experiment>-<run-id>-hf/")
    p.add_argument("--table", default="pairs", choices=TABLES, help="which table jsonl/parquet write (default pairs; hf writes both)")
    p.add_argument("--dir", default=".persona-exp", help="output folder of the runs (default .persona-exp)")
    p.add_argument("--persona-split", choices=("train", "test"), default=None,
                   help="only the rows of the train or test personas (a DPF run with experiment.persona_split)")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from persona_exp.cli.diff import _resolve
    from persona_exp.export import export_run

    run = _resolve(args.dir, args.run, None)
    paths, notes = export_run(run, args.format, args.output, table=args.table, persona_split=args.persona_split)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    what = "pairs and judgments" if args.format == "hf" else args.table
    print(f"exported {what} of {run.experiment}/{run.run_id}: " + ", ".join(str(p) for p in paths))
    return 0
