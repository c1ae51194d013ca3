"""`persona-exp power SPEC`: how large a design must be to detect an effect, on the simulator, before spending money."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import polars as pl

from persona_exp.cli.output import print_frame, print_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("power", help="SIMULATED power analysis: power, false positives, interval widths and cost per design size")
    p.add_argument("spec")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE", help="spec overrides, as for run")
    p.add_argument("--effect", action="append", default=[], metavar="ATTR=SIZE",
                   help="a planted effect: ATTR=SIZE on the simulator's scale (e.g. religion=4.0; unplanted attributes keep the default effect) "
                        "or on the headline metric, calibrated by simulation: leave-one-out ATTR=kappa-DROP (religion=kappa-0.1: its kappa DROP "
                        "below the mean of the others); WikiPersonas ATTR=winrate+D (name=winrate+0.1: the condition's win rate 0.1 above 0.5); "
                        "DPF ATTR=rate+D (the share preferring the revision, from 0.5); conditioning ATTR=accuracy+D (a mode's accuracy minus "
                        "the base mode's); agreement ATTR=kappa+D (a judge pair's kappa); D may also be negative (-D)"),
    p.add_argument("--grid", action="append", default=[], metavar="KEY.PATH=V1,V2",
                   help="design sizes to compare, e.g. experiment.n_personas=10,20,40 (several flags: every combination)")
    p.add_argument("--reps", type=int, default=200, help="replicates per design (default 200)")
    p.add_argument("--target", type=float, default=0.8, help="power to reach (default 0.8)")
    p.add_argument("--method", choices=("auto", "bulk", "brute"), default="auto",
                   help="bulk (leave-one-out: vectorized judge over a pool) or brute (the full pipeline per replicate; every kind); auto picks bulk where it can")
    p.add_argument("--pool-factor", type=float, default=2.0, help="bulk: the pool is this many times the largest design (default 2)")
    p.add_argument("--default-effect", type=float, default=None, help="the simulated judge's effect of unplanted attributes (default: the spec's)")
    p.add_argument("--metric", default=None, help="other kinds than leave-one-out: the headline metric whose detection is the power and that a "
                                                  "metric-scale --effect refers to (default: each; with a metric-scale effect, the kind's main one)")
    p.add_argument("--calibration-draws", type=int, default=6,
                   help="other kinds than leave-one-out: replicates of the small design averaged per point of a metric-scale calibration (default 6)")
    p.add_argument("--no-null", dest="null", action="store_false",
                   help="other kinds than leave-one-out: skip the null arm (each design's replicates again in a world where nothing is "
                        "planted, for the false-positive rate); halves the cost, and no false-positive rate is reported")
    p.add_argument("--jobs", type=int, default=0, help="processes (default: up to 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the replicates' draws")
    p.add_argument("--json", action="store_true")
    p.add_argument("--html", metavar="FILE", help="also write the power curves and tables as one HTML page")
    p.set_defaults(handler=main)


def _pm(p: float, se: float) -> str:
    return "n/a" if p is None or not math.isfinite(p) else f"{p:.2f} ± {se:.2f}"


def rows(result: dict) -> list[dict]:
    """One row per design: size, calls, cost, power per effect, widths, false
    positives (leave-one-out); one per design and headline metric for the
    other kinds, whose headlines have many metrics, with the design's null-arm
    false-positive rates repeated on each of its rows."""
    out = []
    if result["kind"] != "loo":
        for d in result["designs"]:
            for name, v in d["power"].items():
                row = {"design": d["label"], "calls": d["calls"], "cost_usd": d["cost_usd"], "metric": name,
                       "power": _pm(v["power"], v["mc_se"]), "width": v["mean_width"], "reaches_target": v["power"] >= result["target"]}
                if d.get("false_positive_rate") is not None:  # the null arm's, per design: over the metrics of its rows
                    row["false_pos/test"] = _pm(d["false_positive_rate"], d["false_positive_rate_se"])
                    row["any_false_pos"] = _pm(d["familywise_false_positive"], d["familywise_false_positive_se"])
                out.append(row)
        return out
    for d in result["designs"]:
        row = {"design": d["label"], "calls": d["calls"], "cost_usd": d["cost_usd"]}
        for name, v in d["power"].items():
            row[f"power[{name}]"] = _pm(v["power"], v["mc_se"])
            row[f"width[{name}]"] = v["mean_width"]
        if d.get("false_positive_rate") is not None:
            row["false_pos/test"] = _pm(d["false_positive_rate"], d["false_positive_rate_se"])
            row["any_false_pos"] = _pm(d["familywise_false_positive"], d["familywise_false_positive_se"])
            row["flagged/test"] = _pm(d["flagged_rate"], d["flagged_rate_se"])
            row["width[unplanted]"] = d["mean_width_unplanted"]
        row["reaches_target"] = d["reaches_target"]
        out.append(row)
    return out


def main(args: argparse.Namespace) -> int:
    from persona_exp.errors import InvalidArgumentError
    from persona_exp.pipeline import load_spec
    from persona_exp.power import Study, parse_effect, parse_grid, run_study
    from persona_exp.power.design import design_label

    kind = load_spec(args.spec, args.overrides).experiment.kind
    if args.jobs < 0:
        raise InvalidArgumentError(f"--jobs {args.jobs}: give a number of processes, 1 or more (0: up to 2).")
    if args.default_effect is not None and not 0 <= args.default_effect <= 100:
        raise InvalidArgumentError(f"--default-effect {args.default_effect}: give the simulator's effect, 0 to 100.")
    effects = [parse_effect(e, kind) for e in args.effect]
    if len({e.attribute for e in effects}) < len(effects):
        raise InvalidArgumentError("--effect: each attribute is planted once per study; run the study again for another size.")
    study = Study(args.spec, list(args.overrides), effects, parse_grid(args.grid), reps=args.reps, target=args.target, seed=args.seed,
                  method=args.method, jobs=args.jobs, pool_factor=args.pool_factor, default_effect=args.default_effect, metric=args.metric,
                  calibration_draws=args.calibration_draws, null=args.null,
                  progress=lambda s: print(f"power (simulated): {s}", file=sys.stderr))
    result = run_study(study)
    if args.html:
        from persona_exp.report.power import render

        Path(args.html).write_text(render(result), encoding="utf-8")
    if args.json:
        print_json(result)
        return 0
    print(result["title"])
    print(f"{result['reps']} replicates per design, {result['method']} path; tests: {result['multiplicity']} at {1 - result['level']:g}; "
          f"unplanted attributes' effect {result['default_effect']:g}")
    for c in result["calibration"]:
        where = f", {c['draws']} replicates of a small design ({design_label(c['design'])}) per row, mean and Monte-Carlo error" if c.get("design") else ""
        print(f"SIMULATED calibration of {c['attribute']}: simulator effect -> {c['value_is']}{where}")
        print_frame(pl.DataFrame(c["curve"]))
        print(f"{c['effect']} -> simulator effect {c['sim_size']:.3f} (on {c['metric']})")
    print_frame(pl.DataFrame(rows(result)), f"SIMULATED power per design (target {result['target']:g})", limit=200)
    for d in result["designs"]:
        for label, v in (d.get("metric_values") or {}).items():
            print(f"SIMULATED {v['value_is']}, mean over the replicates of {d['label']}: {_pm(v['mean'], v['mc_se'])} against {v['asked']:+g} asked by {label}")
    if result["designs"] and result["designs"][0]["cost_note"]:
        print(f"cost: {result['designs'][0]['cost_note']}")
    if result["recommended"]:
        print(f"recommended: {result['recommended']}, the cheapest design whose simulated power reaches {result['target']:g} for every effect")
    elif result["effects"] or result["kind"] != "loo":
        print(f"no design of the grid reaches a simulated power of {result['target']:g}; try larger sizes in --grid")
    if result["kind"] == "loo":
        print("false_pos/test: share of unplanted attributes' tests flagging them as more influential than the rest; any_false_pos: share of "
              "replicates with at least one (what the correction bounds by alpha); flagged/test: flagged either way (an unplanted attribute "
              "sits truly above the others' mean once something is planted)")
    elif result.get("null_arm"):
        print("SIMULATED null arm: every design's replicates again (same seeds and judge draws) in a world where nothing is planted (every judge's effects, default effect and quality term at 0); "
              "false_pos/test: share of its (replicate, metric) tests surviving the correction; any_false_pos: share of its replicates with at "
              "least one (what the correction bounds by alpha)")
    else:
        print("false positives: not counted (--no-null skipped the null arm)")
    for n in result["notes"]:
        print(f"note: {n}")
    if args.html:
        print(f"wrote {args.html}")
    return 0
