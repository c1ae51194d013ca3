"""Power analysis speed: replicates per second of the default leave-one-out
design (experiments/loo.yaml) on the bulk path, against the full pipeline
run in memory on the simulator, both measured in this run.

    python benchmarks/bench_power.py            # 200 bulk replicates, 2 full-pipeline replicates
    python benchmarks/bench_power.py --quick    # 20 bulk replicates, 1 full-pipeline replicate

Target: 200 replicates in under 60 s, the pool's one-time build included
(it prints the pool build and the replicates apart).
Every figure is of the SIMULATOR; nothing is sent to a model.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "experiments" / "loo.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 bulk replicates and one full-pipeline replicate")
    parser.add_argument("--reps", type=int, default=None, help="bulk replicates (default 200; --quick 20)")
    parser.add_argument("--full", type=int, default=None, help="full-pipeline replicates (default 2; --quick 1)")
    parser.add_argument("--jobs", type=int, default=0, help="processes for the bulk path (default: up to 2)")
    parser.add_argument("--pool-factor", type=float, default=2.0, help="the bulk pool, times the design (default 2, as persona-exp power)")
    args = parser.parse_args()
    reps = args.reps or (20 if args.quick else 200)
    full = args.full or (1 if args.quick else 2)

    from persona_exp.power import Study, parse_effect, run_study
    from persona_exp.power.study import brute_replicate

    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}; SIMULATED (offline simulator)")
    messages: list[str] = []
    t0 = time.perf_counter()
    result = run_study(Study(SPEC, [], [parse_effect("religion=2.0", "loo")], [{}], reps=reps, jobs=args.jobs, pool_factor=args.pool_factor,
                             progress=messages.append))
    bulk_s = time.perf_counter() - t0
    for m in messages:
        print(f"  bulk: {m}")
    d = result["designs"][0]
    print(f"  bulk: power[religion=2.0] = {d['power']['religion']['power']:.3f} +- {d['power']['religion']['mc_se']:.3f} (simulated)")

    with tempfile.TemporaryDirectory() as tmp:
        ov = [f"output.dir={tmp}"]
        brute_replicate(SPEC, ov, 0, 0, ["judge"])  # warm-up: imports, caches of the population code
        t1 = time.perf_counter()
        for r in range(1, full + 1):
            brute_replicate(SPEC, ov, r, 0, ["judge"])
        full_s = (time.perf_counter() - t1) / full
    bulk_rate = reps / bulk_s
    full_rate = 1 / full_s
    print(f"{'case':44} {'replicates/s':>12} {'s/replicate':>12}")
    print(f"{'bulk path, ' + str(reps) + ' replicates (pool build included)':44} {bulk_rate:12.2f} {bulk_s / reps:12.3f}")
    print(f"{'full pipeline in memory (1 process)':44} {full_rate:12.3f} {full_s:12.2f}")
    print(f"ratio bulk / full pipeline: {bulk_rate / full_rate:.1f}x; {reps} bulk replicates took {bulk_s:.1f} s "
          f"({'PASS' if reps < 200 or bulk_s < 60 else 'MISS'} target: 200 in under 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
