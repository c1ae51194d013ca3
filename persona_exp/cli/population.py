"""`persona-exp population SPEC`: build (or load) the persona population of a spec and report on it.

The population is the one `run` would use: built from the spec's
``population:`` block and seed, stored under ``<output.dir>/populations/`` and
reused from there while the spec is unchanged. Prints its size and source, the
filter and consistency-rule counts, and the representativeness table (sample
vs weighted census source, PERSONA Fig. 2); for a famous-person population,
the personas drawn per axis and category instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import polars as pl

from persona_exp.cli.output import console, print_frame, print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "population",
        help="build (or load) the population of a spec: size, rejections, representativeness",
        description=(
            "Build the persona population of an experiment spec, or load it from the population cache when an "
            "identical one was built before, and print its size, what the filters and consistency rules removed, "
            "and how closely it matches its census source."
        ),
    )
    p.add_argument("spec", help="experiment YAML file, e.g. experiments/loo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec field (repeatable)")
    p.add_argument("--detail", action="store_true", help="list every category of every attribute, not only the largest")
    p.add_argument("--head", type=int, default=0, metavar="N", help="also print the first N personas")
    p.add_argument("--json", action="store_true", help="print the population's summary and report as JSON")
    p.set_defaults(handler=main)


def _stored_path(folder: Path, key: str) -> Path | None:
    """The parquet file in ``folder`` whose sidecar records ``key``."""
    if not folder.is_dir():
        return None
    for parquet in sorted(folder.glob("*.parquet")):
        side = parquet.with_suffix(".json")
        try:
            if json.loads(side.read_text(encoding="utf-8")).get("key") == key:
                return parquet
        except (OSError, ValueError):
            continue
    return None


def summary(spec: Any, pop: Any, path: Path | None, built: bool) -> dict[str, Any]:
    report = pop.report
    rejected = report.get("rejected") or {}
    return {
        "experiment": spec.name,
        "size": pop.frame.height,
        "key": pop.key,
        "path": None if path is None else str(path),
        "built": built,
        "source": report.get("source"),
        "seed": report.get("seed"),
        "rejected_total": int(sum(rejected.values())),
        "report": report,
    }


def _print_text(s: dict[str, Any], pop: Any, detail: bool, head: int) -> None:
    from persona_exp.population import print_representativeness

    report = s["report"]
    where = f"built and stored in {s['path']}" if s["built"] else f"loaded from {s['path']}"
    print(f"population of {s['experiment']}: {s['size']:,} personas ({where})")
    print(f"  source: {s['source']}")
    print(f"  seed {s['seed']}  content key {s['key']}")
    filters = report.get("filters") or {}
    if filters.get("applied"):
        steps = "; ".join(f"{st['filter']} -> {st['rows_after']:,}" for st in filters.get("steps", []))
        print(f"  filters: {filters['rows_before']:,} source rows; {steps} rows kept")
    if "drawn" in report:
        print(f"  drawn {report['drawn']:,} rows in {report.get('draw_rounds', 1)} round(s) for {s['size']:,} personas")
    if "rejected" in report:
        hits = {k: v for k, v in report["rejected"].items() if v}
        if hits:
            detail_ = ", ".join(f"{k} {v:,}" for k, v in sorted(hits.items(), key=lambda kv: -kv[1]))
            print(f"  rejected by the consistency rules: {s['rejected_total']:,} ({detail_})")
        else:
            rules = len(report["rejected"])
            print(f"  rejected by the consistency rules: none ({rules} rules checked)" if rules else "  consistency rules: off")
    if report.get("strata"):
        print(f"  {report.get('available', '?')} famous personas available; drawn per axis and category:")
        print_frame(pl.DataFrame(report["strata"]), "famous-person strata", limit=500)
    if report.get("representativeness"):
        print_representativeness(report, console=console(), detail=detail)
    if head > 0:
        _print_head(pop.frame, head)
    for note in report.get("notes", []):
        print(f"note: {note}")


def _print_head(frame: pl.DataFrame, n: int) -> None:
    """The first ``n`` personas, each as the text a prompt would show (famous ones: name, axis, description)."""
    from persona_exp.population import render_persona

    for row in frame.head(n).iter_rows(named=True):
        print(f"--- {row['persona_id']}")
        if {"name", "axis", "category", "description"} <= row.keys():
            print(f"{row['name']} ({row['axis']}: {row['category']})\n{row['description']}")
        else:
            print(render_persona(row))


def main(args: argparse.Namespace) -> int:
    from persona_exp.pipeline import _population, load_spec

    spec = load_spec(args.spec, args.overrides, for_run=False)
    root = Path(spec.output.dir)
    folder = root / "populations"
    before = set(folder.glob("*.parquet")) if folder.is_dir() else set()
    pop = _population(spec, root)
    new = sorted(set(folder.glob("*.parquet")) - before) if folder.is_dir() else []
    path = new[0] if len(new) == 1 else _stored_path(folder, pop.key)
    s = summary(spec, pop, path, built=bool(new))
    if args.json:
        print_json(s)
    else:
        _print_text(s, pop, args.detail, args.head)
    return 0
