"""`persona-exp population SPEC`: build (or load) the persona population of a spec and report on it.

The population is the one `run` would use: built from the spec's
``population:`` block and seed, stored under ``<output.dir>/populations/`` and
reused from there while the spec is unchanged. Prints its size and source, the
filter and consistency-rule counts, and the representativeness table (sample
vs weighted census source, PERSONA Fig. 2); for a famous-person population,
the personas drawn per axis and category instead. For the embedded default
(no PUMS file), also its calibration: each control margin of the shipped
records against its published national total, and the joint structure
(Cramér's V of key attribute pairs) in the census files, the calibrated
default and the personas.

A ``population.llm`` block (consistency check, open fields, generated people)
asks a model: the command then runs those calls like ``run`` does, through the
spec's call cache (a second build is all cache hits), prints what the steps
did and the call counts, and exits 1 when some calls failed (a rerun retries
them). With ``--dry`` it never calls a model: it answers from the cache and
stops with a note when some answers are not cached yet. What is stored under
``populations/`` is the procedural population the llm steps start from.
"""

from __future__ import annotations

import argparse
import json
import sys
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
    p.add_argument("--dry", action="store_true", help="never call a model: answer the population.llm steps from the call cache only")
    p.add_argument("--no-progress", action="store_true", help="no progress display for model calls")
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


def summary(spec: Any, pop: Any, path: Path | None, built: bool, calls: dict[str, int] | None = None) -> dict[str, Any]:
    report = pop.report
    rejected = report.get("rejected") or {}
    check = (report.get("llm") or {}).get("check") or {}
    return {
        "experiment": spec.name,
        "size": pop.frame.height,
        "key": pop.key,
        "path": None if path is None else str(path),
        "built": built,
        "source": report.get("source"),
        "seed": report.get("seed"),
        "rejected_total": int(sum(rejected.values())),
        "flagged_total": int(sum((report.get("flagged") or {}).values())),  # real records kept though they break a rule
        "llm_rejected": check.get("rejected"),
        "calls": calls,
        "report": report,
        "calibration": default_calibration(spec, pop),
    }


def default_calibration(spec: Any, pop: Any) -> dict[str, Any] | None:
    """For a population drawn from the embedded default: the calibration report
    (margins against control totals, the build record) and the joint structure
    of the census files, the calibrated default (after the spec's filters too)
    and the personas. None for any other source."""
    population = spec.population
    if population.source != "census" or population.persons is not None:
        return None
    from persona_exp.population.build import source_frame
    from persona_exp.population.filters import apply_filters
    from persona_exp.population.profile import JOINT_PAIRS, calibration_report, joint_structure

    out = calibration_report()
    source, _ = source_frame(population)
    census = out["about"]["census_joint_structure"]
    calibrated = joint_structure(source, weight="weight")
    filtered = joint_structure(apply_filters(source, population.filters)[0], weight="weight") if population.filters else None
    personas = joint_structure(pop.frame)
    out["filters"] = list(population.filters)
    out["joint"] = [
        {"pair": k, "census": census.get(k), "calibrated": calibrated[k], "calibrated_filtered": None if filtered is None else filtered[k],
         "personas": personas[k]}
        for k in JOINT_PAIRS
    ]
    return out


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.2g}"


