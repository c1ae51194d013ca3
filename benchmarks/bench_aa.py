#!/usr/bin/env python
"""An A/A test of `persona-exp diff` through the command line, on the SIMULATOR.

Pairs of leave-one-out runs of `experiments/loo.yaml` that differ only in the
simulated judge's noise draw (`--set models.judge.sim.draw=N`) are diffed with
`persona-exp diff --json`. Nothing real changed between the two runs of a
pair, so every flagged attribute is a false positive. The script prints the
share of pairs with any flagged attribute (the family-wise error rate of the
diff; target <= 10%) and each attribute's false-positive rate.

Pairs are disjoint (draws 0 and 1, 2 and 3, ...) so they are independent; all
runs share one output folder and call cache, so only the judge's calls run
again for a new draw. Before the pairs, `persona-exp plan` checks that a new
judge draw reruns the judge's calls and nothing else.

    python benchmarks/bench_aa.py              # 20 pairs, 33 attributes x 20 personas x 10 questions
    python benchmarks/bench_aa.py --quick      # 4 pairs, 6 attributes x 8 personas x 6 questions (smoke test)
    python benchmarks/bench_aa.py --pairs 40 --json out.json

Exit status: 0 when every check holds (the runs and diffs worked, a new draw
reran only judge calls, each pair differs only in the draw), even if the
target is missed (the figures are a report); 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import Report, print_table

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
FULL = {"pairs": 20, "attributes": "all", "n_personas": 20, "n_questions": 10}
QUICK = {"pairs": 4, "attributes": "[age, sex, marital_status, religion, education, income]", "n_personas": 8, "n_questions": 6}


def cli(cwd: Path, *args: str) -> dict:
    """Runs the CLI and returns its JSON output (raises with stderr on failure)."""
    r = subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"persona-exp {' '.join(args[:2])} exited {r.returncode}: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (good coverage near 0 and 1)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 4 pairs at a tiny scale")
    ap.add_argument("--pairs", type=int, help="A/A pairs (default 20; quick 4)")
    ap.add_argument("--n-personas", type=int)
    ap.add_argument("--n-questions", type=int)
    ap.add_argument("--workdir", help="keep the runs here (default: a temporary folder, deleted)")
    ap.add_argument("--json", dest="json_path", help="write the figures and checks as JSON")
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    for name in ("pairs", "n_personas", "n_questions"):
        if getattr(args, name) is not None:
            cfg[name] = getattr(args, name)
    if cfg["pairs"] < 1:
        ap.error("--pairs must be at least 1")
    start = time.perf_counter()
    report = Report(dict)
    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="persona-exp-aa-")
    work = Path(args.workdir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    base = ["--set", f"output.dir={work / 'out'}", "--set", f"experiment.attributes={cfg['attributes']}",
            "--set", f"experiment.n_personas={cfg['n_personas']}", "--set", f"experiment.n_questions={cfg['n_questions']}"]
    print(f"A/A test of `persona-exp diff` on SIMULATED leave-one-out runs (sim/judge, sim/generator; no real model)\n"
          f"  {cfg['pairs']} pairs, attributes {cfg['attributes']}, {cfg['n_personas']} personas x {cfg['n_questions']} questions per attribute; "
          f"each pair differs only in models.judge.sim.draw\n  workdir {work}", flush=True)

    def run(draw: int) -> dict:
        return cli(work, "run", str(SPEC), *base, "--set", f"models.judge.sim.draw={draw}", "--no-progress", "--json")

    first = run(0)
    # A draw no run of this script uses, so the plan's answer does not depend on earlier runs in --workdir.
    plan = cli(work, "plan", str(SPEC), *base, "--set", "models.judge.sim.draw=999983", "--json")
    by_step = {s["step"]: s for s in plan["steps"]}
    rerun = {s: r["to_run"] for s, r in by_step.items() if r["to_run"]}
    report.check("a new judge draw reruns only the judge's calls (persona-exp plan)",
                 set(rerun) == {"judge"} and rerun["judge"] == by_step["judge"]["calls"],
                 f"to run by step: {rerun}; judge calls {by_step['judge']['calls']} of {plan['total_calls']}")

    runs = {0: first["run_id"]}
    pairs = []
    for i in range(cfg["pairs"]):
        for d in (2 * i, 2 * i + 1):
            if d not in runs:
                out = run(d)
                runs[d] = out["run_id"]
                if out["counts"]["failed"]:
                    report.check(f"run draw {d}", False, f"counts {out['counts']}")
        diff = cli(work, "diff", runs[2 * i], runs[2 * i + 1], "--dir", str(work / "out"), "--json")
        pairs.append(diff)
        kappas = [m for m in diff["metrics"] if str(m.get("metric", "")).startswith("kappa[")]
        flagged = [m["metric"] for m in kappas if m.get("flagged")]
        print(f"  pair {i + 1:2d}: draws {2 * i}/{2 * i + 1}: {len(kappas)} attributes, flagged {flagged or 'none'} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

    spec_fields = {tuple(sorted(c["field"] for c in d["spec"])) for d in pairs}
    report.check("each pair differs only in the judge's draw", spec_fields == {("models.judge.sim.draw",)}, f"spec changes: {sorted(spec_fields)}")
    reused = all(d["plan"]["reused"] > 0 and d["plan"]["added"] == d["plan"]["removed"] for d in pairs)
    report.check("each pair shares its generator calls and swaps its judge calls", reused,
                 f"first pair: {pairs[0]['plan']['added']} added, {pairs[0]['plan']['removed']} removed, {pairs[0]['plan']['reused']} reused")

    metrics = sorted({m["metric"] for d in pairs for m in d["metrics"] if str(m.get("metric", "")).startswith("kappa[")})
    rows_by_pair = [{m["metric"]: m for m in d["metrics"] if m["metric"] in metrics} for d in pairs]
    report.check("every pair reports every attribute", all(set(r) == set(metrics) for r in rows_by_pair) and len(metrics) > 0,
                 f"{len(metrics)} attributes in the union")
    methods = sorted({str((d.get("multiplicity") or {}).get("method")) for d in pairs})
    alpha = float((pairs[0].get("multiplicity") or {}).get("alpha", 0.05))
    n, n_cells = len(pairs), len(pairs) * len(metrics)

    def rates(is_flag) -> tuple[int, dict[str, int]]:
        """Pairs with any flag, and flags per metric, under one flagging rule."""
        per = {m: sum(bool(is_flag(r[m])) for r in rows_by_pair if m in r) for m in metrics}
        return sum(any(is_flag(x) for x in r.values()) for r in rows_by_pair), per

    any_flag, per_metric = rates(lambda x: x.get("flagged"))
    raw_any, raw_metric = rates(lambda x: x.get("p") is not None and x["p"] == x["p"] and x["p"] < alpha)
    lo, hi = wilson(any_flag, n)
    rlo, rhi = wilson(sum(raw_metric.values()), n_cells)

    print("\nSIMULATED A/A results (sim/judge; not a statement about any real model)")
    print(f"diff's multiplicity correction: {', '.join(methods)} (a `flagged` change survives it)")
    print(f"pairs with any flagged attribute: {any_flag} of {n} = {any_flag / n:.1%} (95% Wilson interval {lo:.1%} to {hi:.1%}); "
          f"target <= 10%: {'PASS' if any_flag / n <= 0.10 else 'MISS'}")
    print(f"flagged attribute-pairs after the correction: {sum(per_metric.values())} of {n_cells} = {sum(per_metric.values()) / max(n_cells, 1):.2%}")
    print(f"uncorrected (p < {alpha:g}) per-metric false-positive rate, pooled: {sum(raw_metric.values())} of {n_cells} = "
          f"{sum(raw_metric.values()) / max(n_cells, 1):.2%} (95% Wilson {rlo:.1%} to {rhi:.1%}; nominal {alpha:.0%}); "
          f"pairs with any uncorrected p < {alpha:g}: {raw_any} of {n} = {raw_any / n:.1%}")
    table = [[m, str(per_metric[m]), str(raw_metric[m]), str(n), f"{per_metric[m] / n:.1%}", f"{raw_metric[m] / n:.1%}"] for m in metrics]
    print_table(["metric", "flagged", "p<alpha", "pairs", "flagged rate", "uncorrected rate"], table, right=frozenset({1, 2, 3, 4, 5}))
    elapsed = time.perf_counter() - start
    record = {"simulated": True, "config": cfg, "pairs": n, "pairs_any_flagged": any_flag, "share_any_flagged": any_flag / n,
              "wilson_95": [lo, hi], "per_metric_flagged": per_metric, "per_metric_uncorrected": raw_metric, "alpha": alpha,
              "multiplicity": methods, "runs": runs}
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps({"figures": record, "checks": [c.__dict__ for c in report.checks]}, indent=2) + "\n")
        print(f"wrote {args.json_path}")
    failed = [c for c in report.checks if not c.ok]
    print(f"\nchecks: {len(report.checks) - len(failed)}/{len(report.checks)} ok | total {elapsed:.1f} s")
    if tmp is not None:
        tmp.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