def _print_calibration(cal: dict[str, Any], detail: bool) -> None:
    """The default's calibration: raking result, one row per control margin
    (every category with --detail), the uncontrolled check, and Cramér's V."""
    from rich.table import Table
    from rich.text import Text

    about, out = cal["about"], console()
    seed, raking, weights = about["seed"], about["raking"], about["weights"]
    print(f"calibration of the embedded default: {seed['records']:,} ACS {seed['year']} PUMS person records of "
          f"{len(seed['states'])} states ({', '.join(s['state'] for s in seed['states'])}) raked to national ACS "
          f"{about['controls']['year']} tables")
    print(f"  {raking['iterations']} sweeps, largest relative error {raking['max_rel_error']:.1e} (converged: "
          f"{'yes' if raking['converged'] else 'no'}); calibrated weights {weights['calibrated_over_bureau_min']:g} to "
          f"{weights['max']:g} times the Bureau's (median {weights['median']:g}); Kish effective records "
          f"{weights['kish_effective_records']:,} of {seed['records']:,}")
    table = Table(title="Calibration: calibrated default vs published control totals", title_justify="left")
    for name in ("margin", "table", "categories", "TVD", "largest rel. error"):
        table.add_column(name, justify="left" if name in ("margin", "table") else "right")
    for m in cal["margins"]:
        table.add_row(Text(m["title"]), m["table"], str(m["categories"]), _g(m["tvd"]), _g(m["max_rel_error"]))
    for c in cal["checks"]:
        table.add_row(Text(c["title"]), c["table"], str(len(c["rows"])), _g(c["tvd"]), "-")
    out.print(table)
    if detail:
        for m in [*cal["margins"], *cal["checks"]]:
            rows = pl.DataFrame(m["rows"]).with_columns(
                (pl.col("calibrated") / pl.col("calibrated").sum()).alias("calibrated share"),
                (pl.col("target") / pl.col("target").sum()).alias("published share"),
            )
            print_frame(rows.select("category", "published share", "calibrated share", "target", "calibrated"),
                        f"{m['title']} ({m['table']})", limit=500)
    joint = Table(title="Joint structure: Cramér's V of key pairs", title_justify="left")
    columns = [("census files", "census"), ("calibrated default", "calibrated")]
    if cal["filters"]:
        columns.append(("calibrated, filtered", "calibrated_filtered"))
    columns.append(("personas", "personas"))
    joint.add_column("pair")
    for name, _ in columns:
        joint.add_column(name, justify="right")
    for row in cal["joint"]:
        joint.add_row(Text(row["pair"]), *("-" if row[k] is None else f"{row[k]:.3f}" for _, k in columns))
    out.print(joint)
    print("  census files: the seed states' own records with the Bureau's weights (twelve states, not the nation); "
          "calibrated default: the same records raked to the national totals"
          + ("; filtered: after the spec's filters, which the personas passed" if cal["filters"] else "")
          + "; personas: this population, each counted once.")


def call_counts(results: Any) -> dict[str, Any]:
    """Counts of the model calls the population's llm steps made (CallResults
    by key), as a run counts its calls (execute.runner.RunCounts)."""
    from persona_exp.execute.runner import RunCounts

    counts = RunCounts()
    for r in results.values():
        counts.add(r)
    return {k: v for k, v in counts.as_dict().items() if k in ("calls", "cached", "ran", "failed", "failures", "lenient")}


def _print_llm(report: dict[str, Any]) -> None:
    llm = report.get("llm") or {}
    check, fields, people = llm.get("check"), llm.get("fields"), llm.get("people")
    if check:
        rate = f"{100 * check['rate']:.1f}%" if check.get("rate") is not None else "n/a"
        print(f"  language-model consistency check ({check['model']}, role {check['role']}): {check['checked']:,} profiles checked, "
              f"{check['rejected']:,} rejected ({rate} of those answered), {check['unanswered']:,} unanswered (kept)")
        asked = check.get("asked")
        extra = f", {check['short']:,} short of population.size {asked:,}" if check.get("short") else ""
        extra += f", {check['surplus']:,} accepted beyond it unused" if check.get("surplus") else ""
        print(f"    kept {check['kept']:,} personas (oversample {check.get('oversample', 0):g}{extra})")
    if fields:
        per = "; ".join(f"{name} {c['written']:,} written" + (f", {c['failed']:,} failed (procedural value kept)" if c["failed"] else "")
                        + (f", {c['not_applicable']:,} not applicable" if c["not_applicable"] else "") for name, c in fields["fields"].items())
        print(f"  open fields written by {fields['model']} (role {fields['role']}): {per}")
    if people:
        per = "; ".join(f"{axis}: {a['people']} people in {a['categories']} categories"
                        + (f", {a['unparsed_lines']} unparsed line(s)" if a["unparsed_lines"] else "")
                        + (f", {a['duplicates']} duplicate(s) dropped" if a["duplicates"] else "") for axis, a in people["axes"].items())
        print(f"  people generated by {people['model']} (role {people['role']}): {per}")
    for part in (check, fields):
        for err in (part or {}).get("errors", []):
            print(f"    failed call: {err}")


def _print_text(s: dict[str, Any], pop: Any, detail: bool, head: int) -> None:
    from persona_exp.population import print_representativeness

    report = s["report"]
    llm = report.get("llm") or {}
    if s["path"] is None:
        where = "generated, not stored"
    elif llm:
        where = (f"procedural population of {llm.get('procedural_size', s['size']):,} " + ("built and stored in" if s["built"] else "loaded from")
                 + f" {s['path']}, language-model steps on top")
    else:
        where = f"built and stored in {s['path']}" if s["built"] else f"loaded from {s['path']}"
    print(f"population of {s['experiment']}: {s['size']:,} personas ({where})")
    print(f"  source: {s['source']}")
    print(f"  seed {s['seed']}  content key {s['key']}")
    filters = report.get("filters") or {}
    if filters.get("applied"):
        steps = "; ".join(f"{st['filter']} -> {st['rows_after']:,}" for st in filters.get("steps", []))
        print(f"  filters: {filters['rows_before']:,} source rows; {steps} rows kept")
    if "drawn" in report:
        drawn_for = llm.get("procedural_size", s["size"])
        print(f"  drawn {report['drawn']:,} rows in {report.get('draw_rounds', 1)} round(s) for {drawn_for:,} personas")
    if "distinct_records" in report:
        drawn = llm.get("procedural_size", report["size"])  # counted at the draw, before any language-model step
        print(f"  {report['distinct_records']:,} distinct census records behind the {drawn:,} personas drawn")
    if report.get("flagged"):
        hits = {k: v for k, v in report["flagged"].items() if v}
        detail_ = ", ".join(f"{k} {v:,}" for k, v in sorted(hits.items(), key=lambda kv: -kv[1]))
        print(f"  kept, breaking a consistency rule (real census records; population.consistency: drop rejects them): "
              f"{sum(hits.values()):,}" + (f" ({detail_})" if hits else ""))
    if "rejected" in report:
        hits = {k: v for k, v in report["rejected"].items() if v}
        if hits:
            detail_ = ", ".join(f"{k} {v:,}" for k, v in sorted(hits.items(), key=lambda kv: -kv[1]))
            print(f"  rejected by the consistency rules: {s['rejected_total']:,} ({detail_})")
        else:
            rules = len(report["rejected"])
            print(f"  rejected by the consistency rules: none ({rules} rules checked)" if rules else "  consistency rules: off")
    _print_llm(report)
    if report.get("strata"):
        print(f"  {report.get('available', '?')} famous personas available; drawn per axis and category:")
        print_frame(pl.DataFrame(report["strata"]), "famous-person strata", limit=500)
    if report.get("representativeness"):
        print_representativeness(report, console=console(), detail=detail)
    if s.get("calibration"):
        _print_calibration(s["calibration"], detail)
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
    from persona_exp.errors import PersonaExpError
    from persona_exp.pipeline import _population, load_spec, procedural_population_path, stage_context
    from persona_exp.population.llm import needs_model
    from persona_exp.spec.experiment import ExperimentSpec
    from persona_exp.spec.loader import located_errors
    from persona_exp.steps.context import StagePending

    spec = load_spec(args.spec, args.overrides, for_run=False)
    root = Path(spec.output.dir)
    folder = root / "populations"
    before = set(folder.glob("*.parquet")) if folder.is_dir() else set()
    ctx, stager, _ = stage_context(spec, dry=args.dry, progress=not (args.json or args.no_progress))
    try:
        with located_errors(args.spec, args.overrides, ExperimentSpec, field="population"):
            pop = _population(spec, root, ctx)
    except StagePending as exc:
        raise PersonaExpError(
            f"--dry: the population's language-model steps need answers that are not in the call cache yet ({exc.missing} calls of "
            f"step {exc.step}); nothing was sent. Run without --dry to ask the model (the answers are cached for later runs)."
        ) from None
    new = sorted(set(folder.glob("*.parquet")) - before) if folder.is_dir() else []
    llm = spec.population.llm
    generated = needs_model(spec.population) and llm is not None and llm.generate_axes is not None
    if generated:
        path = None
    else:
        expected = procedural_population_path(spec, root)
        path = expected if expected.exists() else (new[0] if len(new) == 1 else _stored_path(folder, pop.key))
    calls = call_counts(stager.results) if needs_model(spec.population) else None
    s = summary(spec, pop, path, built=bool(new) or generated, calls=calls)
    if args.json:
        print_json(s)
    else:
        _print_text(s, pop, args.detail, args.head)
    if calls is None:
        return 0
    from persona_exp.execute.runner import counts_line

    line = f"population model calls: {counts_line(calls)}"
    print(line, file=sys.stderr if args.json else sys.stdout)
    if calls["failed"]:
        bad = [r for r in stager.results.values() if r.status != "ok"]
        for r in bad[:10]:
            print(f"  failed: {r.step} ({r.role}, {r.status}): {r.error}", file=sys.stderr)
        if len(bad) > 10:
            print(f"  ... and {len(bad) - 10} more", file=sys.stderr)
        print("some calls failed (their personas kept their procedural values or went unchecked); rerun the same command to retry only those.",
              file=sys.stderr)
        return 1
    return 0
